#!/usr/bin/env bash
# Q8BERT's table on GLUE dev, several seeds: for each task and seed,
#   (1) FP32: `octet finetune` from the pretrained encoder (new head), the task's epochs, batch 32,
#       lr 1e-4, warm-up 10% then linear decay, max 128 tokens, the best-dev epoch kept;
#   (2) post-training quantization of that model: `octet calibrate` (600 training examples) and
#       `octet compare` (every mode): Q8BERT's dynamic baseline (dynamic-per-tensor), static PTQ
#       of Q8BERT's graph (static-q8bert) and the best static mode (best of the static-* and
#       asym-* modes on dev);
#   (3) QAT: `octet finetune --qat` (Q8BERT defaults: symmetric, per-tensor weights, EMA 0.9999,
#       identity STE, Q and K outputs quantized, classifier from step 200) from the same
#       pretrained encoder with the same
#       settings and seed (Q8BERT's protocol: QAT is the fine-tuning), the exported INT8 model
#       evaluated by the INT8 engine (`octet eval`);
#   (4) QAT from the FP32 fine-tuned model of (1) (the other starting point `octet finetune --qat`
#       offers): one epoch (the same training examples), lr 2e-5, warm-up 10%, the classifier
#       quantized from step 0, same seed; exported and evaluated like (3);
#   (4b) the control for (4): the FP32 model of (1) trained for the same extra epoch with the same
#       settings, without fake quantization (what the extra epoch alone gives);
#   (5) each INT8 model of (2)-(4) (dynamic, QAT, QAT from FP32) against the FP32 model of (1) on
#       dev, example by example: `octet eval --baseline` (paired bootstrap, 1000 draws, seed 42);
# then writes the "Quantization-aware fine-tuning" section of docs/results/accuracy.md (between its
# markers; the rest of the file is left as it is): mean and standard deviation over the seeds,
# relative errors to FP32, and the fine-tuning time of FP32 and QAT per step.
#
#   scripts/qat_table.sh [TASK ...]          (default: sst2 mrpc cola stsb rte)
#
# Runs are independent and resumable: each (task, seed) writes its results under
# WORK/<task>/seed<seed>/ and a finished run is not redone (delete its directory to redo it).
# Environment: OCTET_DATA (../shared/data), BUILD (build: octet and octet-train), OUT
# (docs/results/accuracy.md), WORK (~/.cache/octet/qat), PRETRAINED (models/octet-bert-mini-uncased),
# SEEDS ("42 43 44"), JOBS (2: runs at once, one thread each), SAMPLES (600),
# EPOCHS ("mrpc=3 cola=5 stsb=5 rte=5 sst2=1"; CoLA and STS-B were 3 until session 23, where
# FP32's best-dev epoch was the last on every seed with the metric still rising), MAX_TRAIN ("sst2=16000": training examples per
# epoch, first N of the file), RENDER_ONLY=1 (only rewrite the table from WORK), ENCODER_NOTE
# (how the table names the pretrained encoder, when the runs used another than the committed one).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export OCTET_DATA=${OCTET_DATA:-$root/../shared/data}
build=${BUILD:-build}
out=${OUT:-docs/results/accuracy.md}
work=${WORK:-$HOME/.cache/octet/qat}
pretrained=${PRETRAINED:-$root/models/octet-bert-mini-uncased}
seeds=${SEEDS:-42 43 44}; jobs=${JOBS:-2}; samples=${SAMPLES:-600}
epochs_of=${EPOCHS:-mrpc=3 cola=5 stsb=5 rte=5 sst2=1}
max_train_of=${MAX_TRAIN:-sst2=16000}
source "$root/scripts/lib/glue.sh"
lookup() {  # lookup TASK "t=v t=v" DEFAULT
  local kv
  for kv in $2; do [ "${kv%%=*}" = "$1" ] && { echo "${kv#*=}"; return; }; done
  echo "$3"
}

