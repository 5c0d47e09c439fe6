// AVX2 i-GELU and residual addition, 4 int64 lanes per step. AVX2 has no 64-bit arithmetic shift,
// multiply, abs, min or max: arithmetic shifts are logical shifts of the one's complement of
// negative lanes, products are 32 x 32 -> 64 (vpmuldq / vpmuludq) on magnitudes that fit 32 bits
// (the bounds come from kernels/integer.h), and min / max are compare + blend. Bit-exact with
// kernels/ref/integer_elementwise_ref.cc. The wide requantization stays on the reference.
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

void residual_add(const int32_t* x, std::ptrdiff_t ldx, const int32_t* mx, const int32_t* sx,
                  const int8_t* r, std::ptrdiff_t ldr, const int32_t* mr, const int32_t* sr,
                  int rows, int cols, int out_bits, void* y, std::ptrdiff_t ldy) {
  const __m256i hi = _mm256_set1_epi64x((int64_t{1} << (out_bits - 1)) - 1);
  const __m256i lo = _mm256_sub_epi64(_mm256_set1_epi64x(-1), hi);
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
      q = _mm256_blendv_epi8(q, hi, _mm256_cmpgt_epi64(q, hi));
      q = _mm256_blendv_epi8(q, lo, _mm256_cmpgt_epi64(lo, q));
      alignas(32) int64_t out[4];
      _mm256_store_si256(reinterpret_cast<__m256i*>(out), q);
      const std::ptrdiff_t at = i * ldy + j;
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
  }
}

}  // namespace octet::kernels::avx2
