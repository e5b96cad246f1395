#!/usr/bin/env python3
"""Prepares the demo model's training data from Debian's King James Bible (`apt-get install bible-kjv`,
public domain): the text of every verse, one verse a line, a blank line between books; the held-out books
go to heldout.txt, the rest to train.txt. Both are tokenized with the Mistral v0.3 vocabulary by kinfer
itself (`infer tokenize`, the tokenizer the model will run with) into little-endian uint16 id files. Also
writes the tokenizer for save_pretrained (gguf_vocab_to_hf.py) and a unigram model's held-out perplexity,
the baseline the trained model must beat. Pure Python; runs where `bible` and `infer` are (not the GPU box).

    python3 tools/train/prepare_kjv.py OUT_DIR [--infer build/bin/infer] [--vocab data/vocab/mistral-v0.3-vocab.gguf]

OUT_DIR then holds train.txt, heldout.txt, train.u16, heldout.u16, tokenizer/ and data.json; carry it to the
machine that trains (train_kjv.py).
"""
import argparse
import collections
import json
import math
import os
import re
import struct
import subprocess
import sys

# Held out for evaluation: two Old Testament narratives and two New Testament letters, about 2% of the text.
HELDOUT_BOOKS = ["Ruth", "Jonah", "Phmn", "Jude"]
HELDOUT_NAMES = ["Ruth", "Jonah", "Philemon", "Jude"]
REF = re.compile(r"^([1-3]?[A-Za-z]+)(\d+):(\d+) (.*)$")


def read_bible():
    out = subprocess.run(["bible", "-f", "Gen1:1-Rev22:21"], check=True, capture_output=True, text=True).stdout
    books = collections.OrderedDict()
    for line in out.splitlines():
        m = REF.match(line)
        if not m:
            continue  # the program prints nothing else for -f, but be strict about what is kept
        books.setdefault(m.group(1), []).append(m.group(4).strip())
    if len(books) != 66:
        raise SystemExit(f"expected 66 books from `bible`, got {len(books)}")
    return books


def tokenize(infer, vocab, text_path):
    out = subprocess.run([infer, "tokenize", "-m", vocab, "-f", text_path, "--ids"], check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--infer", default="build/bin/infer")
    ap.add_argument("--vocab", default="data/vocab/mistral-v0.3-vocab.gguf")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    books = read_bible()
    parts = {"train": [], "heldout": []}
    for name, verses in books.items():
        parts["heldout" if name in HELDOUT_BOOKS else "train"].append("\n".join(verses))
    info = {"source": "Debian bible-kjv (King James Version, public domain)", "heldout_books": HELDOUT_NAMES,
            "vocab": os.path.basename(args.vocab)}
    ids = {}
    for split, texts in parts.items():
        path = os.path.join(args.out, split + ".txt")
        with open(path, "w", encoding="utf-8") as f:
            f.write("\n\n".join(texts) + "\n")
        ids[split] = tokenize(args.infer, args.vocab, path)
        if max(ids[split]) >= 65536:
            raise SystemExit("token ids do not fit uint16")
        with open(os.path.join(args.out, split + ".u16"), "wb") as f:
            f.write(struct.pack("<%dH" % len(ids[split]), *ids[split]))
        info[split + "_tokens"] = len(ids[split])
        info[split + "_bytes"] = os.path.getsize(path)

    # Unigram baseline: token frequencies of the training text (add-one smoothed over the whole vocabulary),
    # scored on every held-out token after the first (BOS), the tokens a language model predicts.
    n_vocab = 32768
    counts = collections.Counter(ids["train"][1:])
    total = sum(counts.values()) + n_vocab
    nll = sum(-math.log((counts[t] + 1) / total) for t in ids["heldout"][1:])
    info["unigram_heldout_ppl"] = math.exp(nll / (len(ids["heldout"]) - 1))

    here = os.path.dirname(os.path.abspath(__file__))
    subprocess.run([sys.executable, os.path.join(here, "gguf_vocab_to_hf.py"), args.vocab,
                    os.path.join(args.out, "tokenizer")], check=True)
    with open(os.path.join(args.out, "data.json"), "w") as f:
        json.dump(info, f, indent=1)
    print(json.dumps(info, indent=1))


if __name__ == "__main__":
    main()
