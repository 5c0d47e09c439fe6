// AVX2 elementwise INT8 kernels: quantize (s8 symmetric, u8 asymmetric, with the range found in
// the same pass), abs-max / min-max, dequantize. 8 floats per step; the tail goes through a
// padded stack block so that nothing is read or written past n.
//
// Bit-exact with the reference: x * inv_scale is one IEEE multiply, vroundps with
// round-to-nearest-even is std::nearbyint under FE_TONEAREST, and the clamp bounds are integers.
#include <cstring>
#include <limits>

#include "kernels/avx2/int8_avx2.h"
#include "kernels/avx2/math_avx2.h"

namespace octet::kernels::avx2 {
namespace {

constexpr int kRound = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;

inline __m256 abs_ps(__m256 v) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), v); }

// NaN in every lane that has seen a NaN or an infinity (x * 0 is NaN exactly for those).
inline __m256 track_non_finite(__m256 bad, __m256 v) {
  return _mm256_fmadd_ps(v, _mm256_setzero_ps(), bad);
}

inline bool any_nan(__m256 bad) {
  return _mm256_movemask_ps(_mm256_cmp_ps(bad, bad, _CMP_UNORD_Q)) != 0;
}

inline float hmax(__m256 v) {
  __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  m = _mm_max_ss(m, _mm_shuffle_ps(m, m, 1));
  return _mm_cvtss_f32(m);
}

inline float hmin(__m256 v) {
  __m128 m = _mm_min_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  m = _mm_min_ps(m, _mm_movehl_ps(m, m));
  m = _mm_min_ss(m, _mm_shuffle_ps(m, m, 1));
  return _mm_cvtss_f32(m);
}

// 8 int32 codes (already within 8-bit range) -> 8 bytes.
inline void store8(__m256i v, bool is_signed, void* dst) {
  const __m128i w16 = _mm_packs_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  const __m128i b8 = is_signed ? _mm_packs_epi16(w16, w16) : _mm_packus_epi16(w16, w16);
  _mm_storel_epi64(static_cast<__m128i*>(dst), b8);
}

// Calls body(i, v) for every block of 8 inputs; the tail block is padded with `pad` (a value
// that does not change the range) and its outputs land in `tail_out`, copied back by the caller.
template <typename Body>
void for_blocks(const float* x, std::size_t n, float pad, Body body) {
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) body(i, _mm256_loadu_ps(x + i), false);
  if (i < n) {
    alignas(32) float tmp[8];
    for (int l = 0; l < 8; ++l) tmp[l] = pad;
    std::memcpy(tmp, x + i, (n - i) * sizeof(float));
    body(i, _mm256_load_ps(tmp), true);
  }
}

}  // namespace

float quantize_s8(const float* x, std::size_t n, float inv_scale, int8_t* q) {
  if (n == 0) return 0.0f;
  const __m256 inv = _mm256_set1_ps(inv_scale);
  const __m256 lo = _mm256_set1_ps(-127.0f), hi = _mm256_set1_ps(127.0f);
  __m256 amax = _mm256_setzero_ps(), bad = _mm256_setzero_ps();
  for_blocks(x, n, 0.0f, [&](std::size_t i, __m256 v, bool tail) {
    bad = track_non_finite(bad, v);
    amax = _mm256_max_ps(amax, abs_ps(v));
    __m256 t = _mm256_round_ps(_mm256_mul_ps(v, inv), kRound);
    t = _mm256_min_ps(_mm256_max_ps(t, lo), hi);
    int8_t out[8];
    store8(_mm256_cvtps_epi32(t), true, tail ? out : q + i);
    if (tail) std::memcpy(q + i, out, n - i);
  });
  return any_nan(bad) ? std::numeric_limits<float>::quiet_NaN() : hmax(amax);
}

void quantize_u8(const float* x, std::size_t n, float inv_scale, int32_t zero_point, uint8_t* q,
                 float* min_out, float* max_out) {
  if (n == 0) {
    if (min_out != nullptr) *min_out = *max_out = 0.0f;
    return;
  }
  const __m256 inv = _mm256_set1_ps(inv_scale);
  const __m256 zp = _mm256_set1_ps(static_cast<float>(zero_point));
  const __m256 lo = _mm256_setzero_ps(), hi = _mm256_set1_ps(255.0f);
  __m256 vmin = _mm256_set1_ps(x[0]), vmax = vmin, bad = _mm256_setzero_ps();
  for_blocks(x, n, x[0], [&](std::size_t i, __m256 v, bool tail) {
    bad = track_non_finite(bad, v);
    vmin = _mm256_min_ps(vmin, v);
    vmax = _mm256_max_ps(vmax, v);
    __m256 t = _mm256_add_ps(_mm256_round_ps(_mm256_mul_ps(v, inv), kRound), zp);
    t = _mm256_min_ps(_mm256_max_ps(t, lo), hi);
    uint8_t out[8];
    store8(_mm256_cvtps_epi32(t), false, tail ? out : q + i);
    if (tail) std::memcpy(q + i, out, n - i);
  });
  if (min_out == nullptr) return;
  const float nan = std::numeric_limits<float>::quiet_NaN();
  *min_out = any_nan(bad) ? nan : hmin(vmin);
  *max_out = any_nan(bad) ? nan : hmax(vmax);
}

float abs_max(const float* x, std::size_t n) {
  __m256 amax = _mm256_setzero_ps(), bad = _mm256_setzero_ps();
  for_blocks(x, n, 0.0f, [&](std::size_t, __m256 v, bool) {
    bad = track_non_finite(bad, v);
    amax = _mm256_max_ps(amax, abs_ps(v));
  });
  return any_nan(bad) ? std::numeric_limits<float>::quiet_NaN() : hmax(amax);
}

void min_max(const float* x, std::size_t n, float* min_out, float* max_out) {
  if (n == 0) {
    *min_out = *max_out = 0.0f;
    return;
  }
  __m256 vmin = _mm256_set1_ps(x[0]), vmax = vmin, bad = _mm256_setzero_ps();
  for_blocks(x, n, x[0], [&](std::size_t, __m256 v, bool) {
    bad = track_non_finite(bad, v);
    vmin = _mm256_min_ps(vmin, v);
    vmax = _mm256_max_ps(vmax, v);
  });
  if (min_out == nullptr) return;
  const float nan = std::numeric_limits<float>::quiet_NaN();
  *min_out = any_nan(bad) ? nan : hmin(vmin);
  *max_out = any_nan(bad) ? nan : hmax(vmax);
}

void dequantize_s8(const int8_t* q, std::size_t n, float scale, float* x) {
  const __m256 s = _mm256_set1_ps(scale);
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m128i b = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(q + i));
    _mm256_storeu_ps(x + i, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(b)), s));
  }
  for (; i < n; ++i) x[i] = static_cast<float>(q[i]) * scale;
}

void dequantize_u8(const uint8_t* q, std::size_t n, float scale, int32_t zero_point, float* x) {
  const __m256 s = _mm256_set1_ps(scale);
  const __m256i zp = _mm256_set1_epi32(zero_point);
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m128i b = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(q + i));
    const __m256i v = _mm256_sub_epi32(_mm256_cvtepu8_epi32(b), zp);
    _mm256_storeu_ps(x + i, _mm256_mul_ps(_mm256_cvtepi32_ps(v), s));
  }
  for (; i < n; ++i) x[i] = static_cast<float>(int32_t{q[i]} - zero_point) * scale;
}

}  // namespace octet::kernels::avx2
