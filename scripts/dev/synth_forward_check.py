#!/usr/bin/python3
"""Dev-only: runs a plain numpy forward pass of a (small) llama GGUF, e.g. one from `infer synth`, and prints
how the activations behave: residual-stream RMS per layer, attention sharpness, logit spread and the gap
between the top two logits (small gaps make top-1 comparisons between implementations flaky).

With a second file (the same model in another type), also reports how often the top-1 token agrees.

usage: PYTHONPATH=/tmp/llama.cpp/gguf-py /usr/bin/python3 scripts/dev/synth_forward_check.py MODEL.gguf [OTHER.gguf]
       [--tokens N] [--seed S]
"""
import argparse
import sys

import numpy as np
from gguf import GGUFReader
from gguf.quants import dequantize


def load(path):
    r = GGUFReader(path)
    kv = {}
    for f in r.fields.values():
        if f.name.startswith("llama.") and len(f.data) == 1:
            kv[f.name] = f.parts[f.data[0]][0]
    w = {}
    for t in r.tensors:
        shape = [int(x) for x in reversed(t.shape.tolist())]  # numpy order: rows first
        a = dequantize(t.data, t.tensor_type).astype(np.float32).reshape(shape)
        w[t.name] = a
    return kv, w


def rmsnorm(x, w, eps):
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * w


def rope(x, pos, n_rot, base):
    # ggml's normal (non-NeoX) rope: rotates adjacent pairs (2i, 2i+1)
    d = x.shape[-1]
    out = x.copy()
    inv = base ** (-np.arange(0, n_rot, 2, dtype=np.float64) / n_rot)
    ang = pos[:, None] * inv[None, :]  # T x n_rot/2
    c, s = np.cos(ang)[:, None, :], np.sin(ang)[:, None, :]
    x0, x1 = x[..., 0:n_rot:2], x[..., 1:n_rot:2]
    out[..., 0:n_rot:2] = x0 * c - x1 * s
    out[..., 1:n_rot:2] = x0 * s + x1 * c
    return out


def forward(kv, w, tokens, report):
    E = int(kv["llama.embedding_length"])
    L = int(kv["llama.block_count"])
    H = int(kv["llama.attention.head_count"])
    HKV = int(kv["llama.attention.head_count_kv"])
    eps = float(kv["llama.attention.layer_norm_rms_epsilon"])
    base = float(kv["llama.rope.freq_base"])
    D = E // H
    n_rot = int(kv.get("llama.rope.dimension_count", D))
    T = len(tokens)
    pos = np.arange(T, dtype=np.float64)
    x = w["token_embd.weight"][tokens].astype(np.float64)
    if report:
        print(f"  embeddings       residual rms {np.sqrt(np.mean(x * x)):.3f}")
    mask = np.triu(np.full((T, T), -np.inf), 1)
    for l in range(L):
        b = f"blk.{l}."
        h = rmsnorm(x, w[b + "attn_norm.weight"], eps)
        q = (h @ w[b + "attn_q.weight"].T).reshape(T, H, D)
        k = (h @ w[b + "attn_k.weight"].T).reshape(T, HKV, D)
        v = (h @ w[b + "attn_v.weight"].T).reshape(T, HKV, D)
        q, k = rope(q, pos, n_rot, base), rope(k, pos, n_rot, base)
        k = np.repeat(k, H // HKV, axis=1)
        v = np.repeat(v, H // HKV, axis=1)
        s = np.einsum("thd,uhd->htu", q, k) / np.sqrt(D) + mask
        score_std = np.std(s[np.isfinite(s)])
        p = np.exp(s - s.max(-1, keepdims=True))
        p /= p.sum(-1, keepdims=True)
        o = np.einsum("htu,uhd->thd", p, v).reshape(T, E)
        a = o @ w[b + "attn_output.weight"].T
        x = x + a
        h = rmsnorm(x, w[b + "ffn_norm.weight"], eps)
        g = h @ w[b + "ffn_gate.weight"].T
        u = h @ w[b + "ffn_up.weight"].T
        f = (g / (1 + np.exp(-g)) * u) @ w[b + "ffn_down.weight"].T
        x = x + f
        if report:
            maxp = np.mean(p.max(-1)[:, T // 2:])  # how peaked attention is, over the later positions
            print(f"  layer {l:3d}        residual rms {np.sqrt(np.mean(x * x)):.3f}  attn out rms "
                  f"{np.sqrt(np.mean(a * a)):.3f}  ffn out rms {np.sqrt(np.mean(f * f)):.3f}  "
                  f"score std {score_std:.2f}  mean max attn {maxp:.2f}")
    h = rmsnorm(x, w["output_norm.weight"], eps)
    return h @ w["output.weight"].T


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("other", nargs="?")
    ap.add_argument("--tokens", type=int, default=64)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    kv, w = load(a.model)
    V = w["token_embd.weight"].shape[0]
    rng = np.random.default_rng(a.seed)
    tokens = rng.integers(3, V, size=a.tokens)
    print(f"{a.model}: {a.tokens} random tokens")
    logits = forward(kv, w, tokens, True)
    srt = np.sort(logits, axis=-1)
    gap = srt[:, -1] - srt[:, -2]
    std = logits.std(-1)
    print(f"  logits std {np.mean(std):.2f}, top-1 minus top-2: median {np.median(gap):.3f}, "
          f"min {gap.min():.4f}, {np.mean(gap < 0.05 * std):.0%} of positions below 5% of the logit std")
    top = logits.argmax(-1)
    print(f"  distinct top-1 tokens over {a.tokens} positions: {len(set(top.tolist()))}")
    if a.other:
        kv2, w2 = load(a.other)
        l2 = forward(kv2, w2, tokens, False)
        agree = np.mean(l2.argmax(-1) == top)
        err = np.sqrt(np.mean((l2 - logits) ** 2))
        print(f"{a.other}: top-1 agrees at {agree:.0%} of positions, logit rms difference {err:.4f}")


if __name__ == "__main__":
    sys.exit(main())
