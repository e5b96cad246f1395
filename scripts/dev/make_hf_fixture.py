#!/usr/bin/env python3
"""Builds tests/fixtures/hf_tiny/: a tiny random MistralForCausalLM saved by Hugging Face transformers, plus
what transformers computes from it, so that `infer convert` is checked against an implementation nobody here
wrote (tests/convert_test.cpp).

    python3 scripts/dev/make_hf_fixture.py OUT_DIR            # needs torch, transformers, tokenizers
    python3 scripts/dev/make_hf_fixture.py OUT_DIR --tokenizer-only   # pure Python: just tokenizer.json

The model: 3 layers, hidden 64, 4 query heads sharing 2 KV heads (GQA), head_dim 16, SwiGLU 160, rope_theta
1e6, untied output, random norm weights (so a swapped norm shows), initializer_range 0.2 (logits spread over
a few units rather than hundredths). Saved in float32 in several shards (model.safetensors.index.json).

The tokenizer: the Mistral v0.3 layout (SentencePiece BPE with byte fallback: <unk> <s> </s> [INST] [/INST],
256 byte tokens, merged pieces, single characters) but a small vocabulary of our own: ~130 merges learnt by
plain BPE from a few KJV verses, so the checkpoint stays small. The full 32768-entry vocabulary would make
the embedding and tokenizer.json several MB.

Recorded in expected.json: the versions used, for each prompt its text, the token ids transformers'
tokenizer gives (BOS included) and the shape of its logits; expected_logits.f32 holds the float32 logits of
every position of every prompt, little-endian, prompt after prompt (eager attention, float32, CPU).
"""
import argparse
import collections
import json
import os
import sys

CORPUS = """In the beginning God created the heaven and the earth.
And the earth was without form, and void; and darkness was upon the face of the deep.
And the Spirit of God moved upon the face of the waters.
And God said, Let there be light: and there was light.
And God saw the light, that it was good: and God divided the light from the darkness.
And God called the light Day, and the darkness he called Night.
And the evening and the morning were the first day."""

PROMPTS = [
    "In the beginning God created the heaven and the earth.",
    "And God said, Let there be light: and there was light.",
    "Unseen wörds: naïve café ☕ 42",
    "  two spaces,\nnewline and\ttab",
]

CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}{% if message['role'] == 'user' %}"
    "{{ '[INST] ' + message['content'] + '[/INST]' }}{% else %}{{ message['content'] + eos_token }}"
    "{% endif %}{% endfor %}"
)

SPECIALS = ["<unk>", "<s>", "</s>", "[INST]", "[/INST]"]
N_MERGES = 130


def learn_bpe(text, n_merges):
    """SentencePiece-style BPE: words start with U+2581, merges never cross words. Ties broken by the pair's
    text so that the result does not depend on dict order."""
    norm = "\u2581" + text.replace(" ", "\u2581").replace("\n", "\u2581")
    words = collections.Counter("\u2581" + w for w in norm.split("\u2581") if w)
    chars = collections.Counter()
    for w, n in words.items():
        for ch in w:
            chars[ch] += n
    segs = {w: list(w) for w in words}
    merges = []
    for _ in range(n_merges):
        pairs = collections.Counter()
        for w, n in words.items():
            s = segs[w]
            for a, b in zip(s, s[1:]):
                pairs[(a, b)] += n
        if not pairs:
            break
        (a, b), _ = max(pairs.items(), key=lambda kv: (kv[1], kv[0][0] + kv[0][1]))
        merges.append((a, b))
        for w in words:
            s, out, i = segs[w], [], 0
            while i < len(s):
                if i + 1 < len(s) and s[i] == a and s[i + 1] == b:
                    out.append(a + b)
                    i += 2
                else:
                    out.append(s[i])
                    i += 1
            segs[w] = out
    return merges, [c for c, _ in sorted(chars.items(), key=lambda kv: (-kv[1], kv[0]))]


