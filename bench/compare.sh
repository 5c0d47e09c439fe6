#!/usr/bin/env bash
# Octet next to its peers on the same weights and the same inputs, in one run:
#   Octet FP32 and INT8 (octet bench; INT8 both from the FP32 directory and from a quantized
#   directory written by `octet quantize --activations dynamic`, and with the attention matmuls
#   on int8 too, --attention int8), PyTorch 1.13 FP32 and dynamic INT8 (onednn engine;
#   bench/peers/pytorch_bert.py), ONNX Runtime FP32 and dynamic INT8 (npm onnxruntime-node;
#   graphs from bench/peers/export_onnx.py; bench/peers/ort_bench.js).
#
#   bench/compare.sh [BUILD_DIR]                        (default: build; needs BUILD_DIR/octet)
#   SHAPE=bert-base SEQ=128 BATCHES="1 8" THREADS="1 2" REPS=10 ROUNDS=3 bench/compare.sh build
#
# Environment: SHAPE bert-base|bert-mini (random weights, BERT's uncased vocabulary; default
# bert-base) or MODEL=DIR (an existing classifier directory); SEQ (128); BATCHES ("1 8");
# THREADS ("1 2"); REPS timed passes per process (10); ROUNDS (1): every system runs once per
# round, alternating, so that machine noise hits all; CHECK_BATCH (32) sequences for the
# agreement check; REAL_DATA (1): also run every system on SST-2 and MRPC dev (Octet from raw
# text; the peers on the same examples tokenized and batched the same way by
# bench/peers/glue_batches.py, padded to each batch's longest sequence; Octet both packed and
# with --padding longest), sorted by length versus input order, each thread count, each
# precision; OUT (docs/results/speed.md).
#
# Steps: (1) the model and its ONNX graphs, and this core's vpdpbusd and FP32 FMA peaks
# (bench/peers/peak.cc, compiled here with c++; the compute floor in the table uses them; they
# are measured again in every round, right before Octet's INT8 processes, for a floor paired with
# each round's timing); (2) the agreement check: CHECK_BATCH random
# sequences through every system, FP32 logits within 1e-3 of Octet FP32 (max |diff| / max
# |logit|), INT8 predictions agreeing with Octet FP32 on >= 99% and logits cosine >= 0.99 — the
# run stops if any system fails; (3) timing: one fresh process per system, precision, batch and
# thread count (peak RSS is per process); (4) one table with medians, p90, throughput, peak RSS
# and ratios, printed and written to OUT with the machine, versions and this command.
# Needs: /usr/bin/python3 with python3-torch and python3-onnx, node and npm (the
# onnxruntime-node package is installed on demand into bench/peers/node_modules by `npm ci`).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-build}
build=$(cd "$build" && pwd)
shape=${SHAPE:-bert-base}
seq_len=${SEQ:-128}
batches=${BATCHES:-1 8}
threads_list=${THREADS:-1 2}
reps=${REPS:-10}
rounds=${ROUNDS:-1}
check_batch=${CHECK_BATCH:-32}
real_data=${REAL_DATA:-1}
out=${OUT:-$here/docs/results/speed.md}
data=${OCTET_DATA:-$here/../shared/data}
octet="$build/octet"
py=/usr/bin/python3
peers="$here/bench/peers"

die() { echo "compare: $*" >&2; exit 1; }
[ -x "$octet" ] || die "$octet not built (ninja -C $build octet_cli)"
$py -c "import torch" 2>/dev/null || die "$py cannot import torch (apt-get install python3-torch)"
$py -c "import onnx" 2>/dev/null || die "$py cannot import onnx (apt-get install python3-onnx)"
command -v node >/dev/null || die "node not found (apt-get install nodejs)"
if [ ! -d "$peers/node_modules/onnxruntime-node" ]; then
  command -v npm >/dev/null || die "npm not found: needed once to install onnxruntime-node"
  echo "compare: installing onnxruntime-node into $peers/node_modules (npm ci)" >&2
  (cd "$peers" && npm ci --onnxruntime-node-install=skip --no-audit --no-fund >&2)
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if [ -n "${MODEL:-}" ]; then
  model=$(cd "$MODEL" && pwd)
  model_desc="$MODEL"
