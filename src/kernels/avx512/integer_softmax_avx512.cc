// AVX-512 i-exp and i-softmax: 16 int32 lanes for the range reduction and the polynomial, the
// two 31 x 31-bit products (exp requantization, normalisation) in even/odd int64 lanes (vpmuludq).
// Bit-exact with kernels/ref/integer_softmax_ref.cc; arithmetic in kernels/integer.h.
//
// z = floor(t / x0) without a division: z is the largest integer in [0, 31] with z * x0 >= t
// (x0 < 0), found by a 5-step binary search on vpmulld products (|32 * x0| < 2^31 by contract).
// GCC 12.2's AVX-512 intrinsics trip -Wmaybe-uninitialized on their undefined operands (GCC bug
// 105593): silenced for the intrinsics header only, as in kernels/avx512/math_avx512.h.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop

#include <algorithm>
#include <cstdint>

#include "kernels/avx512/integer_avx512.h"
#include "kernels/integer_scalar.h"

namespace octet::kernels::avx512 {
namespace {

namespace is = integer_scalar;

constexpr int kRowCache = 2048;  // 8 KiB of stack

inline __mmask16 tail16(int left) {
  return left >= 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << left) - 1);
}

struct IexpVec {
  __m128i in_shift;
  __m512i x0, lo, b, c, m, s;
};

inline IexpVec load_params(const IexpParams& p) {
  IexpVec v;
  v.in_shift = _mm_cvtsi32_si128(p.input_shift);
  v.x0 = _mm512_set1_epi32(p.x0);
  v.lo = _mm512_set1_epi32(kIexpMaxZ * p.x0);
  v.b = _mm512_set1_epi32(p.b);
  v.c = _mm512_set1_epi32(p.c);
  v.m = _mm512_set1_epi64(p.multiplier);
  v.s = _mm512_set1_epi64(p.shift);
  return v;
}

// round_half_even(p / 2^s), s in [1, 63].
inline __m512i rhe64(__m512i p, __m512i s) {
  const __m512i one = _mm512_set1_epi64(1);
  const __m512i fl = _mm512_srav_epi64(p, s);
  const __m512i rem = _mm512_and_si512(p, _mm512_sub_epi64(_mm512_sllv_epi64(one, s), one));
  const __m512i half = _mm512_sllv_epi64(one, _mm512_sub_epi64(s, one));
  const __m512i bar = _mm512_sub_epi64(half, _mm512_and_si512(fl, one));
  return _mm512_mask_add_epi64(fl, _mm512_cmpgt_epi64_mask(rem, bar), fl, one);
}

// i-exp of 16 values d <= 0 (already relative to the row max).
inline __m512i iexp16(__m512i d, const IexpVec& p) {
  __m512i t = _mm512_sra_epi32(_mm512_min_epi32(d, _mm512_setzero_si512()), p.in_shift);
  t = _mm512_max_epi32(t, p.lo);
  __m512i z = _mm512_setzero_si512();
  for (int bit = 16; bit >= 1; bit >>= 1) {
    const __m512i cand = _mm512_add_epi32(z, _mm512_set1_epi32(bit));
    const __mmask16 ok = _mm512_cmple_epi32_mask(t, _mm512_mullo_epi32(cand, p.x0));
    z = _mm512_mask_mov_epi32(z, ok, cand);
  }
  const __m512i r = _mm512_sub_epi32(t, _mm512_mullo_epi32(z, p.x0));
  const __m512i poly = _mm512_add_epi32(_mm512_mullo_epi32(_mm512_add_epi32(r, p.b), r), p.c);
  // poly in (0, 2^31), multiplier < 2^31: vpmuludq of the even and odd dwords.
  const __m512i max_s = _mm512_set1_epi64(63);
  const __m512i lo32 = _mm512_set1_epi64(0xFFFFFFFFll);
  const __m512i s_even = _mm512_min_epi64(_mm512_add_epi64(_mm512_and_si512(z, lo32), p.s), max_s);
  const __m512i s_odd = _mm512_min_epi64(_mm512_add_epi64(_mm512_srli_epi64(z, 32), p.s), max_s);
  const __m512i q_even = rhe64(_mm512_mul_epu32(poly, p.m), s_even);
  const __m512i q_odd = rhe64(_mm512_mul_epu32(_mm512_srli_epi64(poly, 32), p.m), s_odd);
  return _mm512_mask_blend_epi32(0xAAAA, q_even, _mm512_slli_epi64(q_odd, 32));
}

}  // namespace

