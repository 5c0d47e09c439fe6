// AVX2 i-exp and i-softmax: 8 int32 lanes for the range reduction and the polynomial, the two
// 31 x 31-bit products (exp requantization, normalisation) in even/odd int64 lanes (vpmuludq).
// Every int64 value here is non-negative, so logical shifts are the floor divisions. Bit-exact
// with kernels/ref/integer_softmax_ref.cc; arithmetic in kernels/integer.h. Row tails use
// vpmaskmovd loads and a byte loop for the stores.
//
// z = floor(t / x0) without a division: the largest z in [0, 31] with z * x0 >= t (x0 < 0), by a
// 5-step binary search on vpmulld products (|32 * x0| < 2^31 by contract).
#include <immintrin.h>

#include <algorithm>
#include <cstdint>

#include "kernels/avx2/integer_avx2.h"

namespace octet::kernels::avx2 {
namespace {

constexpr int kRowCache = 2048;  // 8 KiB of stack

inline __m256i tail_mask8(int left) {
  const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(std::min(left, 8)), idx);
}

struct IexpVec {
  __m128i in_shift;
  __m256i x0, lo, b, c, m, s;
};

inline IexpVec load_params(const IexpParams& p) {
  IexpVec v;
  v.in_shift = _mm_cvtsi32_si128(p.input_shift);
  v.x0 = _mm256_set1_epi32(p.x0);
  v.lo = _mm256_set1_epi32(kIexpMaxZ * p.x0);
  v.b = _mm256_set1_epi32(p.b);
  v.c = _mm256_set1_epi32(p.c);
  v.m = _mm256_set1_epi64x(p.multiplier);
  v.s = _mm256_set1_epi32(p.shift);
  return v;
}

// round_half_even(p / 2^s) for 0 <= p < 2^63, s in [1, 63] (int64 lanes).
inline __m256i rhe64_nonneg(__m256i p, __m256i s) {
  const __m256i one = _mm256_set1_epi64x(1);
  const __m256i fl = _mm256_srlv_epi64(p, s);
  const __m256i rem = _mm256_and_si256(p, _mm256_sub_epi64(_mm256_sllv_epi64(one, s), one));
  const __m256i half = _mm256_sllv_epi64(one, _mm256_sub_epi64(s, one));
  const __m256i bar = _mm256_sub_epi64(half, _mm256_and_si256(fl, one));
  return _mm256_sub_epi64(fl, _mm256_cmpgt_epi64(rem, bar));  // true = -1
}

// i-exp of 8 values d <= 0 (already relative to the row max).
inline __m256i iexp8(__m256i d, const IexpVec& p) {
  __m256i t = _mm256_sra_epi32(_mm256_min_epi32(d, _mm256_setzero_si256()), p.in_shift);
  t = _mm256_max_epi32(t, p.lo);
  __m256i z = _mm256_setzero_si256();
  for (int bit = 16; bit >= 1; bit >>= 1) {
    const __m256i cand = _mm256_add_epi32(z, _mm256_set1_epi32(bit));
    const __m256i too_far = _mm256_cmpgt_epi32(t, _mm256_mullo_epi32(cand, p.x0));
    z = _mm256_blendv_epi8(cand, z, too_far);
  }
  const __m256i r = _mm256_sub_epi32(t, _mm256_mullo_epi32(z, p.x0));
  const __m256i poly =
      _mm256_add_epi32(_mm256_mullo_epi32(_mm256_add_epi32(r, p.b), r), p.c);  // (0, 2^31)
  const __m256i s = _mm256_min_epi32(_mm256_add_epi32(z, p.s), _mm256_set1_epi32(63));
  const __m256i lo32 = _mm256_set1_epi64x(0xFFFFFFFFll);
  const __m256i q_even = rhe64_nonneg(_mm256_mul_epu32(poly, p.m), _mm256_and_si256(s, lo32));
  const __m256i q_odd =
      rhe64_nonneg(_mm256_mul_epu32(_mm256_srli_epi64(poly, 32), p.m), _mm256_srli_epi64(s, 32));
  return _mm256_blend_epi32(q_even, _mm256_slli_epi64(q_odd, 32), 0xAA);
}

}  // namespace

