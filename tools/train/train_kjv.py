#!/usr/bin/env python3
"""Trains kinfer's demo model: a small Mistral-architecture language model (GQA, SwiGLU, RoPE, RMSNorm, tied
embeddings; the Mistral v0.3 vocabulary) on the King James Bible, with PyTorch and Hugging Face
transformers. Seeded and deterministic in its data order; records its loss curve.

    python3 tools/train/prepare_kjv.py DATA            # here: text, token ids, tokenizer (no GPU)
    python3 tools/train/train_kjv.py DATA OUT [--steps 2000] [--seed 1]     # where torch + a GPU are
    infer convert OUT/model OUT/kjv-f32.gguf --type F32 && infer quantize ... Q8_0

DATA is prepare_kjv.py's folder. OUT receives model/ (save_pretrained of the best checkpoint by held-out loss,
with the tokenizer), loss.tsv (step, lr, train loss, held-out loss), samples.txt (greedy and sampled
continuations of fixed prompts) and summary.json (settings, parameter count, best held-out perplexity next
to the unigram baseline). Held-out loss is the mean next-token loss over non-overlapping windows of the
held-out books (Ruth, Jonah, Philemon, Jude); `infer perplexity` on heldout.txt gives llama.cpp's number.

Defaults: hidden 256, 6 layers, 8 query / 2 KV heads (head_dim 32), SwiGLU 768, context 256, batch 64,
AdamW (0.9, 0.95), weight decay 0.1, lr 1e-3 with 100 warm-up steps and cosine decay to 1e-4, bf16 autocast,
2000 steps (~33 passes over 1.1 M tokens). About 13 M parameters: 14 MB as Q8_0, 26 MB as F16.
"""
import argparse
import json
import math
import os
import random
import shutil
import sys
import time

import numpy as np
import torch


