// Integer-only (I-BERT) kernels: i-GELU, i-exp, i-softmax, i-LayerNorm, wide dyadic requantization
// and the requantizing residual addition. Signatures and the IntegerKernels section of the kernel
// table. Every signature takes and returns integers only: the float scales are folded into the
// integer parameters below by a separate prepare step (ops/integer_ops.h), so the kernels contain
// no floating-point arithmetic at all.
//
// The formulas are those of the I-BERT reference code (fairseq `ibert` branch and Hugging Face
// `IntGELU`, `IntSoftmax`, `IntLayerNorm`, `FixedPointMul`; QUANT_SPEC B.4-B.9), evaluated in exact
// integer arithmetic where the reference simulates integers in floating point. Deviations (all in
// docs/integer_only.md): int64 wherever B.14 says int32 can overflow; i-exp's 16-bit QuantAct is a
// static dyadic multiply by 32767 / c_int instead of an EMA-calibrated one; the softmax output is
// uint8 (the next GEMM's u8 operand; 256 cannot occur, see isoftmax); LayerNorm uses an exact
// integer square root (paper Alg. 4) instead of float sqrt and guards std = 0; floor(v / 2^k) is an
// arithmetic shift everywhere (never C++ `/` on negative values).
//
// Layouts: row-major matrices, a base pointer and a row stride in elements. Per-column parameter
// arrays have `cols` entries. Kernels never allocate, throw or start threads, and trust their
// parameters (the prepare step produces them in range; the ops wrappers check them). Outputs are
// bit-exact across ISAs (ref, AVX2, AVX-512).
//
// Contracts (floor = toward -inf; rhe(v, s) = round_half_even(v / 2^s), exact):
//   igelu (elementwise, per-column b < 0, c, one > 0; x int32 -> y int64):
//       a  = min(|x|, -b) + b                                     (in [b, 0])
//       e  = floor(sgn(x) * (a^2 + c) / 2^14)                      (I-ERF, scale S_erf < 0)
//       y  = x * (one - e)                                         = -(reference q_out)
//     The output scale is S * |S_erf| / 2 > 0 (the reference's negative scale folded into the
//     sign). Prepare guarantees b^2 <= 2 |c| and one + |c| / 2^14 + 1 < 2^32, hence
//     |one - e| < 2^32 and |y| < 2^63.
//   iexp (elementwise, per-tensor IexpParams; x int32 <= 0 -> y in [0, 32767]):
//       t  = max(floor(min(x, 0) / 2^input_shift), 30 * x0)         (x0 = floor(-ln2 / S') < 0)
//       z  = floor(t / x0) in [0, 30],  r = t - z * x0 in (x0, 0]
//       p  = (r + b) * r + c                                        (I-POLY; 0 < p <= c < 2^31)
//       y  = rhe(p * multiplier, shift + z)   (multiplier / 2^shift = 32767 / c; shift + z > 63
//                                              gives 0 exactly because p * multiplier < 2^62)
//   isoftmax (per row over the first `valid` columns; int32 scores -> uint8):
//       e_j = iexp(x_j - max_j' x_j')     (x_j - max computed without int32 overflow)
//       f   = floor(2^32 / sum_j e_j),   y_j = min(floor(e_j * f / 2^24), 255)
//     Columns j >= valid get 0 (a -inf mask); a row with valid == 0 is all zeros. The row maximum
//     has e = 32767 exactly, so sum >= 32767 and e_j * f <= sum * f < 2^32 unless sum is a power
//     of two, which needs a single non-zero e equal to it: impossible. y_j <= 255 without the min.
//   ilayernorm (per row of `cols`; x int32 -> y int64; x saturated to +-(2^23 - 1) first):
//       mean = rhe(sum x, exact division by cols),  d = x - mean
//       var  = sum floor(d / 2^shift)^2   (int64),  std = max(isqrt(var), 1) * 2^shift
//       f    = floor(2^31 / std),  y = floor(d * f / 2) + bias[c]    (|floor(d f / 2)| < 2^55)
//     Output scale sqrt(cols) / 2^30 * gamma[c] (the prepare step folds beta / gamma into bias).
//   requantize_wide (elementwise, per column; x int64 -> out_bits in [2, 32], stored as int8_t
//   for out_bits <= 8, int16_t for <= 16, int32_t otherwise; sat_bits clamps to
//   [-2^(out_bits-1), 2^(out_bits-1) - 1]):
//       y = sat_bits(rhe(x * multiplier[c], shift[c]))  exact in 128 bits; |multiplier| in
//       [2^30, 2^31) or 0 (negative = negative ratio), shift in [1, kMaxWideShift]; x = INT64_MIN
//       is read as -INT64_MAX.
//   residual_add (elementwise, per column; x int32, r int8 (may be null) -> out_bits):
//       y = sat_bits(rhe(x * mx[c], sx[c]) + rhe(r * mr[c], sr[c]))
//     I-BERT's QuantAct with identity: each branch requantized to the output scale, then added
//     and clamped (HF clamps every width; fairseq leaves 22/32 bits unclamped). Multipliers
//     signed, |m| in [2^30, 2^31) or 0; shifts in [1, 63]; out_bits and containers as above.
#pragma once

