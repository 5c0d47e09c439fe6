// INT8 single-head self-attention on AVX-512 (contract in kernels/int8.h, attention_head_s8),
// one implementation for two ISAs through a Dot policy: both matmuls as u8 x s8 -> int32 dot
// products of 4 bytes, on vpdpbusd (avx512_vnni/attention_int8_avx512_vnni.cc) or as two
// vpmaddwd of the even and odd bytes widened to 16 bits (avx512/attention_int8_avx512.cc, exact:
// 255 x 128 x 2 fits int32), the softmax in FP32 between them. A Dot policy has
//   U8 u8(__m512i), S8 s8(__m512i): an operand prepared once per load or broadcast,
//   __m512i step(__m512i acc, U8, S8): acc + the 16 dword dot products,
//   kRows, kNch: the tile (kRows x kNch zmm accumulators).
// Include from one file per ISA, inside no namespace.
//
// Once per head, into scratch (tk = t rounded up to 16 keys, d64 = d rounded up to 64):
//   Q codes  rows x d64 u8: code + 128 (vpdpbusd's unsigned operand), channels >= d hold 128;
//            the per-row step times `scale` kept as a float per row;
//   K^T      panels of 16 keys: panel b, channel group g (4 channels) is one zmm of 16 dwords,
//            dword j = the 4 s8 codes of key 16 b + j; built by quantizing 16 key rows into
//            registers (64 channels = 16 dwords each) and one 16 x 16 dword transpose;
//            kbias[j] = -128 sum_c kq_jc, the accumulators' start, undoes the +128 of the Q
//            codes exactly;
//   V        [tk / 4][dp][4] s8: 4 consecutive keys of one channel per dword, interleaved with
//            byte / word unpacks, channel steps from a first pass of column maxima.
// Per block of R <= kRows query rows:
//   scores   R x (16 NCH) int32 tiles: per channel group, NCH panel loads, R dword broadcasts
//            of Q codes, R * NCH vpdpbusd; then the int32 sum as float times the row step
//            and the key step, stored as R x tk floats with the running row maxima;
//   softmax  p = nearbyint(exp(s - max) 255) as u8 codes (zero for keys >= t), n_i = sum p;
//   P V      R x (16 NCH) int32 tiles: per group of 4 keys, NCH loads of packed V, R dword
//            broadcasts of P codes, R * NCH vpdpbusd; o = acc / n_i * channel step.
// Tiles per Dot policy: VNNI kRows = 4, NCH = 4 (16 accumulators + 4 loads + 1 broadcast; see
// attention_int8_avx512_vnni.cc for why not 6 x 4); AVX-512 BW kRows = 6, NCH = 2.
// Every integer is exact and every float step is the reference's operation for operation (the
// probability codes included: kernels/prob_code.h), so outputs equal the reference's bit for bit.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "kernels/avx512/fp32_row_avx512.h"
#include "kernels/avx512/math_avx512.h"
#include "kernels/avx512/transpose_avx512.h"
#include "kernels/int8.h"
#include "kernels/prob_code.h"

