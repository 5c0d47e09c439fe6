// AVX-512 single-head self-attention (contract in kernels/fp32.h):
//   (t, d) Q, K, V  ->  S = scale Q K^T  (t, t)  ->  P = softmax(S)  ->  O = P V  (t, d).
//
// Once per head, into scratch (tp = t and dp = d rounded up to 16, zero padded):
//   K^T  (d, tp) in panels of W = 16 kScoreNch keys, panel jb stored d x W contiguously, so a
//        scores tile reads consecutive memory; built by 16 x 16 in-register transposes
//        (unpack / shuffle, 64 shuffles per block) instead of one gather per channel;
//   V    (t, dp) copied to contiguous rows. In place its row stride is the fused QKV width
//        (3 * 768 floats = 9216 bytes for BERT-base, 16 mod 64 cache lines): the 128 rows of a
//        head fall into 16 of the 64 L1 sets and were re-streamed from L2 by every row block.
// Queries are processed in blocks of R <= kRows rows:
//   scores  R x (16 NCH) tiles: per c, NCH loads of K^T, R broadcasts of q, R * NCH FMAs;
//   softmax on the R score rows: max, then one pass exp((s - max) scale) with the row sum; the
//           1 / sum is applied to the R output rows at the end of P V instead of to P;
//   P V     R x (16 NCH) tiles of O: per key j, NCH loads of a V row, R broadcasts of p[j].
// kRows = 6 and NCH = 4 give 24 accumulators + 4 loads + 1 broadcast of the 32 zmm registers
// (no spills), and 10 loads per 24 FMAs, below the 2 loads per 2 FMAs per cycle the core can
// issue; against 4 x 4 tiles they halve the re-reads of K^T and V per query row.
// The returned max |O| is taken on the stored tiles as unsigned integer maxima of the bit
// patterns with the sign cleared, on which every NaN compares above +inf: a NaN output makes
// the result NaN (a float max would drop it).
// Accumulation order differs from the reference (per-lane partial sums, 1 / sum applied last),
// hence a d- and t-dependent tolerance in tests.
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "kernels/avx512/fp32_avx512.h"
#include "kernels/avx512/fp32_row_avx512.h"
#include "kernels/avx512/math_avx512.h"
#include "kernels/avx512/transpose_avx512.h"
#include "kernels/fp32.h"

namespace octet::kernels::avx512 {
namespace {

constexpr int kRows = 6;      // query rows per block
constexpr int kScoreNch = 4;  // zmm of keys per scores tile
constexpr int kPvNch = 4;     // zmm of channels per P V tile
constexpr std::size_t kPanel = 16 * kScoreNch;
static_assert(kRows <= static_cast<int>(kAttentionRowBlock), "scratch sized for the row block");

// In place on R rows of stride ld: x[j] = exp(scale x[j] - scale max) for j < t, with max from
// vmax; inv[r] = 1 / row sum. One FMA forms the argument: the rounding of scale max shifts a
// whole row by the same amount, which the normalisation cancels. The R rows go through the exp
// together: R independent chains of the ~50-cycle polynomial for the out-of-order core to
// overlap.
template <int R>
void softmax_exp_rows(float* x, std::size_t ld, std::size_t t, float scale, const __m512* vmax,
                      float* inv) {
  __m512 mx[R], vsum[R];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) {
    mx[r] = _mm512_set1_ps(_mm512_reduce_max_ps(vmax[r]) * scale);
    vsum[r] = _mm512_setzero_ps();
  }
  const __m512 vscale = _mm512_set1_ps(scale);
  for (std::size_t j = 0; j < t; j += 16) {
    const __mmask16 m = tail_mask(t - j);
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      float* xr = x + r * ld + j;
      const __m512 e = softmax_exp_ps(_mm512_fmsub_ps(_mm512_loadu_ps(xr), vscale, mx[r]));
      _mm512_storeu_ps(xr, e);
      vsum[r] = _mm512_mask_add_ps(vsum[r], m, vsum[r], e);
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) inv[r] = 1.0f / _mm512_reduce_add_ps(vsum[r]);
}

// K (t, d, row stride ld) -> K^T panels (see the file comment); keys t..tp-1 are zero.
void pack_kt(const float* k, std::size_t ld, std::size_t t, std::size_t d, std::size_t tp,
             float* kt) {
  for (std::size_t j0 = 0; j0 < tp; j0 += 16) {
    const std::size_t jb = j0 / kPanel * kPanel;
    const std::size_t w = tp - jb < kPanel ? tp - jb : kPanel;
    float* panel = kt + jb * d + (j0 - jb);
    const std::size_t jn = t - j0 < 16 ? t - j0 : 16;
    for (std::size_t c0 = 0; c0 < d; c0 += 16) {
      const __mmask16 cm = tail_mask(d - c0);
      __m512 r[16];
#pragma GCC unroll 16
      for (std::size_t i = 0; i < 16; ++i) {
        r[i] = i < jn ? _mm512_maskz_loadu_ps(cm, k + (j0 + i) * ld + c0) : _mm512_setzero_ps();
      }
      transpose16(r);
      const std::size_t cn = d - c0 < 16 ? d - c0 : 16;
      for (std::size_t i = 0; i < cn; ++i) _mm512_storeu_ps(panel + (c0 + i) * w, r[i]);
    }
  }
}

// Also folds the scores of keys < `valid` (counted from the tile's first key) into vmax[r].
template <int R, int NCH>
void scores_tile(const float* q, std::size_t ld_q, const float* panel, std::size_t d, float* s,
                 std::size_t ld_s, std::size_t valid, __m512* vmax) {
  __m512 acc[R][NCH];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 8
    for (int u = 0; u < NCH; ++u) acc[r][u] = _mm512_setzero_ps();
  for (std::size_t c = 0; c < d; ++c) {
    __m512 kv[NCH];
#pragma GCC unroll 8
    for (int u = 0; u < NCH; ++u) kv[u] = _mm512_loadu_ps(panel + c * (16 * NCH) + 16 * u);
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      const __m512 b = _mm512_set1_ps(q[r * ld_q + c]);
#pragma GCC unroll 8
      for (int u = 0; u < NCH; ++u) acc[r][u] = _mm512_fmadd_ps(b, kv[u], acc[r][u]);
    }
  }
#pragma GCC unroll 8
  for (int u = 0; u < NCH; ++u) {
    const __mmask16 m = tail_mask(valid > 16u * u ? valid - 16u * u : 0);
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      _mm512_storeu_ps(s + r * ld_s + 16 * u, acc[r][u]);
      vmax[r] = _mm512_mask_max_ps(vmax[r], m, vmax[r], acc[r][u]);
    }
  }
}

