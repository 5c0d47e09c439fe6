// AVX-512 integer-only elementwise kernels: i-GELU, wide dyadic requantization, residual addition.
// 8 int64 lanes per step (vpmullq, vpsravq, vpabsq), masked tails. Bit-exact with
// kernels/ref/integer_elementwise_ref.cc; the arithmetic is defined in kernels/integer.h.
// GCC 12.2's AVX-512 intrinsics trip -Wmaybe-uninitialized on their undefined operands (GCC bug
// 105593): silenced for the intrinsics header only, as in kernels/avx512/math_avx512.h.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop

#include <cstdint>

#include "kernels/avx512/integer_avx512.h"

namespace octet::kernels::avx512 {
namespace {

inline __mmask8 tail8(int left) {
  return left >= 8 ? static_cast<__mmask8>(0xFF) : static_cast<__mmask8>((1u << left) - 1);
}

inline __m512i load_i32_as_i64(__mmask8 m, const int32_t* p) {
  return _mm512_cvtepi32_epi64(_mm256_maskz_loadu_epi32(m, p));
}

// round_half_even(p / 2^s) for s in [1, 63]: floor + (rem > half - (floor & 1)).
inline __m512i rhe64(__m512i p, __m512i s) {
  const __m512i one = _mm512_set1_epi64(1);
  const __m512i fl = _mm512_srav_epi64(p, s);
  const __m512i rem = _mm512_and_si512(p, _mm512_sub_epi64(_mm512_sllv_epi64(one, s), one));
  const __m512i half = _mm512_sllv_epi64(one, _mm512_sub_epi64(s, one));
  const __m512i bar = _mm512_sub_epi64(half, _mm512_and_si512(fl, one));
  return _mm512_mask_add_epi64(fl, _mm512_cmpgt_epi64_mask(rem, bar), fl, one);
}

// round_half_even(v * m / 2^s), exact in 96 bits: |v| < 2^63, m signed with |m| in [2^30, 2^31)
// or 0, s in [1, 94]. The sign of m moves onto v; v * |m| = H * 2^32 + Bl with H = vh * m +
// ((vl * m) >> 32) (vh = v >> 32 signed, vl = v mod 2^32) and Bl = (vl * m) mod 2^32.
//   s >= 32: floor = H >> (s - 32); the remainder H mod 2^(s-32) and Bl are compared with
//            2^(s-1) through frac = 2 (H mod 2^k) + (Bl != 0) against 2^k (k = s - 32 >= 1),
//            or Bl against 2^31 (k = 0).
//   s < 32:  |v| < 2^32 keeps v * |m| below 2^63 (one vpmullq); otherwise the ratio
//            |m| / 2^s >= 1/2 makes |result| >= 2^31, beyond every output width: saturate.
inline __m512i requant_wide8(__m512i v, __m512i m, __m512i s) {
  const __m512i zero = _mm512_setzero_si512(), one = _mm512_set1_epi64(1);
  v = _mm512_max_epi64(v, _mm512_set1_epi64(-INT64_MAX));
  v = _mm512_mask_sub_epi64(v, _mm512_cmplt_epi64_mask(m, zero), zero, v);
  m = _mm512_abs_epi64(m);
  // s >= 32
  const __m512i a = _mm512_mul_epi32(_mm512_srai_epi64(v, 32), m);
  const __m512i b = _mm512_mul_epu32(v, m);
  const __m512i h = _mm512_add_epi64(a, _mm512_srli_epi64(b, 32));
  const __m512i bl = _mm512_and_si512(b, _mm512_set1_epi64(0xFFFFFFFFll));
  const __m512i k = _mm512_sub_epi64(s, _mm512_set1_epi64(32));
  const __m512i flw = _mm512_srav_epi64(h, k);
  const __m512i pow_k = _mm512_sllv_epi64(one, k);
  const __m512i hr2 = _mm512_slli_epi64(_mm512_and_si512(h, _mm512_sub_epi64(pow_k, one)), 1);
  __m512i frac = _mm512_mask_add_epi64(hr2, _mm512_test_epi64_mask(bl, bl), hr2, one);
  const __mmask8 k0 = _mm512_cmpeq_epi64_mask(k, zero);
  frac = _mm512_mask_mov_epi64(frac, k0, bl);
  const __m512i thr = _mm512_mask_mov_epi64(pow_k, k0, _mm512_set1_epi64(int64_t{1} << 31));
  const __m512i bar = _mm512_sub_epi64(thr, _mm512_and_si512(flw, one));
  const __m512i qw = _mm512_mask_add_epi64(flw, _mm512_cmpgt_epi64_mask(frac, bar), flw, one);
  // s < 32 (rare: requantizing a wide value to 8 bits takes a large shift; skipped when no lane
  // needs it, which changes nothing since the narrow lanes' result is selected below)
  const __mmask8 narrow = _mm512_cmplt_epi64_mask(s, _mm512_set1_epi64(32));
  if (narrow == 0) return qw;
  __m512i qn = rhe64(_mm512_mullo_epi64(v, m), _mm512_max_epi64(s, one));
  const __mmask8 big = _mm512_cmpge_epi64_mask(_mm512_abs_epi64(v), _mm512_set1_epi64(1ll << 32)) &
                       _mm512_test_epi64_mask(m, m);
  const __m512i sat = _mm512_set1_epi64(int64_t{1} << 40);
  qn = _mm512_mask_mov_epi64(qn, big, sat);
  qn = _mm512_mask_sub_epi64(qn, big & _mm512_cmplt_epi64_mask(v, zero), zero, sat);
  return _mm512_mask_mov_epi64(qw, narrow, qn);
}

// Saturation to out_bits, then a narrowing store into the int8 / int16 / int32 container.
inline void store_bits(void* y, std::ptrdiff_t idx, int out_bits, __mmask8 m, __m512i q) {
  const __m512i hi = _mm512_set1_epi64((int64_t{1} << (out_bits - 1)) - 1);
  q = _mm512_max_epi64(_mm512_min_epi64(q, hi), _mm512_sub_epi64(_mm512_set1_epi64(-1), hi));
  if (out_bits <= 8) {
    _mm512_mask_cvtepi64_storeu_epi8(static_cast<int8_t*>(y) + idx, m, q);
  } else if (out_bits <= 16) {
    _mm512_mask_cvtepi64_storeu_epi16(static_cast<int16_t*>(y) + idx, m, q);
  } else {
    _mm512_mask_cvtepi64_storeu_epi32(static_cast<int32_t*>(y) + idx, m, q);
  }
}

}  // namespace

void igelu(const int32_t* x, std::ptrdiff_t ldx, int rows, int cols, const int32_t* b,
           const int64_t* c, const int64_t* one, int64_t* y, std::ptrdiff_t ldy) {
  const __m512i zero = _mm512_setzero_si512();
  for (int i = 0; i < rows; ++i) {
    for (int j = 0; j < cols; j += 8) {
      const __mmask8 m = tail8(cols - j);
      const __m512i xv = load_i32_as_i64(m, x + i * ldx + j);
      const __m512i bv = load_i32_as_i64(m, b + j);
      const __m512i mag = _mm512_min_epi64(_mm512_abs_epi64(xv), _mm512_sub_epi64(zero, bv));
      const __m512i a = _mm512_add_epi64(mag, bv);
      __m512i e = _mm512_add_epi64(_mm512_mullo_epi64(a, a), _mm512_maskz_loadu_epi64(m, c + j));
      e = _mm512_mask_sub_epi64(e, _mm512_cmplt_epi64_mask(xv, zero), zero, e);
      e = _mm512_srai_epi64(e, kIgeluOverflowShift);
      const __m512i g = _mm512_sub_epi64(_mm512_maskz_loadu_epi64(m, one + j), e);
      _mm512_mask_storeu_epi64(y + i * ldy + j, m, _mm512_mullo_epi64(xv, g));
    }
  }
}

void requantize_wide(const int64_t* x, std::ptrdiff_t ldx, int rows, int cols,
                     const int32_t* multiplier, const int32_t* shift, int out_bits, void* y,
                     std::ptrdiff_t ldy) {
  for (int i = 0; i < rows; ++i) {
    for (int j = 0; j < cols; j += 8) {
      const __mmask8 m = tail8(cols - j);
      const __m512i v = _mm512_maskz_loadu_epi64(m, x + i * ldx + j);
      const __m512i mv = load_i32_as_i64(m, multiplier + j);
      // Masked-off lanes get shift 32 so that every lane's arithmetic stays defined.
      const __m512i sv =
          _mm512_cvtepi32_epi64(_mm256_mask_loadu_epi32(_mm256_set1_epi32(32), m, shift + j));
      store_bits(y, i * ldy + j, out_bits, m, requant_wide8(v, mv, sv));
    }
  }
}

void residual_add(const int32_t* x, std::ptrdiff_t ldx, const int32_t* mx, const int32_t* sx,
                  const int8_t* r, std::ptrdiff_t ldr, const int32_t* mr, const int32_t* sr,
                  int rows, int cols, int out_bits, void* y, std::ptrdiff_t ldy) {
  const __m256i one32 = _mm256_set1_epi32(1);
  for (int i = 0; i < rows; ++i) {
    for (int j = 0; j < cols; j += 8) {
      const __mmask8 m = tail8(cols - j);
      const __m512i xv = load_i32_as_i64(m, x + i * ldx + j);
      const __m512i sxv = _mm512_cvtepi32_epi64(_mm256_mask_loadu_epi32(one32, m, sx + j));
      __m512i q = rhe64(_mm512_mullo_epi64(xv, load_i32_as_i64(m, mx + j)), sxv);
      if (r) {
        const __m512i rv = _mm512_cvtepi8_epi64(_mm_maskz_loadu_epi8(m, r + i * ldr + j));
        const __m512i srv = _mm512_cvtepi32_epi64(_mm256_mask_loadu_epi32(one32, m, sr + j));
        q = _mm512_add_epi64(q, rhe64(_mm512_mullo_epi64(rv, load_i32_as_i64(m, mr + j)), srv));
      }
      store_bits(y, i * ldy + j, out_bits, m, q);
    }
  }
}

}  // namespace octet::kernels::avx512
