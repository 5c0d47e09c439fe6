// AVX-512 INT8 GEMM driver, register tiles and fused epilogues, shared by the AVX-512 (exact
// int16 widening, vpmaddwd) and AVX-512 VNNI (vpdpbusd) kernels. Include only from files built
// with the AVX-512 flags. Everything here has internal linkage (anonymous namespace), so each
// including file gets its own copy compiled with its own flags and nothing leaks across ISAs.
//
// Both instruction paths consume "groups" of 4 bytes of A per row and 64 bytes of packed B per
// 16-column panel:
//   VNNI:   a group is 4 consecutive k of A as u8; B panel group = [16 columns][4 k] int8,
//           vpdpbusd adds the 4 u8 x s8 products of each column exactly into int32.
//   int16:  a group is 2 consecutive k of A as int16; B panel group = [16 columns][2 k] int16,
//           vpmaddwd adds the 2 exact int16 products into int32 (no vpmaddubsw saturation).
// Packed B: panel p (columns 16p .. 16p+15) is contiguous, groups in k order, so a register tile
// of NV panels streams NV sequential arrays; A is packed (or used in place) with row stride lda
// bytes, each row a whole number of groups, padding zero.
//
// Register tile MR x NV: MR rows x 16*NV columns, MR*NV zmm accumulators. One k-group costs NV
// loads of B, MR broadcasts of A and MR*NV dot instructions. The main tile is 8 x 3 (24 zmm
// accumulators + 3 B + 1 A = 28 of 32 registers): enough independent chains to hide the 5-cycle
// vpdpbusd latency at 2 per cycle, with 11 loads per 24 dot instructions (under the 2 loads per
// cycle the load ports sustain). Small M (<= 3 rows: M = 1 decoding, classification heads) uses
// a 3 x 112 tile (3 x 7 panels) so that 7 to 21 chains are in flight even for one row; 3 x 8
// panels would need 33 registers and spill.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <utility>

#include "kernels/avx512/math_avx512.h"
#include "kernels/int8.h"
#include "octet/cpu.h"

