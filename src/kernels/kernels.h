// The kernel table: every compute kernel Octet dispatches on the ISA, as function pointers.
//
// Kernels are stateless pointer-and-stride functions: no allocation, no threads, no exceptions.
// They trust their inputs (ops/ check shapes and dtypes once). The reference implementation in
// kernels/ref/ is the specification; every other ISA matches it bit for bit on integer outputs
// and within a K-dependent tolerance on float outputs.
//
// Each ISA's functions live in their own namespace (octet::kernels::ref, ::avx2, ::avx512,
// ::avx512_vnni, ::amx), in files built with that ISA's flags only. dispatch.cc is the one place
// that maps an ISA to functions.
//
//   const octet::kernels::KernelTable& k = octet::kernels::table();   // for active_isa()
//   k.layer_norm_f32(...);
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/fp32.h"
#include "kernels/int8.h"
#include "kernels/integer.h"
#include "octet/cpu.h"

namespace octet::kernels {

struct KernelTable {
  Isa isa = Isa::ref;

  Fp32Kernels fp32;        // FP32 row kernels: softmax, LayerNorm, GELU, ... (kernels/fp32.h)
  Int8Kernels int8;        // INT8 GEMM, quantize, dequantize, gather, requantize (kernels/int8.h)
  IntegerKernels integer;  // I-BERT integer-only GELU, exp, softmax, LayerNorm (kernels/integer.h)
};

// The table for active_isa(). Cheap: returns a reference to a table built once per ISA.
const KernelTable& table();
// The table for a given ISA; throws Unsupported if that ISA cannot run here.
const KernelTable& table_for(Isa isa);

}  // namespace octet::kernels
