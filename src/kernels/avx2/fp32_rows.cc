// AVX2 FP32 row kernels: elementwise activations, LayerNorm, masked softmax (contracts in
// kernels/fp32.h). 8 floats per ymm; row tails use maskload / maskstore, so no row is read or
// written past `cols`. Vector math from math_avx2.h.
#include <cmath>
#include <cstddef>

#include "kernels/avx2/fp32_avx2.h"
#include "kernels/avx2/fp32_row_avx2.h"
#include "kernels/avx2/math_avx2.h"
#include "kernels/fp32.h"

namespace octet::kernels::avx2 {

namespace {

template <__m256 (*F)(__m256)>
void unary(const float* x, float* y, std::size_t n) {
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, F(_mm256_loadu_ps(x + i)));
  if (i < n) {
    const __m256i m = tail_mask(n - i);
    _mm256_maskstore_ps(y + i, m, F(_mm256_maskload_ps(x + i, m)));
  }
}

}  // namespace

void layer_norm_f32(const float* x, std::size_t ld_x, float* y, std::size_t ld_y, std::size_t rows,
                    std::size_t cols, const float* gamma, const float* beta, float eps) {
  for (std::size_t r = 0; r < rows; ++r) {
    const float* xr = x + r * ld_x;
    float* yr = y + r * ld_y;
    const __m256 shift = _mm256_set1_ps(xr[0]);
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    std::size_t c = 0;
    for (; c + 16 <= cols; c += 16) {
      acc0 = _mm256_add_ps(acc0, _mm256_sub_ps(_mm256_loadu_ps(xr + c), shift));
      acc1 = _mm256_add_ps(acc1, _mm256_sub_ps(_mm256_loadu_ps(xr + c + 8), shift));
    }
    for (; c < cols; c += 8) {
      const __m256i m = tail_mask(cols - c);
      acc0 = _mm256_add_ps(acc0, _mm256_and_ps(_mm256_sub_ps(_mm256_maskload_ps(xr + c, m), shift),
                                               _mm256_castsi256_ps(m)));
    }
    const float mean_shifted = reduce_add(_mm256_add_ps(acc0, acc1)) / static_cast<float>(cols);
    const __m256 mean = _mm256_set1_ps(mean_shifted);
    __m256 sq = _mm256_setzero_ps();
    for (c = 0; c < cols; c += 8) {
      const __m256i m = tail_mask(cols - c);
      const __m256 dev =
          _mm256_and_ps(_mm256_sub_ps(_mm256_sub_ps(_mm256_maskload_ps(xr + c, m), shift), mean),
                        _mm256_castsi256_ps(m));
      sq = _mm256_fmadd_ps(dev, dev, sq);
    }
    const float var = reduce_add(sq) / static_cast<float>(cols);
    const __m256 inv_std = _mm256_set1_ps(1.0f / std::sqrt(var + eps));
    for (c = 0; c < cols; c += 8) {
      const __m256i m = tail_mask(cols - c);
      const __m256 dev = _mm256_sub_ps(_mm256_sub_ps(_mm256_maskload_ps(xr + c, m), shift), mean);
      const __m256 g = _mm256_maskload_ps(gamma + c, m);
      const __m256 b = _mm256_maskload_ps(beta + c, m);
      _mm256_maskstore_ps(yr + c, m, _mm256_fmadd_ps(_mm256_mul_ps(dev, inv_std), g, b));
    }
  }
}

void softmax_f32(float* x, std::size_t ld, std::size_t rows, std::size_t cols, std::size_t valid,
                 float scale) {
  for (std::size_t r = 0; r < rows; ++r) softmax_row(x + r * ld, valid, cols, scale);
}

void exp_f32(const float* x, float* y, std::size_t n) { unary<exp_ps>(x, y, n); }
void erf_f32(const float* x, float* y, std::size_t n) { unary<erf_ps>(x, y, n); }
void tanh_f32(const float* x, float* y, std::size_t n) { unary<tanh_ps>(x, y, n); }
void gelu_erf_f32(const float* x, float* y, std::size_t n) { unary<gelu_erf_ps>(x, y, n); }
void gelu_tanh_f32(const float* x, float* y, std::size_t n) { unary<gelu_tanh_ps>(x, y, n); }
void relu_f32(const float* x, float* y, std::size_t n) { unary<relu_ps>(x, y, n); }

}  // namespace octet::kernels::avx2
