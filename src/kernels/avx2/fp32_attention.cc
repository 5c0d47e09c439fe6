// AVX2 single-head self-attention (contract in kernels/fp32.h):
//   (t, d) Q, K, V  ->  S = scale Q K^T  (t, t)  ->  P = softmax(S)  ->  O = P V  (t, d).
//
// The same scheme as the AVX-512 kernel: K transposed into scratch as K^T (d, tp), tp = t
// rounded up to 16 and zero padded; queries in blocks of R <= 4 rows; tiles of R x 16 columns
// (two ymm), i.e. 8 accumulators + 2 loads + 1 broadcast of the 16 ymm registers:
//   scores  per c: 2 loads of K^T, R broadcasts of q, 2R FMAs;
//   P V     per key j: 2 loads of a V row (the last one masked when d % 16 != 0), R broadcasts.
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "kernels/avx2/fp32_avx2.h"
#include "kernels/avx2/fp32_row_avx2.h"
#include "kernels/avx2/math_avx2.h"
#include "kernels/fp32.h"

namespace octet::kernels::avx2 {
namespace {

constexpr std::size_t kRows = 4;  // query rows per block (kAttentionRowBlock bounds it)
static_assert(kRows <= kAttentionRowBlock, "scratch sized for the row block");

template <int R>
void scores_tile(const float* q, std::size_t ld_q, const float* kt, std::size_t tp, std::size_t d,
                 float* s) {
  __m256 acc[R][2];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
  for (std::size_t c = 0; c < d; ++c) {
    const __m256 k0 = _mm256_loadu_ps(kt + c * tp);
    const __m256 k1 = _mm256_loadu_ps(kt + c * tp + 8);
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      const __m256 b = _mm256_broadcast_ss(q + r * ld_q + c);
      acc[r][0] = _mm256_fmadd_ps(b, k0, acc[r][0]);
      acc[r][1] = _mm256_fmadd_ps(b, k1, acc[r][1]);
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) {
    _mm256_storeu_ps(s + r * tp, acc[r][0]);
    _mm256_storeu_ps(s + r * tp + 8, acc[r][1]);
  }
}

// O tile of R rows x `width` <= 16 columns; m0 / m1 are the lane masks of the two ymm halves.
// `amax` collects the |O| bit patterns of the stored lanes (unsigned: NaN above +inf).
template <int R>
void pv_tile(const float* p, std::size_t ldp, std::size_t t, const float* v, std::size_t ld_v,
             float* o, std::size_t ld_o, __m256i m0, __m256i m1, __m256i& amax) {
  __m256 acc[R][2];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
  for (std::size_t j = 0; j < t; ++j) {
    const __m256 v0 = _mm256_maskload_ps(v + j * ld_v, m0);
    const __m256 v1 = _mm256_maskload_ps(v + j * ld_v + 8, m1);
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      const __m256 b = _mm256_broadcast_ss(p + r * ldp + j);
      acc[r][0] = _mm256_fmadd_ps(b, v0, acc[r][0]);
      acc[r][1] = _mm256_fmadd_ps(b, v1, acc[r][1]);
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) {
    _mm256_maskstore_ps(o + r * ld_o, m0, acc[r][0]);
    _mm256_maskstore_ps(o + r * ld_o + 8, m1, acc[r][1]);
    const __m256i abs_bits = _mm256_set1_epi32(0x7fffffff);
    amax = _mm256_max_epu32(
        amax, _mm256_and_si256(_mm256_and_si256(_mm256_castps_si256(acc[r][0]), abs_bits), m0));
    amax = _mm256_max_epu32(
        amax, _mm256_and_si256(_mm256_and_si256(_mm256_castps_si256(acc[r][1]), abs_bits), m1));
  }
}

template <int R>
void row_block(const float* q, const float* v, std::size_t ld_qkv, std::size_t t, std::size_t d,
               float scale, const float* kt, std::size_t tp, float* s, float* out,
               std::size_t ld_out, __m256i& amax) {
  for (std::size_t jb = 0; jb < tp; jb += 16) scores_tile<R>(q, ld_qkv, kt + jb, tp, d, s + jb);
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) softmax_row(s + r * tp, t, t, scale);
  for (std::size_t cb = 0; cb < d; cb += 16) {
    const std::size_t rem = d - cb;
    pv_tile<R>(s, tp, t, v + cb, ld_qkv, out + cb, ld_out, tail_mask(rem),
               tail_mask(rem > 8 ? rem - 8 : 0), amax);
  }
}

}  // namespace

float attention_head_f32(const float* q, const float* k, const float* v, std::size_t ld_qkv,
                         std::size_t rows, std::size_t t, std::size_t d, float scale, float* out,
                         std::size_t ld_out, float* scratch, const float* /*next_q*/) {
  const std::size_t tp = (t + 15) / 16 * 16;
  float* kt = scratch;
  float* s = scratch + d * tp;
  // Blocks of 16 keys x 16 channels: the reads of a block stay within 16 cache lines and each
  // row of K^T is written in whole lines.
  for (std::size_t j0 = 0; j0 < tp; j0 += 16) {
    const std::size_t jn = t - j0 < 16 ? t - j0 : 16;
    for (std::size_t c0 = 0; c0 < d; c0 += 16) {
      const std::size_t cn = d - c0 < 16 ? d - c0 : 16;
      for (std::size_t c = c0; c < c0 + cn; ++c) {
        float* row = kt + c * tp + j0;
        for (std::size_t j = 0; j < jn; ++j) row[j] = k[(j0 + j) * ld_qkv + c];
        for (std::size_t j = jn; j < 16; ++j) row[j] = 0.0f;
      }
    }
  }

  __m256i amax = _mm256_setzero_si256();
  for (std::size_t i0 = 0; i0 < rows; i0 += kRows) {
    const float* qi = q + i0 * ld_qkv;
    float* oi = out + i0 * ld_out;
    switch (rows - i0 >= 4 ? 4 : rows - i0) {
      case 4:
        row_block<4>(qi, v, ld_qkv, t, d, scale, kt, tp, s, oi, ld_out, amax);
        break;
      case 3:
        row_block<3>(qi, v, ld_qkv, t, d, scale, kt, tp, s, oi, ld_out, amax);
        break;
      case 2:
        row_block<2>(qi, v, ld_qkv, t, d, scale, kt, tp, s, oi, ld_out, amax);
        break;
      default:
        row_block<1>(qi, v, ld_qkv, t, d, scale, kt, tp, s, oi, ld_out, amax);
        break;
    }
  }
  // Horizontal unsigned max of the bit patterns; the result reinterpreted as a float.
  uint32_t lanes[8];
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(lanes), amax);
  uint32_t bits = 0;
  for (uint32_t b : lanes) bits = b > bits ? b : bits;
  float m;
  std::memcpy(&m, &bits, sizeof m);
  return m;
}

}  // namespace octet::kernels::avx2