namespace octet::kernels {
namespace {

namespace avx512_gemm {

constexpr int kMr = 8;
constexpr int kNv = 3;
constexpr int kMrSmall = 3;
constexpr int kNvSmall = 7;

inline __mmask16 column_mask(int cols) {
  return cols >= 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << cols) - 1);
}

struct TileArgs {
  const uint8_t* a;        // first row of the tile, in 4-byte groups
  std::ptrdiff_t lda;      // bytes between rows of a
  const int8_t* b;         // first group of the tile's first panel
  std::ptrdiff_t b_panel;  // bytes between panels
  int groups;              // k-groups to accumulate
  int32_t* partial;        // K blocking: the tile's int32 partial sums, rows of 16 * NV
  bool resume;             // start from *partial instead of zero
  bool finish;             // apply the epilogue (else store the sums to *partial)
  const char* pf;          // lines of the next B block to bring into L2 during the k loop:
  int pf_lines;            // pf, pf + 64, ..., one every 4 groups
  const GemmParams* p;
  int32_t za;           // zero point to remove with the column sums (0: none)
  int i0, j0;           // output coordinates of the tile
  __mmask16 last_mask;  // valid columns of the last panel
  __m512i* abs_max;     // f32 output with p->abs_max: running max of |y| bit patterns; else null
};

// GemmParams::abs_max: |y| as unsigned bit patterns, so that vpmaxud orders them as |y| with
// every NaN above Inf (vmaxps would drop a NaN depending on the operand order).
inline __m512i abs_bits(__m512 y, __mmask16 mask) {
  return _mm512_maskz_and_epi32(mask, _mm512_castps_si512(y), _mm512_set1_epi32(0x7FFFFFFF));
}

// *p.abs_max = max(|*p.abs_max|, every lane of `bits`), in the same order.
inline void fold_abs_max(const GemmParams& p, __m512i bits) {
  uint32_t cur;
  __builtin_memcpy(&cur, p.abs_max, sizeof cur);
  cur &= 0x7FFFFFFFu;
  const uint32_t m = _mm512_reduce_max_epu32(bits);
  const uint32_t r = m > cur ? m : cur;
  __builtin_memcpy(p.abs_max, &r, sizeof r);
}

// Dyadic requantization constants of 16 columns, split into even and odd lanes because
// vpmuldq multiplies the low dword of each qword (kernels/fixedpoint.h defines the arithmetic).
struct RequantColumns {
  __m512i m_even, m_odd;            // multiplier in the low dword of each qword
  __m512i bias_m_even, bias_m_odd;  // bias * multiplier, int64
  __m512i s_even, s_odd;            // shift, int64
  __m512i half_even, half_odd;      // 2^(shift-1)
  __m512i low_even, low_odd;        // 2^shift - 1
};

inline RequantColumns load_requant_columns(const int32_t* multiplier, const int32_t* shift,
                                           const int32_t* bias, int j, __mmask16 mask) {
  const __m512i one = _mm512_set1_epi64(1);
  const __m512i m = _mm512_maskz_loadu_epi32(mask, multiplier + j);
  // Masked-off lanes get shift 1 so that every lane's arithmetic stays defined.
  const __m512i s = _mm512_mask_loadu_epi32(_mm512_set1_epi32(1), mask, shift + j);
  const __m512i b = bias ? _mm512_maskz_loadu_epi32(mask, bias + j) : _mm512_setzero_si512();
  RequantColumns c;
  c.m_even = m;
  c.m_odd = _mm512_srli_epi64(m, 32);
  c.bias_m_even = _mm512_mul_epi32(b, c.m_even);
  c.bias_m_odd = _mm512_mul_epi32(_mm512_srli_epi64(b, 32), c.m_odd);
  c.s_even = _mm512_and_si512(s, _mm512_set1_epi64(0xFFFFFFFFll));
  c.s_odd = _mm512_srli_epi64(s, 32);
  c.half_even = _mm512_sllv_epi64(one, _mm512_sub_epi64(c.s_even, one));
  c.half_odd = _mm512_sllv_epi64(one, _mm512_sub_epi64(c.s_odd, one));
  c.low_even = _mm512_sub_epi64(_mm512_sllv_epi64(one, c.s_even), one);
  c.low_odd = _mm512_sub_epi64(_mm512_sllv_epi64(one, c.s_odd), one);
  return c;
}

// round_half_even(p / 2^s) as floor + (rem > half - (floor & 1)) (kernels/fixedpoint.h).
inline __m512i round_shift_half_even(__m512i p, __m512i s, __m512i half, __m512i low) {
  const __m512i one = _mm512_set1_epi64(1);
  const __m512i fl = _mm512_srav_epi64(p, s);
  const __m512i rem = _mm512_and_si512(p, low);
  const __m512i bar = _mm512_sub_epi64(half, _mm512_and_si512(fl, one));
  return _mm512_mask_add_epi64(fl, _mm512_cmpgt_epi64_mask(rem, bar), fl, one);
}

// 16 int32 values -> requantized int32 (zero point added, not yet saturated to 8 bits).
inline __m512i requantize16(__m512i x, const RequantColumns& c, __m512i zero_point) {
  // Clamp before narrowing to int32: anything beyond +-2^20 saturates to the same 8-bit code.
  const __m512i lim = _mm512_set1_epi64(1 << 20), nlim = _mm512_set1_epi64(-(1 << 20));
  const __m512i p_even = _mm512_add_epi64(_mm512_mul_epi32(x, c.m_even), c.bias_m_even);
  const __m512i p_odd =
      _mm512_add_epi64(_mm512_mul_epi32(_mm512_srli_epi64(x, 32), c.m_odd), c.bias_m_odd);
  __m512i q_even = round_shift_half_even(p_even, c.s_even, c.half_even, c.low_even);
  __m512i q_odd = round_shift_half_even(p_odd, c.s_odd, c.half_odd, c.low_odd);
  q_even = _mm512_min_epi64(_mm512_max_epi64(q_even, nlim), lim);
  q_odd = _mm512_min_epi64(_mm512_max_epi64(q_odd, nlim), lim);
  const __m512i q = _mm512_mask_blend_epi32(0xAAAA, q_even, _mm512_slli_epi64(q_odd, 32));
  return _mm512_add_epi32(q, zero_point);
}

inline void store_requantized(__m512i q, GemmOutput output, void* dst, __mmask16 mask) {
  if (output == GemmOutput::s8) {
    _mm512_mask_cvtsepi32_storeu_epi8(dst, mask, q);
  } else {
    _mm512_mask_cvtusepi32_storeu_epi8(dst, mask, _mm512_max_epi32(q, _mm512_setzero_si512()));
  }
}

// The GELU of an f32 tile, in place in C: y = gelu(y) [+ residual], with its |y| maximum. The
// epilogue stores scale * acc + bias first and calls this once per tile: GCC does not inline
// the erf into the tile (it is ~20 instructions per 16 values), and an out-of-line call per
// accumulator made the caller spill the live accumulators around each of the 24 calls (perf,
// Zen 4, BERT-base batch 8: 4.0% of the time in gelu_erf_ps). Same operations in the same order
// as applying it to the registers, so the outputs are unchanged. The pre-activation tile goes
// through a 64-byte aligned stack buffer `pre` (rows x nv x 16 floats, full-vector stores and
// loads) rather than through C: reloading C right after its masked stores defeated
// store-to-load forwarding on Zen 4 (each load waited for its store to reach L1).
__attribute__((noinline)) inline void gelu_tile(const GemmParams& p, int i0, int j0, int rows,
                                                int nv, __mmask16 last_mask, __m512i* abs_max,
                                                const float* pre) {
  float* c = static_cast<float*>(p.c) + i0 * p.ldc + j0;
  __m512i amax = _mm512_setzero_si512();
  for (int r = 0; r < rows; ++r) {
    for (int v = 0; v < nv; ++v) {
      const __mmask16 mask = v == nv - 1 ? last_mask : static_cast<__mmask16>(0xFFFF);
      float* dst = c + r * p.ldc + 16 * v;
      __m512 y = avx512::gelu_erf_ps(_mm512_load_ps(pre + (r * nv + v) * 16));
      if (p.residual) {
        y = _mm512_add_ps(y,
                          _mm512_maskz_loadu_ps(mask, p.residual + (i0 + r) * p.ldr + j0 + 16 * v));
      }
      _mm512_mask_storeu_ps(dst, mask, y);
      if (abs_max) amax = _mm512_max_epu32(amax, abs_bits(y, mask));
    }
  }
  if (abs_max) *abs_max = _mm512_max_epu32(*abs_max, amax);
}

// Applies the epilogue of GemmParams to the MR x NV accumulator tile and stores it.
// always_inline: with two tables of tiles GCC stopped inlining it, and the 24 accumulators then
// went through memory (-25% at M = 128).
template <int MR, int NV>
__attribute__((always_inline)) inline void store_tile(const TileArgs& t, __m512i (&acc)[MR][NV]) {
  const GemmParams& p = *t.p;
  // GELU: scale and bias here, the activation (then residual and max) by gelu_tile after the loop.
  const bool gelu = p.output == GemmOutput::f32 && p.activation == Activation::gelu;
  alignas(64) float pre[MR * NV * 16];  // GELU only: scale * acc + bias, for gelu_tile
#pragma GCC unroll 8
  for (int v = 0; v < NV; ++v) {
    const int j = t.j0 + 16 * v;
    const __mmask16 mask = v == NV - 1 ? t.last_mask : static_cast<__mmask16>(0xFFFF);
    if (t.za != 0) {
      const __m512i comp = _mm512_mullo_epi32(_mm512_set1_epi32(t.za),
                                              _mm512_maskz_loadu_epi32(mask, p.col_sums + j));
#pragma GCC unroll 8
      for (int r = 0; r < MR; ++r) acc[r][v] = _mm512_sub_epi32(acc[r][v], comp);
    }
    switch (p.output) {
      case GemmOutput::s32: {
        const __m512i bias =
            p.bias_s32 ? _mm512_maskz_loadu_epi32(mask, p.bias_s32 + j) : _mm512_setzero_si512();
        int32_t* c = static_cast<int32_t*>(p.c) + t.i0 * p.ldc + j;
#pragma GCC unroll 8
        for (int r = 0; r < MR; ++r) {
          _mm512_mask_storeu_epi32(c + r * p.ldc, mask, _mm512_add_epi32(acc[r][v], bias));
        }
        break;
      }
      case GemmOutput::f32: {
        const __m512 scale =
            _mm512_mul_ps(_mm512_set1_ps(p.a_scale), _mm512_maskz_loadu_ps(mask, p.w_scales + j));
        const __m512 bias =
            p.bias_f32 ? _mm512_maskz_loadu_ps(mask, p.bias_f32 + j) : _mm512_setzero_ps();
        float* c = static_cast<float*>(p.c) + t.i0 * p.ldc + j;
        __m512i amax = _mm512_setzero_si512();
        if (gelu) {
#pragma GCC unroll 8
          for (int r = 0; r < MR; ++r) {
            _mm512_store_ps(pre + (r * NV + v) * 16,
                            _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc[r][v]), scale, bias));
          }
          break;
        }
#pragma GCC unroll 8
        for (int r = 0; r < MR; ++r) {
          __m512 y = _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc[r][v]), scale, bias);
          if (p.activation == Activation::relu) y = avx512::relu_ps(y);
          if (p.residual) {
            y = _mm512_add_ps(y, _mm512_maskz_loadu_ps(mask, p.residual + (t.i0 + r) * p.ldr + j));
          }
          _mm512_mask_storeu_ps(c + r * p.ldc, mask, y);
          if (t.abs_max) amax = _mm512_max_epu32(amax, abs_bits(y, mask));
        }
        if (t.abs_max) *t.abs_max = _mm512_max_epu32(*t.abs_max, amax);
        break;
      }
      case GemmOutput::s8:
      case GemmOutput::u8: {
        const RequantColumns rc = load_requant_columns(p.multiplier, p.shift, p.bias_s32, j, mask);
        const __m512i zp = _mm512_set1_epi32(p.out_zero_point);
        uint8_t* c = static_cast<uint8_t*>(p.c) + t.i0 * p.ldc + j;
#pragma GCC unroll 8
        for (int r = 0; r < MR; ++r) {
          store_requantized(requantize16(acc[r][v], rc, zp), p.output, c + r * p.ldc, mask);
        }
        break;
      }
    }
  }
  if (gelu) gelu_tile(p, t.i0, t.j0, MR, NV, t.last_mask, t.abs_max, pre);
}

