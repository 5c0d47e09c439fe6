// AVX-512 FP32 row kernels: elementwise activations, LayerNorm, masked softmax (contracts in
// kernels/fp32.h). 16 floats per zmm; row tails use masked loads and stores, so no row is ever
// read or written past `cols`. Same operation order as the AVX2 kernels; vector math from
// math_avx512.h.
#include <cmath>
#include <cstddef>

#include "kernels/avx512/fp32_avx512.h"
#include "kernels/avx512/fp32_row_avx512.h"
#include "kernels/avx512/math_avx512.h"
#include "kernels/fp32.h"

namespace octet::kernels::avx512 {

namespace {

template <__m512 (*F)(__m512)>
void unary(const float* x, float* y, std::size_t n) {
  std::size_t i = 0;
  for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, F(_mm512_loadu_ps(x + i)));
  if (i < n) {
    const __mmask16 m = tail_mask(n - i);
    _mm512_mask_storeu_ps(y + i, m, F(_mm512_maskz_loadu_ps(m, x + i)));
  }
}

}  // namespace

void layer_norm_f32(const float* x, std::size_t ld_x, float* y, std::size_t ld_y, std::size_t rows,
                    std::size_t cols, const float* gamma, const float* beta, float eps) {
  for (std::size_t r = 0; r < rows; ++r) {
    const float* xr = x + r * ld_x;
    float* yr = y + r * ld_y;
    const __m512 shift = _mm512_set1_ps(xr[0]);
    // Two accumulators hide the 4-cycle add latency; masked tail lanes contribute 0.
    __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
    std::size_t c = 0;
    for (; c + 32 <= cols; c += 32) {
      acc0 = _mm512_add_ps(acc0, _mm512_sub_ps(_mm512_loadu_ps(xr + c), shift));
      acc1 = _mm512_add_ps(acc1, _mm512_sub_ps(_mm512_loadu_ps(xr + c + 16), shift));
    }
    for (; c < cols; c += 16) {
      const __mmask16 m = tail_mask(cols - c);
      acc0 = _mm512_add_ps(acc0, _mm512_maskz_sub_ps(m, _mm512_maskz_loadu_ps(m, xr + c), shift));
    }
    const float mean_shifted =
        _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1)) / static_cast<float>(cols);
    const __m512 mean = _mm512_set1_ps(mean_shifted);
    __m512 sq = _mm512_setzero_ps();
    for (c = 0; c < cols; c += 16) {
      const __mmask16 m = tail_mask(cols - c);
      const __m512 dev =
          _mm512_maskz_sub_ps(m, _mm512_sub_ps(_mm512_maskz_loadu_ps(m, xr + c), shift), mean);
      sq = _mm512_fmadd_ps(dev, dev, sq);
    }
    const float var = _mm512_reduce_add_ps(sq) / static_cast<float>(cols);
    const __m512 inv_std = _mm512_set1_ps(1.0f / std::sqrt(var + eps));
    for (c = 0; c < cols; c += 16) {
      const __mmask16 m = tail_mask(cols - c);
      const __m512 dev =
          _mm512_sub_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, xr + c), shift), mean);
      const __m512 g = _mm512_maskz_loadu_ps(m, gamma + c);
      const __m512 b = _mm512_maskz_loadu_ps(m, beta + c);
      _mm512_mask_storeu_ps(yr + c, m, _mm512_fmadd_ps(_mm512_mul_ps(dev, inv_std), g, b));
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

}  // namespace octet::kernels::avx512