def load_ids(path):
    return torch.from_numpy(np.fromfile(path, dtype="<u2").astype(np.int64))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("data")
    ap.add_argument("out")
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--layers", type=int, default=6)
    ap.add_argument("--heads", type=int, default=8)
    ap.add_argument("--kv-heads", type=int, default=2)
    ap.add_argument("--ffn", type=int, default=768)
    ap.add_argument("--ctx", type=int, default=256)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--min-lr", type=float, default=1e-4)
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--weight-decay", type=float, default=0.1)
    ap.add_argument("--eval-every", type=int, default=100)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = ap.parse_args()

    from transformers import MistralConfig, MistralForCausalLM, PreTrainedTokenizerFast

    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    os.makedirs(args.out, exist_ok=True)
    data = json.load(open(os.path.join(args.data, "data.json")))
    train = load_ids(os.path.join(args.data, "train.u16"))
    heldout = load_ids(os.path.join(args.data, "heldout.u16"))
    dev = torch.device(args.device)

    config = MistralConfig(vocab_size=32768, hidden_size=args.hidden, intermediate_size=args.ffn,
                           num_hidden_layers=args.layers, num_attention_heads=args.heads,
                           num_key_value_heads=args.kv_heads, head_dim=args.hidden // args.heads,
                           max_position_embeddings=args.ctx * 4, rms_norm_eps=1e-5, sliding_window=None,
                           tie_word_embeddings=True, bos_token_id=1, eos_token_id=2)
    model = MistralForCausalLM(config).to(dev)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"{n_params / 1e6:.2f} M parameters; {len(train)} training tokens, {len(heldout)} held-out",
          file=sys.stderr)

    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": args.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=args.lr, betas=(0.9, 0.95))

    def lr_at(step):
        if step < args.warmup:
            return args.lr * (step + 1) / args.warmup
        t = (step - args.warmup) / max(1, args.steps - args.warmup)
        return args.min_lr + 0.5 * (args.lr - args.min_lr) * (1 + math.cos(math.pi * t))

    # Windows start anywhere in the token stream; the generator makes the order reproducible.
    gen = torch.Generator().manual_seed(args.seed)

    def batch():
        starts = torch.randint(0, len(train) - args.ctx - 1, (args.batch,), generator=gen)
        x = torch.stack([train[s:s + args.ctx + 1] for s in starts.tolist()])
        return x.to(dev)

    autocast = torch.autocast(device_type=dev.type, dtype=torch.bfloat16, enabled=dev.type == "cuda")

    @torch.no_grad()
    def heldout_loss():
        model.eval()
        total, count = 0.0, 0
        for s in range(0, len(heldout) - 1, args.ctx):
            x = heldout[s:s + args.ctx + 1].unsqueeze(0).to(dev)
            if x.shape[1] < 2:
                break
            with autocast:
                logits = model(x[:, :-1]).logits.float()
            loss = torch.nn.functional.cross_entropy(logits[0], x[0, 1:], reduction="sum")
            total += loss.item()
            count += x.shape[1] - 1
        model.train()
        return total / count

    log = open(os.path.join(args.out, "loss.tsv"), "w")
    log.write("step\tlr\ttrain_loss\theldout_loss\n")
    best = (float("inf"), -1)
    best_dir = os.path.join(args.out, "model")
    t0 = time.time()
    running = None
    model.train()
    for step in range(args.steps + 1):
        if step % args.eval_every == 0 or step == args.steps:
            h = heldout_loss()
            log.write(f"{step}\t{lr_at(step):.6g}\t{running if running is not None else float('nan'):.4f}\t{h:.4f}\n")
            log.flush()
            print(f"step {step}: train {running if running is not None else float('nan'):.3f}, held-out {h:.3f} "
                  f"(ppl {math.exp(h):.1f}), {time.time() - t0:.0f} s", file=sys.stderr)
            if h < best[0]:
                best = (h, step)
                model.save_pretrained(best_dir)
        if step == args.steps:
            break
        for g in opt.param_groups:
            g["lr"] = lr_at(step)
        x = batch()
        with autocast:
            loss = torch.nn.functional.cross_entropy(model(x[:, :-1]).logits.float().reshape(-1, 32768),
                                                     x[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        running = loss.item() if running is None else 0.98 * running + 0.02 * loss.item()

    # The tokenizer the ids were made with, beside the weights (infer convert reads it).
    tok_dir = os.path.join(args.data, "tokenizer")
    for name in os.listdir(tok_dir):
        shutil.copy(os.path.join(tok_dir, name), best_dir)

    model = MistralForCausalLM.from_pretrained(best_dir).to(dev).eval()
    tok = PreTrainedTokenizerFast(tokenizer_file=os.path.join(best_dir, "tokenizer.json"), bos_token="<s>",
                                  eos_token="</s>", unk_token="<unk>")
    with open(os.path.join(args.out, "samples.txt"), "w") as f:
        for prompt in ["In the beginning", "And Jesus said", "The LORD is my shepherd"]:
            ids = torch.tensor([tok(prompt)["input_ids"]], device=dev)
            for sample in (False, True):
                torch.manual_seed(args.seed)
                out = model.generate(ids, max_new_tokens=60, do_sample=sample, temperature=0.8, top_k=40,
                                     pad_token_id=2)
                f.write(f"[{'sampled' if sample else 'greedy'}] {tok.decode(out[0], skip_special_tokens=True)}\n")
    summary = {"args": vars(args), "parameters": n_params, "best_step": best[1], "best_heldout_loss": best[0],
               "best_heldout_ppl": math.exp(best[0]), "unigram_heldout_ppl": data.get("unigram_heldout_ppl"),
               "heldout_books": data.get("heldout_books"), "seconds": time.time() - t0,
               "torch": torch.__version__}
    json.dump(summary, open(os.path.join(args.out, "summary.json"), "w"), indent=1)
    print(json.dumps(summary, indent=1))
    print(open(os.path.join(args.out, "samples.txt")).read())


if __name__ == "__main__":
    main()
