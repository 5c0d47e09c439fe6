// The one place that maps an ISA to kernel functions. Each table is filled once, by a readable
// switch: an ISA inherits the entries of the ISA below it and overrides what it implements.
#include <algorithm>
#include <array>
#include <mutex>

#include "kernels/kernels.h"
#include "kernels/pack_int16.h"
#include "kernels/ref/fp32_ref.h"
#include "kernels/ref/int8_ref.h"
#include "kernels/ref/integer_ref.h"
#if defined(OCTET_HAVE_AVX2)
#include "kernels/avx2/fp32_avx2.h"
#include "kernels/avx2/int8_avx2.h"
#include "kernels/avx2/integer_avx2.h"
#endif
#if defined(OCTET_HAVE_AVX512)
#include "kernels/avx512/fp32_avx512.h"
#include "kernels/avx512/int8_avx512.h"
#include "kernels/avx512/integer_avx512.h"
#endif
#if defined(OCTET_HAVE_AVX512_VNNI)
#include "kernels/avx512_vnni/int8_avx512_vnni.h"
#endif
#if defined(OCTET_HAVE_AMX)
#include "kernels/amx/int8_amx.h"
#endif
#include "octet/error.h"

namespace octet::kernels {
namespace {

void fill(KernelTable& t, Isa isa) {
  t.isa = isa;
  switch (isa) {
    case Isa::ref:
      // fp32 (ref)
      t.fp32.exp = ref::exp_f32;
      t.fp32.erf = ref::erf_f32;
      t.fp32.tanh = ref::tanh_f32;
      t.fp32.gelu_erf = ref::gelu_erf_f32;
      t.fp32.gelu_tanh = ref::gelu_tanh_f32;
      t.fp32.relu = ref::relu_f32;
      t.fp32.layer_norm = ref::layer_norm_f32;
      t.fp32.softmax = ref::softmax_f32;
      t.fp32.attention_head = ref::attention_head_f32;
      // int8 (ref)
      t.int8.gemm_packed_b_size = ref::gemm_packed_b_size;
      t.int8.gemm_pack_b = ref::gemm_pack_b;
      t.int8.gemm_workspace_size = ref::gemm_workspace_size;
      t.int8.gemm = ref::gemm;
      t.int8.quantize_s8 = ref::quantize_s8;
      t.int8.quantize_u8 = ref::quantize_u8;
      t.int8.abs_max = ref::abs_max;
      t.int8.min_max = ref::min_max;
      t.int8.dequantize_s8 = ref::dequantize_s8;
      t.int8.dequantize_u8 = ref::dequantize_u8;
      t.int8.gather_rows_s8 = ref::gather_rows_s8;
      t.int8.requantize = ref::requantize;
      t.int8.attention_head_s8 = ref::attention_head_s8;
      // integer (ref)
      t.integer.igelu = ref::igelu;
      t.integer.iexp = ref::iexp;
      t.integer.isoftmax = ref::isoftmax;
      t.integer.ilayernorm = ref::ilayernorm;
      t.integer.requantize_wide = ref::requantize_wide;
      t.integer.residual_add = ref::residual_add;
      break;
    case Isa::avx2:
#if defined(OCTET_HAVE_AVX2)
      // fp32 (avx2)
      t.fp32.exp = avx2::exp_f32;
      t.fp32.erf = avx2::erf_f32;
      t.fp32.tanh = avx2::tanh_f32;
      t.fp32.gelu_erf = avx2::gelu_erf_f32;
      t.fp32.gelu_tanh = avx2::gelu_tanh_f32;
      t.fp32.relu = avx2::relu_f32;
      t.fp32.layer_norm = avx2::layer_norm_f32;
      t.fp32.softmax = avx2::softmax_f32;
      t.fp32.attention_head = avx2::attention_head_f32;
      // int8 (avx2)
      t.int8.gemm_packed_b_size = int16_layout::packed_b_size;  // shared with avx512
      t.int8.gemm_pack_b = int16_layout::pack_b;
      t.int8.gemm_workspace_size = avx2::gemm_workspace_size;
      t.int8.gemm = avx2::gemm;
      t.int8.quantize_s8 = avx2::quantize_s8;
      t.int8.quantize_u8 = avx2::quantize_u8;
      t.int8.abs_max = avx2::abs_max;
      t.int8.min_max = avx2::min_max;
      t.int8.dequantize_s8 = avx2::dequantize_s8;
      t.int8.dequantize_u8 = avx2::dequantize_u8;
      t.int8.requantize = avx2::requantize;
      // integer (avx2)
      t.integer.igelu = avx2::igelu;
      t.integer.iexp = avx2::iexp;
      t.integer.isoftmax = avx2::isoftmax;
      t.integer.ilayernorm = avx2::ilayernorm;
      t.integer.requantize_wide = avx2::requantize_wide;
      t.integer.residual_add = avx2::residual_add;
#endif
      break;
    case Isa::avx512:
#if defined(OCTET_HAVE_AVX512)
      // fp32 (avx512)
      t.fp32.exp = avx512::exp_f32;
      t.fp32.erf = avx512::erf_f32;
      t.fp32.tanh = avx512::tanh_f32;
      t.fp32.gelu_erf = avx512::gelu_erf_f32;
      t.fp32.gelu_tanh = avx512::gelu_tanh_f32;
      t.fp32.relu = avx512::relu_f32;
      t.fp32.layer_norm = avx512::layer_norm_f32;
      t.fp32.softmax = avx512::softmax_f32;
      t.fp32.attention_head = avx512::attention_head_f32;
      // int8 (avx512)
      t.int8.gemm_packed_b_size = int16_layout::packed_b_size;  // shared with avx2
      t.int8.gemm_pack_b = int16_layout::pack_b;
      t.int8.gemm_workspace_size = avx512::gemm_workspace_size;
      t.int8.gemm = avx512::gemm;
      t.int8.quantize_s8 = avx512::quantize_s8;
      t.int8.quantize_u8 = avx512::quantize_u8;
      t.int8.abs_max = avx512::abs_max;
      t.int8.min_max = avx512::min_max;
      t.int8.dequantize_s8 = avx512::dequantize_s8;
      t.int8.dequantize_u8 = avx512::dequantize_u8;
      t.int8.requantize = avx512::requantize;
      t.int8.attention_head_s8 = avx512::attention_head_s8;
      // integer (avx512)
      t.integer.igelu = avx512::igelu;
      t.integer.iexp = avx512::iexp;
      t.integer.isoftmax = avx512::isoftmax;
      t.integer.ilayernorm = avx512::ilayernorm;
      t.integer.requantize_wide = avx512::requantize_wide;
      t.integer.residual_add = avx512::residual_add;
#endif
      break;
    case Isa::avx512_vnni:
#if defined(OCTET_HAVE_AVX512_VNNI)
      // fp32 (avx512_vnni)
      // int8 (avx512_vnni)
      t.int8.gemm_packed_b_size = avx512_vnni::gemm_packed_b_size;
      t.int8.gemm_pack_b = avx512_vnni::gemm_pack_b;
      t.int8.gemm_workspace_size = avx512_vnni::gemm_workspace_size;
      t.int8.gemm = avx512_vnni::gemm;
      t.int8.attention_head_s8 = avx512_vnni::attention_head_s8;
#endif
      break;
    case Isa::amx:
#if defined(OCTET_HAVE_AMX)
      // int8 (amx): the packed layout is VNNI's (plus a zeroed guard); blocks of fewer than 4-8
      // rows run the VNNI kernel
      t.int8.gemm_packed_b_size = amx::gemm_packed_b_size;
      t.int8.gemm_pack_b = amx::gemm_pack_b;
      t.int8.gemm_workspace_size = amx::gemm_workspace_size;
      t.int8.gemm = amx::gemm;
#endif
      break;
  }
}

KernelTable build(Isa isa) {
  KernelTable t;
  // Fill cumulatively: ref first, then every ISA up to `isa`.
  for (int i = 0; i <= static_cast<int>(isa); ++i) fill(t, static_cast<Isa>(i));
  return t;
}

}  // namespace

const KernelTable& table_for(Isa isa) {
  static std::array<KernelTable, 5> tables;
  static std::array<std::once_flag, 5> once;
  // Called by every op on every forward pass: no allocation here (runnable_isas() builds a
  // vector), only the comparison it stands for.
  const int top = std::min(static_cast<int>(cpu_isa()), static_cast<int>(built_isa()));
  if (static_cast<int>(isa) < 0 || static_cast<int>(isa) > top) {
    throw Unsupported(std::string("kernel table for ISA ") + isa_name(isa) +
                      " requested, but this CPU or build cannot run it");
  }
  const int i = static_cast<int>(isa);
  std::call_once(once[i], [&] { tables[i] = build(isa); });
  return tables[i];
}

const KernelTable& table() { return table_for(active_isa()); }

}  // namespace octet::kernels