// Requests the tile's output lines (and residual lines) for writing before the k loop, so that
// their read-for-ownership overlaps the dot products instead of stalling the epilogue's stores:
// with M x N outputs beyond L2 (M = 1024, N = 3072: 12 MiB of f32) the stalls cost ~25%.
template <int MR, int NV>
inline void prefetch_outputs(const TileArgs& t, bool c_lines = true) {
  const GemmParams& p = *t.p;
  const std::ptrdiff_t size = p.output == GemmOutput::s32 || p.output == GemmOutput::f32 ? 4 : 1;
  const char* c = static_cast<const char*>(p.c) + (t.i0 * p.ldc + t.j0) * size;
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r) {
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) {
      if (c_lines) _mm_prefetch(c + r * p.ldc * size + v * 16 * size, _MM_HINT_ET0);
      if (p.residual) {
        _mm_prefetch(reinterpret_cast<const char*>(p.residual + (t.i0 + r) * p.ldr + t.j0 + 16 * v),
                     _MM_HINT_T0);
      }
    }
  }
}

// One register tile over all k-groups, then its epilogue. Dot::step(acc, a, b) accumulates one
// group: a = 4 bytes of A broadcast to every lane, b = 64 bytes of one B panel.
template <class Dot, int MR, int NV, bool OutInLoop>
void tile(const TileArgs& t) {
  __m512i acc[MR][NV];
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r) {
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) {
      acc[r][v] =
          t.resume ? _mm512_loadu_si512(t.partial + (r * NV + v) * 16) : _mm512_setzero_si512();
    }
  }
  if (t.finish && (!OutInLoop || t.p->residual)) prefetch_outputs<MR, NV>(t, !OutInLoop);
  // OutInLoop (calls whose output is larger than L2): the output rows are requested for writing
  // one row every 4 groups from 32 iterations (~1,500 cycles) before the end of the k loop
  // instead of in a burst before it; out_next = the group of the next row's prefetch, -1 when
  // done. M = 1024, K = 768, N = 3072 (12 MiB of f32): 532-560 -> 647-653 GOP/s. Not for outputs
  // that stay in L2: there the extra loop state costs 1 to 4% (M = 128, N = 768).
  const std::ptrdiff_t out_size =
      t.p->output == GemmOutput::s32 || t.p->output == GemmOutput::f32 ? 4 : 1;
  const char* out = static_cast<const char*>(t.p->c) + (t.i0 * t.p->ldc + t.j0) * out_size;
  int out_next = !OutInLoop || !t.finish ? -1 : t.groups / 4 > 32 ? (t.groups / 4 - 32) * 4 : 0;
  const int out_last = out_next + 4 * (MR - 1);
  const uint8_t* a = t.a;
  const uint8_t* a4 = MR > 4 ? t.a + 4 * t.lda : t.a;  // never past A for short tiles
  const std::ptrdiff_t lda3 = 3 * t.lda;
  const int8_t* b = t.b;
  // One k-group: NV loads of B, MR broadcasts of A, MR x NV dot products.
  const auto group = [&](std::ptrdiff_t ga) {
    __m512i bv[NV];
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) bv[v] = _mm512_loadu_si512(b + 16 * ga + v * t.b_panel);
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) {
      // Rows addressed as base + {0, 1, 2, 3} * lda from two bases (rows 0-3 and 4-7): x86
      // scaled-index addressing then needs 4 general registers instead of one per row, and
      // the compiler stops shuttling row offsets through vector registers (a port 0/5 uop).
      int32_t a32;
      const uint8_t* base = (r < 4 ? a : a4) + ga;
      const int rr = r < 4 ? r : r - 4;
      __builtin_memcpy(&a32, rr == 3 ? base + lda3 : base + rr * t.lda, 4);
      const __m512i av = _mm512_set1_epi32(a32);
#pragma GCC unroll 8
      for (int v = 0; v < NV; ++v) acc[r][v] = Dot::step(acc[r][v], av, bv[v]);
    }
  };
  // Unrolled by hand by 4 with constant offsets, so that loop bookkeeping (which competes with
  // vpdpbusd for ports 0 and 5) is 3 adds and a branch per 4 groups. The next B block's lines are
  // prefetched here, a few per iteration, instead of in a burst before the tile: a burst of
  // L3 misses fills the line-fill buffers and stalls the tile (4.6% of the M = 128, N = 3072
  // time went to such a burst).
  const char* pf = t.pf;
  int pf_left = t.pf_lines;
  int g = 0;
  for (; g + 4 <= t.groups; g += 4) {
    group(0);
    group(4);
    group(8);
    group(12);
    if (pf_left > 0) {
      _mm_prefetch(pf, _MM_HINT_T1);
      pf += 64;
      --pf_left;
    }
    if (OutInLoop && g == out_next) {
#pragma GCC unroll 8
      for (int v = 0; v < NV; ++v) _mm_prefetch(out + v * 16 * out_size, _MM_HINT_ET0);
      out += t.p->ldc * out_size;
      out_next = out_next == out_last ? -1 : out_next + 4;
    }
    a += 16;
    a4 += 16;
    b += 256;
  }
  for (; g < t.groups; ++g) {
    group(0);
    a += 4;
    a4 += 4;
    b += 64;
  }
  if (OutInLoop && out_next >= 0) {
    for (; out_next <= out_last; out_next += 4, out += t.p->ldc * out_size) {
#pragma GCC unroll 8
      for (int v = 0; v < NV; ++v) _mm_prefetch(out + v * 16 * out_size, _MM_HINT_ET0);
    }
  }
  if (!t.finish) {
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) {
#pragma GCC unroll 8
      for (int v = 0; v < NV; ++v) _mm512_storeu_si512(t.partial + (r * NV + v) * 16, acc[r][v]);
    }
    return;
  }
  store_tile<MR, NV>(t, acc);
}

