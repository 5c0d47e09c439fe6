// AVX-512 (F/BW, no VNNI) INT8 single-head attention: the kernel of
// kernels/avx512/attention_int8_avx512_impl.h with the u8 x s8 dot products of 4 bytes as two
// vpmaddwd of the even and odd bytes widened to 16 bits (u8 zero-extended, s8 sign-extended:
// products <= 255 x 128, pairs <= 65,280, exact in int32), the same integers as vpdpbusd. Tiles
// of 6 x 2 zmm: the widened operands take two registers each.
#include "kernels/avx512/attention_int8_avx512_impl.h"
#include "kernels/avx512/int8_avx512.h"

namespace octet::kernels::avx512 {
namespace {

struct DotBw {
  static constexpr int kRows = 6;
  static constexpr int kNch = 2;
  struct U8 {
    __m512i even, odd;
  };
  struct S8 {
    __m512i even, odd;
  };
  static U8 u8(__m512i a) {
    return {_mm512_and_si512(a, _mm512_set1_epi16(0x00ff)), _mm512_srli_epi16(a, 8)};
  }
  static S8 s8(__m512i b) {
    return {_mm512_srai_epi16(_mm512_slli_epi16(b, 8), 8), _mm512_srai_epi16(b, 8)};
  }
  static __m512i step(__m512i acc, const U8& a, const S8& b) {
    return _mm512_add_epi32(_mm512_add_epi32(acc, _mm512_madd_epi16(a.even, b.even)),
                            _mm512_madd_epi16(a.odd, b.odd));
  }
};

}  // namespace

float attention_head_s8(const float* q, const float* k, const float* v, std::size_t ld_qkv,
                        std::size_t rows, std::size_t t, std::size_t d, float scale, float* out,
                        std::size_t ld_out, float* scratch, const float* next_q) {
  return avx512_attention::attention_head_s8_impl<DotBw>(q, k, v, ld_qkv, rows, t, d, scale, out,
                                                         ld_out, scratch, next_q);
}

}  // namespace octet::kernels::avx512
