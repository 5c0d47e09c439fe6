// AVX2 INT8 GEMM: exact int16 widening (vpmaddwd), register tile 4 x 16, fused epilogues
// s32 / f32 (+ReLU/GELU, residual) / s8 / u8 (formulas in kernels/int8.h).
//
// Why not vpmaddubsw: it adds two u8 x s8 products into a saturating int16, and 255*127*2 =
// 64770 > 32767 (QUANT_SPEC D.6, D.8): results would silently depend on the CPU. Both operands
// are widened to int16 once, at packing time (A per call as int16 (a - za), B at load time), and
// vpmaddwd adds two exact int16 products into int32: |(a - za) * b| <= 255 * 128. No range is
// restricted and the output equals the reference bit for bit.
//
// Layout: packed B = 16-column panels, each [ceil(K/2) pairs][16 columns][2 k] int16 (the same
// bytes as the AVX-512 int16 path): a pair-group of a panel is 64 bytes, columns 0-7 in the first
// ymm and 8-15 in the second. A rows: int16 with row stride 2 * ceil(K/2), pairs broadcast as
// one dword. Tile 4 rows x 16 columns: 8 ymm accumulators + 2 B + 1 A + the products fit the 16
// registers; a 6-row tile (12 accumulators) made GCC spill accumulators inside the k loop
// (measured 25-35% slower). vpaddd (latency 1) closes each accumulation chain, so the tile needs
// no extra chains to hide the 5-cycle vpmaddwd latency.
#include <cstring>

#include "kernels/avx2/int8_avx2.h"
#include "kernels/avx2/math_avx2.h"
#include "kernels/pack_int16.h"

