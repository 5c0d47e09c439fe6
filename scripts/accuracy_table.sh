#!/usr/bin/env bash
# The INT8 accuracy table (Q8BERT's layout): for each fine-tuned GLUE model given, calibrate on
# 600 training examples, then evaluate FP32 and every quantization mode on the dev split with
# `octet compare`, and write docs/results/accuracy.md (plus the raw JSON next to it).
#
#   scripts/accuracy_table.sh sst2=models/sst2 mrpc=models/mrpc cola=models/cola \
#                             stsb=models/stsb rte=models/rte
#
# Any subset of the tasks may be given. Environment:
#   OCTET_DATA   shared data (default ../shared/data): glue/<TASK>/{train,dev}.tsv
#   OCTET        the octet binary (default build/octet; built with cmake + ninja if missing)
#   OUT          the Markdown table (default docs/results/accuracy.md); JSON goes to
#                docs/results/accuracy/<task>.json and the calibration files next to them
#   SAMPLES      calibration examples (default 600)   SEED  (default 42)
#   MODES        comma-separated `octet compare --modes` (default: every mode)
#   THREADS      (default 0: all cores)               PER_LAYER=1 adds the per-layer report
#   RENDER_ONLY=1  rewrite OUT from the JSON of an earlier run (no calibration, no evaluation)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export OCTET_DATA=${OCTET_DATA:-$root/../shared/data}
octet=${OCTET:-build/octet}
out=${OUT:-docs/results/accuracy.md}
samples=${SAMPLES:-600}
seed=${SEED:-42}
threads=${THREADS:-0}
jsondir=$(dirname "$out")/accuracy
if [ $# -eq 0 ]; then
  sed -n '2,18p' "$0" >&2
  exit 2
fi
if [ ! -x "$octet" ]; then
  cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
  ninja -C build octet_cli
  octet=build/octet
fi
mkdir -p "$jsondir"

source "$root/scripts/lib/glue.sh"

jsons=()
for arg in "$@"; do
  task=${arg%%=*}
  model=${arg#*=}
  if [ "$task" = "$arg" ] || [ -z "$model" ]; then
    echo "accuracy_table: expected TASK=MODEL_DIR, found '$arg'" >&2
    exit 2
  fi
  dir=$OCTET_DATA/glue/$(glue_folder "$task")
  if [ "${RENDER_ONLY:-0}" = 1 ]; then
    [ -f "$jsondir/$task.json" ] || { echo "accuracy_table: missing $jsondir/$task.json" >&2; exit 3; }
    jsons+=("$jsondir/$task.json")
    continue
  fi
  for f in "$dir/train.tsv" "$dir/dev.tsv" "$model/config.json"; do
    if [ ! -f "$f" ]; then echo "accuracy_table: missing $f" >&2; exit 3; fi
  done
  calib=$jsondir/$task.calibration.json
  echo "== $task: calibrate ($samples training examples) =="
  "$octet" calibrate --model "$model" --task "$task" --data "$dir/train.tsv" --out "$calib" \
    --samples "$samples" --seed "$seed" --threads "$threads"
  echo "== $task: compare on dev =="
  extra=()
  if [ -n "${MODES:-}" ]; then extra+=(--modes "$MODES"); fi
  if [ "${PER_LAYER:-0}" = 1 ]; then extra+=(--per-layer); fi
  "$octet" compare --model "$model" --task "$task" --data "$dir/dev.tsv" --calibration "$calib" \
    --threads "$threads" --json "$jsondir/$task.json" "${extra[@]}"
  jsons+=("$jsondir/$task.json")
done

PYTHONPATH="$root/scripts/lib" /usr/bin/python3 - "$out" "$samples" "$seed" "${jsons[@]}" <<'EOF'
import json, os, sys, datetime
from results_section import marked_sections
out, samples, seed, files = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
runs = [json.load(open(f)) for f in files]
lines = ["# INT8 accuracy on GLUE dev (post-training quantization)", "",
         f"Written by `scripts/accuracy_table.sh` on {datetime.date.today()}: calibration on "
         f"{samples} random training examples (seed {seed}), evaluation on the full dev split, "
         "one `octet compare` per task (raw JSON in `accuracy/`). Relative error = "
         "(FP32 - INT8) / FP32 of the task's main metric, in percent (Q8BERT's convention: "
         "positive is worse). Encoder size = embeddings + encoder layers as stored (int8 weights, "
         "scales, int32 biases, FP32 LayerNorm and token-type table).", ""]
# Summary: one row per task, Q8BERT-style columns.
cols = ["dynamic-per-tensor", "dynamic", "static-max", "static-percentile", "static-kl",
        "static-mse", "asym-max", "asym-percentile", "asym-kl", "dynamic-int8-attention",
        "static-kl-int8-attention"]
present = [c for c in cols if any(m["mode"] == c for r in runs for m in r["modes"])]
head = "| task | metric | FP32 | " + " | ".join(f"{c} (rel. err)" for c in present) + " |"
lines += ["## Summary", "", head, "|" + " --- |" * (3 + len(present))]
def fmt(v):
    return "n/a" if v is None else f"{100 * v:.2f}"
for r in runs:
    main = r["main_metric"]
    row = [r["task"], main, fmt(r["fp32"]["metrics"][main])]
    by = {m["mode"]: m for m in r["modes"]}
    for c in present:
        m = by.get(c)
        if m is None:
            row.append("-")
        else:
            e = m["relative_error_pct"]
            row.append(f"{fmt(m['metrics'][main])} ({'n/a' if e is None else f'{e:.2f}%'})")
    lines.append("| " + " | ".join(row) + " |")
lines += ["", "`*-int8-attention`: the same quantization with the attention matmuls (Q K^T, P V) on "
          "int8 as well (`--attention int8`, Bhandare et al.; Q8BERT keeps them in FP32).", "",
          "Best static mode per task (every `static-*` and `asym-*` mode with FP32 attention; the "
          "bar is 1% relative error, Q8BERT's):", "", "| task | best static mode | metric | rel. err | within 1% |",
          "| --- | --- | --- | --- | --- |"]
for r in runs:
    main = r["main_metric"]
    static = [m for m in r["modes"] if m["mode"].startswith(("static", "asym"))
              and not m["mode"].endswith("-int8-attention")
              and m["relative_error_pct"] is not None]
    if not static:
        continue
    best = min(static, key=lambda m: m["relative_error_pct"])
    e = best["relative_error_pct"]
    lines.append(f"| {r['task']} | {best['mode']} | {fmt(best['metrics'][main])} | {e:.2f}% | "
                 f"{'yes' if e <= 1.0 else '**no**'} |")
home = os.path.expanduser("~")
lines += ["", "Models: the SST-2 model is the committed `models/octet-bert-mini-sst2`; the others are "
          "fine-tuned from `models/octet-bert-mini-uncased` by `scripts/train_glue.sh` into "
          "`~/.cache/octet/glue/<task>-pretrained` (not committed). Reproduce: "
          "`scripts/train_glue.sh --threads 1`, then `scripts/accuracy_table.sh "
          "sst2=models/octet-bert-mini-sst2 mrpc=~/.cache/octet/glue/mrpc-pretrained "
          "cola=~/.cache/octet/glue/cola-pretrained stsb=~/.cache/octet/glue/stsb-pretrained "
          "rte=~/.cache/octet/glue/rte-pretrained`. These small models are weakly pretrained "
          "(see models/octet-bert-mini-uncased/MODEL_CARD.md)."]
cola = next((r for r in runs if r["task"] == "cola"), None)
if cola is not None:
    lines[-1] += (f" CoLA's MCC of {100 * cola['fp32']['metrics']['mcc']:.1f} points makes its "
                  "relative errors large for a difference of a few dev examples.")
lines += ["", "Per task below: 95% interval = of the relative error, from 1000 paired-bootstrap "
          "draws of the dev examples (`octet compare`; both models scored on the same draws); "
          "differ = dev examples a mode predicts differently from FP32 (STS-B is a regression). "
          "An interval that contains both 0 and 1% means the dev set cannot tell whether the "
          "mode is within Q8BERT's 1% bar."]
lines += ["", "Q8BERT's reference (BERT-base, QUANT_SPEC A.9): DQ relative errors 1.43% (SST-2), "
          "2.36% (MRPC F1), 2.97% (CoLA), 2.18% (STS-B), 9.15% (RTE); QAT within 1.3%.", ""]
for r in runs:
    main = r["main_metric"]
    lines += [f"## {r['task']} ({r['examples']} dev examples, model `{r['model'].replace(home, '~')}`)", "",
              f"| mode | {main} | rel. err % | 95% interval | differ | logits cosine | encoder MiB | % of FP32 | seconds |",
              "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    fp = r["fp32"]
    lines.append(f"| fp32 | {fmt(fp['metrics'][main])} | - | - | - | - | "
                 f"{fp['encoder_bytes'] / 2**20:.2f} | 100.0 | {fp['seconds']:.1f} |")
    for m in r["modes"]:
        e = m["relative_error_pct"]
        iv = m.get("relative_error_interval_pct")
        iv = ("n/a" if not iv or None in iv else
              "[{:.2f}, {:.2f}]".format(iv[0] + 0.0, iv[1] + 0.0))
        d = (m.get("vs_fp32") or {}).get("examples_predicted_differently")
        lines.append(f"| {m['mode']} | {fmt(m['metrics'][main])} | "
                     f"{'n/a' if e is None else f'{e:.2f}'} | {iv} | {'-' if d is None else d} | "
                     f"{m['logits_cosine']:.5f} | "
                     f"{m['encoder_bytes'] / 2**20:.2f} | "
                     f"{100 * m['encoder_bytes'] / max(1, fp['encoder_bytes']):.1f} | "
                     f"{m['seconds']:.1f} |")
    for s in r.get("skipped", []):
        lines.append(f"\nSkipped: {s}")
    if r.get("per_layer"):
        pl = r["per_layer"]
        lines += ["", f"Per-layer output error, mode {pl['mode']} ({pl['examples']} examples, "
                  "cumulative):", "", "| layer | SQNR dB | cosine |", "| --- | --- | --- |"]
        for l in pl["layers"]:
            s = "inf" if l["sqnr_db"] is None else f"{l['sqnr_db']:.1f}"
            lines.append(f"| {l['name']} | {s} | {l['cosine']:.5f} |")
    lines.append("")
lines += ["Timings were taken on whatever machine ran the script; see docs/results for speed "
          "measurements made on a quiet machine.", ""]
# Sections other scripts maintain in the same file (scripts/qat_table.sh's) are carried over.
for section in marked_sections(out):
    lines += [section, ""]
os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
tmp = out + ".tmp"
with open(tmp, "w") as f:
    f.write("\n".join(lines))
os.replace(tmp, out)
print(f"accuracy_table: wrote {out}")
EOF
