#!/usr/bin/env python3
"""Writes a Hugging Face tokenizer (tokenizer.json, tokenizer_config.json, chat_template.jinja) for the
SentencePiece-style vocabulary of a GGUF file (tokenizer.ggml.model = "llama"), e.g. the Mistral v0.3
vocabulary in data/vocab/mistral-v0.3-vocab.gguf. Pure Python (no numpy, no tokenizers).

    python3 tools/train/gguf_vocab_to_hf.py data/vocab/mistral-v0.3-vocab.gguf OUT_DIR

The training script saves this tokenizer beside the model, so that `infer convert` finds the vocabulary it
was trained with. The tokenizer is the one transformers' own SentencePiece conversion makes for Llama 2 and
Mistral: BPE with byte fallback over the same pieces, merges for every piece that splits into two pieces,
ranked by the piece's score (a SentencePiece BPE merges the highest-scoring piece first), control tokens as
special added tokens, "Prepend U+2581 + replace spaces" normalization. Converting it back with `infer convert`
gives the same pieces and token types and the same token ids for any text (scripts check this: see
tools/train/README.md).
"""
import json
import os
import struct
import sys

NORMAL, UNKNOWN, CONTROL, USER_DEFINED, UNUSED, BYTE = 1, 2, 3, 4, 5, 6


def read_gguf_metadata(path):
    """The metadata key/value pairs of a GGUF v2/v3 file (tensor infos are not needed here)."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:4] != b"GGUF":
        raise SystemExit(f"{path}: not a GGUF file")
    pos = 8
    _n_tensors, n_kv = struct.unpack_from("<QQ", data, pos)
    pos += 16
    scalar = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}

    def read_string():
        nonlocal pos
        (n,) = struct.unpack_from("<Q", data, pos)
        pos += 8
        s = data[pos:pos + n].decode("utf-8")
        pos += n
        return s

    def read_value(t):
        nonlocal pos
        if t == 8:
            return read_string()
        if t == 9:
            et, n = struct.unpack_from("<IQ", data, pos)
            pos += 12
            if et in scalar:  # fast path for big numeric arrays
                fmt = scalar[et]
                size = struct.calcsize(fmt)
                vals = list(struct.unpack_from("<%d%s" % (n, fmt[1]), data, pos))
                pos += n * size
                return vals
            return [read_value(et) for _ in range(n)]
        fmt = scalar[t]
        (v,) = struct.unpack_from(fmt, data, pos)
        pos += struct.calcsize(fmt)
        return v

    kv = {}
    for _ in range(n_kv):
        key = read_string()
        (t,) = struct.unpack_from("<I", data, pos)
        pos += 4
        kv[key] = read_value(t)
    return kv


def build(kv):
    if kv.get("tokenizer.ggml.model") != "llama":
        raise SystemExit("only SentencePiece-style ('llama') GGUF vocabularies are supported")
    tokens = kv["tokenizer.ggml.tokens"]
    scores = kv.get("tokenizer.ggml.scores", [0.0] * len(tokens))
    types = kv.get("tokenizer.ggml.token_type", [NORMAL] * len(tokens))
    vocab = {}
    for i, t in enumerate(tokens):
        vocab.setdefault(t, i)
    # Merges: every normal piece that splits into two pieces of the vocabulary, best score first (ties: the
    # ids of the halves, as transformers' SentencePieceExtractor orders them).
    mergeable = {t for t, ty in zip(tokens, types) if ty in (NORMAL, USER_DEFINED)}
    merges = []
    for i, (piece, ty) in enumerate(zip(tokens, types)):
        if ty != NORMAL or len(piece) < 2:
            continue
        for k in range(1, len(piece)):
            left, right = piece[:k], piece[k:]
            if left in mergeable and right in mergeable:
                merges.append((-scores[i], i, vocab[left], vocab[right], left, right))
    merges.sort()
    unk = kv.get("tokenizer.ggml.unknown_token_id", 0)
    bos = kv.get("tokenizer.ggml.bos_token_id", 1)
    eos = kv.get("tokenizer.ggml.eos_token_id", 2)
    added = [{"id": i, "content": t, "single_word": False, "lstrip": False, "rstrip": False, "normalized": False,
              "special": True}
             for i, (t, ty) in enumerate(zip(tokens, types)) if ty in (CONTROL, UNKNOWN)]
    add_bos = kv.get("tokenizer.ggml.add_bos_token", True)
    single = ([{"SpecialToken": {"id": tokens[bos], "type_id": 0}}] if add_bos else []) + \
        [{"Sequence": {"id": "A", "type_id": 0}}]
    pair = single + ([{"SpecialToken": {"id": tokens[bos], "type_id": 1}}] if add_bos else []) + \
        [{"Sequence": {"id": "B", "type_id": 1}}]
    tokenizer = {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added,
        "normalizer": {"type": "Sequence", "normalizers": [
            {"type": "Prepend", "prepend": "\u2581"},
            {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"}]},
        "pre_tokenizer": None,
        "post_processor": {"type": "TemplateProcessing", "single": single, "pair": pair,
                           "special_tokens": {tokens[bos]: {"id": tokens[bos], "ids": [bos],
                                                            "tokens": [tokens[bos]]}}},
        "decoder": {"type": "Sequence", "decoders": [
            {"type": "Replace", "pattern": {"String": "\u2581"}, "content": " "},
            {"type": "ByteFallback"}, {"type": "Fuse"},
            {"type": "Strip", "content": " ", "start": 1, "stop": 0}]},
        "model": {"type": "BPE", "dropout": None, "unk_token": tokens[unk], "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": True, "byte_fallback": True, "ignore_merges": False,
                  "vocab": vocab, "merges": [[m[4], m[5]] for m in merges]},
    }
    config = {"add_bos_token": add_bos, "add_eos_token": kv.get("tokenizer.ggml.add_eos_token", False),
              "bos_token": tokens[bos], "eos_token": tokens[eos], "unk_token": tokens[unk],
              "clean_up_tokenization_spaces": False, "legacy": True, "model_max_length": 1000000000000,
              "tokenizer_class": "LlamaTokenizerFast"}
    return tokenizer, config, kv.get("tokenizer.chat_template")


def main():
    if len(sys.argv) != 3:
        raise SystemExit("usage: gguf_vocab_to_hf.py VOCAB.gguf OUT_DIR")
    tokenizer, config, template = build(read_gguf_metadata(sys.argv[1]))
    out = sys.argv[2]
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(tokenizer, f, ensure_ascii=False)
    with open(os.path.join(out, "tokenizer_config.json"), "w", encoding="utf-8") as f:
        json.dump(config, f, ensure_ascii=False, indent=1)
    if template:
        with open(os.path.join(out, "chat_template.jinja"), "w", encoding="utf-8") as f:
            f.write(template)
    print(f"{out}: {len(tokenizer['model']['vocab'])} pieces, {len(tokenizer['model']['merges'])} merges, "
          f"{len(tokenizer['added_tokens'])} special tokens", file=sys.stderr)


if __name__ == "__main__":
    main()
