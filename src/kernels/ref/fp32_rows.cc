// Reference FP32 row kernels: elementwise activations, LayerNorm, masked softmax. The
// specification the AVX2 / AVX-512 versions are tested against (contracts in kernels/fp32.h).
// Plain C++, no ISA flags; libm for exp, erf and tanh (kernels/ref/math_ref.h).
#include <cmath>
#include <cstddef>
#include <limits>

#include "kernels/fp32.h"
#include "kernels/ref/fp32_ref.h"
#include "kernels/ref/math_ref.h"

namespace octet::kernels::ref {

namespace {

template <float (*F)(float)>
void unary(const float* x, float* y, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) y[i] = F(x[i]);
}

}  // namespace

// Two passes over the row, both on x - x[0]: the shift makes a constant row's mean exact (so
// its output is exactly beta) and keeps the variance free of cancellation when |mean| >> std.
void layer_norm_f32(const float* x, std::size_t ld_x, float* y, std::size_t ld_y, std::size_t rows,
                    std::size_t cols, const float* gamma, const float* beta, float eps) {
  for (std::size_t r = 0; r < rows; ++r) {
    const float* xr = x + r * ld_x;
    float* yr = y + r * ld_y;
    const float shift = xr[0];
    float sum = 0.0f;
    for (std::size_t c = 0; c < cols; ++c) sum += xr[c] - shift;
    const float mean_shifted = sum / static_cast<float>(cols);
    float sq = 0.0f;
    for (std::size_t c = 0; c < cols; ++c) {
      const float dev = (xr[c] - shift) - mean_shifted;
      sq += dev * dev;
    }
    const float inv_std = 1.0f / std::sqrt(sq / static_cast<float>(cols) + eps);
    for (std::size_t c = 0; c < cols; ++c) {
      yr[c] = ((xr[c] - shift) - mean_shifted) * inv_std * gamma[c] + beta[c];
    }
  }
}

void softmax_f32(float* x, std::size_t ld, std::size_t rows, std::size_t cols, std::size_t valid,
                 float scale) {
  for (std::size_t r = 0; r < rows; ++r) {
    float* xr = x + r * ld;
    float mx = -std::numeric_limits<float>::infinity();
    for (std::size_t j = 0; j < valid; ++j) mx = std::fmax(mx, xr[j]);
    float sum = 0.0f;
    for (std::size_t j = 0; j < valid; ++j) {
      xr[j] = std::exp((xr[j] - mx) * scale);
      sum += xr[j];
    }
    const float inv = valid > 0 ? 1.0f / sum : 0.0f;
    for (std::size_t j = 0; j < valid; ++j) xr[j] *= inv;
    for (std::size_t j = valid; j < cols; ++j) xr[j] = 0.0f;
  }
}

void exp_f32(const float* x, float* y, std::size_t n) { unary<exp_f32>(x, y, n); }
void erf_f32(const float* x, float* y, std::size_t n) { unary<erf_f32>(x, y, n); }
void tanh_f32(const float* x, float* y, std::size_t n) { unary<tanh_f32>(x, y, n); }
void gelu_erf_f32(const float* x, float* y, std::size_t n) { unary<gelu_erf_f32>(x, y, n); }
void gelu_tanh_f32(const float* x, float* y, std::size_t n) { unary<gelu_tanh_f32>(x, y, n); }
void relu_f32(const float* x, float* y, std::size_t n) { unary<relu_f32>(x, y, n); }

}  // namespace octet::kernels::ref
