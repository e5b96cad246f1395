#!/usr/bin/env python3
"""Dev-only: measures llama.cpp's logits against a float64 reference and writes one golden fixture.

A second, independent float64 forward pass of a llama GGUF model, in numpy, with gguf-py's dequantizers
(tests/support/reference_forward.cpp is the first, with kinfer's scalar dequantizers; golden_test checks that
the two agree through the `ref` values stored here). It reads what make_golden_logits.mjs wrote for one model,
computes llama.cpp's error per position, max |llama - ref| / (max ref - min ref), and writes the fixture.

Run by make_golden_logits.sh; needs numpy and gguf-py (PYTHONPATH=/tmp/llama.cpp/gguf-py, /usr/bin/python3).
"""
import argparse
import json
import os

import numpy as np
from gguf import GGUFReader
from gguf.quants import dequantize

TOP_K = 8  # logits stored per position (largest first)


def field(reader, key, default=None):
    f = reader.get_field(key)
    if f is None:
        if default is None:
            raise KeyError(key)
        return default
    return f.contents()


class Model:
    def __init__(self, path):
        r = GGUFReader(path)
        assert field(r, "general.architecture") == "llama"
        self.n_embd = int(field(r, "llama.embedding_length"))
        self.n_layer = int(field(r, "llama.block_count"))
        self.n_head = int(field(r, "llama.attention.head_count"))
        self.n_head_kv = int(field(r, "llama.attention.head_count_kv", self.n_head))
        self.head_dim = int(field(r, "llama.attention.key_length", self.n_embd // self.n_head))
        self.n_rot = int(field(r, "llama.rope.dimension_count", self.head_dim))
        assert self.n_rot == self.head_dim
        self.base = float(field(r, "llama.rope.freq_base", 10000.0))
        self.eps = float(field(r, "llama.attention.layer_norm_rms_epsilon"))
        assert r.get_field("llama.rope.scaling.factor") is None
        self.w = {}
        for t in r.tensors:
            ne0 = int(t.shape[0])
            a = dequantize(t.data, t.tensor_type).astype(np.float64)
            self.w[t.name] = a.reshape(-1, ne0)  # rows of ne0, as in ggml
        if "output.weight" not in self.w:
            self.w["output.weight"] = self.w["token_embd.weight"]
        self.n_vocab = self.w["token_embd.weight"].shape[0]

    def rmsnorm(self, x, w):
        return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + self.eps) * w.reshape(-1)

    def rope(self, x, pos):
        # x: (n, heads, head_dim); ggml "normal" rope turns adjacent pairs (2i, 2i+1) by pos * base^(-2i/n_rot).
        inv = self.base ** (-np.arange(0, self.n_rot, 2, dtype=np.float64) / self.n_rot)
        th = pos[:, None] * inv[None, :]
        c, s = np.cos(th)[:, None, :], np.sin(th)[:, None, :]
        x0, x1 = x[..., 0::2].copy(), x[..., 1::2].copy()
        out = x.copy()
        out[..., 0::2] = x0 * c - x1 * s
        out[..., 1::2] = x0 * s + x1 * c
        return out

    def logits(self, tokens):
        n, hd, g = len(tokens), self.head_dim, self.n_head // self.n_head_kv
        w = self.w
        x = w["token_embd.weight"][np.array(tokens)]
        pos = np.arange(n, dtype=np.float64)
        mask = np.triu(np.full((n, n), -np.inf), k=1)
        for il in range(self.n_layer):
            p = f"blk.{il}."
            a = self.rmsnorm(x, w[p + "attn_norm.weight"])
            q = self.rope((a @ w[p + "attn_q.weight"].T).reshape(n, self.n_head, hd), pos)
            k = self.rope((a @ w[p + "attn_k.weight"].T).reshape(n, self.n_head_kv, hd), pos)
            v = (a @ w[p + "attn_v.weight"].T).reshape(n, self.n_head_kv, hd)
            att = np.empty((n, self.n_head, hd))
            for h in range(self.n_head):
                sc = q[:, h, :] @ k[:, h // g, :].T / np.sqrt(hd) + mask
                sc = np.exp(sc - sc.max(axis=1, keepdims=True))
                att[:, h, :] = (sc / sc.sum(axis=1, keepdims=True)) @ v[:, h // g, :]
            x = x + att.reshape(n, -1) @ w[p + "attn_output.weight"].T
            m = self.rmsnorm(x, w[p + "ffn_norm.weight"])
            gate, up = m @ w[p + "ffn_gate.weight"].T, m @ w[p + "ffn_up.weight"].T
            x = x + (gate / (1 + np.exp(-gate)) * up) @ w[p + "ffn_down.weight"].T
        return self.rmsnorm(x, w["output_norm.weight"]) @ w["output.weight"].T


def file_checksum(path):
    """sum over the file's little-endian u64 words w_i (zero-padded) of (i + 1) * w_i, mod 2^64: cheap, and
    golden_test.cpp computes the same to notice a model that `infer synth` no longer makes."""
    raw = np.fromfile(path, dtype=np.uint8)
    raw = np.concatenate([raw, np.zeros((-len(raw)) % 8, dtype=np.uint8)])
    words = raw.view("<u8").astype(np.uint64)
    weights = np.arange(1, len(words) + 1, dtype=np.uint64)
    with np.errstate(over="ignore"):
        return int(np.sum(words * weights, dtype=np.uint64))


def top(v, k):
    idx = np.argsort(-v, kind="stable")[:k]
    return idx


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--llama-dir", required=True, help="output folder of make_golden_logits.mjs for this model")
    ap.add_argument("--synth", required=True, help="the infer synth arguments that made the model")
    ap.add_argument("--type", required=True)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()

    model = Model(a.model)
    meta = json.load(open(os.path.join(a.llama_dir, "llama.json")))
    assert meta["n_vocab"] == model.n_vocab
    lines = [
        "# kinfer golden fixture: llama.cpp's logits on a synthetic model, measured against a float64 reference.",
        "# Made by scripts/dev/make_golden_logits.sh; do not edit by hand.",
        f"# llama.cpp: node-llama-cpp {meta['node_llama_cpp']} (llama.cpp {meta['llama_cpp']}), CPU, "
        f"{meta['threads']} threads, batch {meta['batch_size']}",
        "# Lines: synth ARGS (the test adds --vocab and -o) | type T | model_bytes B, model_checksum C (of synth's",
        "#   file: see golden_reference.py) | n_vocab N",
        "#   llama_max_rel_err E (llama.cpp's max |llama - ref| / (max ref - min ref) over every position below)",
        "#   prompt NAME TOKENS... | greedy NAME 32 TOKENS (llama.cpp's greedy continuation)",
        "#   pos NAME I LLAMA_REL_ERR llama ID:LOGIT x8 ref ID:LOGIT x8   (position I of prompt + greedy[:-1];",
        "#     `llama` = llama.cpp's top logits there (first = its argmax), `ref` = numpy float64 reference's top logits)",
        f"synth {a.synth}",
        f"type {a.type}",
        f"model_bytes {os.path.getsize(a.model)}",
        f"model_checksum {file_checksum(a.model)}",
        f"n_vocab {model.n_vocab}",
    ]
    body, worst = [], 0.0
    for p in meta["prompts"]:
        name, toks, gen = p["name"], p["tokens"], p["greedy"]
        seq = toks + gen[:-1]
        raw = np.fromfile(os.path.join(a.llama_dir, p["logits_file"]), dtype="<f4")
        llama = raw.reshape(len(seq), model.n_vocab).astype(np.float64)
        ref = model.logits(seq)
        body.append("prompt " + name + " " + " ".join(map(str, toks)))
        body.append("greedy " + name + " " + " ".join(map(str, gen)))
        # llama.cpp's greedy tokens are the argmax of the logits it returned (checks the .mjs bookkeeping).
        for i in range(len(toks) - 1, len(seq)):
            assert int(np.argmax(llama[i])) == gen[i - len(toks) + 1], (name, i)
        for i in range(len(seq)):
            err = float(np.max(np.abs(llama[i] - ref[i])) / (ref[i].max() - ref[i].min()))
            worst = max(worst, err)
            lt, rt = top(llama[i], TOP_K), top(ref[i], TOP_K)
            body.append(
                f"pos {name} {i} {err:.6e} llama "
                + " ".join(f"{j}:{llama[i][j]:.9g}" for j in lt)
                + " ref "
                + " ".join(f"{j}:{ref[i][j]:.12g}" for j in rt)
            )
        print(f"{a.type} {name}: n={len(toks)} llama max rel err {max(float(np.max(np.abs(llama[i]-ref[i]))/(ref[i].max()-ref[i].min())) for i in range(len(seq))):.3e}")
    lines.append(f"llama_max_rel_err {worst:.6e}")
    with open(a.out, "w") as f:
        f.write("\n".join(lines + body) + "\n")


if __name__ == "__main__":
    main()
