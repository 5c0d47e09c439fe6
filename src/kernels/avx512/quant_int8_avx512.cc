// AVX-512 elementwise INT8 kernels: quantize (s8 symmetric, u8 asymmetric, with the range found
// in the same pass), abs-max / min-max, dequantize. 16 floats per step, masked tail.
//
// Bit-exact with the reference: x * inv_scale is one IEEE multiply, vrndscaleps / vcvtps2dq with
// round-to-nearest-even is std::nearbyint under FE_TONEAREST, and the clamp bounds are integers.
#include <limits>

#include "kernels/avx512/int8_avx512.h"
#include "kernels/avx512/math_avx512.h"

namespace octet::kernels::avx512 {
namespace {

constexpr int kRound = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;

// NaN in every lane that has seen a NaN or an infinity (x * 0 is NaN exactly for those): the
// range a quantize kernel returns is NaN for non-finite input, as in the reference.
inline __m512 track_non_finite(__m512 bad, __m512 v) {
  return _mm512_fmadd_ps(v, _mm512_setzero_ps(), bad);
}

inline bool any_nan(__m512 bad) { return _mm512_cmp_ps_mask(bad, bad, _CMP_UNORD_Q) != 0; }

inline __mmask16 tail(std::size_t left) {
  return left >= 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << left) - 1);
}

}  // namespace

// One pass, 64 inputs per step: codes through vcvtps2dq with embedded round-to-nearest-even
// (clamping to the integer bounds first gives the same codes as rounding first), packed to one
// 64-byte store (vpackssdw, vpacksswb, one vpermd: cheaper than four vpmovsdb stores, 2 uops
// each); the range as |x| bit patterns under vpmaxud, where every NaN and infinity (bits >=
// 0x7F800000) ranks above every finite value: no separate non-finite tracking. A masked 16-lane
// loop for the last n % 64.
float quantize_s8(const float* x, std::size_t n, float inv_scale, int8_t* q) {
  const __m512 inv = _mm512_set1_ps(inv_scale);
  const __m512 lo = _mm512_set1_ps(-127.0f), hi = _mm512_set1_ps(127.0f);
  const __m512i abs_bits = _mm512_set1_epi32(0x7FFFFFFF);
  // vpacksswb leaves each 128-bit lane as 4 dwords from each of the 4 inputs: gather them back.
  const __m512i order = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
  auto codes = [&](__m512 v) {
    const __m512 t = _mm512_min_ps(_mm512_max_ps(_mm512_mul_ps(v, inv), lo), hi);
    return _mm512_cvt_roundps_epi32(t, kRound);
  };
  __m512i amax0 = _mm512_setzero_si512(), amax1 = _mm512_setzero_si512();
  std::size_t i = 0;
  for (; i + 64 <= n; i += 64) {
    const __m512 v0 = _mm512_loadu_ps(x + i), v1 = _mm512_loadu_ps(x + i + 16);
    const __m512 v2 = _mm512_loadu_ps(x + i + 32), v3 = _mm512_loadu_ps(x + i + 48);
    amax0 = _mm512_max_epu32(amax0, _mm512_and_si512(_mm512_castps_si512(v0), abs_bits));
    amax1 = _mm512_max_epu32(amax1, _mm512_and_si512(_mm512_castps_si512(v1), abs_bits));
    amax0 = _mm512_max_epu32(amax0, _mm512_and_si512(_mm512_castps_si512(v2), abs_bits));
    amax1 = _mm512_max_epu32(amax1, _mm512_and_si512(_mm512_castps_si512(v3), abs_bits));
    const __m512i w01 = _mm512_packs_epi32(codes(v0), codes(v1));
    const __m512i w23 = _mm512_packs_epi32(codes(v2), codes(v3));
    _mm512_storeu_si512(q + i, _mm512_permutexvar_epi32(order, _mm512_packs_epi16(w01, w23)));
  }
  for (; i < n; i += 16) {
    const __mmask16 m = tail(n - i);
    const __m512 v = _mm512_maskz_loadu_ps(m, x + i);
    amax0 = _mm512_max_epu32(amax0, _mm512_and_si512(_mm512_castps_si512(v), abs_bits));
    _mm512_mask_cvtsepi32_storeu_epi8(q + i, m, codes(v));
  }
  const uint32_t bits = _mm512_reduce_max_epu32(_mm512_max_epu32(amax0, amax1));
  if (bits >= 0x7F800000u) return std::numeric_limits<float>::quiet_NaN();
  float amax;
  __builtin_memcpy(&amax, &bits, sizeof amax);
  return amax;
}

