#!/usr/bin/env bash
# Octet's main job: build the `octet` tool, describe the default model, evaluate it on SST-2 dev
# in FP32, in dynamic INT8 (Q8BERT's post-training baseline) and as a static INT8 model directory
# (calibrated on SST-2 train), print the three side by side, and classify a few sentences.
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
# Static INT8 (calibrated on SST-2 train, never dev): a quantized model directory on disk.
qmodel=build/models/$(basename "$model")-int8-static
echo "== octet calibrate (600 SST-2 training examples) + octet quantize -> $qmodel =="
build/octet calibrate --model "$model" --task sst2 --data "$OCTET_DATA/glue/SST-2/train.tsv" \
  --out build/results/sst2_calibration.json --samples 600 --threads "$threads"
build/octet quantize --model "$model" --out "$qmodel" \
  --calibration build/results/sst2_calibration.json --calibrator percentile
echo "== octet eval (SST-2 dev, int8-static: $qmodel) =="
build/octet eval --model "$qmodel" --task sst2 --data "$OCTET_DATA/glue/SST-2/dev.tsv" \
  --threads "$threads" --json build/results/sst2_dev_int8-static.json
echo "== FP32 and INT8 side by side (SST-2 dev) =="
fp32_bytes=$(build/octet inspect --model "$model" --json | /usr/bin/python3 -c \
  'import json,sys; print(json.load(sys.stdin)["encoder_weight_bytes"])')
int8_bytes=$(build/octet inspect --model "$qmodel" --json | /usr/bin/python3 -c \
  'import json,sys; print(json.load(sys.stdin)["encoder_weight_bytes"])')
/usr/bin/python3 - "$fp32_bytes" "$int8_bytes" <<'PY'
import json, sys
fp32_bytes, int8_bytes = int(sys.argv[1]), int(sys.argv[2])
rows = [("fp32", fp32_bytes, "file"), ("int8-dynamic", fp32_bytes, "FP32 file, int8 at load"),
        ("int8-static", int8_bytes, "file")]
print(f"{'precision':<14} {'accuracy':>9} {'encoder MiB':>12} {'seq/s':>8}  weights")
for name, size, note in rows:
    r = json.load(open(f"build/results/sst2_dev_{name}.json"))
    print(f"{name:<14} {r['metrics']['accuracy']:>9.4f} {size / 2**20:>12.2f} "
          f"{r['examples'] / r['seconds']:>8.1f}  {note}")
PY
echo "== octet predict =="
printf 'a gripping, beautifully acted film.\nthe plot is thin and the jokes fall flat.\n' |
  build/octet predict --model "$model" --input - --threads "$threads"
