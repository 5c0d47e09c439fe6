// AVX2 i-GELU, wide requantization and residual addition, 4 int64 lanes per step. AVX2 has no
// 64-bit arithmetic shift, multiply, abs, min or max: arithmetic shifts are logical shifts of the
// one's complement of negative lanes, products are 32 x 32 -> 64 (vpmuldq / vpmuludq) on magnitudes
// that fit 32 bits (the bounds come from kernels/integer.h), and min / max are compare + blend.
// Bit-exact with kernels/ref/integer_elementwise_ref.cc.
#include <immintrin.h>

#include <algorithm>
#include <cstdint>

#include "kernels/avx2/integer_avx2.h"

namespace octet::kernels::avx2 {
namespace {

inline __m128i tail_mask4(int left) {
  return _mm_cmpgt_epi32(_mm_set1_epi32(std::min(left, 4)), _mm_setr_epi32(0, 1, 2, 3));
}

inline __m256i neg_mask(__m256i v) { return _mm256_cmpgt_epi64(_mm256_setzero_si256(), v); }

// Arithmetic right shift of int64 lanes by per-lane counts in [0, 63].
inline __m256i srav64(__m256i v, __m256i s) {
  const __m256i n = neg_mask(v);
  return _mm256_xor_si256(_mm256_srlv_epi64(_mm256_xor_si256(v, n), s), n);
}

inline __m256i abs64(__m256i v) {
  const __m256i n = neg_mask(v);
  return _mm256_sub_epi64(_mm256_xor_si256(v, n), n);
}

inline __m256i negate_where(__m256i v, __m256i mask) {
  return _mm256_sub_epi64(_mm256_xor_si256(v, mask), mask);
}

// round_half_even(p / 2^s), s in [1, 63].
inline __m256i rhe64(__m256i p, __m256i s) {
  const __m256i one = _mm256_set1_epi64x(1);
  const __m256i fl = srav64(p, s);
  const __m256i rem = _mm256_and_si256(p, _mm256_sub_epi64(_mm256_sllv_epi64(one, s), one));
  const __m256i half = _mm256_sllv_epi64(one, _mm256_sub_epi64(s, one));
  const __m256i bar = _mm256_sub_epi64(half, _mm256_and_si256(fl, one));
  return _mm256_sub_epi64(fl, _mm256_cmpgt_epi64(rem, bar));
}

inline __m256i load4_i32(const int32_t* p, __m128i m) {
  return _mm256_cvtepi32_epi64(_mm_maskload_epi32(p, m));
}

// round_half_even(v * m / 2^s), exact in 96 bits: the AVX-512 algorithm (kernels/avx512/
// integer_elementwise_avx512.cc) with AVX2's 32 x 32 -> 64 products and emulated 64-bit ops.
inline __m256i requant_wide4(__m256i v, __m256i m, __m256i s) {
  const __m256i zero = _mm256_setzero_si256(), one = _mm256_set1_epi64x(1);
  const __m256i all = _mm256_cmpeq_epi64(zero, zero);
  v = _mm256_blendv_epi8(v, _mm256_set1_epi64x(-INT64_MAX),
                         _mm256_cmpeq_epi64(v, _mm256_set1_epi64x(INT64_MIN)));
  v = negate_where(v, neg_mask(m));
  m = abs64(m);
  // s >= 32: v * m = h * 2^32 + bl
  const __m256i a = _mm256_mul_epi32(_mm256_srli_epi64(v, 32), m);  // signed high half of v
  const __m256i b = _mm256_mul_epu32(v, m);
  const __m256i h = _mm256_add_epi64(a, _mm256_srli_epi64(b, 32));
  const __m256i bl = _mm256_and_si256(b, _mm256_set1_epi64x(0xFFFFFFFFll));
  const __m256i k = _mm256_sub_epi64(s, _mm256_set1_epi64x(32));
  const __m256i flw = srav64(h, k);
  const __m256i pow_k = _mm256_sllv_epi64(one, k);
  const __m256i hr2 = _mm256_slli_epi64(_mm256_and_si256(h, _mm256_sub_epi64(pow_k, one)), 1);
  const __m256i bl_nonzero = _mm256_xor_si256(_mm256_cmpeq_epi64(bl, zero), all);
  const __m256i k0 = _mm256_cmpeq_epi64(k, zero);
  const __m256i frac = _mm256_blendv_epi8(_mm256_sub_epi64(hr2, bl_nonzero), bl, k0);
  const __m256i thr = _mm256_blendv_epi8(pow_k, _mm256_set1_epi64x(int64_t{1} << 31), k0);
  const __m256i bar = _mm256_sub_epi64(thr, _mm256_and_si256(flw, one));
  const __m256i qw = _mm256_sub_epi64(flw, _mm256_cmpgt_epi64(frac, bar));
  // s < 32: |v| < 2^32 gives |v| * m < 2^63 in one vpmuludq; larger |v| saturate.
  const __m256i mag = abs64(v);
  const __m256i vneg = neg_mask(v);
  __m256i qn = rhe64(negate_where(_mm256_mul_epu32(mag, m), vneg), s);
  const __m256i big = _mm256_andnot_si256(
      _mm256_cmpeq_epi64(m, zero), _mm256_cmpgt_epi64(mag, _mm256_set1_epi64x(0xFFFFFFFFll)));
  qn = _mm256_blendv_epi8(qn, negate_where(_mm256_set1_epi64x(int64_t{1} << 40), vneg), big);
  return _mm256_blendv_epi8(qw, qn, _mm256_cmpgt_epi64(_mm256_set1_epi64x(32), s));
}

inline __m256i clamp_bits(__m256i q, int out_bits) {
  const __m256i hi = _mm256_set1_epi64x((int64_t{1} << (out_bits - 1)) - 1);
  const __m256i lo = _mm256_sub_epi64(_mm256_set1_epi64x(-1), hi);
  q = _mm256_blendv_epi8(q, hi, _mm256_cmpgt_epi64(q, hi));
  return _mm256_blendv_epi8(q, lo, _mm256_cmpgt_epi64(lo, q));
}

// Stores the first n of 4 int64 lanes (already in range) into the out_bits container.
inline void store_bits(void* y, std::ptrdiff_t at, int out_bits, int n, __m256i q) {
  alignas(32) int64_t out[4];
  _mm256_store_si256(reinterpret_cast<__m256i*>(out), q);
  for (int t = 0; t < n; ++t) {
    if (out_bits <= 8) {
      static_cast<int8_t*>(y)[at + t] = static_cast<int8_t>(out[t]);
    } else if (out_bits <= 16) {
      static_cast<int16_t*>(y)[at + t] = static_cast<int16_t>(out[t]);
    } else {
      static_cast<int32_t*>(y)[at + t] = static_cast<int32_t>(out[t]);
    }
  }
}

}  // namespace

void igelu(const int32_t* x, std::ptrdiff_t ldx, int rows, int cols, const int32_t* b,
           const int64_t* c, const int64_t* one, int64_t* y, std::ptrdiff_t ldy) {
  for (int i = 0; i < rows; ++i) {
    for (int j = 0; j < cols; j += 4) {
      const __m128i m = tail_mask4(cols - j);
      const __m256i m64 = _mm256_cvtepi32_epi64(m);
      const __m256i xv = load4_i32(x + i * ldx + j, m);
      const __m256i bv = load4_i32(b + j, m);
      const __m256i nb = _mm256_sub_epi64(_mm256_setzero_si256(), bv);  // -b > 0
      const __m256i mag = abs64(xv);
      const __m256i clipped = _mm256_blendv_epi8(mag, nb, _mm256_cmpgt_epi64(mag, nb));
      const __m256i a = _mm256_add_epi64(clipped, bv);  // in [b, 0]: fits int32
      const __m256i cv = _mm256_maskload_epi64(reinterpret_cast<const long long*>(c + j), m64);
      __m256i e = _mm256_add_epi64(_mm256_mul_epi32(a, a), cv);
      e = negate_where(e, neg_mask(xv));
      e = srav64(e, _mm256_set1_epi64x(kIgeluOverflowShift));
      const __m256i ov = _mm256_maskload_epi64(reinterpret_cast<const long long*>(one + j), m64);
      const __m256i g = _mm256_sub_epi64(ov, e);  // |g| < 2^32
      // x * g = sgn(x) sgn(g) |x| |g| with |x| <= 2^31 and |g| < 2^32 in vpmuludq.
      const __m256i p = _mm256_mul_epu32(mag, abs64(g));
      const __m256i sign = _mm256_xor_si256(neg_mask(xv), neg_mask(g));
      _mm256_maskstore_epi64(reinterpret_cast<long long*>(y + i * ldy + j), m64,
                             negate_where(p, sign));
    }
  }
}

void requantize_wide(const int64_t* x, std::ptrdiff_t ldx, int rows, int cols,
                     const int32_t* multiplier, const int32_t* shift, int out_bits, void* y,
                     std::ptrdiff_t ldy) {
  const __m128i thirty_two = _mm_set1_epi32(32);
  for (int i = 0; i < rows; ++i) {
    for (int j = 0; j < cols; j += 4) {
      const int n = std::min(cols - j, 4);
      const __m128i m = tail_mask4(n);
      const __m256i v = _mm256_maskload_epi64(reinterpret_cast<const long long*>(x + i * ldx + j),
                                              _mm256_cvtepi32_epi64(m));
      // Masked-off lanes get shift 32 so that every lane's arithmetic stays defined.
      const __m256i sv =
          _mm256_cvtepi32_epi64(_mm_blendv_epi8(thirty_two, _mm_maskload_epi32(shift + j, m), m));
      const __m256i q = requant_wide4(v, load4_i32(multiplier + j, m), sv);
      store_bits(y, i * ldy + j, out_bits, n, clamp_bits(q, out_bits));
    }
  }
}

void residual_add(const int32_t* x, std::ptrdiff_t ldx, const int32_t* mx, const int32_t* sx,
                  const int8_t* r, std::ptrdiff_t ldr, const int32_t* mr, const int32_t* sr,
                  int rows, int cols, int out_bits, void* y, std::ptrdiff_t ldy) {
  const __m128i one32 = _mm_set1_epi32(1);
  for (int i = 0; i < rows; ++i) {
    for (int j = 0; j < cols; j += 4) {
      const int n = std::min(cols - j, 4);
      const __m128i m = tail_mask4(n);
      // Masked-off lanes get shift 1 so that every lane's arithmetic stays defined.
      auto shift4 = [&](const int32_t* s) {
        return _mm256_cvtepi32_epi64(_mm_blendv_epi8(one32, _mm_maskload_epi32(s + j, m), m));
      };
      __m256i q =
          rhe64(_mm256_mul_epi32(load4_i32(x + i * ldx + j, m), load4_i32(mx + j, m)), shift4(sx));
      if (r) {
        alignas(16) int32_t rv[4] = {0, 0, 0, 0};
        for (int t = 0; t < n; ++t) rv[t] = r[i * ldr + j + t];
        const __m256i r64 = _mm256_cvtepi32_epi64(_mm_load_si128(reinterpret_cast<__m128i*>(rv)));
        q = _mm256_add_epi64(q, rhe64(_mm256_mul_epi32(r64, load4_i32(mr + j, m)), shift4(sr)));
      }
      store_bits(y, i * ldy + j, out_bits, n, clamp_bits(q, out_bits));
    }
  }
}

}  // namespace octet::kernels::avx2
