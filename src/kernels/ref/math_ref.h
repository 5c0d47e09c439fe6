// Scalar elementwise math for FP32 kernels: the specification the vector versions
// (kernels/avx2/math_avx2.h, kernels/avx512/math_avx512.h) are measured against.
//
// The reference path is plain C++ compiled without ISA flags, so it uses the C library's
// correctly-rounded-or-nearly functions. The two GELU forms follow the definitions used by
// PyTorch / Hugging Face exactly:
//   gelu (erf form):   0.5 * x * (1 + erf(x / sqrt(2)))
//   gelu_new (tanh):   0.5 * x * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 * x^3)))
// All functions are inline, stateless and header-only so that any kernel (FP32 row kernels,
// INT8 GEMM epilogues) can use them.
#pragma once

#include <cmath>

namespace octet::kernels::ref {

inline constexpr float kSqrtHalf = 0.70710678118654752440f;       // 1 / sqrt(2)
inline constexpr float kSqrtTwoOverPi = 0.79788456080286535588f;  // sqrt(2 / pi)
inline constexpr float kGeluTanhCubic = 0.044715f;

inline float exp_f32(float x) { return std::exp(x); }
inline float erf_f32(float x) { return std::erf(x); }
inline float tanh_f32(float x) { return std::tanh(x); }

inline float gelu_erf_f32(float x) { return 0.5f * x * (1.0f + std::erf(x * kSqrtHalf)); }

inline float gelu_tanh_f32(float x) {
  const float inner = kSqrtTwoOverPi * (x + kGeluTanhCubic * x * x * x);
  return 0.5f * x * (1.0f + std::tanh(inner));
}

inline float relu_f32(float x) { return x > 0.0f ? x : 0.0f; }

}  // namespace octet::kernels::ref