// The same shape as quantize_s8: 64 inputs per step, the codes (integral floats in [0, 255]
// after the clamp, so the conversion is exact) packed to one 64-byte store (vpackssdw,
// vpackuswb, one vpermd); the range and the non-finite flag in two accumulators each. The
// 16-lane masked loop (vpmovusdb stores) only for the last n % 64.
void quantize_u8(const float* x, std::size_t n, float inv_scale, int32_t zero_point, uint8_t* q,
                 float* min_out, float* max_out) {
  if (n == 0) {
    if (min_out != nullptr) *min_out = *max_out = 0.0f;
    return;
  }
  const __m512 inv = _mm512_set1_ps(inv_scale);
  const __m512 zp = _mm512_set1_ps(static_cast<float>(zero_point));
  const __m512 lo = _mm512_setzero_ps(), hi = _mm512_set1_ps(255.0f);
  const __m512i order = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
  if (min_out == nullptr) {
    // No range: nearbyint(x * inv) by vcvtps2dq with embedded rounding, + zero point in int32,
    // then the saturating packs (int32 -> int16 -> u8) are the clamp to [0, 255]: the same
    // codes as the float clamp below for finite x (|x * inv| < 2^31 for any input a caller can
    // vouch for), in half the operations.
    const __m512i zpi = _mm512_set1_epi32(zero_point);
    auto fast = [&](__m512 v) {
      return _mm512_add_epi32(_mm512_cvt_roundps_epi32(_mm512_mul_ps(v, inv), kRound), zpi);
    };
    std::size_t i = 0;
    for (; i + 64 <= n; i += 64) {
      const __m512i w01 =
          _mm512_packs_epi32(fast(_mm512_loadu_ps(x + i)), fast(_mm512_loadu_ps(x + i + 16)));
      const __m512i w23 =
          _mm512_packs_epi32(fast(_mm512_loadu_ps(x + i + 32)), fast(_mm512_loadu_ps(x + i + 48)));
      _mm512_storeu_si512(q + i, _mm512_permutexvar_epi32(order, _mm512_packus_epi16(w01, w23)));
    }
    for (; i < n; i += 16) {
      const __mmask16 m = tail(n - i);
      _mm512_mask_cvtusepi32_storeu_epi8(
          q + i, m,
          _mm512_max_epi32(fast(_mm512_maskz_loadu_ps(m, x + i)), _mm512_setzero_si512()));
    }
    return;
  }
  auto codes = [&](__m512 v) {
    const __m512 t = _mm512_add_ps(_mm512_roundscale_ps(_mm512_mul_ps(v, inv), kRound), zp);
    return _mm512_cvtps_epi32(_mm512_min_ps(_mm512_max_ps(t, lo), hi));
  };
  __m512 vmin0 = _mm512_set1_ps(x[0]), vmax0 = vmin0, vmin1 = vmin0, vmax1 = vmin0;
  __m512 bad0 = _mm512_setzero_ps(), bad1 = bad0;
  std::size_t i = 0;
  for (; i + 64 <= n; i += 64) {
    const __m512 v0 = _mm512_loadu_ps(x + i), v1 = _mm512_loadu_ps(x + i + 16);
    const __m512 v2 = _mm512_loadu_ps(x + i + 32), v3 = _mm512_loadu_ps(x + i + 48);
    bad0 = track_non_finite(track_non_finite(bad0, v0), v2);
    bad1 = track_non_finite(track_non_finite(bad1, v1), v3);
    vmin0 = _mm512_min_ps(_mm512_min_ps(vmin0, v0), v2);
    vmin1 = _mm512_min_ps(_mm512_min_ps(vmin1, v1), v3);
    vmax0 = _mm512_max_ps(_mm512_max_ps(vmax0, v0), v2);
    vmax1 = _mm512_max_ps(_mm512_max_ps(vmax1, v1), v3);
    const __m512i w01 = _mm512_packs_epi32(codes(v0), codes(v1));
    const __m512i w23 = _mm512_packs_epi32(codes(v2), codes(v3));
    _mm512_storeu_si512(q + i, _mm512_permutexvar_epi32(order, _mm512_packus_epi16(w01, w23)));
  }
  for (; i < n; i += 16) {
    const __mmask16 m = tail(n - i);
    const __m512 v = _mm512_maskz_loadu_ps(m, x + i);
    bad0 = track_non_finite(bad0, v);
    vmin0 = _mm512_mask_min_ps(vmin0, m, vmin0, v);
    vmax0 = _mm512_mask_max_ps(vmax0, m, vmax0, v);
    _mm512_mask_cvtusepi32_storeu_epi8(q + i, m, codes(v));
  }
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const bool non_finite = any_nan(_mm512_add_ps(bad0, bad1));
  *min_out = non_finite ? nan : _mm512_reduce_min_ps(_mm512_min_ps(vmin0, vmin1));
  *max_out = non_finite ? nan : _mm512_reduce_max_ps(_mm512_max_ps(vmax0, vmax1));
}

