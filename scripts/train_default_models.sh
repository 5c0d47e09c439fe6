#!/usr/bin/env bash
# Rebuilds the two committed models from scratch: models/octet-bert-mini-uncased (MLM
# pretraining on $OCTET_DATA/corpus) and models/octet-bert-mini-sst2 (that model fine-tuned on
# SST-2 train, best epoch on SST-2 dev), each with a MODEL_CARD.md written from the run's logs.
# Takes 90 minutes of pretraining (both cores) plus ~15 minutes of fine-tuning on 2 vCPUs.
#
#   scripts/train_default_models.sh [build-dir] [work-dir=~/.cache/octet/default-models]
#
# The committed models were made by exactly these commands (session 20). The pretraining uses
# --bf16 and two threads, so its last digits depend on the CPU (bfloat16 dot products) and on
# the thread count; the fine-tuning uses one thread.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${1:-$repo/build}"
work="${2:-${OCTET_CACHE:-$HOME/.cache/octet}/default-models}"
data="${OCTET_DATA:-$repo/../shared/data}"
octet="$build/octet"  # `octet pretrain|finetune` exec octet-train (the libtorch trainer) beside it
for prog in octet octet-train; do
  [[ -x "$build/$prog" ]] || {
    echo "train_default_models.sh: error: $build/$prog not built (ninja -C $build octet_cli octet_train_cli; octet-train needs libtorch-dev)" >&2
    exit 2
  }
done
mkdir -p "$work"
pre="$work/octet-bert-mini-uncased"
# The architecture (BERT-mini) comes from scripts/configs/bert-mini-pretrain.json, which also
# turns dropout off for pretraining (Cramming's advice for short budgets: at ~40 M tokens the
# model underfits, it does not overfit); the published config.json gets BERT's 0.1 back, the
# value fine-tuning reads.
pt=(--corpus "$data/corpus" --vocab "$data/vocab/vocab.txt" --out "$pre"
    --config "$repo/scripts/configs/bert-mini-pretrain.json" --batch-size 16 --seq-len 128
    --lr 1e-3 --warmup-ratio 0.06 --seed 42 --threads 2 --bf16 --position-init local
    --log-every 50 --eval-every 500 --save-every 500 --dtype f16 --max-steps 18000
    --max-minutes 89)
"$octet" pretrain "${pt[@]}"
mkdir -p "$repo/models/octet-bert-mini-uncased"
cp "$pre"/{config.json,model.safetensors,vocab.txt,pretrain_log.json} "$repo/models/octet-bert-mini-uncased/"
/usr/bin/python3 - "$repo/models/octet-bert-mini-uncased/config.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
c["hidden_dropout_prob"] = c["attention_probs_dropout_prob"] = 0.1
open(sys.argv[1], "w").write(json.dumps(c, indent=2, sort_keys=True) + "\n")
PY
/usr/bin/python3 "$repo/scripts/model_card.py" --model "$repo/models/octet-bert-mini-uncased" \
  --pretraining-dropout 0 --command "octet pretrain ${pt[*]}"

sst2="$work/octet-bert-mini-sst2"
ft=(--model "$repo/models/octet-bert-mini-uncased" --task sst2 --new-head
    --train "$data/glue/SST-2/train.tsv" --dev "$data/glue/SST-2/dev.tsv" --out "$sst2"
    --overwrite --epochs 1 --batch-size 32 --lr 1e-4 --warmup-ratio 0.1 --max-seq-len 128
    --seed 42 --threads 1 --dtype f16)
"$octet" finetune "${ft[@]}"
mkdir -p "$repo/models/octet-bert-mini-sst2"
cp "$sst2"/{config.json,model.safetensors,vocab.txt,train_log.json} "$repo/models/octet-bert-mini-sst2/"
"$octet" eval --model "$repo/models/octet-bert-mini-sst2" --task sst2 \
  --data "$data/glue/SST-2/dev.tsv" --json "$work/sst2_eval.json"
/usr/bin/python3 "$repo/scripts/model_card.py" --model "$repo/models/octet-bert-mini-sst2" \
  --eval "$work/sst2_eval.json" --base models/octet-bert-mini-uncased \
  --command "octet finetune ${ft[*]}"
