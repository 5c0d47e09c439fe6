#!/usr/bin/python3
"""Padded batches of a GLUE dev file for the peers' real-data runs, formed as Octet's runtime forms them.

  /usr/bin/python3 bench/peers/glue_batches.py --task sst2|mrpc --data dev.tsv --vocab vocab.txt \
      [--seq 128] [--max-batch-tokens 4096] [--max-batch-size 64] [--unsorted] --out batches.json

Tokenization: scripts/tokenizer_reference.py (the independent WordPiece implementation Octet's
tokenizer is tested against on these dev sets), truncation to --seq tokens (longest first).
Batching: src/runtime/batching.cc's plan_batches, re-stated: sequences sorted by token count
(stable; --unsorted keeps input order), then cut greedily so that (sequences in the batch) x (its
longest sequence) <= --max-batch-tokens and the count <= --max-batch-size (Octet's defaults,
4096 and 64). Each batch is padded to its longest sequence, as PyTorch and ONNX Runtime users
pad. Writes {"task", "sorted", "examples", "tokens", "padded_tokens", "batches": [{"index":
[example numbers], "input_ids", "token_type_ids", "attention_mask"}]} (temporary file, renamed).
"""
import argparse
import json
import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts"))

from tokenizer_reference import GLUE, Tokenizer, read_tsv  # noqa: E402


def plan_batches(lengths, budget, max_size, sort):
    order = sorted(range(len(lengths)), key=lambda i: lengths[i]) if sort else list(range(len(lengths)))
    batches, cur, longest = [], [], 0
    for i in order:
        top = max(longest, lengths[i])
        if cur and ((len(cur) + 1) * top > budget or len(cur) + 1 > max_size):
            batches.append(cur)
            cur, longest = [], 0
        cur.append(i)
        longest = max(longest, lengths[i])
    if cur:
        batches.append(cur)
    return batches


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--task", required=True, choices=[g[0] for g in GLUE])
    ap.add_argument("--data", required=True)
    ap.add_argument("--vocab", required=True)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--max-batch-tokens", type=int, default=4096)
    ap.add_argument("--max-batch-size", type=int, default=64)
    ap.add_argument("--unsorted", action="store_true")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    if a.seq < 3 or a.max_batch_tokens < 1 or a.max_batch_size < 1:
        ap.error("--seq must be >= 3, --max-batch-tokens and --max-batch-size >= 1")
    _, _, header, col_a, col_b = next(g for g in GLUE if g[0] == a.task)
    tok = Tokenizer(a.vocab)
    ids, types = [], []
    for number, cols in read_tsv(a.data, header):
        need = max(col_a, col_b if col_b is not None else 0)
        if len(cols) <= need:
            sys.exit(f"glue_batches: {a.data}:{number}: expected at least {need + 1} tab-separated "
                     f"fields, found {len(cols)}")
        x, t = tok.encode(cols[col_a], cols[col_b] if col_b is not None else None, a.seq)
        ids.append(x)
        types.append(t)
    if not ids:
        sys.exit(f"glue_batches: {a.data}: no examples")
    lengths = [len(x) for x in ids]
    out = {"task": a.task, "data": a.data, "sorted": not a.unsorted, "examples": len(ids),
           "tokens": sum(lengths), "padded_tokens": 0, "batches": []}
    for b in plan_batches(lengths, a.max_batch_tokens, a.max_batch_size, not a.unsorted):
        longest = max(lengths[i] for i in b)
        out["padded_tokens"] += longest * len(b)
        pad = lambda row: row + [0] * (longest - len(row))  # noqa: E731
        out["batches"].append({"index": b, "input_ids": [pad(ids[i]) for i in b],
                               "token_type_ids": [pad(types[i]) for i in b],
                               "attention_mask": [pad([1] * lengths[i]) for i in b]})
    tmp = f"{a.out}.tmp.{os.getpid()}"
    with open(tmp, "w") as f:
        json.dump(out, f)
    os.replace(tmp, a.out)
    print(f"glue_batches: {a.task}: {len(ids)} examples, {len(out['batches'])} batches, "
          f"{out['tokens']} tokens, {out['padded_tokens']} padded", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