# One (task, seed): FP32 fine-tuning, PTQ, QAT (called through xargs).
if [ "${1:-}" = --run ]; then
  task=$2; seed=$3
  dir=$OCTET_DATA/glue/$(glue_folder "$task")
  r=$work/$task/seed$seed
  epochs=$(lookup "$task" "$epochs_of" 3); max_train=$(lookup "$task" "$max_train_of" 0)
  fail() { echo "qat_table: $task seed $seed: $1 failed, see $r/$2" >&2; exit 1; }
  # (4), resumable on its own: needs (1)'s FP32 model.
  qat_from_fp32() {
    [ -f "$r/qat_ft_done" ] && return 0
    echo "qat_table: $task seed $seed: QAT from the FP32 model" >&2
    rm -rf "$r/qat_ft"
    "$build/octet-train" finetune --qat --model "$r/fp32" --task "$task" --train "$dir/train.tsv" \
      --dev "$dir/dev.tsv" --epochs 1 --max-train-examples "$max_train" --batch-size 32 \
      --lr 2e-5 --warmup-ratio 0.1 --qat-head-start-step 0 --max-seq-len 128 --seed "$seed" \
      --threads 1 --out "$r/qat_ft" >"$r/qat_ft.log" 2>&1 || fail "QAT from FP32" qat_ft.log
    "$build/octet" eval --model "$r/qat_ft" --task "$task" --data "$dir/dev.tsv" --threads 1 \
      --json "$r/qat_ft_eval.json" >"$r/qat_ft_eval.log" 2>&1 ||
      fail "INT8 evaluation of QAT from FP32" qat_ft_eval.log
    rm -rf "$r/qat_ft/fp32"
    touch "$r/qat_ft_done"
  }
  # (4b), resumable on its own: the control for (4): the FP32 model of (1) fine-tuned for the
  # same extra epoch with the same settings and seed, without fake quantization, so that what
  # (4) gains from the extra epoch is not credited to QAT.
  fp32_continued() {
    [ -f "$r/fp32_cont_done" ] && return 0
    echo "qat_table: $task seed $seed: FP32 one more epoch (control)" >&2
    rm -rf "$r/fp32_cont"
    "$build/octet-train" finetune --model "$r/fp32" --task "$task" --train "$dir/train.tsv" \
      --dev "$dir/dev.tsv" --epochs 1 --max-train-examples "$max_train" --batch-size 32 \
      --lr 2e-5 --warmup-ratio 0.1 --max-seq-len 128 --seed "$seed" --threads 1 \
      --out "$r/fp32_cont" >"$r/fp32_cont.log" 2>&1 || fail "FP32 control epoch" fp32_cont.log
    "$build/octet" eval --model "$r/fp32_cont" --task "$task" --data "$dir/dev.tsv" --threads 1 \
      --json "$r/fp32_cont_eval.json" >"$r/fp32_cont_eval.log" 2>&1 ||
      fail "evaluation of the FP32 control" fp32_cont_eval.log
    rm -f "$r/fp32_cont/model.safetensors"
    touch "$r/fp32_cont_done"
  }
  # (5), resumable on its own: each INT8 model against its FP32 model on dev, example by example
  # (`octet eval --baseline`: the difference with a paired-bootstrap interval, the examples
  # predicted differently). The same bootstrap seed on the same dev set gives every comparison of
  # a task the same draws, so the render can average them draw by draw over seeds.
  comparisons() {
    [ -f "$r/cmp_done" ] && return 0
    local dev=$dir/dev.tsv boot=(--resamples 1000 --bootstrap-seed 42 --threads 1)
    "$build/octet" eval --model "$r/qat" --baseline "$r/fp32" --task "$task" --data "$dev" \
      "${boot[@]}" --json "$r/cmp_qat.json" >"$r/cmp.log" 2>&1 &&
    "$build/octet" eval --model "$r/fp32" --precision int8-dynamic --per-tensor \
      --baseline "$r/fp32" --task "$task" --data "$dev" "${boot[@]}" \
      --json "$r/cmp_dynamic.json" >>"$r/cmp.log" 2>&1 &&
    "$build/octet" eval --model "$r/qat_ft" --baseline "$r/fp32" --task "$task" --data "$dev" \
      "${boot[@]}" --json "$r/cmp_qat_ft.json" >>"$r/cmp.log" 2>&1 ||
      fail "comparison with FP32" cmp.log
    touch "$r/cmp_done"
  }
  if [ -f "$r/done" ]; then
    qat_from_fp32
    fp32_continued
    comparisons
    echo "qat_table: $task seed $seed done" >&2
    exit 0
  fi
  rm -rf "$r"; mkdir -p "$r"
  common=(--task "$task" --train "$dir/train.tsv" --dev "$dir/dev.tsv" --new-head
          --epochs "$epochs" --max-train-examples "$max_train" --batch-size 32 --lr 1e-4
          --warmup-ratio 0.1 --max-seq-len 128 --seed "$seed" --threads 1)
  echo "qat_table: $task seed $seed: FP32 fine-tuning" >&2
  "$build/octet-train" finetune --model "$pretrained" "${common[@]}" --out "$r/fp32" \
    >"$r/fp32.log" 2>&1 || fail "FP32 fine-tuning" fp32.log
  echo "qat_table: $task seed $seed: post-training quantization" >&2
  { "$build/octet" calibrate --model "$r/fp32" --task "$task" --data "$dir/train.tsv" \
      --out "$r/calibration.json" --samples "$samples" --seed 42 --threads 1 &&
    "$build/octet" compare --model "$r/fp32" --task "$task" --data "$dir/dev.tsv" \
      --calibration "$r/calibration.json" --threads 1 --json "$r/ptq.json"; } \
    >"$r/ptq.log" 2>&1 || fail "post-training quantization" ptq.log
  echo "qat_table: $task seed $seed: QAT" >&2
  "$build/octet-train" finetune --qat --model "$pretrained" "${common[@]}" --out "$r/qat" \
    >"$r/qat.log" 2>&1 || fail QAT qat.log
  "$build/octet" eval --model "$r/qat" --task "$task" --data "$dir/dev.tsv" --threads 1 \
    --json "$r/qat_eval.json" >"$r/qat_eval.log" 2>&1 || fail "INT8 evaluation of QAT" qat_eval.log
  rm -rf "$r/qat/fp32"  # the FP32 copy of the QAT weights: not needed for the table
  touch "$r/done"
  qat_from_fp32
  fp32_continued
  comparisons
  echo "qat_table: $task seed $seed done" >&2
  exit 0
