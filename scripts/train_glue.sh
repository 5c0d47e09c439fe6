#!/usr/bin/env bash
# Fine-tunes Octet's pretrained BERT on GLUE tasks (MRPC, CoLA, STS-B, RTE by default) with
# `octet finetune`, into a local cache, and evaluates each best checkpoint with Octet's engine
# (`octet eval`): the figures accuracy reports quote. With --baseline it also trains the same
# architecture from random initialisation with the same hyper-parameters, to show what
# pretraining brings. The fine-tuned models are not committed: this script rebuilds them.
#
# Usage: scripts/train_glue.sh [--model DIR] [--build DIR] [--tasks mrpc,cola,stsb,rte[,sst2]]
#                              [--baseline] [--threads N] [--seed N] [--cache DIR]
#                              [--lr X] [--epochs N] [--max-train-examples N]
#   --model    pretrained model directory [models/octet-bert-mini-uncased]
#   --build    build directory holding the octet and octet-train programs [$OCTET_BUILD, else build]
#   --tasks    comma-separated GLUE tasks [mrpc,cola,stsb,rte]; sst2 is accepted too
#   --baseline also fine-tune the same architecture from random initialisation
#   --threads  threads per run [0 = all cores]
#   --seed     seed of every run [42]
#   --cache    cache root [${OCTET_CACHE:-~/.cache/octet}]
#   --lr       peak learning rate of every run [1e-4] (the reference figures use the default;
#              a sweep runs the script once per value, each into its own --cache)
#   --epochs, --max-train-examples   override the per-task settings (quick checks of the script;
#              figures obtained this way are not the reference ones)
#
# Outputs, under <cache>/glue/:
#   <task>-pretrained/, <task>-random/   model directories (config.json, model.safetensors,
#                                        vocab.txt), train_log.json, eval_dev.json (octet eval),
#                                        finetune.log (the progress lines)
#   summary.json, summary.md             one row per task: dev metric (Octet engine) of the
#                                        pretrained and random-init runs and the wall time of
#                                        each step; also printed at the end.
#
# Data: $OCTET_DATA (default ../shared/data next to the repository): glue/{MRPC,CoLA,STS-B,RTE,
# SST-2}/{train,dev}.tsv.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
model="$repo/models/octet-bert-mini-uncased"
build="${OCTET_BUILD:-$repo/build}"
tasks="mrpc,cola,stsb,rte"
baseline=0
threads=0
seed=42
cache="${OCTET_CACHE:-$HOME/.cache/octet}"
epochs_override=""
max_train=0
lr=1e-4
data="${OCTET_DATA:-$repo/../shared/data}"

die() { echo "train_glue.sh: error: $*" >&2; exit 2; }
need_value() { [[ $# -ge 2 && -n "$2" ]] || die "$1 needs a value"; }

while [[ $# -gt 0 ]]; do
  case "$1" in
    --model) need_value "$@"; model="$2"; shift 2 ;;
    --build) need_value "$@"; build="$2"; shift 2 ;;
    --tasks) need_value "$@"; tasks="$2"; shift 2 ;;
    --baseline) baseline=1; shift ;;
    --threads) need_value "$@"; threads="$2"; shift 2 ;;
    --seed) need_value "$@"; seed="$2"; shift 2 ;;
    --cache) need_value "$@"; cache="$2"; shift 2 ;;
    --lr) need_value "$@"; lr="$2"; shift 2 ;;
    --epochs) need_value "$@"; epochs_override="$2"; shift 2 ;;
    --max-train-examples) need_value "$@"; max_train="$2"; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done

# `octet finetune` execs octet-train (the trainer, linked with libtorch) from the same directory.
octet="$build/octet"
[[ -x "$octet" ]] || die "$octet not found: build it first (cmake --build $build --target octet_cli)"
[[ -x "$build/octet-train" ]] ||
  die "$build/octet-train (the trainer behind octet finetune) not found: install libtorch-dev, re-run cmake and build the octet_train_cli target"
[[ -f "$model/config.json" && -f "$model/model.safetensors" && -f "$model/vocab.txt" ]] ||
  die "$model is not a model directory (config.json, model.safetensors, vocab.txt)"
[[ -d "$data/glue" ]] || die "GLUE data not found in $data/glue (set OCTET_DATA)"

# Per-task settings for BERT-mini-sized models (L=4, H=256), batch 32, peak lr 1e-4, warm-up
# 10%, max 128 tokens. Small tasks get more epochs: one epoch of RTE is 78 steps, of MRPC 115,
# far fewer than a small model needs to fit them. The best epoch on dev is kept.
#   task  folder  epochs
task_settings() {
  case "$1" in
    mrpc) echo "MRPC 5" ;;
    cola) echo "CoLA 5" ;;
    stsb) echo "STS-B 5" ;;
    rte)  echo "RTE 10" ;;
    sst2) echo "SST-2 3" ;;
    *) die "unknown task '$1' (expected mrpc, cola, stsb, rte or sst2)" ;;
  esac
}