void iexp(const int32_t* x, std::size_t n, const IexpParams& p, int32_t* y) {
  const IexpVec pv = load_params(p);
  for (std::size_t i = 0; i < n; i += 16) {
    const __mmask16 m = tail16(static_cast<int>(std::min<std::size_t>(n - i, 16)));
    _mm512_mask_storeu_epi32(y + i, m, iexp16(_mm512_maskz_loadu_epi32(m, x + i), pv));
  }
}

void isoftmax(const int32_t* x, std::ptrdiff_t ldx, int rows, int cols, int valid,
              const IexpParams& p, uint8_t* y, std::ptrdiff_t ldy) {
  constexpr int kDown = kIsoftmaxSumBits - kIsoftmaxOutBits;
  const IexpVec pv = load_params(p);
  alignas(64) int32_t cache[kRowCache];
  const int64_t span = (int64_t{kIexpMaxZ} * p.x0) * (int64_t{1} << p.input_shift);  // < 0
  for (int i = 0; i < rows; ++i) {
    const int32_t* xi = x + i * ldx;
    uint8_t* yi = y + i * ldy;
    const int nv = std::clamp(valid, 0, cols);
    for (int j = nv; j < cols; j += 16)
      _mm_mask_storeu_epi8(yi + j, tail16(cols - j), _mm_setzero_si128());
    if (nv == 0) continue;
    __m512i vmax = _mm512_set1_epi32(INT32_MIN);
    for (int j = 0; j < nv; j += 16) {
      const __mmask16 m = tail16(nv - j);
      vmax = _mm512_mask_max_epi32(vmax, m, vmax, _mm512_maskz_loadu_epi32(m, xi + j));
    }
    const int32_t mx = _mm512_reduce_max_epi32(vmax);
    // x is first raised to mx + span (>= INT32_MIN), below which every value has z = 30 anyway,
    // so that x - mx cannot overflow int32.
    const __m512i vmx = _mm512_set1_epi32(mx);
    const __m512i floor_x =
        _mm512_set1_epi32(static_cast<int32_t>(std::max<int64_t>(int64_t{mx} + span, INT32_MIN)));
    auto exps = [&](int j, __mmask16 m) {
      const __m512i v = _mm512_max_epi32(_mm512_maskz_loadu_epi32(m, xi + j), floor_x);
      return _mm512_maskz_mov_epi32(m, iexp16(_mm512_sub_epi32(v, vmx), pv));
    };
    // Rows up to kRowCache values keep their exps on the stack for the second pass; longer rows
    // recompute them (the kernels never allocate).
    const bool cached = nv <= kRowCache;
    __m512i vsum = _mm512_setzero_si512();
    for (int j = 0; j < nv; j += 16) {
      const __m512i e = exps(j, tail16(nv - j));
      if (cached) _mm512_store_si512(cache + j, e);
      vsum = _mm512_add_epi32(vsum, e);
    }
    const int64_t sum = _mm512_reduce_add_epi32(vsum);
    const __m512i factor = _mm512_set1_epi64((int64_t{1} << kIsoftmaxSumBits) / sum);
    for (int j = 0; j < nv; j += 16) {
      const __mmask16 m = tail16(nv - j);
      const __m512i e = cached ? _mm512_load_si512(cache + j) : exps(j, m);
      const __m512i q_even = _mm512_srli_epi64(_mm512_mul_epu32(e, factor), kDown);
      const __m512i q_odd =
          _mm512_srli_epi64(_mm512_mul_epu32(_mm512_srli_epi64(e, 32), factor), kDown);
      const __m512i q = _mm512_mask_blend_epi32(0xAAAA, q_even, _mm512_slli_epi64(q_odd, 32));
      _mm512_mask_cvtusepi32_storeu_epi8(yi + j, m, q);
    }
  }
}

}  // namespace octet::kernels::avx512