namespace octet::kernels::avx2 {
namespace {

constexpr int kMr = 4;

int pairs_of(int k) { return (k + 1) / 2; }  // local: no inline code shared across ISA flags

// Lanes < cols set (cols in [0, 8]).
inline __m256i lane_mask(int cols) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(cols), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

// Dyadic requantization constants for 8 columns, split into even and odd lanes because
// vpmuldq multiplies the low dword of each qword.
struct RequantColumns {
  __m256i m_even, m_odd, bias_m_even, bias_m_odd;
  __m256i s_even, s_odd, half_even, half_odd, low_even, low_odd;
};

inline RequantColumns load_requant_columns(const int32_t* multiplier, const int32_t* shift,
                                           const int32_t* bias, int j, __m256i mask) {
  const __m256i one = _mm256_set1_epi64x(1);
  const __m256i m = _mm256_maskload_epi32(multiplier + j, mask);
  // Masked-off lanes get shift 1 so that every lane's arithmetic stays defined.
  const __m256i s =
      _mm256_blendv_epi8(_mm256_set1_epi32(1), _mm256_maskload_epi32(shift + j, mask), mask);
  const __m256i b = bias ? _mm256_maskload_epi32(bias + j, mask) : _mm256_setzero_si256();
  RequantColumns c;
  c.m_even = m;
  c.m_odd = _mm256_srli_epi64(m, 32);
  c.bias_m_even = _mm256_mul_epi32(b, c.m_even);
  c.bias_m_odd = _mm256_mul_epi32(_mm256_srli_epi64(b, 32), c.m_odd);
  c.s_even = _mm256_and_si256(s, _mm256_set1_epi64x(0xFFFFFFFFll));
  c.s_odd = _mm256_srli_epi64(s, 32);
  c.half_even = _mm256_sllv_epi64(one, _mm256_sub_epi64(c.s_even, one));
  c.half_odd = _mm256_sllv_epi64(one, _mm256_sub_epi64(c.s_odd, one));
  c.low_even = _mm256_sub_epi64(_mm256_sllv_epi64(one, c.s_even), one);
  c.low_odd = _mm256_sub_epi64(_mm256_sllv_epi64(one, c.s_odd), one);
  return c;
}

// round_half_even(p / 2^s) as floor + (rem > half - (floor & 1)) (kernels/fixedpoint.h). AVX2
// has no 64-bit arithmetic shift: floor(p / 2^s) = ~(~p >> s) for negative p.
inline __m256i round_shift_half_even(__m256i p, __m256i s, __m256i half, __m256i low) {
  const __m256i sign = _mm256_cmpgt_epi64(_mm256_setzero_si256(), p);
  const __m256i fl = _mm256_xor_si256(_mm256_srlv_epi64(_mm256_xor_si256(p, sign), s), sign);
  const __m256i rem = _mm256_and_si256(p, low);
  const __m256i bar = _mm256_sub_epi64(half, _mm256_and_si256(fl, _mm256_set1_epi64x(1)));
  return _mm256_sub_epi64(fl, _mm256_cmpgt_epi64(rem, bar));  // mask is -1 where rounding up
}

inline __m256i clamp_epi64(__m256i x, __m256i lo, __m256i hi) {
  x = _mm256_blendv_epi8(x, lo, _mm256_cmpgt_epi64(lo, x));
  return _mm256_blendv_epi8(x, hi, _mm256_cmpgt_epi64(x, hi));
}

// 8 int32 values -> requantized int32 (zero point added, not yet saturated to 8 bits).
inline __m256i requantize8(__m256i x, const RequantColumns& c, __m256i zero_point) {
  // Clamp before narrowing to int32: anything beyond +-2^20 saturates to the same 8-bit code.
  const __m256i lim = _mm256_set1_epi64x(1 << 20), nlim = _mm256_set1_epi64x(-(1 << 20));
  const __m256i p_even = _mm256_add_epi64(_mm256_mul_epi32(x, c.m_even), c.bias_m_even);
  const __m256i p_odd =
      _mm256_add_epi64(_mm256_mul_epi32(_mm256_srli_epi64(x, 32), c.m_odd), c.bias_m_odd);
  const __m256i q_even =
      clamp_epi64(round_shift_half_even(p_even, c.s_even, c.half_even, c.low_even), nlim, lim);
  const __m256i q_odd =
      clamp_epi64(round_shift_half_even(p_odd, c.s_odd, c.half_odd, c.low_odd), nlim, lim);
  const __m256i q = _mm256_blend_epi32(q_even, _mm256_slli_epi64(q_odd, 32), 0xAA);
  return _mm256_add_epi32(q, zero_point);
}

// Saturates 8 int32 to s8 or u8 and stores the first `cols` of them.
inline void store_requantized(__m256i q, GemmOutput output, uint8_t* dst, int cols) {
  const __m128i w16 = _mm_packs_epi32(_mm256_castsi256_si128(q), _mm256_extracti128_si256(q, 1));
  const __m128i b8 =
      output == GemmOutput::s8 ? _mm_packs_epi16(w16, w16) : _mm_packus_epi16(w16, w16);
  if (cols >= 8) {
    _mm_storel_epi64(reinterpret_cast<__m128i*>(dst), b8);
  } else {
    alignas(16) uint8_t tmp[16];
    _mm_store_si128(reinterpret_cast<__m128i*>(tmp), b8);
    std::memcpy(dst, tmp, cols);
  }
}

struct TileArgs {
  const int16_t* a;    // first row of the tile
  std::ptrdiff_t lda;  // int16 elements between rows
  const int16_t* b;    // panel start
  int pairs;
  const GemmParams* p;
  int i0, j0;
  int cols;          // valid columns of the panel, 1..16
  __m256i* abs_max;  // f32 output with p->abs_max: running max of |y| bit patterns; else null
};

template <int MR>
void tile(const TileArgs& t) {
  __m256i acc[MR][2];
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r) acc[r][0] = acc[r][1] = _mm256_setzero_si256();
  const int16_t* a = t.a;
  const int16_t* b = t.b;
  for (int g = 0; g < t.pairs; ++g) {
    const __m256i b0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b));
    const __m256i b1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + 16));
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) {
      int32_t pair;
      std::memcpy(&pair, a + r * t.lda, 4);
      const __m256i av = _mm256_set1_epi32(pair);
      acc[r][0] = _mm256_add_epi32(acc[r][0], _mm256_madd_epi16(av, b0));
      acc[r][1] = _mm256_add_epi32(acc[r][1], _mm256_madd_epi16(av, b1));
    }
    a += 2;
    b += 32;
  }

  const GemmParams& p = *t.p;
