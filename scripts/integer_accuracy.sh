#!/usr/bin/env bash
# Integer-only (I-BERT) accuracy on GLUE dev: for each fine-tuned FP32 model given,
#   (1) calibrated: `octet calibrate --calibrator ema-minmax` on 600 training examples, then
#       `octet quantize --mode integer-only`, evaluated with `octet eval`;
#   (2) integer-only-aware fine-tuning: `octet finetune --qat --qat-mode integer-only` from the
#       FP32 model (EPOCHS epochs over at most MAX_TRAIN training examples, lr LR, no warm-up),
#       exported to an integer-only directory, evaluated with `octet eval`;
# and writes the table, with FP32 next to both, into the "Integer-only" section of
# docs/results/accuracy.md (between the markers; the rest of the file is left as it is).
#
#   scripts/integer_accuracy.sh sst2=models/octet-bert-mini-sst2 mrpc=~/.cache/octet/glue/mrpc-pretrained ...
#
# Environment: OCTET_DATA (../shared/data), BUILD (build: holds octet and octet-train), OUT
# (docs/results/accuracy.md), WORK (~/.cache/octet/integer: quantized models and logs),
# SAMPLES (600), SEED (42), THREADS (1), EPOCHS (1), MAX_TRAIN (9600: 300 steps of 32), LR (1e-5).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export OCTET_DATA=${OCTET_DATA:-$root/../shared/data}
build=${BUILD:-build}
out=${OUT:-docs/results/accuracy.md}
work=${WORK:-$HOME/.cache/octet/integer}
samples=${SAMPLES:-600}; seed=${SEED:-42}; threads=${THREADS:-1}
epochs=${EPOCHS:-1}; max_train=${MAX_TRAIN:-9600}; lr=${LR:-1e-5}
[ $# -gt 0 ] || { sed -n '2,17p' "$0" >&2; exit 2; }
for b in octet octet-train; do
  [ -x "$build/$b" ] || { echo "integer_accuracy: $build/$b not built" >&2; exit 2; }
done
[ -f "$out" ] || { echo "integer_accuracy: $out not found (run scripts/accuracy_table.sh first)" >&2; exit 2; }
folder() {
  case "$1" in
    sst2) echo SST-2 ;; mrpc) echo MRPC ;; cola) echo CoLA ;; stsb) echo STS-B ;; rte) echo RTE ;;
    *) echo "integer_accuracy: unknown task '$1'" >&2; exit 2 ;;
  esac
}
now() { date +%s.%N; }
mkdir -p "$work"
rows=$work/rows.jsonl
: > "$rows"
for arg in "$@"; do
  task=${arg%%=*}; model=${arg#*=}
  [ "$task" != "$arg" ] && [ -f "$model/config.json" ] ||
    { echo "integer_accuracy: expected TASK=MODEL_DIR, found '$arg'" >&2; exit 2; }
  dir=$OCTET_DATA/glue/$(folder "$task")
  for f in "$dir/train.tsv" "$dir/dev.tsv"; do
    [ -f "$f" ] || { echo "integer_accuracy: missing $f" >&2; exit 3; }
  done
  w=$work/$task; rm -rf "$w"; mkdir -p "$w"
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
  echo "== $task: integer-only-aware fine-tuning ==" >&2
  t0=$(now)
  "$build/octet-train" finetune --qat --qat-mode integer-only --model "$model" --task "$task" \
    --train "$dir/train.tsv" --dev "$dir/dev.tsv" --out "$w/qat" --epochs "$epochs" \
    --max-train-examples "$max_train" --lr "$lr" --warmup-ratio 0 --batch-size 32 \
    --seed "$seed" --threads "$threads" 2>&1 | tee "$w/qat.log" >&2
  t1=$(now)
  "$build/octet" eval --model "$w/qat" --task "$task" --data "$dir/dev.tsv" \
    --threads "$threads" --json "$w/qat.json" >&2
  /usr/bin/python3 - "$w" "$task" "$model" "$t0" "$t1" >>"$rows" <<'PY'
import json, sys
w, task, model, t0, t1 = sys.argv[1:]
get = lambda n: json.load(open(f"{w}/{n}.json"))
f, c, q = get("fp32"), get("calibrated"), get("qat")
m = f["main_metric"]
print(json.dumps({"task": task, "model": model, "metric": m, "fp32": f["metrics"][m],
                  "calibrated": c["metrics"][m], "qat": q["metrics"][m],
                  "qat_seconds": float(t1) - float(t0)}))
PY
done
/usr/bin/python3 - "$rows" "$out" "$samples" "$seed" "$epochs" "$max_train" "$lr" "$threads" <<'PY'
import json, os, sys, datetime
rows_path, out, samples, seed, epochs, max_train, lr, threads = sys.argv[1:]
rows = [json.loads(l) for l in open(rows_path)]
home = os.path.expanduser("~")
L = ["<!-- integer-only: begin (scripts/integer_accuracy.sh) -->",
     "## Integer-only (I-BERT)", "",
     f"Written by `scripts/integer_accuracy.sh` on {datetime.date.today()}. Calibrated: "
     f"`octet calibrate --calibrator ema-minmax` on {samples} training examples (seed {seed}), "
     "`octet quantize --mode integer-only`. Fine-tuned: `octet finetune --qat --qat-mode "
     f"integer-only` from the FP32 model, {epochs} epoch(s) over at most {max_train} training "
     f"examples, lr {lr}, no warm-up, batch 32, {threads} thread(s), seed {seed}"
     + (", the epoch with the best dev metric kept (as for the FP32 models: `octet finetune` "
        "evaluates the quantization-aware model on dev after every epoch)" if int(epochs) > 1 else "")
     + ", exported and run by the integer-only engine (`octet eval`). Points = metric x 100; "
     "difference = integer-only - FP32.", "",
     "| task | metric | FP32 | calibrated (diff) | integer-aware fine-tuned (diff) | fine-tuning time | model |",
     "| --- | --- | --- | --- | --- | --- | --- |"]
d_cal, d_qat = [], []
for r in rows:
    f, c, q = (100 * r[k] for k in ("fp32", "calibrated", "qat"))
    d_cal.append(c - f); d_qat.append(q - f)
    L.append(f"| {r['task']} | {r['metric']} | {f:.2f} | {c:.2f} ({c - f:+.2f}) | {q:.2f} ({q - f:+.2f}) "
             f"| {r['qat_seconds'] / 60:.1f} min | `{r['model'].replace(home, '~')}` |")
if rows:
    n = len(rows)
    L.append(f"| **average** | | | ({sum(d_cal) / n:+.2f}) | ({sum(d_qat) / n:+.2f}) | | |")
    L += ["", f"I-BERT's bar: with fine-tuning, the average within 0.3 points of FP32: "
          f"{'met' if abs(sum(d_qat) / n) <= 0.3 or sum(d_qat) / n > 0 else '**not met**'} "
          f"({sum(d_qat) / n:+.2f} points over {n} task(s))."]
L.append("<!-- integer-only: end -->")
text = open(out).read()
b, e = "<!-- integer-only: begin", "<!-- integer-only: end -->"
if b in text and e in text:
    text = text[:text.index(b)] + "\n".join(L) + text[text.index(e) + len(e):]
else:
    text = text.rstrip("\n") + "\n\n" + "\n".join(L) + "\n"
tmp = out + ".tmp"
open(tmp, "w").write(text)
os.replace(tmp, out)
print(f"integer_accuracy: wrote {out}")
print("\n".join(L))
PY