else
  [ -f "$data/vocab/vocab.txt" ] || die "$data/vocab/vocab.txt missing (set OCTET_DATA)"
  model="$work/model"
  $py "$here/scripts/make_random_model.py" --shape "$shape" --vocab "$data/vocab/vocab.txt" \
    --out "$model" >&2
  model_desc="random $shape (scripts/make_random_model.py, seed 42)"
fi
echo "compare: measuring the single-core vpdpbusd and FP32 FMA peaks (bench/peers/peak.cc)" >&2
c++ -O2 -std=c++17 "$peers/peak.cc" -o "$work/peak" || die "cannot compile $peers/peak.cc"
"$work/peak" 40 >"$work/peak.json" || die "the peak microbenchmark failed"
cat "$work/peak.json" >&2
echo "compare: writing ONNX graphs" >&2
$py "$peers/export_onnx.py" --model "$model" --out-fp32 "$work/fp32.onnx" --out-int8 "$work/int8.onnx"
# Octet's INT8 also from a quantized model directory (int8 weights on disk, dynamic activations):
# what a deployment would load, without the FP32 file's pages in its peak memory.
echo "compare: writing a quantized model directory (octet quantize --activations dynamic)" >&2
"$octet" quantize --model "$model" --out "$work/model_q" --activations dynamic >/dev/null

# run SYSTEM PRECISION BATCH THREADS REPS TAG [INPUTS]: one fresh process, JSON to $work/TAG.json,
# logits to $work/TAG.logits.json.
run() {
  local sys=$1 prec=$2 b=$3 t=$4 r=$5 tag=$6 inputs=${7:-}
  case $sys in
    octet)
      # Octet generates the inputs and dumps them; the peers read them from that dump.
      # int8q: INT8 from the quantized directory; int8a: INT8 with int8 attention matmuls.
      local m=$model attention=fp32
      if [ "$prec" = int8q ]; then m=$work/model_q; prec=int8; fi
      if [ "$prec" = int8a ]; then attention=int8; prec=int8; fi
      OMP_NUM_THREADS=$t "$octet" bench --model "$m" --precision "$prec" --attention "$attention" --batch "$b" \
        --seq-len "$seq_len" --threads "$t" --repeat "$r" --warmup 1 --json "$work/$tag.json" \
        --dump "$work/$tag.logits.json" >/dev/null ;;
    pytorch)
      OMP_NUM_THREADS=$t $py "$peers/pytorch_bert.py" --model "$model" --precision "$prec" \
        --inputs "$inputs" --reps "$r" --threads "$t" --dump "$work/$tag.logits.json" \
        >"$work/$tag.json" ;;
    onnxruntime)
      OMP_NUM_THREADS=$t node "$peers/ort_bench.js" --graph "$work/$prec.onnx" --inputs "$inputs" \
        --reps "$r" --threads "$t" --label "$prec" --dump "$work/$tag.logits.json" \
        >"$work/$tag.json" ;;
  esac
}

echo "compare: agreement check on $check_batch x $seq_len tokens" >&2
run octet fp32 "$check_batch" 1 1 check_octet_fp32
inputs="$work/check_octet_fp32.logits.json"
run octet int8 "$check_batch" 1 1 check_octet_int8
run octet int8q "$check_batch" 1 1 check_octet_int8q
run octet int8a "$check_batch" 1 1 check_octet_int8a
for sys in pytorch onnxruntime; do
  for prec in fp32 int8; do run $sys $prec "$check_batch" 1 1 "check_${sys}_$prec" "$inputs"; done
done

$py "$peers/summarize.py" --work "$work" --check-only || die "agreement check failed: no timing"

