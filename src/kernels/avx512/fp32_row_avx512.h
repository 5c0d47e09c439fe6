// Row helpers shared by the AVX-512 FP32 kernels (softmax, attention). Include only from files
// built with the AVX-512 flags.
#pragma once

#include <cstddef>
#include <limits>

#include "kernels/avx512/math_avx512.h"

namespace octet::kernels::avx512 {

// Lanes [0, min(n, 16)) set.
inline __mmask16 tail_mask(std::size_t n) {
  return n >= 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << n) - 1u);
}

// Prefetches the cache lines of rows [r0, r1) of a (t, d) slice with row stride ld.
template <int Hint>
inline void prefetch_rows(const float* base, std::size_t ld, std::size_t r0, std::size_t r1,
                          std::size_t d) {
  for (std::size_t r = r0; r < r1; ++r) {
    const char* row = reinterpret_cast<const char*>(base + r * ld);
    const char* last = row + d * sizeof(float) - 1;
    for (const char* p = row; p < last + 64; p += 64) {
      _mm_prefetch(p < last ? p : last, static_cast<_mm_hint>(Hint));
    }
  }
}

// In place: x[j] = exp(scale (x[j] - max)) / sum for j < valid, 0 for valid <= j < cols.
inline void softmax_row(float* x, std::size_t valid, std::size_t cols, float scale) {
  const __m512 neg_inf = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
  __m512 vmax = neg_inf;
  for (std::size_t j = 0; j < valid; j += 16) {
    vmax = _mm512_max_ps(vmax, _mm512_mask_loadu_ps(neg_inf, tail_mask(valid - j), x + j));
  }
  const __m512 mx = _mm512_set1_ps(_mm512_reduce_max_ps(vmax));
  const __m512 vscale = _mm512_set1_ps(scale);
  __m512 vsum = _mm512_setzero_ps();
  for (std::size_t j = 0; j < valid; j += 16) {
    const __mmask16 m = tail_mask(valid - j);
    const __m512 e =
        exp_ps(_mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + j), mx), vscale));
    _mm512_mask_storeu_ps(x + j, m, e);
    vsum = _mm512_mask_add_ps(vsum, m, vsum, e);
  }
  const __m512 inv = _mm512_set1_ps(valid > 0 ? 1.0f / _mm512_reduce_add_ps(vsum) : 0.0f);
  for (std::size_t j = 0; j < valid; j += 16) {
    const __mmask16 m = tail_mask(valid - j);
    _mm512_mask_storeu_ps(x + j, m, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + j), inv));
  }
  for (std::size_t j = valid; j < cols; ++j) x[j] = 0.0f;
}

}  // namespace octet::kernels::avx512
