#!/usr/bin/env bash
# Pretraining throughput: `octet pretrain --benchmark-steps` next to the same MLM training step in
# plain PyTorch (bench/pytorch_pretrain.py, Debian python3-torch), alternated in one run, same
# model (BERT-mini: 4 layers, hidden 256, 4 heads, FFN 1024, vocab 30522), batch, sequence
# length, masking rate, optimiser and thread count. Prints each round and the medians.
#
#   bench/train_vs_pytorch.sh [build-dir] [rounds=3] [steps=8] [threads=1] [batch=32] [seq=128]
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${1:-$repo/build}"
rounds="${2:-3}"
steps="${3:-8}"
threads="${4:-1}"
batch="${5:-32}"
seq="${6:-128}"
data="${OCTET_DATA:-$repo/../shared/data}"
octet="$build/octet"
# `octet pretrain` execs octet-train (the libtorch trainer) from the same directory.
[[ -x "$octet" ]] || { echo "error: $octet not built (ninja -C $build octet_cli)" >&2; exit 2; }
[[ -x "$build/octet-train" ]] || { echo "error: $build/octet-train not built (ninja -C $build octet_train_cli; needs libtorch-dev)" >&2; exit 2; }
py=/usr/bin/python3
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) vCPUs; threads $threads; batch $batch x $seq; $steps timed steps per round"
echo "torch: $($py -c 'import torch; print(torch.__version__)')"
octet_tps=(); torch_tps=()
for r in $(seq 1 "$rounds"); do
  o=$("$octet" pretrain --corpus "$data/corpus/bbc_news.txt.gz" --vocab "$data/vocab/vocab.txt" \
        --out "$out/unused" --benchmark-steps "$steps" --threads "$threads" \
        --batch-size "$batch" --seq-len "$seq" 2>/dev/null | awk '/tokens_per_second/ {print $2}')
  p=$($py "$repo/bench/pytorch_pretrain.py" --steps "$steps" --threads "$threads" \
        --batch-size "$batch" --seq-len "$seq" --json | $py -c 'import json,sys; print(json.load(sys.stdin)["tokens_per_second"])')
  echo "round $r: octet $o tokens/s, pytorch $p tokens/s"
  octet_tps+=("$o"); torch_tps+=("$p")
done
$py - "${octet_tps[*]}" "${torch_tps[*]}" <<'PY'
import statistics, sys
o = [float(x) for x in sys.argv[1].split()]
p = [float(x) for x in sys.argv[2].split()]
mo, mp = statistics.median(o), statistics.median(p)
print(f"median: octet pretrain {mo:.0f} tokens/s, plain PyTorch {mp:.0f} tokens/s, ratio {mo/mp:.2f}x")
PY
