// AVX2 i-LayerNorm: row sums and sums of squares in int64 lanes (vpmuldq of even and odd dwords),
// the per-row mean, integer square root and factor in scalar code (once per row), the output
// product as |d| * factor in vpmuludq with the floor of the signed half restored afterwards.
// Bit-exact with kernels/ref/integer_layernorm_ref.cc; arithmetic in kernels/integer.h.
#include <immintrin.h>

#include <algorithm>
#include <cstdint>

#include "kernels/avx2/integer_avx2.h"
#include "kernels/integer_scalar.h"

namespace octet::kernels::avx2 {
namespace {

namespace is = integer_scalar;

inline __m256i tail_mask8(int left) {
  const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(std::min(left, 8)), idx);
}

inline int64_t hsum64(__m256i v) {
  alignas(32) int64_t l[4];
  _mm256_store_si256(reinterpret_cast<__m256i*>(l), v);
  return l[0] + l[1] + l[2] + l[3];
}

}  // namespace

void ilayernorm(const int32_t* x, std::ptrdiff_t ldx, int rows, int cols, int shift,
                const int64_t* bias, int64_t* y, std::ptrdiff_t ldy) {
  const __m256i hi = _mm256_set1_epi32(kIlnInputMax), lo = _mm256_set1_epi32(-kIlnInputMax);
  const __m128i sh = _mm_cvtsi32_si128(shift);
  const __m256i one = _mm256_set1_epi64x(1);
  for (int i = 0; i < rows; ++i) {
    const int32_t* xi = x + i * ldx;
    int64_t* yi = y + i * ldy;
    auto load = [&](int j, __m256i m) {  // masked-off lanes read 0
      return _mm256_and_si256(
          m, _mm256_min_epi32(_mm256_max_epi32(_mm256_maskload_epi32(xi + j, m), lo), hi));
    };
    __m256i s64 = _mm256_setzero_si256();
    for (int j = 0; j < cols; j += 8) {
      const __m256i v = load(j, tail_mask8(cols - j));
      s64 = _mm256_add_epi64(s64, _mm256_cvtepi32_epi64(_mm256_castsi256_si128(v)));
      s64 = _mm256_add_epi64(s64, _mm256_cvtepi32_epi64(_mm256_extracti128_si256(v, 1)));
    }
    const int64_t mean = is::rounded_mean(hsum64(s64), cols);
    const __m256i vmean = _mm256_set1_epi32(static_cast<int32_t>(mean));
    __m256i q64 = _mm256_setzero_si256();
    for (int j = 0; j < cols; j += 8) {
      const __m256i m = tail_mask8(cols - j);
      const __m256i d = _mm256_and_si256(m, _mm256_sub_epi32(load(j, m), vmean));  // |d| < 2^24
      const __m256i ds = _mm256_sra_epi32(d, sh);
      q64 = _mm256_add_epi64(q64, _mm256_mul_epi32(ds, ds));
      const __m256i ds_odd = _mm256_srli_epi64(ds, 32);
      q64 = _mm256_add_epi64(q64, _mm256_mul_epi32(ds_odd, ds_odd));
    }
    const uint64_t var = static_cast<uint64_t>(hsum64(q64));
    const __m256i factor = _mm256_set1_epi64x(is::ilayernorm_factor(var, shift));  // <= 2^31
    for (int j = 0; j < cols; j += 8) {
      const __m256i m = tail_mask8(cols - j);
      const __m256i d = _mm256_sub_epi32(load(j, m), vmean);
      for (int h = 0; h < 2; ++h) {
        const __m256i dh =
            _mm256_cvtepi32_epi64(h ? _mm256_extracti128_si256(d, 1) : _mm256_castsi256_si128(d));
        const __m256i neg = _mm256_cmpgt_epi64(_mm256_setzero_si256(), dh);
        const __m256i mag = _mm256_sub_epi64(_mm256_xor_si256(dh, neg), neg);  // |d|
        const __m256i p = _mm256_mul_epu32(mag, factor);                       // < 2^55
        // floor(d * f / 2): p >> 1 for d >= 0, -((p + 1) >> 1) for d < 0.
        const __m256i half = _mm256_srli_epi64(_mm256_add_epi64(p, _mm256_and_si256(neg, one)), 1);
        __m256i out = _mm256_sub_epi64(_mm256_xor_si256(half, neg), neg);
        const __m256i mh =
            _mm256_cvtepi32_epi64(h ? _mm256_extracti128_si256(m, 1) : _mm256_castsi256_si128(m));
        out = _mm256_add_epi64(
            out, _mm256_maskload_epi64(reinterpret_cast<const long long*>(bias + j + 4 * h), mh));
        _mm256_maskstore_epi64(reinterpret_cast<long long*>(yi + j + 4 * h), mh, out);
      }
    }
  }
}

}  // namespace octet::kernels::avx2