def tokenizer_json():
    merges, chars = learn_bpe(CORPUS, N_MERGES)
    vocab = {}
    for s in SPECIALS:
        vocab[s] = len(vocab)
    for b in range(256):
        vocab["<0x%02X>" % b] = len(vocab)
    for a, b in merges:
        if a + b not in vocab:
            vocab[a + b] = len(vocab)
    for c in chars:
        if c not in vocab:
            vocab[c] = len(vocab)
    added = [
        {"id": i, "content": s, "single_word": False, "lstrip": False, "rstrip": False, "normalized": False,
         "special": True}
        for i, s in enumerate(SPECIALS)
    ]
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added,
        "normalizer": {"type": "Sequence", "normalizers": [
            {"type": "Prepend", "prepend": "\u2581"},
            {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"}]},
        "pre_tokenizer": None,
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
            "pair": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                     {"SpecialToken": {"id": "<s>", "type_id": 1}}, {"Sequence": {"id": "B", "type_id": 1}}],
            "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}}},
        "decoder": {"type": "Sequence", "decoders": [
            {"type": "Replace", "pattern": {"String": "\u2581"}, "content": " "},
            {"type": "ByteFallback"}, {"type": "Fuse"},
            {"type": "Strip", "content": " ", "start": 1, "stop": 0}]},
        "model": {"type": "BPE", "dropout": None, "unk_token": "<unk>", "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": True, "byte_fallback": True, "ignore_merges": False,
                  "vocab": vocab, "merges": [a + " " + b for a, b in merges]},
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--tokenizer-only", action="store_true")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    tj = tokenizer_json()
    if args.tokenizer_only:
        with open(os.path.join(args.out, "tokenizer.json"), "w", encoding="utf-8") as f:
            json.dump(tj, f, ensure_ascii=False, indent=1)
        print("vocab", len(tj["model"]["vocab"]), "merges", len(tj["model"]["merges"]))
        return

    import numpy as np
    import tokenizers
    import torch
    import transformers
    from transformers import MistralConfig, MistralForCausalLM, PreTrainedTokenizerFast

    torch.manual_seed(1234)
    tok = PreTrainedTokenizerFast(tokenizer_object=tokenizers.Tokenizer.from_str(json.dumps(tj)),
                                  bos_token="<s>", eos_token="</s>", unk_token="<unk>")
    tok.chat_template = CHAT_TEMPLATE
    n_vocab = len(tj["model"]["vocab"])
    # transformers 5 keeps rope_theta inside rope_parameters; 4.x takes it at the top level.
    import inspect
    rope = ({"rope_parameters": {"rope_type": "default", "rope_theta": 1e6}}
            if "rope_parameters" in inspect.signature(MistralConfig.__init__).parameters else {"rope_theta": 1e6})
    config = MistralConfig(vocab_size=n_vocab, hidden_size=64, intermediate_size=160, num_hidden_layers=3,
                           num_attention_heads=4, num_key_value_heads=2, head_dim=16,
                           max_position_embeddings=256, rms_norm_eps=1e-5, sliding_window=None,
                           tie_word_embeddings=False, initializer_range=0.2, bos_token_id=1, eos_token_id=2,
                           **rope)
    model = MistralForCausalLM(config).float().eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                p.copy_(1.0 + 0.2 * torch.randn_like(p))
    model.save_pretrained(args.out, max_shard_size="300KB")
    tok.save_pretrained(args.out)
    saved = json.load(open(os.path.join(args.out, "config.json")))
    theta = saved.get("rope_theta", (saved.get("rope_parameters") or {}).get("rope_theta"))
    assert theta == 1e6, f"rope_theta not saved as 1e6: {saved}"

    expected = {"transformers": transformers.__version__, "torch": torch.__version__,
                "tokenizers": tokenizers.__version__, "vocab_size": n_vocab, "prompts": []}
    # Reload what was saved, so the numbers come from the files the test converts.
    model = MistralForCausalLM.from_pretrained(args.out, dtype=torch.float32, attn_implementation="eager").eval()
    tok = transformers.AutoTokenizer.from_pretrained(args.out)
    blobs = []
    for text in PROMPTS:
        ids = tok(text)["input_ids"]
        with torch.no_grad():
            logits = model(torch.tensor([ids])).logits[0].float().numpy()
        blobs.append(logits.astype("<f4").tobytes())
        expected["prompts"].append({"text": text, "ids": ids, "pieces": tok.convert_ids_to_tokens(ids),
                                    "n_positions": len(ids)})
        print(text, ids, "logit range", float(logits.min()), float(logits.max()), file=sys.stderr)
    expected["chat"] = tok.apply_chat_template([{"role": "user", "content": "Hi"},
                                                {"role": "assistant", "content": "Hello"}], tokenize=False)
    with open(os.path.join(args.out, "expected.json"), "w", encoding="utf-8") as f:
        json.dump(expected, f, ensure_ascii=False, indent=1)
    with open(os.path.join(args.out, "expected_logits.f32"), "wb") as f:
        f.write(b"".join(blobs))


if __name__ == "__main__":
    main()