namespace octet::kernels {
namespace {
namespace avx512_attention {

using avx512::tail_mask;

constexpr uint32_t kFiniteLimit = 0x7f800000u;  // |x| bit patterns at or above: Inf or NaN

// Lanes [c0, d) of a 16-lane chunk starting at c0 (none when c0 >= d).
inline __mmask16 lanes(std::size_t d, std::size_t c0) { return c0 < d ? tail_mask(d - c0) : 0; }

inline __m512i abs_bits(__m512 x) {
  return _mm512_and_si512(_mm512_castps_si512(x), _mm512_set1_epi32(0x7fffffff));
}

inline float bits_to_float(uint32_t b) {
  float f;
  std::memcpy(&f, &b, sizeof f);
  return f;
}

// 127 / a lane-wise, 0 where a == 0 (a >= 0 and finite here).
inline __m512 inverse_step(__m512 a) {
  const __mmask16 pos = _mm512_cmp_ps_mask(a, _mm512_setzero_ps(), _CMP_GT_OQ);
  return _mm512_maskz_div_ps(pos, _mm512_set1_ps(127.0f), a);
}

// clamp(nearbyint(x * inv), -127, 127) as int32 lanes, for inv = 127 / a with a = max |x| over
// the values coded with it (or inv = 0): |x * inv| <= 127 (1 + 2^-24) rounds to at most 127, so
// the clamp of the contract never binds and is left out (the reference keeps it).
inline __m512i codes(__m512 x, __m512 inv) {
  return _mm512_cvt_roundps_epi32(_mm512_mul_ps(x, inv),
                                  _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
}

// max |x| bit patterns (>= kFiniteLimit: not finite) of rows [r0, r0 + 16) of a matrix of d
// columns, row stride ld (rows >= n count as 0), lane i = row r0 + i: per-row partial maxima,
// one 16 x 16 transpose and 15 vertical maxima instead of 16 horizontal reductions.
inline __m512i rows_abs_max_bits16(const float* x, std::size_t ld, std::size_t r0, std::size_t n,
                                   std::size_t d) {
  __m512 m[16];
#pragma GCC unroll 16
  for (std::size_t i = 0; i < 16; ++i) {
    __m512i acc = _mm512_setzero_si512();
    if (r0 + i < n) {
      const float* row = x + (r0 + i) * ld;
      for (std::size_t c0 = 0; c0 < d; c0 += 16) {
        acc = _mm512_max_epu32(acc, abs_bits(_mm512_maskz_loadu_ps(lanes(d, c0), row + c0)));
      }
    }
    m[i] = _mm512_castsi512_ps(acc);
  }
  avx512::transpose16(m);
  __m512i out = _mm512_castps_si512(m[0]);
#pragma GCC unroll 16
  for (int c = 1; c < 16; ++c) out = _mm512_max_epu32(out, _mm512_castps_si512(m[c]));
  return out;
}

// From 16 maxima (bit patterns): 127 / a where a is finite and > 0, else 0 (the contract's
// inverse step), and a / 127 (the step).
inline __m512 inverse_steps(__m512i bits) {
  const __m512 a = _mm512_castsi512_ps(bits);
  const __mmask16 ok = _mm512_cmp_epu32_mask(bits, _mm512_set1_epi32(kFiniteLimit), _MM_CMPINT_LT) &
                       _mm512_cmp_ps_mask(a, _mm512_setzero_ps(), _CMP_GT_OQ);
  return _mm512_maskz_div_ps(ok, _mm512_set1_ps(127.0f), a);
}

// Q rows [i0, i0 + 16) (those < rows) -> d64 u8 codes (+128) each, and their steps times
// `scale`; returns the bit pattern of max |q| over them.
inline uint32_t quantize_q_rows16(const float* q, std::size_t ld, std::size_t i0, std::size_t rows,
                                  std::size_t d, std::size_t d64, float scale, uint8_t* out,
                                  float* step) {
  const __m512i bits = rows_abs_max_bits16(q, ld, i0, rows, d);
  alignas(64) float inv[16];
  _mm512_store_ps(inv, inverse_steps(bits));
  _mm512_storeu_ps(step + i0,
                   _mm512_mul_ps(_mm512_div_ps(_mm512_castsi512_ps(bits), _mm512_set1_ps(127.0f)),
                                 _mm512_set1_ps(scale)));
  const __m512i bias = _mm512_set1_epi32(128);
  const std::size_t n = rows - i0 < 16 ? rows - i0 : 16;
  for (std::size_t i = 0; i < n; ++i) {
    const float* x = q + (i0 + i) * ld;
    const __m512 vinv = _mm512_set1_ps(inv[i]);
    for (std::size_t c0 = 0; c0 < d64; c0 += 16) {
      const __m512 v = _mm512_maskz_loadu_ps(lanes(d, c0), x + c0);
      _mm_storeu_si128(reinterpret_cast<__m128i*>(out + (i0 + i) * d64 + c0),
                       _mm512_cvtusepi32_epi8(_mm512_add_epi32(codes(v, vinv), bias)));
    }
  }
  return _mm512_reduce_max_epu32(bits);
}

// Keys [j0, j0 + 16) of K -> one panel (d64 / 4 zmm of 16 dwords), their 128 * code sums and
// steps (keys >= t: zero codes, zero step). Returns the bit pattern of max |k| over the keys.
template <class Dot>
uint32_t pack_k_panel(const float* k, std::size_t ld, std::size_t t, std::size_t d, std::size_t d64,
                      std::size_t j0, int8_t* panel, int32_t* kbias, float* step) {
  const std::size_t groups = d64 / 4;
  const __m512i bits = rows_abs_max_bits16(k, ld, j0, t, d);
  const uint32_t all_bits = _mm512_reduce_max_epu32(bits);
  alignas(64) float inv[16];
  _mm512_store_ps(inv, inverse_steps(bits));
  _mm512_storeu_ps(step, _mm512_div_ps(_mm512_castsi512_ps(bits), _mm512_set1_ps(127.0f)));
  // The 16 keys' code sums, one vpdpbusd of all-ones bytes per channel group of the panel.
  __m512i ksum = _mm512_setzero_si512();
  const typename Dot::U8 ones = Dot::u8(_mm512_set1_epi8(1));
  for (std::size_t c0 = 0; c0 < d64; c0 += 64) {
    __m512 r[16];
#pragma GCC unroll 16
    for (std::size_t i = 0; i < 16; ++i) {
      const std::size_t j = j0 + i;
      __m128i part[4];
      const __m512 vinv = _mm512_set1_ps(inv[i]);
#pragma GCC unroll 4
      for (std::size_t u = 0; u < 4; ++u) {
        const __mmask16 m = j < t ? lanes(d, c0 + 16 * u) : 0;
        part[u] =
            _mm512_cvtsepi32_epi8(codes(_mm512_maskz_loadu_ps(m, k + j * ld + c0 + 16 * u), vinv));
      }
      const __m256i lo = _mm256_inserti128_si256(_mm256_castsi128_si256(part[0]), part[1], 1);
      const __m256i hi = _mm256_inserti128_si256(_mm256_castsi128_si256(part[2]), part[3], 1);
      r[i] = _mm512_castsi512_ps(_mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1));
    }
    avx512::transpose16(r);
    const std::size_t g0 = c0 / 4;
    const std::size_t gn = groups - g0 < 16 ? groups - g0 : 16;
    for (std::size_t g = 0; g < gn; ++g) {
      _mm512_storeu_ps(panel + (g0 + g) * 64, r[g]);
      ksum = Dot::step(ksum, ones, Dot::s8(_mm512_castps_si512(r[g])));
    }
  }
  _mm512_storeu_si512(kbias, _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_slli_epi32(ksum, 7)));
  return all_bits;
}

// V (t x d) -> [tk / 4][dp][4] s8 codes with per-channel steps. Returns max |v| bits. Channels
// in blocks of up to 64 (4 zmm): one pass over the rows for the column maxima, one to pack.
uint32_t pack_v(const float* v, std::size_t ld, std::size_t t, std::size_t tk, std::size_t d,
                std::size_t dp, int8_t* vp, float* step) {
  uint32_t all_bits = 0;
  for (std::size_t cb = 0; cb < dp; cb += 64) {
    const int nch = static_cast<int>((dp - cb < 64 ? dp - cb : 64) / 16);
    __mmask16 m[4];
    __m512i amax[4];
    for (int u = 0; u < 4; ++u) {
      m[u] = u < nch ? lanes(d, cb + 16 * u) : 0;
      amax[u] = _mm512_setzero_si512();
    }
    for (std::size_t j = 0; j < t; ++j) {
      const float* row = v + j * ld + cb;
#pragma GCC unroll 4
      for (int u = 0; u < 4; ++u) {
        amax[u] = _mm512_max_epu32(amax[u], abs_bits(_mm512_maskz_loadu_ps(m[u], row + 16 * u)));
      }
    }
    __m512 inv[4];
    for (int u = 0; u < nch; ++u) {
      const uint32_t bits = _mm512_reduce_max_epu32(amax[u]);
      all_bits = bits > all_bits ? bits : all_bits;
      const __m512 a = _mm512_castsi512_ps(amax[u]);
      _mm512_storeu_ps(step + cb + 16 * u, _mm512_div_ps(a, _mm512_set1_ps(127.0f)));
      inv[u] = inverse_step(a);
    }
    if (all_bits >= kFiniteLimit) return all_bits;
    for (std::size_t j4 = 0; j4 < tk; j4 += 4) {
      for (int u = 0; u < nch; ++u) {
        __m128i x[4];
#pragma GCC unroll 4
        for (std::size_t r = 0; r < 4; ++r) {
          const std::size_t j = j4 + r;
          x[r] = _mm512_cvtsepi32_epi8(
              codes(_mm512_maskz_loadu_ps(j < t ? m[u] : 0, v + (j < t ? j : 0) * ld + cb + 16 * u),
                    inv[u]));
        }
        const __m128i t0 = _mm_unpacklo_epi8(x[0], x[1]), t1 = _mm_unpackhi_epi8(x[0], x[1]);
        const __m128i t2 = _mm_unpacklo_epi8(x[2], x[3]), t3 = _mm_unpackhi_epi8(x[2], x[3]);
        __m128i* dst = reinterpret_cast<__m128i*>(vp + (j4 * dp + (cb + 16 * u) * 4));
        _mm_storeu_si128(dst + 0, _mm_unpacklo_epi16(t0, t2));
        _mm_storeu_si128(dst + 1, _mm_unpackhi_epi16(t0, t2));
        _mm_storeu_si128(dst + 2, _mm_unpacklo_epi16(t1, t3));
        _mm_storeu_si128(dst + 3, _mm_unpackhi_epi16(t1, t3));
      }
    }
  }
  return all_bits;
}

struct Head {
  std::size_t t, tk, d, d64, dp;
  const uint8_t* qq;     // rows x d64
  const float* qstep;    // per row: step * scale
  const int8_t* kt;      // tk / 16 panels of d64 / 4 x 64 bytes
  const int32_t* kbias;  // tk
  const float* kstep;    // tk
  const int8_t* vp;      // [tk / 4][dp][4]
  const float* vstep;    // dp
  float* s;              // kRows x tk scores
  uint8_t* p;            // kRows x tk probability codes
};

inline int32_t load_dword(const void* p) {
  int32_t x;
  std::memcpy(&x, p, sizeof x);
  return x;
}

// noinline (and pv_tile): inlined into row_block, the accumulators shared the registers with
// its kRows running row maxima and GCC spilled accumulators inside the k loop (Zen 4: -5 to -8% for
// the 12 heads of BERT-base at t = 128 out of line, alternated runs).
template <class Dot, int R, int NCH>
__attribute__((noinline)) void scores_tile(const Head& h, const uint8_t* qq, const float* qstep,
                                           std::size_t j0, __m512* vmax) {
  // The accumulators start at -128 sum_c k_jc, which undoes the +128 of the Q codes.
  __m512i acc[R][NCH];
#pragma GCC unroll 8
  for (int u = 0; u < NCH; ++u) {
    const __m512i start = _mm512_loadu_si512(h.kbias + j0 + 16 * u);
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) acc[r][u] = start;
  }
  const std::size_t groups = h.d64 / 4;     // a multiple of 16
  const int8_t* panel = h.kt + j0 * h.d64;  // panel j0 / 16 starts at (j0 / 16) * groups * 64
  // One channel group: NCH panel loads, R broadcasts of Q codes, R x NCH vpdpbusd. Unrolled by
  // 4 by hand: with a plain loop GCC 12 stores every accumulator to the stack each iteration.
  const auto group = [&](std::size_t g) {
    typename Dot::S8 kv[NCH];
#pragma GCC unroll 8
    for (int u = 0; u < NCH; ++u) {
      kv[u] = Dot::s8(_mm512_loadu_si512(panel + (u * groups + g) * 64));
    }
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      const typename Dot::U8 b = Dot::u8(_mm512_set1_epi32(load_dword(qq + r * h.d64 + 4 * g)));
#pragma GCC unroll 8
      for (int u = 0; u < NCH; ++u) acc[r][u] = Dot::step(acc[r][u], b, kv[u]);
    }
  };
  for (std::size_t g = 0; g < groups; g += 4) {
    group(g);
    group(g + 1);
    group(g + 2);
    group(g + 3);
  }
  __m512 kstep[NCH];
  __mmask16 valid[NCH];
#pragma GCC unroll 8
  for (int u = 0; u < NCH; ++u) {
    const std::size_t j = j0 + 16 * u;
    valid[u] = lanes(h.t, j);
    kstep[u] = _mm512_loadu_ps(h.kstep + j);
  }
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) {
    const __m512 rs = _mm512_set1_ps(qstep[r]);
#pragma GCC unroll 8
    for (int u = 0; u < NCH; ++u) {
      __m512 x = _mm512_cvtepi32_ps(acc[r][u]);
      x = _mm512_mul_ps(_mm512_mul_ps(x, rs), kstep[u]);
      _mm512_storeu_ps(h.s + r * h.tk + j0 + 16 * u, x);
      vmax[r] = _mm512_mask_max_ps(vmax[r], valid[u], vmax[r], x);
    }
  }
}

