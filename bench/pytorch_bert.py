#!/usr/bin/python3
"""PyTorch 1.13 FP32 timing of the plain BERT of scripts/make_golden.py on a model directory.

  /usr/bin/python3 bench/pytorch_bert.py --model DIR --batch 8 --seq 128 --reps 5 --threads 1

Loads the same weights Octet loads (config.json + model.safetensors), runs one warm-up
forward pass, then `reps` timed passes under torch.inference_mode() and prints one JSON line:
{"engine": "pytorch", "batch": B, "seq": T, "threads": n, "ms": [wall-clock ms per pass],
"cpu_ms": [process CPU ms per pass], ...}.
The model is the golden reference's module (nn.Linear GEMMs go to the BLAS PyTorch links,
OpenBLAS here; check with --info), so this compares against what a PyTorch user would run.
"""
import argparse
import json
import os
import sys
import time

# Import the golden script's module without leaving a __pycache__ in the source tree.
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scripts"))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from make_golden import load_model_dir  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--info", action="store_true", help="print torch build info and exit")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.info:
        print(torch.__version__)
        print(torch.__config__.show())
        return 0
    model, cfg = load_model_dir(args.model)
    g = np.random.default_rng(42)
    ids = torch.from_numpy(g.integers(5, cfg["vocab_size"], size=(args.batch, args.seq)))
    types = torch.zeros_like(ids)
    mask = torch.ones(args.batch, args.seq, dtype=torch.bool)
    times, cpu = [], []
    with torch.inference_mode():
        model(ids, types, mask)  # warm-up
        for _ in range(args.reps):
            c0, t0 = time.process_time(), time.perf_counter()
            out = model(ids, types, mask)
            times.append((time.perf_counter() - t0) * 1e3)
            cpu.append((time.process_time() - c0) * 1e3)
    key = "logits" if "logits" in out else "last_hidden"
    print(json.dumps({"engine": "pytorch", "version": torch.__version__, "batch": args.batch,
                      "seq": args.seq, "threads": torch.get_num_threads(), "ms": times, "cpu_ms": cpu,
                      "check": float(out[key].reshape(-1)[0])}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