template <int R, int NCH>
void scores_tile_n(int nch, const float* q, std::size_t ld_q, const float* panel, std::size_t d,
                   float* s, std::size_t ld_s, std::size_t valid, __m512* vmax) {
  if constexpr (NCH > 1) {
    if (nch < NCH) return scores_tile_n<R, NCH - 1>(nch, q, ld_q, panel, d, s, ld_s, valid, vmax);
  }
  scores_tile<R, NCH>(q, ld_q, panel, d, s, ld_s, valid, vmax);
}

// O tile = diag(inv) P V; `amax` collects |O| bit patterns of the stored lanes.
template <int R, int NCH>
void pv_tile(const float* p, std::size_t ldp, std::size_t t, const float* v, std::size_t ld_v,
             const float* inv, float* o, std::size_t ld_o, __mmask16 last, __m512i& amax) {
  __m512 acc[R][NCH];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 8
    for (int u = 0; u < NCH; ++u) acc[r][u] = _mm512_setzero_ps();
  for (std::size_t j = 0; j < t; ++j) {
    __m512 vv[NCH];
#pragma GCC unroll 8
    for (int u = 0; u < NCH; ++u) vv[u] = _mm512_loadu_ps(v + j * ld_v + 16 * u);
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      const __m512 b = _mm512_set1_ps(p[r * ldp + j]);
#pragma GCC unroll 8
      for (int u = 0; u < NCH; ++u) acc[r][u] = _mm512_fmadd_ps(b, vv[u], acc[r][u]);
    }
  }
  const __m512i abs_bits = _mm512_set1_epi32(0x7fffffff);
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) {
    const __m512 scale = _mm512_set1_ps(inv[r]);
#pragma GCC unroll 8
    for (int u = 0; u < NCH; ++u) {
      const __mmask16 m = u == NCH - 1 ? last : static_cast<__mmask16>(0xFFFF);
      const __m512 y = _mm512_mul_ps(acc[r][u], scale);
      _mm512_mask_storeu_ps(o + r * ld_o + 16 * u, m, y);
      amax =
          _mm512_mask_max_epu32(amax, m, amax, _mm512_and_si512(_mm512_castps_si512(y), abs_bits));
    }
  }
}

template <int R, int NCH>
void pv_tile_n(int nch, const float* p, std::size_t ldp, std::size_t t, const float* v,
               std::size_t ld_v, const float* inv, float* o, std::size_t ld_o, __mmask16 last,
               __m512i& amax) {
  if constexpr (NCH > 1) {
    if (nch < NCH) return pv_tile_n<R, NCH - 1>(nch, p, ldp, t, v, ld_v, inv, o, ld_o, last, amax);
  }
  pv_tile<R, NCH>(p, ldp, t, v, ld_v, inv, o, ld_o, last, amax);
}