fi

tasks=("$@")
[ ${#tasks[@]} -gt 0 ] || tasks=(sst2 mrpc cola stsb rte)
for t in "${tasks[@]}"; do glue_folder "$t" >/dev/null; done
[ -f "$out" ] || { echo "qat_table: $out not found (run scripts/accuracy_table.sh first)" >&2; exit 2; }
if [ "${RENDER_ONLY:-0}" != 1 ]; then
  for b in octet octet-train; do
    [ -x "$build/$b" ] || { echo "qat_table: $build/$b not built" >&2; exit 2; }
  done
  [ -f "$pretrained/config.json" ] || { echo "qat_table: missing $pretrained/config.json" >&2; exit 3; }
  for t in "${tasks[@]}"; do
    for f in train dev; do
      p=$OCTET_DATA/glue/$(glue_folder "$t")/$f.tsv
      [ -f "$p" ] || { echo "qat_table: missing $p" >&2; exit 3; }
    done
  done
  runs=$(mktemp)
  trap 'rm -f "$runs"' EXIT
  for s in $seeds; do for t in "${tasks[@]}"; do printf '%s\n' "$t" "$s" >>"$runs"; done; done
  export BUILD=$build WORK=$work PRETRAINED=$pretrained SAMPLES=$samples
  export EPOCHS=$epochs_of MAX_TRAIN=$max_train_of
  echo "== qat_table: $(($(wc -l <"$runs") / 2)) runs (task x seed), $jobs at a time ==" >&2
  xargs -a "$runs" -d '\n' -n 2 -P "$jobs" "$root/scripts/$(basename "$0")" --run
fi

OCTET_ROOT=$root /usr/bin/python3 - "$work" "$out" "$samples" "$epochs_of" "$max_train_of" "$seeds" "${tasks[@]}" <<'PY'
import json, os, sys
sys.path.insert(0, os.path.join(os.environ["OCTET_ROOT"], "scripts", "lib"))
from results_section import replace_section
import statistics, datetime
work, out, samples, epochs_of, max_train_of, seeds = sys.argv[1:7]
encoder = os.environ.get("ENCODER_NOTE") or "`models/octet-bert-mini-uncased`"
tasks, seeds = sys.argv[7:], seeds.split()
def load(p):
    return json.load(open(p))
def per_step(log):
    e = [x for x in log["epochs"]]
    return sum(x["seconds"] for x in e) / (log["steps_per_epoch"] * len(e))
rows, missing = [], []
for t in tasks:
    runs = []
    for s in seeds:
        r = f"{work}/{t}/seed{s}"
        if not os.path.exists(f"{r}/done"):
            missing.append(f"{t} seed {s}")
            continue
        ptq, qat = load(f"{r}/ptq.json"), load(f"{r}/qat_eval.json")
        m = ptq["main_metric"]
        modes = {x["mode"]: x for x in ptq["modes"]}
        static = [x for x in ptq["modes"] if x["mode"].startswith(("static", "asym"))]
        best = max(static, key=lambda x: x["metrics"][m])
        runs.append({"seed": s, "metric": m, "fp32": 100 * ptq["fp32"]["metrics"][m],
                     "dynamic": 100 * modes["dynamic-per-tensor"]["metrics"][m],
                     "static": 100 * best["metrics"][m], "static_mode": best["mode"],
                     "q8static": (100 * modes["static-q8bert"]["metrics"][m]
                                  if "static-q8bert" in modes else None),
                     "qat": 100 * qat["metrics"][m],
                     "qat_ft": (100 * load(f"{r}/qat_ft_eval.json")["metrics"][m]
                                if os.path.exists(f"{r}/qat_ft_done") else None),
                     "fp32_cont": (100 * load(f"{r}/fp32_cont_eval.json")["metrics"][m]
                                   if os.path.exists(f"{r}/fp32_cont_done") else None),
                     "parity": [load(f"{r}/{d}/train_log.json").get("engine_parity")
                                for d in ("qat", "qat_ft") if os.path.exists(f"{r}/{d}/train_log.json")],
                     "fp32_step": per_step(load(f"{r}/fp32/train_log.json")),
                     "qat_step": per_step(load(f"{r}/qat/train_log.json"))})
    if runs:
        rows.append((t, runs))
def ms(xs):
    return (statistics.mean(xs), statistics.stdev(xs) if len(xs) > 1 else 0.0)
def rel(x, f):  # Q8BERT's relative error, positive = worse
    return 100 * (f - x) / abs(f) if f else float("nan")
L = ["<!-- qat: begin (scripts/qat_table.sh) -->", "## Quantization-aware fine-tuning (Q8BERT)", "",
     f"Written by `scripts/qat_table.sh` on {datetime.date.today()}. Per task and seed "
     f"({', '.join(seeds)}): FP32 = `octet finetune` from {encoder} (new "
     f"head; epochs {epochs_of}; training examples capped: {max_train_of}; batch 32, lr 1e-4, "
     "warm-up 10%, max 128 tokens, one thread, best-dev epoch kept); dynamic = Q8BERT's dynamic "
     "PTQ (`dynamic-per-tensor`) of that model; Q8BERT static = static PTQ of Q8BERT's graph "
     "(`static-q8bert`: EMA ranges, per-tensor weights, 8-bit Q and K outputs), the graph QAT "
     "trains; best static = the best of the static and asymmetric PTQ modes on dev (calibration "
     f"on {samples} training examples), an optimistic selection; QAT = `octet finetune --qat` "
     "(Q8BERT defaults, Q and K outputs quantized) with the same settings and seed "
     "from the same pretrained encoder, exported and run by the INT8 engine; QAT from FP32 = "
     "`octet finetune --qat` from that seed's FP32 model (its classifier kept), one epoch, lr "
     "2e-5, warm-up 10%, the classifier quantized from step 0 (a setting fixed before its runs, "
     "not searched); its control = the same extra epoch of that FP32 model without fake "
     "quantization (same settings and seed), and \"vs control\" the relative error of QAT from "
     "FP32 to it. Mean +- standard deviation over the seeds, points = metric x 100; relative "
     "error = (FP32 - INT8) / FP32 of the means, in percent (positive is worse).", "",
     "| task | metric | seeds | FP32 | dynamic (rel. err) | Q8BERT static (rel. err) | best static (rel. err) | QAT (rel. err) | QAT within 1% | QAT from FP32 (rel. err) | within 1% | control: FP32 + 1 epoch | QAT from FP32 vs control | QAT / FP32 time per step |",
     "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
qat_rel, dyn_rel, ft_rel, q8s_rel = [], [], [], []
yes = lambda e: "yes" if e <= 1.0 else "**no**"
for t, runs in rows:
    f = ms([r["fp32"] for r in runs]); d = ms([r["dynamic"] for r in runs])
    s = ms([r["static"] for r in runs]); q = ms([r["qat"] for r in runs])
    ft = [r["qat_ft"] for r in runs if r["qat_ft"] is not None]
    q8s = [r["q8static"] for r in runs if r["q8static"] is not None]
    cost = statistics.mean(r["qat_step"] / r["fp32_step"] for r in runs)
    qat_rel.append(rel(q[0], f[0])); dyn_rel.append(rel(d[0], f[0]))
    c = lambda v: f"{v[0]:.2f} +- {v[1]:.2f}"
    ft_cells = "| |"
    if len(ft) == len(runs):
        e = ms(ft)
        ft_rel.append(rel(e[0], f[0]))
        ft_cells = f"{c(e)} ({ft_rel[-1]:.2f}%) | {yes(ft_rel[-1])} |"
    ctl = [r["fp32_cont"] for r in runs if r["fp32_cont"] is not None]
    ctl_cells = "| |"
    if len(ctl) == len(runs) and len(ft) == len(runs):
        e = ms(ctl)
        ctl_cells = f"{c(e)} | {rel(ms(ft)[0], e[0]):.2f}% |"
    q8s_cell = "|"
    if len(q8s) == len(runs):
        e = ms(q8s)
        q8s_rel.append(rel(e[0], f[0]))
        q8s_cell = f"{c(e)} ({q8s_rel[-1]:.2f}%) |"
    L.append(f"| {t} | {runs[0]['metric']} | {len(runs)} | {c(f)} | {c(d)} ({rel(d[0], f[0]):.2f}%) | "
             f"{q8s_cell} {c(s)} ({rel(s[0], f[0]):.2f}%) | {c(q)} ({rel(q[0], f[0]):.2f}%) | "
             f"{yes(rel(q[0], f[0]))} | {ft_cells} {ctl_cells} {cost:.2f}x |")
if rows:
    ft_avg = f"({statistics.mean(ft_rel):.2f}%)" if len(ft_rel) == len(rows) else ""
    q8s_avg = f"({statistics.mean(q8s_rel):.2f}%)" if len(q8s_rel) == len(rows) else ""
    L.append(f"| **average** | | | | ({statistics.mean(dyn_rel):.2f}%) | {q8s_avg} | | "
             f"({statistics.mean(qat_rel):.2f}%) | | {ft_avg} | | | | |")
L += ["", "Per seed (points): FP32 / dynamic / Q8BERT static / best static (mode) / QAT / QAT from FP32 / its control; seconds per "
      "training step FP32 / QAT (one thread, from each run's train_log.json, evaluation excluded):", ""]
for t, runs in rows:
    for r in runs:
        ft = f"{r['qat_ft']:.2f}" if r["qat_ft"] is not None else "not run"
        q8 = f"{r['q8static']:.2f}" if r["q8static"] is not None else "not run"
        ctl = f"{r['fp32_cont']:.2f}" if r["fp32_cont"] is not None else "not run"
        par = [p for p in r["parity"] if p]
        par = ("; engine against libtorch (QAT / QAT from FP32): " + " / ".join(
            (f"{p['predictions_agree']} of {p['examples']} predictions agree, " if
             p["predictions_agree"] is not None else "") +
            f"logits max |diff| {p['max_abs_logit_diff']:.2g}" for p in par)) if par else ""
        L.append(f"- {t} seed {r['seed']}: {r['fp32']:.2f} / {r['dynamic']:.2f} / {q8} / {r['static']:.2f} "
                 f"({r['static_mode']}) / {r['qat']:.2f} / {ft} / {ctl}; {r['fp32_step']:.3f} / "
                 f"{r['qat_step']:.3f} s{par}")
# What the dev sets can resolve: 95% paired-bootstrap intervals (scripts' step 5). Each task's
# comparisons share their draws (same dev set, same bootstrap seed), so on each draw the relative
# error of the means over seeds is -100 * mean_s(diff) / mean_s(FP32), the FP32 mean taken on the
# whole dev set; tasks are independent, so the average over tasks is taken draw by draw too.
# Over the seeds the main table shows for the task (its finished runs).
def replicates(t, kind, task_seeds):
    out = []
    for s in task_seeds:
        p = f"{work}/{t}/seed{s}/cmp_{kind}.json"
        if not os.path.exists(p):
            return None
        out.append(load(p)["comparison"])
    return out
z = lambda v: v + 0.0  # no "-0.00"
def interval(xs):
    xs = sorted(x for x in xs if x == x)
    if not xs:
        return (float("nan"), float("nan"))
    k = int(0.025 * len(xs))
    return (xs[k], xs[len(xs) - 1 - k])
sig_rows, draws = [], {"dynamic": [], "qat": [], "qat_ft": [], "qat-dyn": []}
for t, runs in rows:
    cmp = {k: replicates(t, k, [r["seed"] for r in runs]) for k in ("dynamic", "qat", "qat_ft")}
    if any(v is None for v in cmp.values()):
        continue
    f_mean = statistics.mean(c["baseline"] for c in cmp["qat"])
    R = len(cmp["qat"][0]["replicates"])
    per = {}
    for k, cs in cmp.items():
        per[k] = [None if any(c["replicates"][i] is None for c in cs) else
                  -100 * statistics.mean(c["replicates"][i] for c in cs) / abs(f_mean)
                  for i in range(R)]
        per[k] = [float("nan") if v is None else v for v in per[k]]
        draws[k].append(per[k])
    per["qat-dyn"] = [a - b for a, b in zip(per["qat"], per["dynamic"])]
    draws["qat-dyn"].append(per["qat-dyn"])
    regression = cmp["qat"][0]["examples_predicted_differently"] is None
    flips = lambda k: ("-" if regression else
                       " / ".join(str(c["examples_predicted_differently"]) for c in cmp[k]))
    point = lambda k: -100 * statistics.mean(c["difference"] for c in cmp[k]) / abs(f_mean)
    cell = lambda k: "{:.2f}% [{:.2f}, {:.2f}]".format(z(point(k)), *map(z, interval(per[k])))
    sig_rows.append(f"| {t} | {cmp['qat'][0]['examples']} | {cell('dynamic')} | {flips('dynamic')} | "
                    f"{cell('qat')} | {flips('qat')} | {cell('qat_ft')} | {flips('qat_ft')} | "
                    "{:.2f} [{:.2f}, {:.2f}] |".format(z(point('qat') - point('dynamic')),
                                                        *map(z, interval(per['qat-dyn']))))
if sig_rows and len(sig_rows) == len(rows):
    avg = {k: [statistics.mean(v[i] for v in draws[k]) for i in range(len(draws[k][0]))]
           for k in draws}
    L += ["", "**What the dev sets can resolve.** Each INT8 model against its own FP32 model on "
          "dev, example by example (`octet eval --baseline`, 1000 paired-bootstrap draws of the "
          "dev examples, shared by every comparison of a task): the relative error of the means "
          "as above with its 95% interval, and the dev examples each seed's INT8 model predicts "
          "differently from its FP32 model (seeds in order; STS-B is a regression). The last "
          "column is QAT's relative error minus dynamic PTQ's (negative: QAT is better). Where "
          "an interval contains both 0 and the 1% bar, the dev set cannot tell whether the bar "
          "is met.", "",
          "| task | dev examples | dynamic (95% interval) | differ | QAT (95% interval) | differ | "
          "QAT from FP32 (95% interval) | differ | QAT - dynamic (95% interval) |",
          "| --- | ---: | --- | --- | --- | --- | --- | --- | --- |"] + sig_rows
    point_avg = {k: statistics.mean(v) for k, v in
                 (("dynamic", dyn_rel), ("qat", qat_rel), ("qat_ft", ft_rel))}
    L.append("| **average** | | " + "".join(
        "{:.2f}% [{:.2f}, {:.2f}] | | ".format(z(point_avg[k]), *map(z, interval(avg[k])))
        for k in ("dynamic", "qat", "qat_ft")) +
        "{:.2f} [{:.2f}, {:.2f}] |".format(z(point_avg["qat"] - point_avg["dynamic"]),
                                           *map(z, interval(avg["qat-dyn"]))))
if missing:
    L += ["", "Not yet run: " + ", ".join(missing) + "."]
L.append("<!-- qat: end -->")
replace_section(out, "qat", L)
print(f"qat_table: wrote {out}")
print("\n".join(L))
PY