void iexp(const int32_t* x, std::size_t n, const IexpParams& p, int32_t* y) {
  const IexpVec pv = load_params(p);
  for (std::size_t i = 0; i < n; i += 8) {
    const __m256i m = tail_mask8(static_cast<int>(std::min<std::size_t>(n - i, 8)));
    _mm256_maskstore_epi32(y + i, m, iexp8(_mm256_maskload_epi32(x + i, m), pv));
  }
}

void isoftmax(const int32_t* x, std::ptrdiff_t ldx, int rows, int cols, int valid,
              const IexpParams& p, uint8_t* y, std::ptrdiff_t ldy) {
  constexpr int kDown = kIsoftmaxSumBits - kIsoftmaxOutBits;
  const IexpVec pv = load_params(p);
  alignas(32) int32_t cache[kRowCache];
  const int64_t span = (int64_t{kIexpMaxZ} * p.x0) * (int64_t{1} << p.input_shift);  // < 0
  for (int i = 0; i < rows; ++i) {
    const int32_t* xi = x + i * ldx;
    uint8_t* yi = y + i * ldy;
    const int nv = std::clamp(valid, 0, cols);
    std::fill(yi + nv, yi + cols, uint8_t{0});
    if (nv == 0) continue;
    __m256i vmax = _mm256_set1_epi32(INT32_MIN);
    for (int j = 0; j < nv; j += 8) {
      const __m256i m = tail_mask8(nv - j);
      const __m256i v = _mm256_maskload_epi32(xi + j, m);
      vmax = _mm256_max_epi32(vmax, _mm256_blendv_epi8(_mm256_set1_epi32(INT32_MIN), v, m));
    }
    alignas(32) int32_t lanes[8];
    _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), vmax);
    const int32_t mx = *std::max_element(lanes, lanes + 8);
    // x is first raised to mx + span (>= INT32_MIN), below which every value has z = 30 anyway,
    // so that x - mx cannot overflow int32.
    const __m256i vmx = _mm256_set1_epi32(mx);
    const __m256i floor_x =
        _mm256_set1_epi32(static_cast<int32_t>(std::max<int64_t>(int64_t{mx} + span, INT32_MIN)));
    auto exps = [&](int j, __m256i m) {
      const __m256i v = _mm256_max_epi32(_mm256_maskload_epi32(xi + j, m), floor_x);
      return _mm256_and_si256(m, iexp8(_mm256_sub_epi32(v, vmx), pv));
    };
    // Rows up to kRowCache values keep their exps on the stack for the second pass; longer rows
    // recompute them (the kernels never allocate).
    const bool cached = nv <= kRowCache;
    __m256i vsum = _mm256_setzero_si256();
    for (int j = 0; j < nv; j += 8) {
      const __m256i e = exps(j, tail_mask8(nv - j));
      if (cached) _mm256_store_si256(reinterpret_cast<__m256i*>(cache + j), e);
      vsum = _mm256_add_epi32(vsum, e);
    }
    _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), vsum);
    int64_t sum = 0;
    for (int32_t v : lanes) sum += v;
    const __m256i factor = _mm256_set1_epi64x((int64_t{1} << kIsoftmaxSumBits) / sum);
    for (int j = 0; j < nv; j += 8) {
      const __m256i e = cached ? _mm256_load_si256(reinterpret_cast<const __m256i*>(cache + j))
                               : exps(j, tail_mask8(nv - j));
      const __m256i q_even = _mm256_srli_epi64(_mm256_mul_epu32(e, factor), kDown);
      const __m256i q_odd =
          _mm256_srli_epi64(_mm256_mul_epu32(_mm256_srli_epi64(e, 32), factor), kDown);
      const __m256i q = _mm256_blend_epi32(q_even, _mm256_slli_epi64(q_odd, 32), 0xAA);
      const __m128i w = _mm_packus_epi32(_mm256_castsi256_si128(q), _mm256_extracti128_si256(q, 1));
      const __m128i b = _mm_packus_epi16(w, w);  // saturates 256 to 255
      if (nv - j >= 8) {
        _mm_storel_epi64(reinterpret_cast<__m128i*>(yi + j), b);
      } else {
        alignas(16) uint8_t tmp[16];
        _mm_store_si128(reinterpret_cast<__m128i*>(tmp), b);
        std::copy(tmp, tmp + (nv - j), yi + j);
      }
    }
  }
}

}  // namespace octet::kernels::avx2
