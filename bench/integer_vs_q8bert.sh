#!/usr/bin/env bash
# Integer-only (I-BERT) versus the Q8BERT INT8 graph versus FP32, in one run (issue 7's speed
# item): a random BERT-base (scripts/make_random_model.py, seed 42), its integer-only directory
# (octet calibrate --calibrator ema-minmax on 128 SST-2 training sentences, octet quantize
# --mode integer-only), then `octet bench` on fp32 / int8 (dynamic) / integer-only at each batch
# size, the three precisions alternated within every round so that they share the machine's
# state. Prints each measurement, then the median over rounds and the ratios.
#
#   bench/integer_vs_q8bert.sh [build-dir]     env: BATCHES ("1 8"), SEQ (128), ROUNDS (3),
#                                                    REPEAT (5 calls per measurement), THREADS (1)
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${1:-$repo/build}"
data="${OCTET_DATA:-$repo/../shared/data}"
octet="$build/octet"
py=/usr/bin/python3
batches=${BATCHES:-1 8}
seq=${SEQ:-128}
rounds=${ROUNDS:-3}
repeat=${REPEAT:-5}
threads=${THREADS:-1}
[[ -x "$octet" ]] || { echo "error: $octet not built (ninja -C $build octet_cli)" >&2; exit 2; }
for f in "$data/vocab/vocab.txt" "$data/glue/SST-2/train.tsv"; do
  [[ -f "$f" ]] || { echo "error: $f missing (set OCTET_DATA)" >&2; exit 2; }
done
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
$py "$repo/scripts/make_random_model.py" --shape bert-base --vocab "$data/vocab/vocab.txt" \
  --out "$work/fp32" >&2
"$octet" calibrate --model "$work/fp32" --task sst2 --data "$data/glue/SST-2/train.tsv" \
  --out "$work/calibration.json" --calibrator ema-minmax --samples 128 --threads "$threads" >&2
"$octet" quantize --model "$work/fp32" --calibration "$work/calibration.json" \
  --mode integer-only --out "$work/integer" >&2

echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) vCPUs;" \
  "BERT-base, seq $seq, $threads thread(s), $rounds rounds x $repeat calls," \
  "$("$octet" bench --model "$work/fp32" --batch 1 --seq-len 8 --repeat 1 | grep -o 'ISA [a-z0-9_]*')"
results="$work/results.txt"
for r in $(seq 1 "$rounds"); do
  for b in $batches; do
    for p in fp32 int8 integer-only; do
      m="$work/fp32"
      [[ $p == integer-only ]] && m="$work/integer"
      ms=$("$octet" bench --model "$m" --precision "$p" --batch "$b" --seq-len "$seq" \
             --threads "$threads" --repeat "$repeat" | awk '/median/ {print $5}')
      echo "round $r batch $b $p: median $ms ms"
      echo "$b $p $ms" >>"$results"
    done
  done
done
$py - "$results" <<'PY'
import collections, statistics, sys
t = collections.defaultdict(list)
for line in open(sys.argv[1]):
    b, p, ms = line.split()
    t[(int(b), p)].append(float(ms))
for b in sorted({b for b, _ in t}):
    m = {p: statistics.median(t[(b, p)]) for p in ("fp32", "int8", "integer-only")}
    print(f"batch {b}: FP32 {m['fp32']:.1f} ms, Q8BERT INT8 {m['int8']:.1f} ms, integer-only "
          f"{m['integer-only']:.1f} ms; integer-only is {m['fp32'] / m['integer-only']:.2f}x FP32 "
          f"and {m['int8'] / m['integer-only']:.2f}x the INT8 graph's speed")
PY
