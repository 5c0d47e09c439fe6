#!/usr/bin/env bash
# Cost of a quantization-aware (Q8BERT) fine-tuning step against an FP32 one: `octet finetune`
# with and without `--qat --qat-head-start-step 0` (every quantizer active from the first step),
# from the committed encoder with a new head, one epoch, batch 32, lr 1e-4, one thread, pinned to
# one core, runs alternated (FP32, QAT, [QAT of BASELINE_BUILD]) in each round; seconds per step
# from each run's train_log.json (evaluation excluded); medians over the rounds and their ratio.
#
#   bench/qat_cost.sh [build-dir] [rounds=2] [tasks="cola sst2"] [core=1]
#
# Tasks: cola (the whole training set, 268 steps) and sst2 (its first 3,200 sentences, 100 steps).
# BASELINE_BUILD: a directory holding an older octet-train, timed as a third variant ("before").
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${1:-$repo/build}"
rounds="${2:-2}"
tasks="${3:-cola sst2}"
core="${4:-1}"
data="${OCTET_DATA:-$repo/../shared/data}"
model="$repo/models/octet-bert-mini-uncased"
[[ -x "$build/octet-train" ]] || { echo "error: $build/octet-train not built (ninja -C $build octet_train_cli)" >&2; exit 2; }
[[ -f "$model/config.json" ]] || { echo "error: missing $model/config.json" >&2; exit 3; }
variants="fp32 qat"
if [[ -n "${BASELINE_BUILD:-}" ]]; then
  [[ -x "$BASELINE_BUILD/octet-train" ]] || { echo "error: $BASELINE_BUILD/octet-train not found" >&2; exit 2; }
  variants="fp32 qat qat-baseline"
fi
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) vCPUs; core $core; $rounds rounds"
for r in $(seq 1 "$rounds"); do
  for task in $tasks; do
    case $task in
      cola) dir=$data/glue/CoLA; n=0 ;;
      sst2) dir=$data/glue/SST-2; n=3200 ;;
      *) echo "error: task $task: expected cola or sst2" >&2; exit 2 ;;
    esac
    [[ -f "$dir/train.tsv" && -f "$dir/dev.tsv" ]] || { echo "error: missing $dir/train.tsv or dev.tsv" >&2; exit 3; }
    for v in $variants; do
      case $v in
        fp32) bin=$build/octet-train; q=() ;;
        qat) bin=$build/octet-train; q=(--qat --qat-head-start-step 0) ;;
        qat-baseline) bin=$BASELINE_BUILD/octet-train; q=(--qat --qat-head-start-step 0) ;;
      esac
      run=$out/$task-$v-$r
      taskset -c "$core" "$bin" finetune "${q[@]}" --model "$model" --task "$task" \
        --train "$dir/train.tsv" --dev "$dir/dev.tsv" --new-head --epochs 1 \
        --max-train-examples "$n" --batch-size 32 --lr 1e-4 --warmup-ratio 0.1 --seed 42 \
        --threads 1 --out "$run" >"$run.log" 2>&1 ||
        { echo "error: $task $v round $r failed:" >&2; tail -5 "$run.log" >&2; exit 1; }
      s=$(/usr/bin/python3 -c 'import json,sys; d=json.load(open(sys.argv[1]))
print(d["epochs"][0]["seconds"] / d["steps_per_epoch"])' "$run/train_log.json")
      echo "round $r: $task $v $s s/step"
      echo "$task $v $s" >>"$out/rows"
      rm -rf "$run"
    done
  done
done
/usr/bin/python3 - "$out/rows" <<'PY'
import collections, statistics, sys
t = collections.defaultdict(list)
for line in open(sys.argv[1]):
    task, v, s = line.split()
    t[(task, v)].append(float(s))
for task in dict.fromkeys(k[0] for k in t):
    fp32 = statistics.median(t[(task, "fp32")])
    parts = [f"fp32 {fp32:.4f} s/step"]
    for v in ("qat", "qat-baseline"):
        if (task, v) in t:
            m = statistics.median(t[(task, v)])
            parts.append(f"{v} {m:.4f} s/step ({m / fp32:.2f}x fp32)")
    print(f"median {task}: " + ", ".join(parts))
PY