template <class Dot, int R, int NCH>
void scores_tile_n(int nch, const Head& h, const uint8_t* qq, const float* qstep, std::size_t j0,
                   __m512* vmax) {
  if constexpr (NCH > 1) {
    if (nch < NCH) return scores_tile_n<Dot, R, NCH - 1>(nch, h, qq, qstep, j0, vmax);
  }
  scores_tile<Dot, R, NCH>(h, qq, qstep, j0, vmax);
}

// Probability codes of R rows and 1 / n_i.
template <class Dot, int R>
void softmax_codes(const Head& h, const __m512* vmax, float* inv_total) {
  __m512 mx[R];
  __m512i sum[R];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) {
    mx[r] = _mm512_set1_ps(_mm512_reduce_max_ps(vmax[r]));
    sum[r] = _mm512_setzero_si512();
  }
  const __m512 lo = _mm512_set1_ps(kProbMinArg), log2e = _mm512_set1_ps(kProbLog2e);
  const __m512 mln2 = _mm512_set1_ps(kProbMinusLn2), c0 = _mm512_set1_ps(kProbC0);
  const __m512 c1 = _mm512_set1_ps(kProbC1), c2 = _mm512_set1_ps(kProbC2);
  const __m512 c3 = _mm512_set1_ps(kProbC3), c4 = _mm512_set1_ps(kProbC4);
  constexpr int kNearest = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;
  for (std::size_t j = 0; j < h.tk; j += 16) {
    const __mmask16 valid = lanes(h.t, j);
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      // kernels/prob_code.h, operation for operation (its final min(255) cannot bind: the
      // polynomial's relative error 8.4e-6 keeps 255 e^x below 255.5 for x <= 0).
      const __m512 x = _mm512_max_ps(_mm512_sub_ps(_mm512_loadu_ps(h.s + r * h.tk + j), mx[r]), lo);
      const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, log2e), kNearest);
      const __m512 rr = _mm512_fmadd_ps(n, mln2, x);
      __m512 p = _mm512_fmadd_ps(c4, rr, c3);
      p = _mm512_fmadd_ps(p, rr, c2);
      p = _mm512_fmadd_ps(p, rr, c1);
      p = _mm512_fmadd_ps(p, rr, c0);
      __m512i c = _mm512_maskz_cvt_roundps_epi32(valid, _mm512_scalef_ps(p, n), kNearest);
      sum[r] = _mm512_add_epi32(sum[r], c);
      _mm_storeu_si128(reinterpret_cast<__m128i*>(h.p + r * h.tk + j), _mm512_cvtusepi32_epi8(c));
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) {
    inv_total[r] = 1.0f / static_cast<float>(_mm512_reduce_add_epi32(sum[r]));
  }
}

