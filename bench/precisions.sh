#!/usr/bin/env bash
# Every precision of Octet's engine on the same model, in one run: FP32, Q8BERT's dynamic INT8
# graph, calibrated static INT8 (symmetric s8 activations, and asymmetric u8 with a zero point as
# in Bhandare et al.), and I-BERT's integer-only encoder. A random BERT-base
# (scripts/make_random_model.py, seed 42); calibration on SST-2 training sentences (`octet
# calibrate`: max statistics on 600 for the static modes, ema-minmax on 128 for integer-only);
# then `octet bench` on each precision at each batch size, the precisions alternated within
# every round so that they share the machine's state. Prints each measurement, then the median
# over rounds and the ratios to FP32 and to the dynamic INT8 graph.
#
#   bench/precisions.sh [build-dir]     env: BATCHES ("1 8"), SEQ (128), ROUNDS (3),
#                                            REPEAT (5 calls per measurement), THREADS (1)
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
train="$data/glue/SST-2/train.tsv"
$py "$repo/scripts/make_random_model.py" --shape bert-base --vocab "$data/vocab/vocab.txt" \
  --out "$work/fp32" >&2
"$octet" calibrate --model "$work/fp32" --task sst2 --data "$train" --out "$work/max.json" \
  --calibrator max --samples 600 --threads "$threads" >&2
"$octet" quantize --model "$work/fp32" --calibration "$work/max.json" --activations static \
  --scheme symmetric --calibrator max --out "$work/static-s8" >&2
"$octet" quantize --model "$work/fp32" --calibration "$work/max.json" --activations static \
  --scheme asymmetric --calibrator max --threshold-mode independent --out "$work/static-u8" >&2
"$octet" calibrate --model "$work/fp32" --task sst2 --data "$train" --out "$work/ema.json" \
  --calibrator ema-minmax --samples 128 --threads "$threads" >&2
"$octet" quantize --model "$work/fp32" --calibration "$work/ema.json" --mode integer-only \
  --out "$work/integer" >&2

# name  model directory  --precision
runs=(
  "fp32 fp32 fp32"
  "int8-dynamic fp32 int8"
  "int8-static-s8 static-s8 int8"
  "int8-static-u8 static-u8 int8"
  "integer-only integer integer-only"
)
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) vCPUs;" \
  "BERT-base, seq $seq, $threads thread(s), $rounds rounds x $repeat calls," \
  "$("$octet" bench --model "$work/fp32" --batch 1 --seq-len 8 --repeat 1 | grep -o 'ISA [a-z0-9_]*')"
results="$work/results.txt"
for r in $(seq 1 "$rounds"); do
  for b in $batches; do
    for run in "${runs[@]}"; do
      read -r name dir p <<<"$run"
      ms=$("$octet" bench --model "$work/$dir" --precision "$p" --batch "$b" --seq-len "$seq" \
             --threads "$threads" --repeat "$repeat" | awk '/median/ {print $5}')
      echo "round $r batch $b $name: median $ms ms"
      echo "$b $name $ms" >>"$results"
    done
  done
done
$py - "$results" <<'PY'
import collections, statistics, sys
t = collections.defaultdict(list)
for line in open(sys.argv[1]):
    b, name, ms = line.split()
    t[(int(b), name)].append(float(ms))
names = ["fp32", "int8-dynamic", "int8-static-s8", "int8-static-u8", "integer-only"]
print("| batch | precision | median ms | x FP32 speed | x dynamic INT8 speed |")
print("| --- | --- | --- | --- | --- |")
for b in sorted({b for b, _ in t}):
    m = {n: statistics.median(t[(b, n)]) for n in names}
    for n in names:
        print(f"| {b} | {n} | {m[n]:.1f} | {m['fp32'] / m[n]:.2f}x | {m['int8-dynamic'] / m[n]:.2f}x |")
PY
