// Scalar fixed-point primitives for requantization (gemmlowp style): the specification that the
// vector epilogues of every ISA are tested against, bit for bit.
//
// Octet's requantization is the single-rounding dyadic multiply of I-BERT (QUANT_SPEC B.4, D.5,
// D.9.1): a real ratio r = S_in / S_out is stored as an int32 mantissa m in [2^30, 2^31) and a
// right shift s, r ~= m / 2^s, and an integer v becomes
//     round_half_even(v * m / 2^s)
// computed exactly in int64 (one rounding, no double rounding as in gemmlowp's SRDHM + RDBPOT).
// Half to even matches the reference implementations (torch.round in I-BERT's fixedpoint_mul)
// wherever they are exact; they compute in float64, which can differ by 1 LSB once |v * m| > 2^53.
//
// The gemmlowp primitives (saturating_rounding_doubling_high_mul, rounding_divide_by_pot) are
// kept for comparison with TFLite-style models; Octet's kernels do not use them.
//
// Bit budget: v = acc + bias with |acc| <= 255 * 128 * 65536 < 2^31 and |bias| <= 2^31 gives
// |v| <= 2^32; m < 2^31, so |v * m| < 2^63 fits int64.
#pragma once

#include <fmt/format.h>

#include <cmath>
#include <cstdint>
#include <limits>

#include "octet/error.h"

namespace octet::kernels {

// Smallest and largest right shift quantize_multiplier() returns.
inline constexpr int kMinRequantShift = 1;
inline constexpr int kMaxRequantShift = 63;
// quantize_multiplier() accepts real ratios in [0, kMaxRequantRatio).
inline constexpr double kMaxRequantRatio = 536870912.0;  // 2^29

// Decomposes real = multiplier / 2^shift with multiplier in [2^30, 2^31) (the frexp mantissa
// rounded half away from zero to 31 bits) and shift in [1, 63]. The TFLite fix for a mantissa
// that rounds up to 2^31: halve it and decrement the shift. A ratio too small for shift 63
// (real < 2^-33) flushes to multiplier 0, shift 1 (every input then requantizes to 0).
// Throws InvalidArgument for a negative, non-finite or too large ratio.
inline void quantize_multiplier(double real, int32_t* multiplier, int* shift) {
  if (!(real >= 0.0) || !(real < kMaxRequantRatio)) {
    throw InvalidArgument(fmt::format(
        "quantize_multiplier: real ratio {} out of range: expected a finite value in [0, 2^29)",
        real));
  }
  *multiplier = 0;
  *shift = kMinRequantShift;
  if (real == 0.0) return;
  int exponent = 0;
  const double fraction = std::frexp(real, &exponent);  // real = fraction * 2^exponent
  int64_t m = static_cast<int64_t>(std::floor(std::ldexp(fraction, 31) + 0.5));
  int s = 31 - exponent;
  if (m == (int64_t{1} << 31)) {
    m >>= 1;
    --s;
  }
  if (s > kMaxRequantShift) return;  // flush to zero
  *multiplier = static_cast<int32_t>(m);
  *shift = s;
}

// round_half_even(x / 2^shift) for shift in [1, 63], without overflow for any int64 x.
// Rule (shared with the vector code): floor + (rem > half - (floor & 1)), which rounds a tie up
// exactly when floor is odd; written so that nothing overflows even for shift 63.
inline int64_t rounding_shift_right_half_even(int64_t x, int shift) {
  const int64_t floor = x >> shift;  // arithmetic: floor division
  const int64_t rem = static_cast<int64_t>(static_cast<uint64_t>(x) & ((uint64_t{1} << shift) - 1));
  const int64_t half = int64_t{1} << (shift - 1);
  return floor + (rem > half - (floor & 1) ? 1 : 0);
}

// The requantization of one value: v is the exact int64 (acc + bias); result saturated to
// [lo, hi] after adding the output zero point.
inline int32_t requantize_value(int64_t v, int32_t multiplier, int shift, int32_t zero_point,
                                int32_t lo, int32_t hi) {
  int64_t q = rounding_shift_right_half_even(v * multiplier, shift) + zero_point;
  if (q < lo) q = lo;
  if (q > hi) q = hi;
  return static_cast<int32_t>(q);
}

// gemmlowp SaturatingRoundingDoublingHighMul (ARM VQRDMULH): round_half_away(a * b / 2^31),
// saturating the one overflow case a == b == INT32_MIN.
inline int32_t saturating_rounding_doubling_high_mul(int32_t a, int32_t b) {
  if (a == b && a == std::numeric_limits<int32_t>::min()) {
    return std::numeric_limits<int32_t>::max();
  }
  const int64_t ab = static_cast<int64_t>(a) * b;
  const int64_t nudge = ab >= 0 ? (int64_t{1} << 30) : (1 - (int64_t{1} << 30));
  return static_cast<int32_t>((ab + nudge) / (int64_t{1} << 31));  // truncates toward zero
}

// gemmlowp RoundingDivideByPOT: round_half_away(x / 2^exponent), exponent in [0, 31].
inline int32_t rounding_divide_by_pot(int32_t x, int exponent) {
  const int32_t mask = static_cast<int32_t>((int64_t{1} << exponent) - 1);
  const int32_t remainder = x & mask;
  const int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
  return (x >> exponent) + (remainder > threshold ? 1 : 0);
}

}  // namespace octet::kernels
