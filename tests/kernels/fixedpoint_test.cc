// kernels/fixedpoint.h: quantize_multiplier against a double reference (randomised and at the
// edges: the 2^31 mantissa overflow, flush to zero, rejected ratios), the half-to-even rounding
// shift exhaustively on small values and against 128-bit arithmetic on random int64, the
// requantization against float64 where float64 is exact, and the gemmlowp primitives.
#include "kernels/fixedpoint.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>

#include "octet/error.h"

namespace octet::kernels {
namespace {

TEST(QuantizeMultiplier, ApproximatesRandomRatiosWithinHalfAnUlpOfTheMantissa) {
  std::mt19937_64 rng(20240501);
  std::uniform_real_distribution<double> log2_ratio(-33.0, 28.9);
  for (int trial = 0; trial < 200000; ++trial) {
    const double real = std::exp2(log2_ratio(rng));
    int32_t m;
    int s;
    quantize_multiplier(real, &m, &s);
    if (m == 0) {
      ASSERT_LT(real, std::ldexp(1.0, -32)) << "flushed a representable ratio " << real;
      continue;
    }
    ASSERT_GE(m, int32_t{1} << 30) << "real=" << real;
    ASSERT_GE(s, kMinRequantShift) << "real=" << real;
    ASSERT_LE(s, kMaxRequantShift) << "real=" << real;
    const double approx = std::ldexp(static_cast<double>(m), -s);
    // Rounding the mantissa to 31 bits: relative error at most 2^-31 (half a unit of 2^-30).
    ASSERT_LE(std::fabs(approx - real), real * std::ldexp(1.0, -31)) << "real=" << real;
  }
}

TEST(QuantizeMultiplier, HandlesMantissaOverflowTheTfliteWay) {
  int32_t m;
  int s;
  // frexp gives 1 - 2^-40 (times 2^0): rounded to 31 bits that is 2^31, which does not fit.
  quantize_multiplier(1.0 - std::ldexp(1.0, -40), &m, &s);
  EXPECT_EQ(m, int32_t{1} << 30);
  EXPECT_EQ(s, 30);
  quantize_multiplier(0.5, &m, &s);
  EXPECT_EQ(m, int32_t{1} << 30);
  EXPECT_EQ(s, 31);
}

TEST(QuantizeMultiplier, FlushesTinyRatiosAndZeroToZero) {
  int32_t m;
  int s;
  quantize_multiplier(0.0, &m, &s);
  EXPECT_EQ(m, 0);
  EXPECT_EQ(s, kMinRequantShift);
  quantize_multiplier(std::ldexp(1.0, -40), &m, &s);  // would need shift 71
  EXPECT_EQ(m, 0);
  quantize_multiplier(std::ldexp(1.0, -33), &m, &s);  // shift 63 exactly: still representable
  EXPECT_EQ(m, int32_t{1} << 30);
  EXPECT_EQ(s, 63);
}

TEST(QuantizeMultiplier, RejectsNegativeNonFiniteAndTooLargeRatios) {
  int32_t m;
  int s;
  for (double bad : {-1.0, -1e-30, std::numeric_limits<double>::quiet_NaN(),
                     std::numeric_limits<double>::infinity(), kMaxRequantRatio, 1e300}) {
    EXPECT_THROW(quantize_multiplier(bad, &m, &s), InvalidArgument) << bad;
  }
}

// Exact reference: floor division and remainder in 128-bit arithmetic, ties to even.
int64_t round_half_even_reference(int64_t x, int shift) {
  const __int128 d = static_cast<__int128>(1) << shift;
  __int128 q = x / d, r = x % d;
  if (r < 0) r += d, q -= 1;  // floor
  const __int128 twice = 2 * r;
  if (twice > d || (twice == d && (q & 1))) q += 1;
  return static_cast<int64_t>(q);
}

TEST(RoundingShiftRightHalfEven, MatchesExactReferenceExhaustivelyOnSmallValues) {
  for (int shift = 1; shift <= 12; ++shift) {
    for (int64_t x = -20000; x <= 20000; ++x) {
      ASSERT_EQ(rounding_shift_right_half_even(x, shift), round_half_even_reference(x, shift))
          << "x=" << x << " shift=" << shift;
    }
  }
}

TEST(RoundingShiftRightHalfEven, MatchesExactReferenceOnRandomAndExtremeInt64) {
  std::mt19937_64 rng(99);
  const int64_t extremes[] = {
      std::numeric_limits<int64_t>::min(),    std::numeric_limits<int64_t>::max(), -1, 0, 1,
      (int64_t{1} << 62) + (int64_t{1} << 30)};
  for (int shift = 1; shift <= 63; ++shift) {
    for (int64_t x : extremes) {
      ASSERT_EQ(rounding_shift_right_half_even(x, shift), round_half_even_reference(x, shift))
          << "x=" << x << " shift=" << shift;
    }
    for (int trial = 0; trial < 5000; ++trial) {
      const int64_t x = static_cast<int64_t>(rng()) >> (trial % 40);
      ASSERT_EQ(rounding_shift_right_half_even(x, shift), round_half_even_reference(x, shift))
          << "x=" << x << " shift=" << shift;
    }
  }
}

// I-BERT's fixedpoint_mul computes round_half_even(v * m / 2^s) in float64; wherever float64 is
// exact (|v * m| <= 2^53) Octet must agree with it bit for bit.
TEST(RequantizeValue, AgreesWithFloat64WhereFloat64IsExact) {
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<double> log_ratio(std::log(1e-6), std::log(4.0));
  std::uniform_int_distribution<int64_t> value(-(int64_t{1} << 21), int64_t{1} << 21);
  for (int trial = 0; trial < 200000; ++trial) {
    int32_t m;
    int s;
    quantize_multiplier(std::exp(log_ratio(rng)), &m, &s);
    const int64_t v = value(rng);
    const double exact = static_cast<double>(v) * m;  // |v * m| < 2^52: exact
    const double want = std::nearbyint(std::ldexp(exact, -s));
    const double clamped = std::min(127.0, std::max(-128.0, want + 3));
    ASSERT_EQ(requantize_value(v, m, s, 3, -128, 127), static_cast<int32_t>(clamped))
        << "v=" << v << " m=" << m << " s=" << s;
  }
}

TEST(RequantizeValue, DoesNotOverflowAtTheBitBudget) {
  const int64_t v_max = int64_t{std::numeric_limits<int32_t>::max()} * 2;  // acc + bias
  const int32_t m_max = std::numeric_limits<int32_t>::max();
  EXPECT_EQ(requantize_value(v_max, m_max, 63, 0, -128, 127), 1);  // ~ 2^63 / 2^63
  EXPECT_EQ(requantize_value(-v_max, m_max, 63, 0, -128, 127), -1);
  EXPECT_EQ(requantize_value(v_max, m_max, 1, 0, 0, 255), 255);
  EXPECT_EQ(requantize_value(-v_max, m_max, 1, 10, -128, 127), -128);
}

TEST(GemmlowpPrimitives, SaturatingRoundingDoublingHighMulMatchesDefinition) {
  const int32_t min = std::numeric_limits<int32_t>::min();
  EXPECT_EQ(saturating_rounding_doubling_high_mul(min, min), std::numeric_limits<int32_t>::max());
  std::mt19937 rng(3);
  for (int trial = 0; trial < 100000; ++trial) {
    const int32_t a = static_cast<int32_t>(rng()), b = static_cast<int32_t>(rng());
    if (a == min && b == min) continue;
    const long double exact = static_cast<long double>(a) * b / 2147483648.0L;
    const long double rounded = exact >= 0 ? std::floor(exact + 0.5L) : std::ceil(exact - 0.5L);
    ASSERT_EQ(saturating_rounding_doubling_high_mul(a, b), static_cast<int64_t>(rounded))
        << a << " * " << b;
  }
}

TEST(GemmlowpPrimitives, RoundingDivideByPotRoundsHalfAwayFromZero) {
  EXPECT_EQ(rounding_divide_by_pot(5, 1), 3);
  EXPECT_EQ(rounding_divide_by_pot(-5, 1), -3);
  EXPECT_EQ(rounding_divide_by_pot(6, 2), 2);  // 1.5 -> 2
  EXPECT_EQ(rounding_divide_by_pot(-6, 2), -2);
  EXPECT_EQ(rounding_divide_by_pot(7, 0), 7);
  for (int32_t x = -5000; x <= 5000; ++x) {
    for (int e = 0; e <= 10; ++e) {
      const double exact = std::ldexp(static_cast<double>(x), -e);
      const double want = exact >= 0 ? std::floor(exact + 0.5) : std::ceil(exact - 0.5);
      ASSERT_EQ(rounding_divide_by_pot(x, e), static_cast<int32_t>(want)) << x << " >> " << e;
    }
  }
}

}  // namespace
}  // namespace octet::kernels
