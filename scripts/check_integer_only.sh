#!/usr/bin/env bash
# Checks, by disassembly, that the integer-only (I-BERT) forward path contains no floating-point
# instruction: the model-level encoder models::IntegerBertEncoder::encode (embedding lookup to the
# last LayerNorm), layers::IntegerEncoderLayer::forward / forward_ln / gemm / pack, the ops
# wrappers it calls
# (ops::igelu, iexp, isoftmax, ilayernorm, requantize_wide, residual_add and their argument
# checks), and every function of the integer kernel objects of every ISA. Library code they call
# on error paths (fmt, std::vector) is not inspected. The prepare step (float scales -> integer
# constants) is allowed floats and is not checked, nor is IntegerBertEncoder::forward_dequantized,
# which dequantizes encode()'s output once for the FP32 head.
#
#   scripts/check_integer_only.sh [BUILD_DIR]      (default: build; needs objdump)
set -euo pipefail
build=${1:-build}
float_re='[[:space:]](v?(add|sub|mul|div|sqrt|min|max|round|rcp14|rsqrt14|rcp|rsqrt|ucomi|comi)(ss|sd|ps|pd)|vfn?m(add|sub)[0-9]*(ss|sd|ps|pd)|v?cvt[a-z0-9]*(ss|sd|ps|pd|si2ss|si2sd|usi2ss|usi2sd)[a-z0-9]*|f(ld|st|stp|add|mul|div|sub|sqrt)[a-z]*)[[:space:]]'
status=0
# $1: object file, $2: extended regex of demangled function names to check ('' = every function)
check() {
  local obj=$1 names=$2
  if [ ! -f "$obj" ]; then
    echo "check_integer_only: missing $obj (build the octet library in $build first)" >&2
    status=1
    return
  fi
  local out
  out=$(objdump -d --no-show-raw-insn -C "$obj" | awk -v names="$names" -v re="$float_re" '
    /^[0-9a-f]+ <.*>:$/ { fn = $0; sub(/^[0-9a-f]+ </, "", fn); sub(/>:$/, "", fn);
                          take = (names == "" || fn ~ names); seen[fn] = take; next }
    take && $0 ~ re { bad[fn]++ }
    END { n = 0; for (f in seen) if (seen[f]) n++;
          for (f in bad) printf("FLOAT %d instruction(s) in %s\n", bad[f], f);
          printf("checked %d function(s)\n", n) }')
  echo "$(basename "$obj"): $(echo "$out" | tail -1)"
  if [ -n "$names" ] && echo "$out" | tail -1 | grep -q '^checked 0 '; then
    echo "check_integer_only: no function matching '$names' in $obj" >&2
    status=1
  fi
  if echo "$out" | grep -q '^FLOAT'; then
    echo "$out" | grep '^FLOAT' >&2
    status=1
  fi
}
objs=$build/CMakeFiles
check "$objs/octet.dir/src/models/bert_integer.cc.o" 'IntegerBertEncoder::encode\('
check "$objs/octet.dir/src/layers/integer_encoder_layer.cc.o" \
  'IntegerEncoderLayer::(forward|forward_ln|gemm|pack)\('
check "$objs/octet.dir/src/ops/integer_ops.cc.o" \
  '^octet::ops::(igelu|iexp|isoftmax|ilayernorm|requantize_wide|residual_add)\(|check_(matrix|size|out_bits|iexp_params|shifts)'
for f in "$objs"/octet.dir/src/kernels/ref/integer_*.o "$objs"/octet_kernels_*.dir/src/kernels/*/integer_*.o; do
  check "$f" ''
done
if [ $status -eq 0 ]; then echo "check_integer_only: no floating-point instruction found"; fi
exit $status