using TileFn = void (*)(const TileArgs&);

template <class Dot, bool OutInLoop, int NV, int... Rows>
constexpr std::array<TileFn, sizeof...(Rows)> tile_row(std::integer_sequence<int, Rows...>) {
  return {&tile<Dot, Rows + 1, NV, OutInLoop>...};
}

// tiles[nv - 1][mr - 1] for every mr <= MRMax, nv <= NVMax (tails of M and N).
template <class Dot, int MRMax, bool OutInLoop, int... Panels>
constexpr std::array<std::array<TileFn, MRMax>, sizeof...(Panels)> tile_table(
    std::integer_sequence<int, Panels...>) {
  return {tile_row<Dot, OutInLoop, Panels + 1>(std::make_integer_sequence<int, MRMax>{})...};
}

// K blocking: the B block of one 48-column panel group, kKcGroups groups deep (1024 k for VNNI),
// is 48 KiB: it stays in L1/L2 while the tile sweeps every row block, however deep K is. Partial
// sums go through `partial` (rows x 16 * kNv int32, in the workspace) between blocks. Measured on
// a Sapphire Rapids core: blocks of 512 k cost ~3% at K = 768 and gained nothing at K <= 3072, so
// BERT-base shapes up to K = 1024 run unblocked.
constexpr int kKcGroups = 256;

