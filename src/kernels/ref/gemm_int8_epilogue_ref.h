// The scalar GEMM epilogue: what every ISA's fused epilogue computes for one output element
// (formulas in kernels/int8.h). ISA-neutral, header-only, so the reference kernels and the
// requantize kernels share one definition.
#pragma once

#include <cstdint>
#include <cstring>

#include "kernels/fixedpoint.h"
#include "kernels/int8.h"
#include "kernels/ref/math_ref.h"

namespace octet::kernels::ref {

// |y| as an unsigned IEEE bit pattern: the order of GemmParams::abs_max (kernels/int8.h), in
// which Inf exceeds every finite value and every NaN exceeds Inf.
inline uint32_t abs_bits(float y) {
  uint32_t b;
  std::memcpy(&b, &y, sizeof b);
  return b & 0x7FFFFFFFu;
}

// *abs_max = max(|*abs_max|, |y|) in that order (order-independent; NaN wins).
inline void raise_abs_max(float* abs_max, float y) {
  const uint32_t cur = abs_bits(*abs_max), b = abs_bits(y);
  const uint32_t m = b > cur ? b : cur;
  std::memcpy(abs_max, &m, sizeof m);
}

// acc is the exact sum_k (a - za) * b of output (i, j).
inline void store_epilogue(const GemmParams& p, int i, int j, int32_t acc) {
  switch (p.output) {
    case GemmOutput::s32: {
      // Wrap-around add, as the vector code does (defined behaviour through uint32).
      const uint32_t bias = p.bias_s32 ? static_cast<uint32_t>(p.bias_s32[j]) : 0u;
      static_cast<int32_t*>(p.c)[i * p.ldc + j] =
          static_cast<int32_t>(static_cast<uint32_t>(acc) + bias);
      return;
    }
    case GemmOutput::f32: {
      float y = static_cast<float>(acc) * (p.a_scale * p.w_scales[j]);
      if (p.bias_f32) y += p.bias_f32[j];
      if (p.activation == Activation::relu) y = relu_f32(y);
      if (p.activation == Activation::gelu) y = gelu_erf_f32(y);
      if (p.residual) y += p.residual[i * p.ldr + j];
      static_cast<float*>(p.c)[i * p.ldc + j] = y;
      if (p.abs_max) raise_abs_max(p.abs_max, y);
      return;
    }
    case GemmOutput::s8:
    case GemmOutput::u8: {
      const int64_t v = static_cast<int64_t>(acc) + (p.bias_s32 ? p.bias_s32[j] : 0);
      if (p.output == GemmOutput::s8) {
        static_cast<int8_t*>(p.c)[i * p.ldc + j] = static_cast<int8_t>(
            requantize_value(v, p.multiplier[j], p.shift[j], p.out_zero_point, -128, 127));
      } else {
        static_cast<uint8_t*>(p.c)[i * p.ldc + j] = static_cast<uint8_t>(
            requantize_value(v, p.multiplier[j], p.shift[j], p.out_zero_point, 0, 255));
      }
      return;
    }
  }
}

}  // namespace octet::kernels::ref