// O tile (channels cb .. cb + 16 NCH) = diag(inv_total) P V diag(vstep); amax collects |O| bits.
template <class Dot, int R, int NCH>
__attribute__((noinline)) void pv_tile(const Head& h, std::size_t cb, const float* inv_total,
                                       float* o, std::size_t ld_o, __m512i& amax) {
  __m512i acc[R][NCH];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 8
    for (int u = 0; u < NCH; ++u) acc[r][u] = _mm512_setzero_si512();
  // One group of 4 keys: NCH loads of packed V, R broadcasts of P codes, R x NCH vpdpbusd;
  // 4 groups (16 keys) per iteration over tk (a multiple of 16; codes past t are zero), with
  // constant offsets from two moving pointers (GCC 12 spills the accumulators otherwise).
  const std::ptrdiff_t vstride = static_cast<std::ptrdiff_t>(4 * h.dp);  // bytes per key group
  const std::ptrdiff_t ldp = static_cast<std::ptrdiff_t>(h.tk);
  const int8_t* vb = h.vp + cb * 4;
  const uint8_t* pb = h.p;
  const auto group = [&](int gi) {
    typename Dot::S8 vv[NCH];
#pragma GCC unroll 8
    for (int u = 0; u < NCH; ++u) vv[u] = Dot::s8(_mm512_loadu_si512(vb + gi * vstride + 64 * u));
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      const typename Dot::U8 b = Dot::u8(_mm512_set1_epi32(load_dword(pb + r * ldp + 4 * gi)));
#pragma GCC unroll 8
      for (int u = 0; u < NCH; ++u) acc[r][u] = Dot::step(acc[r][u], b, vv[u]);
    }
  };
  const std::size_t t16 = (h.t + 15) / 16 * 16;
  for (std::size_t j = 0; j < t16; j += 16) {
    group(0);
    group(1);
    group(2);
    group(3);
    vb += 4 * vstride;
    pb += 16;
  }
  __m512 vstep[NCH];
  __mmask16 m[NCH];