float abs_max(const float* x, std::size_t n) {
  __m512 amax = _mm512_setzero_ps(), bad = _mm512_setzero_ps();
  for (std::size_t i = 0; i < n; i += 16) {
    const __m512 v = _mm512_maskz_loadu_ps(tail(n - i), x + i);
    bad = track_non_finite(bad, v);
    amax = _mm512_max_ps(amax, _mm512_abs_ps(v));
  }
  return any_nan(bad) ? std::numeric_limits<float>::quiet_NaN() : _mm512_reduce_max_ps(amax);
}

void min_max(const float* x, std::size_t n, float* min_out, float* max_out) {
  if (n == 0) {
    *min_out = *max_out = 0.0f;
    return;
  }
  __m512 vmin = _mm512_set1_ps(x[0]), vmax = vmin, bad = _mm512_setzero_ps();
  for (std::size_t i = 0; i < n; i += 16) {
    const __mmask16 m = tail(n - i);
    const __m512 v = _mm512_maskz_loadu_ps(m, x + i);
    bad = track_non_finite(bad, v);
    vmin = _mm512_mask_min_ps(vmin, m, vmin, v);
    vmax = _mm512_mask_max_ps(vmax, m, vmax, v);
  }
  const float nan = std::numeric_limits<float>::quiet_NaN();
  *min_out = any_nan(bad) ? nan : _mm512_reduce_min_ps(vmin);
  *max_out = any_nan(bad) ? nan : _mm512_reduce_max_ps(vmax);
}

void dequantize_s8(const int8_t* q, std::size_t n, float scale, float* x) {
  const __m512 s = _mm512_set1_ps(scale);
  for (std::size_t i = 0; i < n; i += 16) {
    const __mmask16 m = tail(n - i);
    const __m512i v = _mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(m, q + i));
    _mm512_mask_storeu_ps(x + i, m, _mm512_mul_ps(_mm512_cvtepi32_ps(v), s));
  }
}

void dequantize_u8(const uint8_t* q, std::size_t n, float scale, int32_t zero_point, float* x) {
  const __m512 s = _mm512_set1_ps(scale);
  const __m512i zp = _mm512_set1_epi32(zero_point);
  for (std::size_t i = 0; i < n; i += 16) {
    const __mmask16 m = tail(n - i);
    const __m512i v = _mm512_sub_epi32(_mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(m, q + i)), zp);
    _mm512_mask_storeu_ps(x + i, m, _mm512_mul_ps(_mm512_cvtepi32_ps(v), s));
  }
}

}  // namespace octet::kernels::avx512
