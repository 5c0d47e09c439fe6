// AVX-512 (no VNNI) INT8 GEMM: exact int16 widening path, register tiles 8x48 and 3x112
// (kernels/avx512/gemm_int8_avx512_impl.h), the same fused epilogues as the VNNI kernel.
//
// vpmaddubsw would add two u8 x s8 products into a saturating int16 (255*127*2 > 32767,
// QUANT_SPEC D.6/D.8). Instead both operands are widened to int16 once, at packing time, and
// vpmaddwd adds two exact int16 products into int32: |(a - za) * b| <= 255 * 128, so no weight or
// activation range is restricted and the result equals the reference bit for bit. The price is
// half the multiply width of vpdpbusd (32 instead of 64 MACs per instruction) plus a vpaddd.
//   A rows are packed as int16 (a - za), za = 0 for s8: no column-sum correction needed.
//   Packed B: 16-column panels, each [ceil(K/2) pairs][16 columns][2 k] int16, k padded with 0.
#include "kernels/avx512/gemm_int8_avx512_impl.h"
#include "kernels/avx512/int8_avx512.h"
#include "kernels/pack_int16.h"

namespace octet::kernels::avx512 {
namespace {

struct DotInt16 {
  static __m512i step(__m512i acc, __m512i a, __m512i b) {
    return _mm512_add_epi32(acc, _mm512_madd_epi16(a, b));
  }
};

int pairs_of(int k) { return (k + 1) / 2; }  // local: no inline code shared across ISA flags

// Workspace: the packed int16 A rows (64-byte aligned size), then the K-blocking partial sums.
std::size_t packed_a_bytes(int rows, int k) {
  return (static_cast<std::size_t>(rows) * static_cast<std::size_t>(pairs_of(k)) * 4 + 63) / 64 *
         64;
}

template <typename T>
void pack_a_rows(const T* a, std::ptrdiff_t lda, int rows, int k, int32_t za, int16_t* out,
                 std::ptrdiff_t ld_out) {
  for (int i = 0; i < rows; ++i) {
    const T* src = a + i * lda;
    int16_t* dst = out + i * ld_out;
    for (int kk = 0; kk < k; ++kk) dst[kk] = static_cast<int16_t>(int32_t{src[kk]} - za);
    for (int kk = k; kk < ld_out; ++kk) dst[kk] = 0;
  }
}

}  // namespace

std::size_t gemm_workspace_size(int rows, int k) {
  return packed_a_bytes(rows, k) + avx512_gemm::partial_bytes(rows);
}

void gemm(const GemmParams& p, int m0, int m1, int n0, int n1, void* workspace) {
  if (m1 <= m0 || n1 <= n0) return;
  const int pairs = pairs_of(p.k);
  const std::ptrdiff_t ld = static_cast<std::ptrdiff_t>(pairs) * 2;  // int16 elements
  int16_t* ws = static_cast<int16_t*>(workspace);
  if (p.a_dtype == ActDtype::s8) {
    pack_a_rows(static_cast<const int8_t*>(p.a) + m0 * p.lda, p.lda, m1 - m0, p.k, 0, ws, ld);
  } else {
    pack_a_rows(static_cast<const uint8_t*>(p.a) + m0 * p.lda, p.lda, m1 - m0, p.k, p.a_zero_point,
                ws, ld);
  }
  int32_t* partial =
      reinterpret_cast<int32_t*>(static_cast<uint8_t*>(workspace) + packed_a_bytes(m1 - m0, p.k));
  avx512_gemm::gemm_blocks<DotInt16>(p, m0, m1, n0, n1, reinterpret_cast<const uint8_t*>(ws),
                                     ld * 2, pairs, /*za=*/0, partial);
}

void requantize(const int32_t* x, int rows, int cols, std::ptrdiff_t ldx, const int32_t* bias,
                const int32_t* multiplier, const int32_t* shift, int32_t out_zero_point,
                GemmOutput output, void* y, std::ptrdiff_t ldy) {
  avx512_gemm::requantize_rows(x, rows, cols, ldx, bias, multiplier, shift, out_zero_point, output,
                               y, ldy);
}

}  // namespace octet::kernels::avx512