#pragma GCC unroll 8
  for (int u = 0; u < NCH; ++u) {
    m[u] = lanes(h.d, cb + 16 * u);
    vstep[u] = _mm512_loadu_ps(h.vstep + cb + 16 * u);
  }
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) {
    const __m512 w = _mm512_set1_ps(inv_total[r]);
#pragma GCC unroll 8
    for (int u = 0; u < NCH; ++u) {
      const __m512 y = _mm512_mul_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(acc[r][u]), w), vstep[u]);
      _mm512_mask_storeu_ps(o + r * ld_o + cb + 16 * u, m[u], y);
      amax = _mm512_mask_max_epu32(amax, m[u], amax, abs_bits(y));
    }
  }
}

template <class Dot, int R, int NCH>
void pv_tile_n(int nch, const Head& h, std::size_t cb, const float* inv_total, float* o,
               std::size_t ld_o, __m512i& amax) {
  if constexpr (NCH > 1) {
    if (nch < NCH) return pv_tile_n<Dot, R, NCH - 1>(nch, h, cb, inv_total, o, ld_o, amax);
  }
  pv_tile<Dot, R, NCH>(h, cb, inv_total, o, ld_o, amax);
}

template <class Dot, int R>
void row_block(const Head& h, const uint8_t* qq, const float* qstep, float* out, std::size_t ld_out,
               __m512i& amax) {
  __m512 vmax[R];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) vmax[r] = _mm512_set1_ps(-__builtin_inff());
  for (std::size_t j0 = 0; j0 < h.tk; j0 += (16 * Dot::kNch)) {
    const std::size_t w = h.tk - j0 < (16 * Dot::kNch) ? h.tk - j0 : (16 * Dot::kNch);
    scores_tile_n<Dot, R, Dot::kNch>(static_cast<int>(w / 16), h, qq, qstep, j0, vmax);
  }
  float inv_total[R];
  softmax_codes<Dot, R>(h, vmax, inv_total);
  for (std::size_t cb = 0; cb < h.dp; cb += 16 * Dot::kNch) {
    const std::size_t rem = h.dp - cb < 16 * Dot::kNch ? h.dp - cb : 16 * Dot::kNch;
    pv_tile_n<Dot, R, Dot::kNch>(static_cast<int>(rem / 16), h, cb, inv_total, out, ld_out, amax);
  }
}