for r in $(seq "$rounds"); do
  for t in $threads_list; do
    for b in $batches; do
      echo "compare: round $r/$rounds, $t thread(s), batch $b" >&2
      run octet fp32 "$b" "$t" "$reps" "time_octet_fp32_b${b}_t${t}_r$r"
      in="$work/time_octet_fp32_b${b}_t${t}_r$r.logits.json"
      # The peaks again, right before Octet's INT8 processes of this round (0.2 s): the floor
      # paired with each round, as contention from other tenants of the core moves both.
      "$work/peak" 40 >"$work/peak_b${b}_t${t}_r$r.json" || die "the peak microbenchmark failed"
      run octet int8 "$b" "$t" "$reps" "time_octet_int8_b${b}_t${t}_r$r"
      run octet int8q "$b" "$t" "$reps" "time_octet_int8q_b${b}_t${t}_r$r"
      run octet int8a "$b" "$t" "$reps" "time_octet_int8a_b${b}_t${t}_r$r"
      for sys in pytorch onnxruntime; do
        for prec in fp32 int8; do run $sys $prec "$b" "$t" "$reps" "time_${sys}_${prec}_b${b}_t${t}_r$r" "$in"; done
      done
    done
  done
done

if [ "$real_data" = 1 ]; then
  for task in sst2:SST-2/dev.tsv mrpc:MRPC/dev.tsv; do
    name=${task%%:*}
    file="$data/glue/${task#*:}"
    [ -f "$file" ] || die "$file missing (set OCTET_DATA)"
    # The peers get the same examples, tokenized by the reference tokenizer and batched as
    # Octet's runtime batches them, padded to each batch's longest sequence.
    for order in sorted unsorted; do
      $py "$peers/glue_batches.py" --task "$name" --data "$file" --vocab "$model/vocab.txt" \
        --seq "$seq_len" $([ "$order" = unsorted ] && echo --unsorted || true) \
        --out "$work/batches_${name}_$order.json"
    done
    for t in $threads_list; do
      for prec in fp32 int8; do
        for order in sorted unsorted; do
          echo "compare: $name dev, $prec, $order, $t thread(s)" >&2
          flag=$([ "$order" = unsorted ] && echo --unsorted || true)
          # Octet packed (its default) and padded to each batch's longest (--padding longest,
          # the layout the peers run: what packing and sorting buy inside one engine).
          for pad in none longest; do
            sys=octet$([ "$pad" = longest ] && echo -padded || true)
            OMP_NUM_THREADS=$t "$octet" bench --model "$model" --precision "$prec" --task "$name" \
              --data "$file" --seq-len "$seq_len" --threads "$t" --repeat 1 --warmup 0 $flag \
              --padding "$pad" --json "$work/data_${sys}_${name}_${prec}_${order}_t$t.json" >/dev/null
          done
          b="$work/batches_${name}_$order.json"
          OMP_NUM_THREADS=$t $py "$peers/pytorch_bert.py" --model "$model" --precision "$prec" \
            --batches "$b" --reps 1 --warmup 0 --threads "$t" \
            >"$work/data_pytorch_${name}_${prec}_${order}_t$t.json"
          OMP_NUM_THREADS=$t node "$peers/ort_bench.js" --graph "$work/$prec.onnx" --batches "$b" \
            --reps 1 --warmup 0 --threads "$t" --label "$prec" \
            >"$work/data_onnxruntime_${name}_${prec}_${order}_t$t.json"
        done
      done
    done
  done
fi

$py "$here/bench/peers/summarize.py" --work "$work" --out "$out" --model "$model" \
  --model-desc "$model_desc" --seq "$seq_len" --batches "$batches" --threads "$threads_list" \
  --rounds "$rounds" --reps "$reps" --command "$0 $* (SHAPE=$shape SEQ=$seq_len BATCHES=\"$batches\" THREADS=\"$threads_list\" REPS=$reps ROUNDS=$rounds CHECK_BATCH=$check_batch REAL_DATA=$real_data${MODEL:+ MODEL=$MODEL})" \
  --octet "$octet" --peak "$work/peak.json"
