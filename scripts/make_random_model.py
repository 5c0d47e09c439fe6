#!/usr/bin/python3
"""Writes a randomly initialised BERT model directory (config.json + model.safetensors +
vocab.txt) with the real BERT uncased vocabulary, for demos and benchmarks before trained
models exist. Its predictions are meaningless (chance accuracy): it exercises the pipeline only.

Usage: make_random_model.py --shape bert-mini|bert-base --vocab VOCAB_TXT --out DIR [--seed N]
Uses the plain PyTorch BERT and the safetensors writer of make_golden.py.
"""
import argparse
import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_golden  # noqa: E402

SHAPES = {
    "bert-mini": dict(num_hidden_layers=4, hidden_size=256, num_attention_heads=4,
                      intermediate_size=1024),
    "bert-base": dict(num_hidden_layers=12, hidden_size=768, num_attention_heads=12,
                      intermediate_size=3072),
}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shape", choices=sorted(SHAPES), default="bert-mini")
    ap.add_argument("--vocab", required=True, help="vocab.txt (e.g. $OCTET_DATA/vocab/vocab.txt)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=42)
    args = ap.parse_args()
    with open(args.vocab, encoding="utf-8") as f:
        vocab_size = sum(1 for _ in f)
    c = dict(SHAPES[args.shape], vocab_size=vocab_size, max_position_embeddings=512,
             type_vocab_size=2, layer_norm_eps=1e-12, hidden_act="gelu", num_labels=2)
    make_golden.torch.manual_seed(args.seed)
    model = make_golden.Bert(c)
    make_golden.init_weights(model, args.seed, 0.02)
    make_golden.write_model_dir(args.out, model, c)
    shutil.copyfile(args.vocab, os.path.join(args.out, "vocab.txt"))
    print(f"make_random_model: {args.shape} with random weights written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