template <class Dot, int R>
void row_block_n(int rows, const Head& h, const uint8_t* qq, const float* qstep, float* out,
                 std::size_t ld_out, __m512i& amax) {
  if constexpr (R > 1) {
    if (rows < R) return row_block_n<Dot, R - 1>(rows, h, qq, qstep, out, ld_out, amax);
  }
  row_block<Dot, R>(h, qq, qstep, out, ld_out, amax);
}

inline std::size_t align64(std::size_t bytes) { return (bytes + 63) / 64 * 64; }

template <class Dot>
float attention_head_s8_impl(const float* q, const float* k, const float* v, std::size_t ld_qkv,
                             std::size_t rows, std::size_t t, std::size_t d, float scale,
                             float* out, std::size_t ld_out, float* scratch, const float* next_q) {
  if (rows == 0) return 0.0f;
  const std::size_t tk = (t + 15) / 16 * 16, d64 = (d + 63) / 64 * 64, dp = (d + 15) / 16 * 16;
  const std::size_t rq = (rows + 15) / 16 * 16;
  auto* base = reinterpret_cast<uint8_t*>(scratch);
  std::size_t off = 0;
  auto take = [&](std::size_t bytes) {
    uint8_t* p = base + off;
    off += align64(bytes);
    return p;
  };
  auto* qq = take(rq * d64);
  auto* kt = reinterpret_cast<int8_t*>(take(tk * d64));
  auto* vp = reinterpret_cast<int8_t*>(take(tk * dp));
  auto* qstep = reinterpret_cast<float*>(take(rq * sizeof(float)));
  auto* kbias = reinterpret_cast<int32_t*>(take(tk * sizeof(int32_t)));
  auto* kstep = reinterpret_cast<float*>(take(tk * sizeof(float)));
  auto* vstep = reinterpret_cast<float*>(take(dp * sizeof(float)));
  auto* s = reinterpret_cast<float*>(take(Dot::kRows * tk * sizeof(float)));
  auto* p = take(Dot::kRows * tk);

  uint32_t bits = 0;
  for (std::size_t i0 = 0; i0 < rows; i0 += 16) {
    const uint32_t b = quantize_q_rows16(q, ld_qkv, i0, rows, d, d64, scale, qq, qstep);
    bits = b > bits ? b : bits;
  }
  for (std::size_t j0 = 0; j0 < tk; j0 += 16) {
    const uint32_t b =
        pack_k_panel<Dot>(k, ld_qkv, t, d, d64, j0, kt + j0 * d64, kbias + j0, kstep + j0);
    bits = b > bits ? b : bits;
  }
  const uint32_t vb = pack_v(v, ld_qkv, t, tk, d, dp, vp, vstep);
  bits = vb > bits ? vb : bits;
  if (bits >= kFiniteLimit) {
    const __m512 nan = _mm512_set1_ps(__builtin_nanf(""));
    for (std::size_t i = 0; i < rows; ++i) {
      for (std::size_t c0 = 0; c0 < d; c0 += 16) {
        _mm512_mask_storeu_ps(out + i * ld_out + c0, lanes(d, c0), nan);
      }
    }
    return __builtin_nanf("");
  }

  const Head h{t, tk, d, d64, dp, qq, qstep, kt, kbias, kstep, vp, vstep, s, p};
  __m512i amax = _mm512_setzero_si512();
  // The next head's Q, K and V rows (9216-byte stride in the fused QKV output of BERT-base,
  // beyond L2 at batch 8, where the hardware prefetchers do not follow) go to L2 a slice per
  // row block, while this head computes: the packing above reads them all up front.
  const std::size_t blocks = (rows + Dot::kRows - 1) / Dot::kRows;
  const std::size_t per_q = (rows + blocks - 1) / blocks, per_kv = (t + blocks - 1) / blocks;
  for (std::size_t i0 = 0, b = 0; i0 < rows; i0 += Dot::kRows, ++b) {
    const int n = rows - i0 < Dot::kRows ? static_cast<int>(rows - i0) : Dot::kRows;
    if (next_q != nullptr) {
      const std::size_t q0 = b * per_q, q1 = q0 + per_q < rows ? q0 + per_q : rows;
      const std::size_t k0 = b * per_kv, k1 = k0 + per_kv < t ? k0 + per_kv : t;
      avx512::prefetch_rows<_MM_HINT_T1>(next_q, ld_qkv, q0, q1, d);
      avx512::prefetch_rows<_MM_HINT_T1>(next_q + (k - q), ld_qkv, k0, k1, d);
      avx512::prefetch_rows<_MM_HINT_T1>(next_q + (v - q), ld_qkv, k0, k1, d);
    }
    row_block_n<Dot, Dot::kRows>(n, h, qq + i0 * d64, qstep + i0, out + i0 * ld_out, ld_out, amax);
  }
  return bits_to_float(_mm512_reduce_max_epu32(amax));
}

}  // namespace avx512_attention
}  // namespace
}  // namespace octet::kernels
