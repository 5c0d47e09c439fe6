// AVX-512 VNNI INT8 GEMM (vpdpbusd), register tiles 8x48 and 3x112 (kernels/avx512/
// gemm_int8_avx512_impl.h), fused epilogues s32 / f32 (+GELU/ReLU, residual) / s8 / u8.
//
// vpdpbusd multiplies u8 by s8 and adds 4 products per int32 lane exactly, so:
//   u8 activations are used as they are (packed only when K is not a multiple of 4), and the
//   epilogue removes za * colsum[j] (za = the activation zero point);
//   s8 activations are packed with +128 (x ^ 0x80 maps [-128, 127] onto [0, 255]) and the
//   epilogue removes 128 * colsum[j] (QUANT_SPEC D.7): exact, no saturation anywhere.
// Packed B: 16-column panels, each [ceil(K/4) groups][16 columns][4 k] int8, k padded with 0.
#include "kernels/avx512/gemm_int8_avx512_impl.h"
#include "kernels/avx512_vnni/int8_avx512_vnni.h"

namespace octet::kernels::avx512_vnni {
namespace {

struct DotVnni {
  static __m512i step(__m512i acc, __m512i a, __m512i b) { return _mm512_dpbusd_epi32(acc, a, b); }
};

int groups_of(int k) { return (k + 3) / 4; }

// Workspace: the packed A rows (64-byte aligned size), then the K-blocking partial sums.
std::size_t packed_a_bytes(int rows, int k) {
  return (static_cast<std::size_t>(rows) * static_cast<std::size_t>(groups_of(k)) * 4 + 63) / 64 *
         64;
}

}  // namespace

std::size_t gemm_packed_b_size(int n, int k) {
  const std::size_t panels = static_cast<std::size_t>((n + 15) / 16);
  return panels * static_cast<std::size_t>(groups_of(k)) * 64;
}

void gemm_pack_b(const int8_t* b, std::ptrdiff_t ldb, int n, int k, void* packed) {
  const int groups = groups_of(k);
  const int panels = (n + 15) / 16;
  int8_t* out = static_cast<int8_t*>(packed);
  for (int pn = 0; pn < panels; ++pn) {
    for (int g = 0; g < groups; ++g) {
      for (int c = 0; c < 16; ++c) {
        const int j = 16 * pn + c;
        for (int t = 0; t < 4; ++t) {
          const int kk = 4 * g + t;
          *out++ = (j < n && kk < k) ? b[j * ldb + kk] : int8_t{0};
        }
      }
    }
  }
}

std::size_t gemm_workspace_size(int rows, int k) {
  return packed_a_bytes(rows, k) + avx512_gemm::partial_bytes(rows);
}

void gemm(const GemmParams& p, int m0, int m1, int n0, int n1, void* workspace) {
  if (m1 <= m0 || n1 <= n0) return;
  const int groups = groups_of(p.k);
  const bool is_s8 = p.a_dtype == ActDtype::s8;
  const uint8_t* a = static_cast<const uint8_t*>(p.a) + m0 * p.lda;
  std::ptrdiff_t lda = p.lda;
  if (is_s8 || p.k % 4 != 0) {
    // Pack the rows once for all column panels: +128 for s8, zero padding of the last group.
    uint8_t* ws = static_cast<uint8_t*>(workspace);
    const std::ptrdiff_t ld = static_cast<std::ptrdiff_t>(groups) * 4;
    const __m512i flip = _mm512_set1_epi8(is_s8 ? static_cast<char>(0x80) : 0);
    for (int i = 0; i < m1 - m0; ++i) {
      const uint8_t* src = a + i * p.lda;
      uint8_t* dst = ws + i * ld;
      for (std::ptrdiff_t kk = 0; kk < ld; kk += 64) {
        const std::ptrdiff_t left = p.k - kk;
        const __mmask64 in = left >= 64 ? ~__mmask64{0} : left > 0 ? (__mmask64{1} << left) - 1 : 0;
        const __mmask64 out = ld - kk >= 64 ? ~__mmask64{0} : (__mmask64{1} << (ld - kk)) - 1;
        const __m512i v = _mm512_maskz_mov_epi8(
            in, _mm512_xor_si512(_mm512_maskz_loadu_epi8(in, src + kk), flip));
        _mm512_mask_storeu_epi8(dst + kk, out, v);
      }
    }
    a = ws;
    lda = ld;
  }
  const int32_t za = is_s8 ? 128 : p.a_zero_point;
  int32_t* partial =
      reinterpret_cast<int32_t*>(static_cast<uint8_t*>(workspace) + packed_a_bytes(m1 - m0, p.k));
  avx512_gemm::gemm_blocks<DotVnni>(p, m0, m1, n0, n1, a, lda, groups, za, partial);
}

}  // namespace octet::kernels::avx512_vnni