// C (all M x N outputs of the problem) beyond the L2 of one core (octet::l2_cache_bytes()) gets
// its lines prefetched inside the k loops (tile<..., true>). Tuned on Sapphire Rapids (2 MiB L2);
// on Zen 4 (1 MiB) M = 128, K = 1024, N = 4096 (2 MiB of f32) gains 1 to 4% from the in-loop
// prefetch, medians of alternated runs.

// Fewest row tiles per sweep for which the next B block is prefetched (see gemm_blocks).
constexpr int kMinPrefetchTiles = 4;

// Bytes of int32 partial sums gemm_blocks needs for `rows` rows.
inline std::size_t partial_bytes(int rows) {
  return static_cast<std::size_t>(rows) * 16 * kNv * sizeof(int32_t);
}

// Computes C[m0:m1, n0:n1]. `a` points at row m0 of A in group layout with row stride lda bytes;
// `b` is the packed B (panels of `groups` groups); za is the zero point the column sums remove;
// `partial` holds partial_bytes(m1 - m0) bytes.
template <class Dot>
void gemm_blocks(const GemmParams& p, int m0, int m1, int n0, int n1, const uint8_t* a,
                 std::ptrdiff_t lda, int groups, int32_t za, int32_t* partial) {
  static constexpr auto kMain = tile_table<Dot, kMr, false>(std::make_integer_sequence<int, kNv>{});
  static constexpr auto kMainLarge =
      tile_table<Dot, kMr, true>(std::make_integer_sequence<int, kNv>{});
  static constexpr auto kSmall =
      tile_table<Dot, kMrSmall, false>(std::make_integer_sequence<int, kNvSmall>{});
  const int rows = m1 - m0;
  const bool small = rows <= kMrSmall;
  const int mr_max = small ? kMrSmall : kMr;
  const int nv_max = small ? kNvSmall : kNv;
  const std::ptrdiff_t b_panel = static_cast<std::ptrdiff_t>(groups) * 64;
  // Small M reads each B block once anyway: no K blocking. Otherwise balanced K blocks.
  const int k_blocks = small ? 1 : (groups + kKcGroups - 1) / kKcGroups;
  const int kc = (groups + k_blocks - 1) / k_blocks;
  // The whole C of the problem (not just this block) larger than L2: see tile<..., OutInLoop>.
  const std::size_t out_bytes =
      static_cast<std::size_t>(p.m) * static_cast<std::size_t>(p.n) *
      (p.output == GemmOutput::s32 || p.output == GemmOutput::f32 ? 4 : 1);
  const bool large_output = out_bytes > l2_cache_bytes();

  TileArgs t;
  t.lda = lda;
  t.b_panel = b_panel;
  t.p = &p;
  t.za = za;
  __m512i abs_max = _mm512_setzero_si512();
  t.abs_max = p.output == GemmOutput::f32 && p.abs_max ? &abs_max : nullptr;
  for (int j = n0; j < n1; j += 16 * nv_max) {
    const int cols = n1 - j < 16 * nv_max ? n1 - j : 16 * nv_max;
    const int nv = (cols + 15) / 16;
    t.last_mask = column_mask(cols - 16 * (nv - 1));
    t.j0 = j;
    for (int kb = 0; kb < k_blocks; ++kb) {
      const int g0 = kb * kc;
      t.groups = groups - g0 < kc ? groups - g0 : kc;
      t.b = static_cast<const int8_t*>(p.packed_b) + (j / 16) * b_panel + g0 * 64;
      t.resume = kb > 0;
      t.finish = kb == k_blocks - 1;
      // The B block the next sweep over the rows reads (next K block, else next column group),
      // prefetched into L2 a slice per tile: when packed B outgrows L2 (N = 3072 and 4096 at
      // K >= 768) the first tile of each sweep would otherwise wait on L3.
      const int jn = kb + 1 < k_blocks ? j : j + 16 * nv_max;
      const int gn = kb + 1 < k_blocks ? g0 + kc : 0;
      const int next_lines = jn < n1 && !small ? (groups - gn < kc ? groups - gn : kc) : 0;
      const int next_nv = jn < n1 ? ((n1 - jn < 16 * nv_max ? n1 - jn : 16 * nv_max) + 15) / 16 : 0;
      const char* next_b = static_cast<const char*>(p.packed_b) + (jn / 16) * b_panel + gn * 64;
      // Spread over the sweep's tiles, each issuing one contiguous run of one panel's lines inside
      // its k loop (one line every 4 groups; what a short tile cannot issue is left to the
      // hardware). Tile `ti` takes panel ti % next_nv, part ti / next_nv of that panel's lines.
      // Not below 4 tiles per sweep: a lone tile (M <= 8) streams its own B block from memory
      // once per call and the prefetch only competes with it (M = 8: -1 to -4%);
      // M = 32 (4 tiles) gains 4 to 5% at N = 3072 and 4096.
      const int tiles = (rows + mr_max - 1) / mr_max;
      for (int i = m0, ti = 0; i < m1; i += mr_max, ++ti) {
        const int mr = m1 - i < mr_max ? m1 - i : mr_max;
        t.pf = nullptr;
        t.pf_lines = 0;
        if (next_lines > 0 && next_nv > 0 && tiles >= kMinPrefetchTiles) {
          const int v = ti % next_nv;
          const int parts = (tiles - v + next_nv - 1) / next_nv;
          const int per = (next_lines + parts - 1) / parts;
          const int l0 = ti / next_nv * per;
          const int l1 = l0 + per < next_lines ? l0 + per : next_lines;
          t.pf = next_b + v * b_panel + l0 * 64;
          t.pf_lines = l1 > l0 ? l1 - l0 : 0;
        }
        t.a = a + (i - m0) * lda + g0 * 4;
        t.i0 = i;
        t.partial = partial + (i - m0) * 16 * nv;
        (small          ? kSmall[nv - 1][mr - 1]
         : large_output ? kMainLarge[nv - 1][mr - 1]
                        : kMain[nv - 1][mr - 1])(t);
      }
    }
  }
  if (t.abs_max) fold_abs_max(p, abs_max);
}

// The s8/u8 epilogue over an int32 matrix (the requantize kernel).
inline void requantize_rows(const int32_t* x, int rows, int cols, std::ptrdiff_t ldx,
                            const int32_t* bias, const int32_t* multiplier, const int32_t* shift,
                            int32_t out_zero_point, GemmOutput output, void* y,
                            std::ptrdiff_t ldy) {
  const __m512i zp = _mm512_set1_epi32(out_zero_point);
  for (int j = 0; j < cols; j += 16) {
    const __mmask16 mask = column_mask(cols - j);
    const RequantColumns rc = load_requant_columns(multiplier, shift, bias, j, mask);
    for (int i = 0; i < rows; ++i) {
      const __m512i v = _mm512_maskz_loadu_epi32(mask, x + i * ldx + j);
      store_requantized(requantize16(v, rc, zp), output, static_cast<uint8_t*>(y) + i * ldy + j,
                        mask);
    }
  }
}

}  // namespace avx512_gemm

}  // namespace
}  // namespace octet::kernels
