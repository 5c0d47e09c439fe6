// AVX-512 single-head self-attention (contract in kernels/fp32.h):
//   (t, d) Q, K, V  ->  S = scale Q K^T  (t, t)  ->  P = softmax(S)  ->  O = P V  (t, d).
//
// K is first transposed into scratch as K^T (d, tp), tp = t rounded up to 16 and zero padded,
// so that a row of scores is a sum over c of q[c] * K^T[c, :] with whole-zmm loads and no
// horizontal reductions. Queries are processed in blocks of R <= 4 rows:
//   scores  R x (16 NCH) tile: per c, NCH loads of K^T, R broadcasts of q, R * NCH FMAs
//           (4 x 4 = 16 accumulators, 16 FMAs per 8 loads/broadcasts);
//   softmax on the R score rows (only the first t columns);
//   P V     R x (16 NCH) tile of O: per key j, NCH loads of a V row, R broadcasts of p[j].
// The last d chunk is masked, so d need not be a multiple of 16. Accumulation order differs
// from the reference (per-lane partial sums), hence a d- and t-dependent tolerance in tests.
#include <cstddef>

#include "kernels/avx512/fp32_avx512.h"
#include "kernels/avx512/fp32_row_avx512.h"
#include "kernels/avx512/math_avx512.h"
#include "kernels/fp32.h"

namespace octet::kernels::avx512 {
namespace {

template <int R, int NCH>
void scores_tile(const float* q, std::size_t ld_q, const float* kt, std::size_t tp, std::size_t d,
                 float* s) {
  __m512 acc[R][NCH];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 8
    for (int u = 0; u < NCH; ++u) acc[r][u] = _mm512_setzero_ps();
  for (std::size_t c = 0; c < d; ++c) {
    __m512 kv[NCH];
#pragma GCC unroll 8
    for (int u = 0; u < NCH; ++u) kv[u] = _mm512_loadu_ps(kt + c * tp + 16 * u);
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      const __m512 b = _mm512_set1_ps(q[r * ld_q + c]);
#pragma GCC unroll 8
      for (int u = 0; u < NCH; ++u) acc[r][u] = _mm512_fmadd_ps(b, kv[u], acc[r][u]);
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 8
    for (int u = 0; u < NCH; ++u) _mm512_storeu_ps(s + r * tp + 16 * u, acc[r][u]);
}

template <int R, int NCH>
void pv_tile(const float* p, std::size_t ldp, std::size_t t, const float* v, std::size_t ld_v,
             float* o, std::size_t ld_o, __mmask16 last) {
  __m512 acc[R][NCH];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 8
    for (int u = 0; u < NCH; ++u) acc[r][u] = _mm512_setzero_ps();
  for (std::size_t j = 0; j < t; ++j) {
    __m512 vv[NCH];
#pragma GCC unroll 8
    for (int u = 0; u < NCH; ++u) {
      vv[u] = u == NCH - 1 ? _mm512_maskz_loadu_ps(last, v + j * ld_v + 16 * u)
                           : _mm512_loadu_ps(v + j * ld_v + 16 * u);
    }
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      const __m512 b = _mm512_set1_ps(p[r * ldp + j]);
#pragma GCC unroll 8
      for (int u = 0; u < NCH; ++u) acc[r][u] = _mm512_fmadd_ps(b, vv[u], acc[r][u]);
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) {
#pragma GCC unroll 8
    for (int u = 0; u < NCH; ++u) {
      if (u == NCH - 1) {
        _mm512_mask_storeu_ps(o + r * ld_o + 16 * u, last, acc[r][u]);
      } else {
        _mm512_storeu_ps(o + r * ld_o + 16 * u, acc[r][u]);
      }
    }
  }
}

template <int R>
void row_block(const float* q, const float* v, std::size_t ld_qkv, std::size_t t, std::size_t d,
               float scale, const float* kt, std::size_t tp, float* s, float* out,
               std::size_t ld_out) {
  for (std::size_t jb = 0; jb < tp; jb += 64) {
    switch ((tp - jb) >= 64 ? 4 : (tp - jb) / 16) {
      case 4:
        scores_tile<R, 4>(q, ld_qkv, kt + jb, tp, d, s + jb);
        break;
      case 3:
        scores_tile<R, 3>(q, ld_qkv, kt + jb, tp, d, s + jb);
        break;
      case 2:
        scores_tile<R, 2>(q, ld_qkv, kt + jb, tp, d, s + jb);
        break;
      default:
        scores_tile<R, 1>(q, ld_qkv, kt + jb, tp, d, s + jb);
        break;
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) softmax_row(s + r * tp, t, t, scale);
  for (std::size_t cb = 0; cb < d; cb += 64) {
    const std::size_t rem = d - cb < 64 ? d - cb : 64;
    const int nch = static_cast<int>((rem + 15) / 16);
    const __mmask16 last = tail_mask(rem - 16 * (nch - 1));
    float* o = out + cb;
    switch (nch) {
      case 4:
        pv_tile<R, 4>(s, tp, t, v + cb, ld_qkv, o, ld_out, last);
        break;
      case 3:
        pv_tile<R, 3>(s, tp, t, v + cb, ld_qkv, o, ld_out, last);
        break;
      case 2:
        pv_tile<R, 2>(s, tp, t, v + cb, ld_qkv, o, ld_out, last);
        break;
      default:
        pv_tile<R, 1>(s, tp, t, v + cb, ld_qkv, o, ld_out, last);
        break;
    }
  }
}

}  // namespace

void attention_head_f32(const float* q, const float* k, const float* v, std::size_t ld_qkv,
                        std::size_t t, std::size_t d, float scale, float* out, std::size_t ld_out,
                        float* scratch) {
  const std::size_t tp = (t + 15) / 16 * 16;
  float* kt = scratch;
  float* s = scratch + d * tp;
  // K^T 16 keys at a time: one gather per channel reads the same column of 16 K rows (a scalar
  // transpose costs more than the whole Q K^T product); padded keys are gathered as zeros.
  const __m512i rows =
      _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                         _mm512_set1_epi32(static_cast<int>(ld_qkv)));
  for (std::size_t j0 = 0; j0 < tp; j0 += 16) {
    const __mmask16 m = tail_mask(t - j0);
    const float* base = k + j0 * ld_qkv;
    for (std::size_t c = 0; c < d; ++c) {
      _mm512_storeu_ps(kt + c * tp + j0,
                       _mm512_mask_i32gather_ps(_mm512_setzero_ps(), m, rows, base + c, 4));
    }
  }

  for (std::size_t i0 = 0; i0 < t; i0 += kAttentionRowBlock) {
    const float* qi = q + i0 * ld_qkv;
    float* oi = out + i0 * ld_out;
    switch (t - i0 >= 4 ? 4 : t - i0) {
      case 4:
        row_block<4>(qi, v, ld_qkv, t, d, scale, kt, tp, s, oi, ld_out);
        break;
      case 3:
        row_block<3>(qi, v, ld_qkv, t, d, scale, kt, tp, s, oi, ld_out);
        break;
      case 2:
        row_block<2>(qi, v, ld_qkv, t, d, scale, kt, tp, s, oi, ld_out);
        break;
      default:
        row_block<1>(qi, v, ld_qkv, t, d, scale, kt, tp, s, oi, ld_out);
        break;
    }
  }
}

}  // namespace octet::kernels::avx512
