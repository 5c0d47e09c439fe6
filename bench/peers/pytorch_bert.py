#!/usr/bin/python3
"""PyTorch 1.13 peer: FP32 and dynamic INT8 timing of the plain BERT on an Octet model directory.

  /usr/bin/python3 bench/peers/pytorch_bert.py --model DIR --precision fp32|int8 \
      [--inputs octet_dump.json | --batch 8 --seq 128 | --batches glue_batches.json]
      [--reps 10] [--warmup 1] [--threads 1] [--dump FILE]

The model is the golden reference's module (scripts/make_golden.py: plain nn.Linear layers, the
same config.json + model.safetensors Octet loads). int8 is what a PyTorch user runs:
torch.quantization.quantize_dynamic over every nn.Linear (QKV, attention output, FFN, pooler,
classifier) with qint8 weights (per tensor: the only dynamic form 1.13 offers for Linear) on the
onednn quantized engine (FBGEMM is not in Debian's build). Inputs: the `input_ids` of an
`octet bench --dump` file (so that every system sees the same tokens), else a random batch
([CLS], uniform ids, [SEP]). --batches: the padded batches of a GLUE dev set written by
bench/peers/glue_batches.py (real data, Octet's batching, padding to each batch's longest
sequence with an attention mask), one pass over all of them timed as one call. `warmup` untimed
passes, then `reps` timed passes under torch.inference_mode(). Prints one JSON line: {"system": "pytorch", "precision", "batch", "seq",
"threads", "latency_ms": {"median", "p90", "min"}, "times_ms", "sequences_per_second",
"tokens_per_second", "peak_rss_bytes" (ru_maxrss: the interpreter and libtorch included),
"version", ...}; --dump writes {"logits": [...]} (row-major) for the agreement check.
"""
import argparse
import json
import os
import resource
import sys
import time

# Import the golden script's module without leaving a __pycache__ in the source tree.
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts"))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from make_golden import load_model_dir  # noqa: E402


def percentile(v, p):
    return float(np.percentile(np.asarray(v), p * 100))


def run_batches(args, model):
    """Real-data mode: every padded batch of a glue_batches.py file, one timed pass per rep."""
    with open(args.batches) as f:
        data = json.load(f)
    batches = [(b["index"], torch.tensor(b["input_ids"], dtype=torch.int64),
                torch.tensor(b["token_type_ids"], dtype=torch.int64),
                torch.tensor(b["attention_mask"], dtype=torch.int64).bool())
               for b in data["batches"]]
    n = data["examples"]
    pred = [None] * n

    def one_pass():
        for index, ids, types, mask in batches:
            out = model(ids, types, mask)
            key = "logits" if "logits" in out else "last_hidden"
            for i, row in zip(index, out[key].reshape(len(index), -1).tolist()):
                pred[i] = row

    times = []
    with torch.inference_mode():
        for _ in range(args.warmup):
            one_pass()
        for _ in range(args.reps):
            t0 = time.perf_counter()
            one_pass()
            times.append((time.perf_counter() - t0) * 1e3)
    if args.dump:
        tmp = f"{args.dump}.tmp.{os.getpid()}"
        with open(tmp, "w") as f:
            json.dump({"system": "pytorch", "precision": args.precision, "logits": pred}, f)
        os.replace(tmp, args.dump)
    med = percentile(times, 0.5)
    print(json.dumps({
        "system": "pytorch", "version": torch.__version__, "precision": args.precision,
        "engine": torch.backends.quantized.engine if args.precision == "int8" else "blas",
        "threads": torch.get_num_threads(), "task": data["task"], "sorted": data["sorted"],
        "sequences": n, "tokens": data["tokens"], "padded_tokens": data["padded_tokens"],
        "batches": len(batches),
        "latency_ms": {"median": med, "p90": percentile(times, 0.9), "min": min(times)},
        "times_ms": times, "sequences_per_second": n / (med / 1e3),
        "tokens_per_second": data["tokens"] / (med / 1e3),
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--precision", choices=["fp32", "int8"], default="fp32")
    ap.add_argument("--inputs", help="JSON with input_ids (octet bench --dump)")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--batches", help="JSON of padded batches (bench/peers/glue_batches.py)")
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--dump", help="write the logits of the last pass as JSON here")
    ap.add_argument("--info", action="store_true", help="print torch build info and exit")
    args = ap.parse_args()
    if args.reps < 1 or args.threads < 1 or args.batch < 1 or args.seq < 2 or args.warmup < 0:
        ap.error("--reps, --threads, --batch must be >= 1, --warmup >= 0 and --seq >= 2")
    torch.set_num_threads(args.threads)
    if args.info:
        print(torch.__version__)
        print(torch.__config__.show())
        return 0
    model, cfg = load_model_dir(args.model)
    if args.precision == "int8":
        if "onednn" not in torch.backends.quantized.supported_engines:
            sys.exit(f"pytorch_bert: the onednn quantized engine is not available "
                     f"(supported: {torch.backends.quantized.supported_engines})")
        torch.backends.quantized.engine = "onednn"
        model = torch.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
    if args.batches:
        return run_batches(args, model)
    if args.inputs:
        with open(args.inputs) as f:
            rows = json.load(f)["input_ids"]
        if not rows or len({len(r) for r in rows}) != 1:
            sys.exit(f"pytorch_bert: {args.inputs}: expected a non-empty input_ids of equal-length "
                     f"rows, found {len(rows)} rows of lengths {sorted({len(r) for r in rows})}")
        ids = torch.tensor(rows, dtype=torch.int64)
    else:
        g = np.random.default_rng(42)
        ids = torch.from_numpy(g.integers(5, cfg["vocab_size"], size=(args.batch, args.seq)))
        ids[:, 0], ids[:, -1] = 2, 3
    batch, seq = ids.shape
    types = torch.zeros_like(ids)
    mask = torch.ones(batch, seq, dtype=torch.bool)
    times, cpu = [], []
    with torch.inference_mode():
        for _ in range(args.warmup):
            model(ids, types, mask)
        for _ in range(args.reps):
            c0, t0 = time.process_time(), time.perf_counter()
            out = model(ids, types, mask)
            times.append((time.perf_counter() - t0) * 1e3)
            cpu.append((time.process_time() - c0) * 1e3)
    key = "logits" if "logits" in out else "last_hidden"
    if args.dump:
        tmp = f"{args.dump}.tmp.{os.getpid()}"
        with open(tmp, "w") as f:
            json.dump({"system": "pytorch", "precision": args.precision,
                       "logits": out[key].reshape(-1).tolist()}, f)
        os.replace(tmp, args.dump)
    med = percentile(times, 0.5)
    print(json.dumps({
        "system": "pytorch", "version": torch.__version__, "precision": args.precision,
        "engine": torch.backends.quantized.engine if args.precision == "int8" else "blas",
        "batch": int(batch), "seq": int(seq), "threads": torch.get_num_threads(),
        "latency_ms": {"median": med, "p90": percentile(times, 0.9), "min": min(times)},
        "times_ms": times, "cpu_ms": cpu,
        "sequences_per_second": batch / (med / 1e3),
        "tokens_per_second": batch * seq / (med / 1e3),
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
