// Row helpers shared by the AVX2 FP32 kernels (softmax, attention). Include only from files
// built with the AVX2 flags.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>

#include "kernels/avx2/math_avx2.h"

namespace octet::kernels::avx2 {

// An integer lane mask for _mm256_maskload_ps / _mm256_maskstore_ps: lanes [0, min(n, 8)) set.
inline __m256i tail_mask(std::size_t n) {
  const __m256i lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int32_t>(n < 8 ? n : 8)), lanes);
}

inline float reduce_add(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

inline float reduce_max(__m256 v) {
  __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_max_ps(s, _mm_movehl_ps(s, s));
  s = _mm_max_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// In place: x[j] = exp(scale (x[j] - max)) / sum for j < valid, 0 for valid <= j < cols.
inline void softmax_row(float* x, std::size_t valid, std::size_t cols, float scale) {
  const __m256 neg_inf = _mm256_set1_ps(-std::numeric_limits<float>::infinity());
  __m256 vmax = neg_inf;
  for (std::size_t j = 0; j < valid; j += 8) {
    const __m256i m = tail_mask(valid - j);
    vmax = _mm256_max_ps(
        vmax, _mm256_blendv_ps(neg_inf, _mm256_maskload_ps(x + j, m), _mm256_castsi256_ps(m)));
  }
  const __m256 mx = _mm256_set1_ps(reduce_max(vmax));
  const __m256 vscale = _mm256_set1_ps(scale);
  __m256 vsum = _mm256_setzero_ps();
  for (std::size_t j = 0; j < valid; j += 8) {
    const __m256i m = tail_mask(valid - j);
    const __m256 e = _mm256_and_ps(
        exp_ps(_mm256_mul_ps(_mm256_sub_ps(_mm256_maskload_ps(x + j, m), mx), vscale)),
        _mm256_castsi256_ps(m));
    _mm256_maskstore_ps(x + j, m, e);
    vsum = _mm256_add_ps(vsum, e);
  }
  const __m256 inv = _mm256_set1_ps(valid > 0 ? 1.0f / reduce_add(vsum) : 0.0f);
  for (std::size_t j = 0; j < valid; j += 8) {
    const __m256i m = tail_mask(valid - j);
    _mm256_maskstore_ps(x + j, m, _mm256_mul_ps(_mm256_maskload_ps(x + j, m), inv));
  }
  for (std::size_t j = valid; j < cols; ++j) x[j] = 0.0f;
}

}  // namespace octet::kernels::avx2