#include <cstddef>
#include <cstdint>

namespace octet::kernels {

inline constexpr int kIgeluOverflowShift = 14;          // fairseq/HF IntGELU `const`
inline constexpr int kIexpMaxZ = 30;                    // fairseq/HF IntSoftmax `const`
inline constexpr int32_t kIexpOutMax = 32767;           // i-exp output: the 16-bit QuantAct's range
inline constexpr int kIsoftmaxSumBits = 32;             // IntSoftmax `max_bit`
inline constexpr int kIsoftmaxOutBits = 8;              // output scale 2^-8
inline constexpr int32_t kIlnInputMax = (1 << 23) - 1;  // i-LayerNorm input saturation
inline constexpr int kMaxWideShift = 94;                // requantize_wide: |x * m| < 2^94

// Integer constants of i-exp / i-softmax for one input scale S (per tensor).
struct IexpParams {
  int32_t input_shift = 0;  // >= 0: x is divided by 2^input_shift first (S' = S * 2^input_shift)
  int32_t x0 = -1;          // floor(-0.6931 / S') < 0, with |32 * x0| < 2^31
  int32_t b = 0;            // floor((0.96963238 / 0.35815147) / S') > 0
  int32_t c = 1;            // floor((1 / 0.35815147) / S'^2) in [1, 2^31)
  int32_t multiplier = 0;   // multiplier / 2^shift ~= 32767 / c, multiplier in [2^30, 2^31)
  int32_t shift = 1;        // in [1, 63]
};

using IGeluFn = void (*)(const int32_t* x, std::ptrdiff_t ldx, int rows, int cols, const int32_t* b,
                         const int64_t* c, const int64_t* one, int64_t* y, std::ptrdiff_t ldy);
using IExpFn = void (*)(const int32_t* x, std::size_t n, const IexpParams& p, int32_t* y);
using ISoftmaxFn = void (*)(const int32_t* x, std::ptrdiff_t ldx, int rows, int cols, int valid,
                            const IexpParams& p, uint8_t* y, std::ptrdiff_t ldy);
using ILayerNormFn = void (*)(const int32_t* x, std::ptrdiff_t ldx, int rows, int cols, int shift,
                              const int64_t* bias, int64_t* y, std::ptrdiff_t ldy);
// y holds int8_t (out_bits <= 8), int16_t (<= 16) or int32_t (<= 32) elements.
using RequantizeWideFn = void (*)(const int64_t* x, std::ptrdiff_t ldx, int rows, int cols,
                                  const int32_t* multiplier, const int32_t* shift, int out_bits,
                                  void* y, std::ptrdiff_t ldy);
using ResidualAddFn = void (*)(const int32_t* x, std::ptrdiff_t ldx, const int32_t* mx,
                               const int32_t* sx, const int8_t* r, std::ptrdiff_t ldr,
                               const int32_t* mr, const int32_t* sr, int rows, int cols,
                               int out_bits, void* y, std::ptrdiff_t ldy);

struct IntegerKernels {
  IGeluFn igelu = nullptr;
  IExpFn iexp = nullptr;
  ISoftmaxFn isoftmax = nullptr;
  ILayerNormFn ilayernorm = nullptr;
  RequantizeWideFn requantize_wide = nullptr;
  ResidualAddFn residual_add = nullptr;
};

}  // namespace octet::kernels