out_root="$cache/glue"
mkdir -p "$out_root"
inits=(pretrained)
[[ $baseline -eq 1 ]] && inits+=(random)
IFS=',' read -r -a task_list <<<"$tasks"
for task in "${task_list[@]}"; do task_settings "$task" >/dev/null; done

now() { date +%s.%N; }
rows="$out_root/.rows.jsonl"
: >"$rows"

for task in "${task_list[@]}"; do
  read -r folder epochs <<<"$(task_settings "$task")"
  [[ -n "$epochs_override" ]] && epochs="$epochs_override"
  train="$data/glue/$folder/train.tsv"
  dev="$data/glue/$folder/dev.tsv"
  for init in "${inits[@]}"; do
    out="$out_root/$task-$init"
    echo "== $task ($init): $epochs epochs -> $out" >&2
    head=()
    [[ $init == pretrained ]] && head=(--new-head)  # the task's own head, whatever --model has
    mkdir -p "$out"
    t0=$(now)
    "$octet" finetune --model "$model" --init "$init" "${head[@]}" --task "$task" \
      --train "$train" --dev "$dev" --out "$out" --overwrite --epochs "$epochs" --batch-size 32 \
      --lr "$lr" --warmup-ratio 0.1 --max-seq-len 128 --seed "$seed" --threads "$threads" \
      --max-train-examples "$max_train" 2>&1 | tee "$out/finetune.log" >&2
    t1=$(now)
    "$octet" eval --model "$out" --task "$task" --data "$dev" --threads "$threads" \
      --json "$out/eval_dev.json" >&2
    t2=$(now)
    /usr/bin/python3 - "$out/eval_dev.json" "$task" "$init" "$t0" "$t1" "$t2" "$epochs" \
      >>"$rows" <<'EOF'
import json, sys
path, task, init, t0, t1, t2, epochs = sys.argv[1:]
e = json.load(open(path))
print(json.dumps({"task": task, "init": init, "metric": e["main_metric"],
                  "value": e["metrics"][e["main_metric"]], "metrics": e["metrics"],
                  "epochs": int(epochs), "finetune_seconds": float(t1) - float(t0),
                  "eval_seconds": float(t2) - float(t1)}))
EOF
  done
done

/usr/bin/python3 - "$rows" "$out_root" "$model" "$seed" "$threads" "$repo" "$max_train" "$lr" <<'EOF'
import datetime, json, os, subprocess, sys
rows_path, out_root, model, seed, threads, repo, max_train, lr = sys.argv[1:]
rows = [json.loads(l) for l in open(rows_path)]
try:
    commit = subprocess.run(["git", "-C", repo, "rev-parse", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
except OSError:
    commit = ""
tasks = []
for r in rows:
    if r["task"] not in tasks:
        tasks.append(r["task"])
summary = {"model": os.path.abspath(model), "seed": int(seed), "lr": float(lr),
           "threads": int(threads),
           "max_train_examples": int(max_train), "commit": commit,
           "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
           "runs": rows}

def fmt_time(s):
    s = int(round(s))
    return f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s"

lines = ["| task | dev metric (Octet engine) | pretrained | random init | "
         "fine-tune time (pretrained) | fine-tune time (random) | eval time |",
         "| --- | --- | --- | --- | --- | --- | --- |"]
for t in tasks:
    by = {r["init"]: r for r in rows if r["task"] == t}
    p, r = by.get("pretrained"), by.get("random")
    metric = (p or r)["metric"]
    val = lambda x: "n/a" if x is None or x["value"] is None else f"{x['value']:.4f}"
    tm = lambda x: "n/a" if x is None else fmt_time(x["finetune_seconds"])
    ev = " / ".join(fmt_time(x["eval_seconds"]) for x in (p, r) if x)
    lines.append(f"| {t} | {metric} | {val(p)} | {val(r)} | {tm(p)} | {tm(r)} | {ev} |")
note = (f"Model {summary['model']}, seed {seed}, lr {lr}, threads {threads}, commit {commit[:12]}, "
        f"{summary['date']}.")
if int(max_train) > 0:
    note += f" Quick check: first {max_train} training examples only (not reference figures)."
md = "\n".join(lines) + "\n\n" + note + "\n"
for name, text in (("summary.json", json.dumps(summary, indent=2) + "\n"), ("summary.md", md)):
    tmp = os.path.join(out_root, f".{name}.tmp")
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, os.path.join(out_root, name))
print(md, end="")
print(f"(written to {out_root}/summary.md and summary.json)")
EOF
rm -f "$rows"
