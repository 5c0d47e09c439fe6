#!/usr/bin/env bash
# Integer-only (I-BERT) accuracy on GLUE dev: for each fine-tuned FP32 model given,
#   (1) calibrated: `octet calibrate --calibrator ema-minmax` on 600 training examples, then
#       `octet quantize --mode integer-only`, evaluated with `octet eval`;
#   (2) integer-only-aware fine-tuning: `octet finetune --qat --qat-mode integer-only` from the
#       FP32 model, once per learning rate of LRS (I-BERT's search, QUANT_SPEC B.11: lr in
#       {5e-7, 1e-6, 1.5e-6, 2e-6}, best dev reported), EPOCHS epochs over at most MAX_TRAIN
#       training examples, no warm-up, the best-dev epoch kept; each run exported to an
#       integer-only directory and evaluated with `octet eval`;
# and writes the table (FP32, calibrated, every learning rate, the best of them) into the
# "Integer-only" section of docs/results/accuracy.md (between the markers; the rest of the file
# is left as it is).
#
#   scripts/integer_accuracy.sh sst2=models/octet-bert-mini-sst2 mrpc=~/.cache/octet/glue/mrpc-pretrained ...
#
# Environment: OCTET_DATA (../shared/data), BUILD (build: holds octet and octet-train), OUT
# (docs/results/accuracy.md), WORK (~/.cache/octet/integer: quantized models and logs),
# SAMPLES (600), SEED (42), THREADS (1 per run), JOBS (1: fine-tuning runs at once),
# EPOCHS (3), MAX_TRAIN (3200: 100 steps of 32 per epoch), LRS ("5e-7 1e-6 1.5e-6 2e-6"),
# RENDER_ONLY=1 (rewrite the table from WORK's results of an earlier run).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export OCTET_DATA=${OCTET_DATA:-$root/../shared/data}
build=${BUILD:-build}
out=${OUT:-docs/results/accuracy.md}
work=${WORK:-$HOME/.cache/octet/integer}
samples=${SAMPLES:-600}; seed=${SEED:-42}; threads=${THREADS:-1}; jobs=${JOBS:-1}
epochs=${EPOCHS:-3}; max_train=${MAX_TRAIN:-3200}; lrs=${LRS:-5e-7 1e-6 1.5e-6 2e-6}
lrs=${lrs//,/ }
source "$root/scripts/lib/glue.sh"
now() { date +%s.%N; }

# One fine-tuning run (called by this script through xargs): TASK MODEL LR.
if [ "${1:-}" = --run ]; then
  task=$2; model=$3; lr=$4
  dir=$OCTET_DATA/glue/$(glue_folder "$task")
  r=$work/$task/qat-lr$lr; rm -rf "$r"; mkdir -p "$r"
  t0=$(now)
  "$build/octet-train" finetune --qat --qat-mode integer-only --model "$model" --task "$task" \
    --train "$dir/train.tsv" --dev "$dir/dev.tsv" --out "$r/model" --epochs "$epochs" \
    --max-train-examples "$max_train" --lr "$lr" --warmup-ratio 0 --batch-size 32 \
    --seed "$seed" --threads "$threads" >"$r/finetune.log" 2>&1 ||
    { echo "integer_accuracy: $task lr $lr failed, see $r/finetune.log" >&2; exit 1; }
  t1=$(now)
  "$build/octet" eval --model "$r/model" --task "$task" --data "$dir/dev.tsv" \
    --threads "$threads" --json "$r/eval.json" >"$r/eval.log" 2>&1 ||
    { echo "integer_accuracy: $task lr $lr: eval failed, see $r/eval.log" >&2; exit 1; }
  /usr/bin/python3 -c 'import json,sys; e=json.load(open(sys.argv[1])); m=e["main_metric"]
json.dump({"lr": sys.argv[2], "metric": e["metrics"][m], "seconds": float(sys.argv[4]) - float(sys.argv[3])},
          open(sys.argv[5], "w"))' "$r/eval.json" "$lr" "$t0" "$t1" "$r/row.json"
  echo "integer_accuracy: $task lr $lr done" >&2
  exit 0
fi

[ $# -gt 0 ] || { sed -n '2,20p' "$0" >&2; exit 2; }
for b in octet octet-train; do
  [ -x "$build/$b" ] || { echo "integer_accuracy: $build/$b not built" >&2; exit 2; }
done
[ -f "$out" ] || { echo "integer_accuracy: $out not found (run scripts/accuracy_table.sh first)" >&2; exit 2; }
mkdir -p "$work"
tasks=()
runs=$work/runs.txt
[ "${RENDER_ONLY:-0}" = 1 ] || : > "$runs"
for arg in "$@"; do
  task=${arg%%=*}; model=${arg#*=}
  [ "$task" != "$arg" ] && [ -f "$model/config.json" ] ||
    { echo "integer_accuracy: expected TASK=MODEL_DIR, found '$arg'" >&2; exit 2; }
  tasks+=("$task")
  dir=$OCTET_DATA/glue/$(glue_folder "$task")
  for f in "$dir/train.tsv" "$dir/dev.tsv"; do
    [ -f "$f" ] || { echo "integer_accuracy: missing $f" >&2; exit 3; }
  done
  w=$work/$task
  [ "${RENDER_ONLY:-0}" = 1 ] && continue
  rm -rf "$w"; mkdir -p "$w"
  echo "$model" > "$w/model.txt"
  echo "== $task: FP32 and calibrated integer-only ==" >&2
  "$build/octet" eval --model "$model" --task "$task" --data "$dir/dev.tsv" --threads "$threads" \
    --json "$w/fp32.json" >&2
  "$build/octet" calibrate --model "$model" --task "$task" --data "$dir/train.tsv" \
    --out "$w/calib.json" --samples "$samples" --seed "$seed" --calibrator ema-minmax \
    --threads "$threads" >&2
  "$build/octet" quantize --mode integer-only --model "$model" --calibration "$w/calib.json" \
    --out "$w/calibrated" >&2
  "$build/octet" eval --model "$w/calibrated" --task "$task" --data "$dir/dev.tsv" \
    --threads "$threads" --json "$w/calibrated.json" >&2
  for lr in $lrs; do printf '%s\n' "$task" "$model" "$lr" >> "$runs"; done
done
if [ "${RENDER_ONLY:-0}" != 1 ]; then
  echo "== integer-only-aware fine-tuning: $(($(wc -l <"$runs") / 3)) runs, $jobs at a time ==" >&2
  export BUILD=$build WORK=$work SEED=$seed THREADS=$threads EPOCHS=$epochs MAX_TRAIN=$max_train
  xargs -a "$runs" -d '\n' -n 3 -P "$jobs" "$root/scripts/$(basename "$0")" --run
fi

OCTET_ROOT=$root /usr/bin/python3 - "$work" "$out" "$samples" "$seed" "$epochs" "$max_train" "$threads" "$lrs" \
  "${tasks[@]}" <<'PY'
import json, os, sys
sys.path.insert(0, os.path.join(os.environ["OCTET_ROOT"], "scripts", "lib"))
from results_section import replace_section
import datetime
work, out, samples, seed, epochs, max_train, threads, lrs = sys.argv[1:9]
tasks, lrs = sys.argv[9:], lrs.split()
home = os.path.expanduser("~")
rows = []
for t in tasks:
    w = f"{work}/{t}"
    f, c = (json.load(open(f"{w}/{n}.json")) for n in ("fp32", "calibrated"))
    m = f["main_metric"]
    runs = {}
    for lr in lrs:
        p = f"{w}/qat-lr{lr}/row.json"
        if not os.path.exists(p):
            sys.exit(f"integer_accuracy: missing {p} (run without RENDER_ONLY)")
        runs[lr] = json.load(open(p))
    rows.append({"task": t, "metric": m, "model": open(f"{w}/model.txt").read().strip(),
                 "fp32": 100 * f["metrics"][m], "calibrated": 100 * c["metrics"][m],
                 "runs": {lr: 100 * r["metric"] for lr, r in runs.items()},
                 "minutes": sum(r["seconds"] for r in runs.values()) / 60})
L = ["<!-- integer-only: begin (scripts/integer_accuracy.sh) -->",
     "## Integer-only (I-BERT)", "",
     f"Written by `scripts/integer_accuracy.sh` on {datetime.date.today()}. Calibrated: "
     f"`octet calibrate --calibrator ema-minmax` on {samples} training examples (seed {seed}), "
     "`octet quantize --mode integer-only`. Fine-tuned: `octet finetune --qat --qat-mode "
     f"integer-only` from the FP32 model, once per learning rate ({', '.join(lrs)}: I-BERT's "
     f"search, QUANT_SPEC B.11), {epochs} epoch(s) over at most {max_train} training examples, "
     f"no warm-up, batch 32, {threads} thread(s), seed {seed}, the epoch with the best dev metric "
     "kept (as for the FP32 models), exported and run by the integer-only engine (`octet eval`). "
     "\"best\" = the learning rate with the best dev metric, as I-BERT reports; the "
     "per-learning-rate columns show what a single fixed learning rate gives. Points = metric "
     "x 100; difference = integer-only - FP32.", "",
     "| task | metric | FP32 | calibrated (diff) | " + " | ".join(f"lr {lr} (diff)" for lr in lrs)
     + " | best (diff) | fine-tuning time (all lr) | model |",
     "| --- | --- | --- | --- | " + "--- | " * len(lrs) + "--- | --- | --- |"]
def cell(v, ref):
    return f"{v:.2f} ({v - ref:+.2f})"
avg = lambda xs: sum(xs) / len(xs)
d_cal, d_lr, d_best = [], {lr: [] for lr in lrs}, []
for r in rows:
    f = r["fp32"]
    best_lr = max(lrs, key=lambda lr: r["runs"][lr])
    best = r["runs"][best_lr]
    d_cal.append(r["calibrated"] - f); d_best.append(best - f)
    for lr in lrs:
        d_lr[lr].append(r["runs"][lr] - f)
    L.append(f"| {r['task']} | {r['metric']} | {f:.2f} | {cell(r['calibrated'], f)} | "
             + " | ".join(cell(r["runs"][lr], f) for lr in lrs)
             + f" | {cell(best, f)} at {best_lr} | {r['minutes']:.1f} min | "
             f"`{r['model'].replace(home, '~')}` |")
if rows:
    n = len(rows)
    L.append(f"| **average** | | | ({avg(d_cal):+.2f}) | "
             + " | ".join(f"({avg(d_lr[lr]):+.2f})" for lr in lrs) + f" | ({avg(d_best):+.2f}) | | |")
    met = avg(d_best) >= -0.3
    L += ["", f"I-BERT's bar: with fine-tuning, the average within 0.3 points of FP32: "
          f"{'met' if met else '**not met**'} ({avg(d_best):+.2f} points over {n} task(s), best "
          "learning rate per task; a single learning rate for every task: "
          + ", ".join(f"{lr}: {avg(d_lr[lr]):+.2f}" for lr in lrs) + ")."]
L.append("<!-- integer-only: end -->")
replace_section(out, "integer-only", L)
print(f"integer_accuracy: wrote {out}")
print("\n".join(L))
PY
