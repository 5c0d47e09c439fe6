#!/usr/bin/env bash
# Octet's main job: build the `octet` tool, describe the default model, evaluate it on SST-2 dev
# in FP32 and in dynamic INT8 (Q8BERT's post-training baseline), and classify a few sentences.
#   scripts/run_main.sh              (after scripts/install_deps.sh)
# Environment: OCTET_DATA (default ../shared/data), OCTET_MODEL (default models/octet-bert-mini-sst2),
#              THREADS (default: all cores).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export OCTET_DATA=${OCTET_DATA:-$root/../shared/data}
threads=${THREADS:-0}
for f in glue/SST-2/dev.tsv vocab/vocab.txt; do
  if [ ! -f "$OCTET_DATA/$f" ]; then
    echo "run_main: missing shared data $OCTET_DATA/$f (set OCTET_DATA)" >&2
    exit 1
  fi
done

cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
ninja -C build octet_cli

model=${OCTET_MODEL:-models/octet-bert-mini-sst2}
if [ ! -d "$model" ]; then
  # The trained default model arrives with the training work (models/octet-bert-mini-sst2).
  # Until then the job runs the same pipeline on a randomly initialised BERT-mini-shaped model
  # with the real BERT vocabulary: accuracy is at chance level, by construction.
  model=build/models/random-bert-mini
  echo "run_main: no trained default model yet; using random weights in $model (chance accuracy)"
  if [ ! -f "$model/model.safetensors" ]; then
    /usr/bin/python3 scripts/make_random_model.py --shape bert-mini \
      --vocab "$OCTET_DATA/vocab/vocab.txt" --out "$model"
  fi
fi

echo "== octet inspect =="
build/octet inspect --model "$model"
mkdir -p build/results
for precision in fp32 int8-dynamic; do
  echo "== octet eval (SST-2 dev, $precision) =="
  build/octet eval --model "$model" --task sst2 --data "$OCTET_DATA/glue/SST-2/dev.tsv" \
    --precision "$precision" --threads "$threads" --json "build/results/sst2_dev_$precision.json"
done
echo "== octet predict =="
printf 'a gripping, beautifully acted film.\nthe plot is thin and the jokes fall flat.\n' |
  build/octet predict --model "$model" --input - --threads "$threads"
