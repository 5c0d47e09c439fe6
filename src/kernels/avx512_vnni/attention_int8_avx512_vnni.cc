// AVX-512 VNNI INT8 single-head attention: the kernel of
// kernels/avx512/attention_int8_avx512_impl.h on vpdpbusd (one instruction per 64 u8 x s8
// products), in 4 x 4-zmm tiles (16 accumulators + 4 loads + 1 broadcast). 6 x 4 (24
// accumulators) fits the 32 registers on paper, but GCC 12 then copied and spilled accumulators
// in the k loops of both tiles (76 and 73 stack references; 12 and 11 at 4 x 4): 4 x 4 runs the
// 12 heads of BERT-base at t = 128 in 242-258 us against 264-283 us (Zen 4, alternated runs).
#include "kernels/avx512/attention_int8_avx512_impl.h"
#include "kernels/avx512_vnni/int8_avx512_vnni.h"

namespace octet::kernels::avx512_vnni {
namespace {

struct DotVnni {
  static constexpr int kRows = 4;
  static constexpr int kNch = 4;
  using U8 = __m512i;
  using S8 = __m512i;
  static U8 u8(__m512i a) { return a; }
  static S8 s8(__m512i b) { return b; }
  static __m512i step(__m512i acc, U8 a, S8 b) { return _mm512_dpbusd_epi32(acc, a, b); }
};

}  // namespace

float attention_head_s8(const float* q, const float* k, const float* v, std::size_t ld_qkv,
                        std::size_t rows, std::size_t t, std::size_t d, float scale, float* out,
                        std::size_t ld_out, float* scratch, const float* next_q) {
  return avx512_attention::attention_head_s8_impl<DotVnni>(q, k, v, ld_qkv, rows, t, d, scale, out,
                                                           ld_out, scratch, next_q);
}

}  // namespace octet::kernels::avx512_vnni
