// Integer-only (I-BERT) operators: the "prepare" step that folds float scales into the integer
// constants of kernels/integer.h once, at model load, and typed wrappers that check shapes and
// parameters and call the kernels of one ISA.
//
//   // Load time (floats allowed): FC1 accumulator scales S_x * S_w[c] -> i-GELU constants.
//   octet::ops::IGeluParams g = octet::ops::prepare_igelu(acc_scales);
//   octet::ops::Dyadic r = octet::ops::dyadic(g.out_scale[c] / s_fc2_in, 94);  // per column
//   // Run time (integers only):
//   octet::ops::igelu(acc, rows, cols, cols, g, out64, cols);
//
// Prepare functions compute every constant in float64 from the float32 scales, with the
// formulas of the reference code (QUANT_SPEC B.7-B.9), and reject with octet::InvalidArgument
// (naming the operator, the channel, the value and the accepted range) any scale for which the
// integer arithmetic could overflow. Wrappers check shapes, strides and parameter sizes and throw
// InvalidArgument naming the operand, the expected and the found value, before any element is
// read. Everything here is stateless and thread-safe; outputs are caller-owned.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "kernels/integer.h"
#include "octet/cpu.h"

namespace octet::ops {

// A real ratio r ~= multiplier / 2^shift, |multiplier| in [2^30, 2^31) (or 0), shift >= 1.
struct Dyadic {
  int32_t multiplier = 0;
  int32_t shift = 1;
};

// frexp decomposition of a signed ratio (I-BERT batch_frexp: mantissa rounded half up to 31
// bits, QUANT_SPEC B.4), with the TFLite fix for a mantissa that rounds to 2^31 (halved, shift
// decremented). Ratios too small for max_shift flush to {0, 1}: with max_shift 63 (int32 inputs)
// or kMaxWideShift (int64 inputs, |x| < 2^63) the flushed result is exactly what the exact product
// would round to (0). Throws InvalidArgument for a non-finite ratio or |r| >= 2^29.
Dyadic dyadic(double ratio, int max_shift);

// i-GELU constants per channel of the input scale (FC1 accumulator scales S_x * S_w[c]).
struct IGeluParams {
  std::vector<int32_t> b;         // floor(-1.769 / S'), S' = S / 1.4142
  std::vector<int64_t> c;         // floor((1 / -0.2888) / S'^2)
  std::vector<int64_t> one;       // -floor(1 / S_erf), S_erf = -0.2888 * S'^2 * 2^14
  std::vector<double> out_scale;  // S * |S_erf| / 2 > 0: the scale of the kernel's int64 output
};
// Throws InvalidArgument for a non-positive or non-finite scale, or one below ~4.5e-7, where
// x * (one - erf) could exceed int64.
IGeluParams prepare_igelu(std::span<const float> in_scale);

// i-exp / i-softmax constants for the score scale S (per tensor). input_shift is the smallest
// shift that keeps c below 2^31 (0 for every S >= 3.6e-5, i.e. the reference arithmetic).
// Throws InvalidArgument for S <= 0, non-finite, S > 1.6 (c would be 0) or S < 1e-8.
kernels::IexpParams prepare_iexp(float in_scale);
// The real value of one unit of the i-exp output: exp(x) ~= iexp(x) / 32767 (kIexpOutMax).
inline constexpr double kIexpOutScale = 1.0 / kernels::kIexpOutMax;
// The real value of one unit of the softmax output.
inline constexpr double kIsoftmaxOutScale = 1.0 / (1 << kernels::kIsoftmaxOutBits);

// i-LayerNorm constants for gamma and beta (cols entries each) and the frozen overflow shift. The
// shift reproduces the reference, whose sum of squares must stay below 2^32; Octet sums in int64,
// so every shift in [0, 24] is overflow-safe, 0 included.
struct ILayerNormParams {
  int shift = 0;
  std::vector<int64_t> bias;      // floor((beta / gamma) / (sqrt(cols) / 2^30))
  std::vector<double> out_scale;  // gamma[c] * sqrt(cols) / 2^30 (negative when gamma is)
};
// Throws InvalidArgument for a size mismatch, gamma == 0 or non-finite, |beta / gamma| >=
// 2^32 sqrt(cols) (a bias beyond 2^62), or shift outside [0, 24].
ILayerNormParams prepare_ilayernorm(std::span<const float> gamma, std::span<const float> beta,
                                    int shift);
// The overflow-safe shift for calibration rows (int32, rows x cols, row stride ldx): the smallest
// s >= 0 with sum_j floor((x_j - mean) / 2^s)^2 < 2^32 on every row: the condition HF's
// IntLayerNorm.set_shift aims at, evaluated exactly (it agrees with set_shift on the golden
// cases). Inputs are saturated to +-(2^23 - 1) as in the kernel.
int ilayernorm_calibrate_shift(const int32_t* x, int rows, int cols, std::ptrdiff_t ldx);

// Per-column requantization constants of a residual addition y = x * S_x / S_out + r * S_r /
// S_out: scale_x and scale_r hold 1 (per tensor) or cols entries; scale_r may be empty (no
// residual branch). Shifts <= 63 (int32 and int8 inputs).
struct ResidualParams {
  std::vector<int32_t> mx, sx, mr, sr;
};
ResidualParams prepare_residual(std::span<const float> scale_x, std::span<const float> scale_r,
                                float scale_out, int cols);

// ---- Wrappers: integer in, integer out ----

void igelu(const int32_t* x, int rows, int cols, std::ptrdiff_t ldx, const IGeluParams& p,
           int64_t* y, std::ptrdiff_t ldy, Isa isa = active_isa());
void iexp(std::span<const int32_t> x, const kernels::IexpParams& p, std::span<int32_t> y,
          Isa isa = active_isa());
// cols <= 65536; valid in [0, cols].
void isoftmax(const int32_t* x, int rows, int cols, std::ptrdiff_t ldx, int valid,
              const kernels::IexpParams& p, uint8_t* y, std::ptrdiff_t ldy, Isa isa = active_isa());
// cols in [1, 32768].
void ilayernorm(const int32_t* x, int rows, int cols, std::ptrdiff_t ldx, const ILayerNormParams& p,
                int64_t* y, std::ptrdiff_t ldy, Isa isa = active_isa());
// multiplier / shift: cols entries each; out_bits in [2, 32]: y holds int8_t (<= 8 bits),
// int16_t (<= 16) or int32_t elements, saturated to [-2^(out_bits-1), 2^(out_bits-1) - 1].
void requantize_wide(const int64_t* x, int rows, int cols, std::ptrdiff_t ldx,
                     std::span<const int32_t> multiplier, std::span<const int32_t> shift,
                     int out_bits, void* y, std::ptrdiff_t ldy, Isa isa = active_isa());
// r may be null (then p.mr / p.sr are ignored).
void residual_add(const int32_t* x, std::ptrdiff_t ldx, const int8_t* r, std::ptrdiff_t ldr,
                  int rows, int cols, const ResidualParams& p, int out_bits, void* y,
                  std::ptrdiff_t ldy, Isa isa = active_isa());

}  // namespace octet::ops