struct Head {
  std::size_t t, d, tp, dp;
  float scale;
  const float* kt;  // K^T panels
  const float* vc;  // V (t, dp)
  float* s;         // kRows x tp scores / probabilities
};

template <int R>
void row_block(const Head& h, const float* q, std::size_t ld_q, float* out, std::size_t ld_out,
               __m512i& amax) {
  __m512 vmax[R];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) vmax[r] = _mm512_set1_ps(-__builtin_inff());
  for (std::size_t jb = 0; jb < h.tp; jb += kPanel) {
    const std::size_t w = h.tp - jb < kPanel ? h.tp - jb : kPanel;
    scores_tile_n<R, kScoreNch>(static_cast<int>(w / 16), q, ld_q, h.kt + jb * h.d, h.d, h.s + jb,
                                h.tp, h.t - jb, vmax);
  }
  float inv[R];
  softmax_exp_rows<R>(h.s, h.tp, h.t, h.scale, vmax, inv);
  for (std::size_t cb = 0; cb < h.d; cb += 16 * kPvNch) {
    const std::size_t rem = h.d - cb < 16 * kPvNch ? h.d - cb : 16 * kPvNch;
    const int nch = static_cast<int>((rem + 15) / 16);
    pv_tile_n<R, kPvNch>(nch, h.s, h.tp, h.t, h.vc + cb, h.dp, inv, out + cb, ld_out,
                         tail_mask(rem - 16 * (nch - 1)), amax);
  }
}

template <int R>
void row_block_n(int rows, const Head& h, const float* q, std::size_t ld_q, float* out,
                 std::size_t ld_out, __m512i& amax) {
  if constexpr (R > 1) {
    if (rows < R) return row_block_n<R - 1>(rows, h, q, ld_q, out, ld_out, amax);
  }
  row_block<R>(h, q, ld_q, out, ld_out, amax);
}

}  // namespace

float attention_head_f32(const float* q, const float* k, const float* v, std::size_t ld_qkv,
                         std::size_t rows, std::size_t t, std::size_t d, float scale, float* out,
                         std::size_t ld_out, float* scratch, const float* next_q) {
  const std::size_t tp = (t + 15) / 16 * 16, dp = (d + 15) / 16 * 16;
  float* kt = scratch;
  float* vc = kt + d * tp;
  float* s = vc + tp * dp;
  pack_kt(k, ld_qkv, t, d, tp, kt);
  for (std::size_t j = 0; j < t; ++j) {
    for (std::size_t c0 = 0; c0 < dp; c0 += 16) {
      _mm512_storeu_ps(vc + j * dp + c0,
                       _mm512_maskz_loadu_ps(tail_mask(d - c0), v + j * ld_qkv + c0));
    }
  }
  const Head h{t, d, tp, dp, scale, kt, vc, s};
  __m512i amax = _mm512_setzero_si512();
  // Q, K and V sit at a 9216-byte row stride in the fused QKV output of a batch (9.4 MB at
  // batch 8, beyond L2), where the hardware prefetchers do not follow: the next head's rows go
  // to L2 a slice per row block, and the next row block's Q rows to L1 one block ahead.
  // The next head's Q rows are prefetched over [0, rows), its K and V rows over [0, t).
  const std::size_t blocks = (rows + kRows - 1) / kRows;
  const std::size_t per_q = blocks ? (rows + blocks - 1) / blocks : 0;
  const std::size_t per_kv = blocks ? (t + blocks - 1) / blocks : 0;
  for (std::size_t i0 = 0, b = 0; i0 < rows; i0 += kRows, ++b) {
    const int n = rows - i0 < kRows ? static_cast<int>(rows - i0) : kRows;
    if (next_q != nullptr) {
      const std::size_t q0 = b * per_q, q1 = q0 + per_q < rows ? q0 + per_q : rows;
      const std::size_t k0 = b * per_kv, k1 = k0 + per_kv < t ? k0 + per_kv : t;
      prefetch_rows<_MM_HINT_T1>(next_q, ld_qkv, q0, q1, d);
      prefetch_rows<_MM_HINT_T1>(next_q + (k - q), ld_qkv, k0, k1, d);
      prefetch_rows<_MM_HINT_T1>(next_q + (v - q), ld_qkv, k0, k1, d);
    }
    if (i0 + kRows < rows) {
      prefetch_rows<_MM_HINT_T0>(q, ld_qkv, i0 + kRows,
                                 i0 + 2 * kRows < rows ? i0 + 2 * kRows : rows, d);
    }
    row_block_n<kRows>(n, h, q + i0 * ld_qkv, ld_qkv, out + i0 * ld_out, ld_out, amax);
  }
  const uint32_t bits = _mm512_reduce_max_epu32(amax);
  float m;
  std::memcpy(&m, &bits, sizeof m);
  return m;
}

}  // namespace octet::kernels::avx512