#pragma GCC unroll 2
  for (int h = 0; h < 2; ++h) {
    const int cols = t.cols - 8 * h;
    if (cols <= 0) break;
    const int j = t.j0 + 8 * h;
    const __m256i mask = lane_mask(cols);
    switch (p.output) {
      case GemmOutput::s32: {
        const __m256i bias =
            p.bias_s32 ? _mm256_maskload_epi32(p.bias_s32 + j, mask) : _mm256_setzero_si256();
        int32_t* c = static_cast<int32_t*>(p.c) + t.i0 * p.ldc + j;
#pragma GCC unroll 8
        for (int r = 0; r < MR; ++r) {
          _mm256_maskstore_epi32(c + r * p.ldc, mask, _mm256_add_epi32(acc[r][h], bias));
        }
        break;
      }
      case GemmOutput::f32: {
        const __m256 scale =
            _mm256_mul_ps(_mm256_set1_ps(p.a_scale), _mm256_maskload_ps(p.w_scales + j, mask));
        const __m256 bias =
            p.bias_f32 ? _mm256_maskload_ps(p.bias_f32 + j, mask) : _mm256_setzero_ps();
        float* c = static_cast<float*>(p.c) + t.i0 * p.ldc + j;
        // GemmParams::abs_max: |y| as unsigned bit patterns (vpmaxud keeps a NaN above Inf,
        // whatever the order; vmaxps would not), masked-off lanes 0.
        const __m256i abs_lanes = _mm256_and_si256(mask, _mm256_set1_epi32(0x7FFFFFFF));
        __m256i amax = _mm256_setzero_si256();
#pragma GCC unroll 8
        for (int r = 0; r < MR; ++r) {
          __m256 y = _mm256_fmadd_ps(_mm256_cvtepi32_ps(acc[r][h]), scale, bias);
          if (p.activation == Activation::relu) y = relu_ps(y);
          if (p.activation == Activation::gelu) y = gelu_erf_ps(y);
          if (p.residual) {
            y = _mm256_add_ps(y, _mm256_maskload_ps(p.residual + (t.i0 + r) * p.ldr + j, mask));
          }
          _mm256_maskstore_ps(c + r * p.ldc, mask, y);
          if (t.abs_max) {
            amax = _mm256_max_epu32(amax, _mm256_and_si256(_mm256_castps_si256(y), abs_lanes));
          }
        }
        if (t.abs_max) *t.abs_max = _mm256_max_epu32(*t.abs_max, amax);
        break;
      }
      case GemmOutput::s8:
      case GemmOutput::u8: {
        const RequantColumns rc = load_requant_columns(p.multiplier, p.shift, p.bias_s32, j, mask);
        const __m256i zp = _mm256_set1_epi32(p.out_zero_point);
        uint8_t* c = static_cast<uint8_t*>(p.c) + t.i0 * p.ldc + j;
#pragma GCC unroll 8
        for (int r = 0; r < MR; ++r) {
          store_requantized(requantize8(acc[r][h], rc, zp), p.output, c + r * p.ldc, cols);
        }
        break;
      }
    }
  }
}

using TileFn = void (*)(const TileArgs&);
constexpr TileFn kTiles[kMr] = {&tile<1>, &tile<2>, &tile<3>, &tile<4>};

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
  return static_cast<std::size_t>(rows) * static_cast<std::size_t>(pairs_of(k)) * 4;
}

void gemm(const GemmParams& p, int m0, int m1, int n0, int n1, void* workspace) {
  if (m1 <= m0 || n1 <= n0) return;
  const int pairs = pairs_of(p.k);
  const std::ptrdiff_t ld = static_cast<std::ptrdiff_t>(pairs) * 2;
  int16_t* ws = static_cast<int16_t*>(workspace);
  if (p.a_dtype == ActDtype::s8) {
    pack_a_rows(static_cast<const int8_t*>(p.a) + m0 * p.lda, p.lda, m1 - m0, p.k, 0, ws, ld);
  } else {
    pack_a_rows(static_cast<const uint8_t*>(p.a) + m0 * p.lda, p.lda, m1 - m0, p.k, p.a_zero_point,
                ws, ld);
  }
  TileArgs t;
  t.lda = ld;
  t.pairs = pairs;
  t.p = &p;
  __m256i abs_max = _mm256_setzero_si256();
  t.abs_max = p.output == GemmOutput::f32 && p.abs_max ? &abs_max : nullptr;
  const std::ptrdiff_t panel_elems = static_cast<std::ptrdiff_t>(pairs) * 32;
  for (int j = n0; j < n1; j += 16) {
    t.b = static_cast<const int16_t*>(p.packed_b) + (j / 16) * panel_elems;
    t.j0 = j;
    t.cols = n1 - j < 16 ? n1 - j : 16;
    for (int i = m0; i < m1; i += kMr) {
      const int mr = m1 - i < kMr ? m1 - i : kMr;
      t.a = ws + (i - m0) * ld;
      t.i0 = i;
      kTiles[mr - 1](t);
    }
  }
  if (t.abs_max) {
    alignas(32) uint32_t lanes[8];
    _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), abs_max);
    uint32_t m;
    std::memcpy(&m, p.abs_max, sizeof m);
    m &= 0x7FFFFFFFu;
    for (uint32_t lane : lanes) m = lane > m ? lane : m;
    std::memcpy(p.abs_max, &m, sizeof m);
  }
}

void requantize(const int32_t* x, int rows, int cols, std::ptrdiff_t ldx, const int32_t* bias,
                const int32_t* multiplier, const int32_t* shift, int32_t out_zero_point,
                GemmOutput output, void* y, std::ptrdiff_t ldy) {
  const __m256i zp = _mm256_set1_epi32(out_zero_point);
  for (int j = 0; j < cols; j += 8) {
    const int n = cols - j < 8 ? cols - j : 8;
    const __m256i mask = lane_mask(n);
    const RequantColumns rc = load_requant_columns(multiplier, shift, bias, j, mask);
    for (int i = 0; i < rows; ++i) {
      const __m256i v = _mm256_maskload_epi32(x + i * ldx + j, mask);
      store_requantized(requantize8(v, rc, zp), output, static_cast<uint8_t*>(y) + i * ldy + j, n);
    }
  }
}

}  // namespace octet::kernels::avx2
