// AVX-512 i-LayerNorm: row sums and sums of squares in int64 lanes (vpmuldq of even and odd
// dwords), the per-row mean, integer square root and factor in scalar code (once per row), the
// output product in int64 lanes (vpmullq). Bit-exact with kernels/ref/integer_layernorm_ref.cc;
// arithmetic in kernels/integer.h.
// GCC 12.2's AVX-512 intrinsics trip -Wmaybe-uninitialized on their undefined operands (GCC bug
// 105593): silenced for the intrinsics header only, as in kernels/avx512/math_avx512.h.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop

#include <cstdint>

#include "kernels/avx512/integer_avx512.h"
#include "kernels/integer_scalar.h"

namespace octet::kernels::avx512 {
namespace {

namespace is = integer_scalar;

inline __mmask16 tail16(int left) {
  return left >= 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << left) - 1);
}

}  // namespace

void ilayernorm(const int32_t* x, std::ptrdiff_t ldx, int rows, int cols, int shift,
                const int64_t* bias, int64_t* y, std::ptrdiff_t ldy) {
  const __m512i hi = _mm512_set1_epi32(kIlnInputMax), lo = _mm512_set1_epi32(-kIlnInputMax);
  const __m128i sh = _mm_cvtsi32_si128(shift);
  for (int i = 0; i < rows; ++i) {
    const int32_t* xi = x + i * ldx;
    int64_t* yi = y + i * ldy;
    auto load = [&](int j, __mmask16 m) {
      return _mm512_min_epi32(_mm512_max_epi32(_mm512_maskz_loadu_epi32(m, xi + j), lo), hi);
    };
    __m512i s64 = _mm512_setzero_si512();
    for (int j = 0; j < cols; j += 16) {
      const __m512i v = load(j, tail16(cols - j));
      s64 = _mm512_add_epi64(s64, _mm512_cvtepi32_epi64(_mm512_castsi512_si256(v)));
      s64 = _mm512_add_epi64(s64, _mm512_cvtepi32_epi64(_mm512_extracti64x4_epi64(v, 1)));
    }
    const int64_t mean = is::rounded_mean(_mm512_reduce_add_epi64(s64), cols);
    const __m512i vmean = _mm512_set1_epi32(static_cast<int32_t>(mean));
    __m512i q64 = _mm512_setzero_si512();
    for (int j = 0; j < cols; j += 16) {
      const __mmask16 m = tail16(cols - j);
      const __m512i d = _mm512_maskz_sub_epi32(m, load(j, m), vmean);  // |d| < 2^24
      const __m512i ds = _mm512_sra_epi32(d, sh);
      q64 = _mm512_add_epi64(q64, _mm512_mul_epi32(ds, ds));
      const __m512i ds_odd = _mm512_srli_epi64(ds, 32);
      q64 = _mm512_add_epi64(q64, _mm512_mul_epi32(ds_odd, ds_odd));
    }
    const uint64_t var = static_cast<uint64_t>(_mm512_reduce_add_epi64(q64));
    const __m512i factor = _mm512_set1_epi64(is::ilayernorm_factor(var, shift));
    for (int j = 0; j < cols; j += 16) {
      const __mmask16 m = tail16(cols - j);
      const __m512i d = _mm512_sub_epi32(load(j, m), vmean);
      for (int h = 0; h < 2; ++h) {
        const __mmask8 mh = static_cast<__mmask8>(m >> (8 * h));
        const __m256i dh = h ? _mm512_extracti64x4_epi64(d, 1) : _mm512_castsi512_si256(d);
        __m512i out = _mm512_srai_epi64(_mm512_mullo_epi64(_mm512_cvtepi32_epi64(dh), factor), 1);
        out = _mm512_add_epi64(out, _mm512_maskz_loadu_epi64(mh, bias + j + 8 * h));
        _mm512_mask_storeu_epi64(yi + j + 8 * h, mh, out);
      }
    }
  }
}

}  // namespace octet::kernels::avx512
