#include "io/dtype.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include "octet/error.h"

namespace octet::io {
namespace {

using ::testing::HasSubstr;

uint32_t bits(float f) { return std::bit_cast<uint32_t>(f); }
float from_bits(uint32_t u) { return std::bit_cast<float>(u); }

// Reference decoders written from the IEEE 754 definition (sign, biased exponent, fraction), in
// double arithmetic, independent of the bit tricks under test.
double ref_decode(uint32_t pattern, int exp_bits, int frac_bits) {
  const int bias = (1 << (exp_bits - 1)) - 1;
  const uint32_t frac = pattern & ((1u << frac_bits) - 1);
  const uint32_t exp = (pattern >> frac_bits) & ((1u << exp_bits) - 1);
  const double sign = (pattern >> (exp_bits + frac_bits)) & 1 ? -1.0 : 1.0;
  if (exp == (1u << exp_bits) - 1) {
    return frac == 0 ? sign * std::numeric_limits<double>::infinity()
                     : std::numeric_limits<double>::quiet_NaN();
  }
  if (exp == 0) return sign * std::ldexp(static_cast<double>(frac), 1 - bias - frac_bits);
  return sign * std::ldexp(static_cast<double>(frac | (1u << frac_bits)),
                           static_cast<int>(exp) - bias - frac_bits);
}

// The value of a pattern for rounding decisions: the encoding just past the largest finite value
// counts as 2^(emax+1), as IEEE 754 overflow rounding requires.
double ref_value_unbounded(uint32_t pattern, int exp_bits, int frac_bits) {
  const uint32_t inf = ((1u << exp_bits) - 1) << frac_bits;
  if (pattern == inf) return std::ldexp(1.0, (1 << (exp_bits - 1)));
  return ref_decode(pattern, exp_bits, frac_bits);
}

// Reference narrowing of a finite non-negative float: pick the nearer of the two neighbouring
// patterns, ties to the even one.
uint16_t ref_narrow_abs(float x, int exp_bits, int frac_bits) {
  const uint32_t inf = ((1u << exp_bits) - 1) << frac_bits;
  uint32_t lo = 0;  // largest pattern whose value is <= x (binary search over the ordered codes)
  uint32_t hi = inf;
  while (lo < hi) {
    const uint32_t mid = (lo + hi + 1) / 2;
    if (ref_value_unbounded(mid, exp_bits, frac_bits) <= x)
      lo = mid;
    else
      hi = mid - 1;
  }
  if (lo == inf) return static_cast<uint16_t>(inf);
  const double vlo = ref_value_unbounded(lo, exp_bits, frac_bits);
  const double vhi = ref_value_unbounded(lo + 1, exp_bits, frac_bits);
  const double dlo = x - vlo, dhi = vhi - x;
  if (dlo < dhi) return static_cast<uint16_t>(lo);
  if (dhi < dlo) return static_cast<uint16_t>(lo + 1);
  return static_cast<uint16_t>((lo & 1) ? lo + 1 : lo);
}

uint16_t ref_narrow(float x, int exp_bits, int frac_bits) {
  const uint16_t sign = std::signbit(x) ? static_cast<uint16_t>(1u << (exp_bits + frac_bits)) : 0;
  return static_cast<uint16_t>(sign | ref_narrow_abs(std::fabs(x), exp_bits, frac_bits));
}

TEST(DTypeTest, NamesSizesAndParsingRoundTrip) {
  const DType all[] = {DType::F64, DType::F32, DType::F16, DType::BF16, DType::I64,
                       DType::I32, DType::I16, DType::I8,  DType::U8,   DType::BOOL};
  const std::size_t sizes[] = {8, 4, 2, 2, 8, 4, 2, 1, 1, 1};
  for (std::size_t i = 0; i < std::size(all); ++i) {
    EXPECT_EQ(parse_dtype(dtype_name(all[i])), all[i]) << dtype_name(all[i]);
    EXPECT_EQ(dtype_size(all[i]), sizes[i]) << dtype_name(all[i]);
  }
  EXPECT_EQ(dtype_name(DType::BF16), "BF16");
  EXPECT_EQ(dtype_name(DType::BOOL), "BOOL");
  EXPECT_FALSE(parse_dtype("f32").has_value());
  EXPECT_FALSE(parse_dtype("F8_E4M3").has_value());
  EXPECT_FALSE(parse_dtype("").has_value());
  EXPECT_THAT(supported_dtype_names(), HasSubstr("BF16, BOOL, F16, F32"));
}

TEST(DTypeTest, F16ToF32IsExactForAllPatterns) {
  for (uint32_t h = 0; h <= 0xffff; ++h) {
    const float got = f16_to_f32(static_cast<uint16_t>(h));
    const double want = ref_decode(h, 5, 10);
    if (std::isnan(want)) {
      ASSERT_TRUE(std::isnan(got)) << std::hex << h;
      // Sign and payload survive; the quiet bit is whatever the f16 had.
      ASSERT_EQ(bits(got) >> 31, h >> 15) << std::hex << h;
      ASSERT_EQ((bits(got) >> 13) & 0x3ff, h & 0x3ff) << std::hex << h;
    } else {
      ASSERT_EQ(static_cast<double>(got), want) << std::hex << h;
      ASSERT_EQ(std::signbit(got), (h >> 15) == 1) << std::hex << h;
    }
  }
}

TEST(DTypeTest, BF16ToF32IsExactForAllPatterns) {
  for (uint32_t b = 0; b <= 0xffff; ++b) {
    const float got = bf16_to_f32(static_cast<uint16_t>(b));
    const double want = ref_decode(b, 8, 7);
    if (std::isnan(want)) {
      ASSERT_TRUE(std::isnan(got)) << std::hex << b;
      ASSERT_EQ(bits(got), b << 16) << std::hex << b;
    } else {
      ASSERT_EQ(static_cast<double>(got), want) << std::hex << b;
      ASSERT_EQ(std::signbit(got), (b >> 15) == 1) << std::hex << b;
    }
  }
}

// Every f16 value, the midpoint to its successor (a tie), and the floats just either side of the
// midpoint, compared with the reference rounding; the same for negative values.
template <typename Narrow>
void check_narrowing_near_every_code(Narrow narrow, int exp_bits, int frac_bits) {
  const uint32_t inf = ((1u << exp_bits) - 1) << frac_bits;
  const uint32_t sign_bit = 1u << (exp_bits + frac_bits);
  for (uint32_t p = 0; p < inf; ++p) {
    const double v = ref_decode(p, exp_bits, frac_bits);
    const double next = ref_value_unbounded(p + 1, exp_bits, frac_bits);
    const auto mid = static_cast<float>((v + next) / 2);  // exact: one more bit than the format
    ASSERT_EQ(static_cast<double>(mid), (v + next) / 2);
    const float probes[] = {static_cast<float>(v), mid, std::nextafter(mid, 0.0f),
                            std::nextafter(mid, std::numeric_limits<float>::infinity())};
    for (float x : probes) {
      if (std::isinf(x)) continue;
      ASSERT_EQ(narrow(x), ref_narrow(x, exp_bits, frac_bits))
          << "x=" << x << " (0x" << std::hex << bits(x) << ") near code 0x" << p;
      ASSERT_EQ(narrow(-x), ref_narrow(-x, exp_bits, frac_bits))
          << "x=" << -x << " (0x" << std::hex << bits(-x) << ") near code 0x" << (p | sign_bit);
    }
  }
}

TEST(DTypeTest, F32ToF16RoundsToNearestEvenNearEveryCode) {
  check_narrowing_near_every_code([](float x) { return f32_to_f16(x); }, 5, 10);
  // Ties go to the even code: 1 + 2^-11 lies halfway between 0x3c00 and 0x3c01.
  EXPECT_EQ(f32_to_f16(1.0f + 0x1p-11f), 0x3c00);
  EXPECT_EQ(f32_to_f16(1.0f + 3 * 0x1p-11f), 0x3c02);
  // Subnormal ties: 2^-25 is half the smallest subnormal; 3 * 2^-25 is 1.5 of it.
  EXPECT_EQ(f32_to_f16(0x1p-25f), 0x0000);
  EXPECT_EQ(f32_to_f16(3 * 0x1p-25f), 0x0002);
  EXPECT_EQ(f32_to_f16(std::nextafter(0x1p-25f, 1.0f)), 0x0001);
}

TEST(DTypeTest, F32ToBF16RoundsToNearestEvenNearEveryCode) {
  check_narrowing_near_every_code([](float x) { return f32_to_bf16(x); }, 8, 7);
  EXPECT_EQ(f32_to_bf16(1.0f + 0x1p-8f), 0x3f80);
  EXPECT_EQ(f32_to_bf16(1.0f + 3 * 0x1p-8f), 0x3f82);
}

TEST(DTypeTest, F32ToF16MatchesReferenceOnStridedSweepOfAllFloats) {
  // Every 997th float pattern (4.3 M values, every exponent and sign), NaNs excluded.
  for (uint64_t u = 0; u <= 0xffffffffu; u += 997) {
    const float x = from_bits(static_cast<uint32_t>(u));
    if (std::isnan(x)) continue;
    ASSERT_EQ(f32_to_f16(x), ref_narrow(x, 5, 10)) << std::hex << "0x" << u;
  }
}

TEST(DTypeTest, F32ToBF16MatchesReferenceOnStridedSweepOfAllFloats) {
  for (uint64_t u = 0; u <= 0xffffffffu; u += 997) {
    const float x = from_bits(static_cast<uint32_t>(u));
    if (std::isnan(x)) continue;
    ASSERT_EQ(f32_to_bf16(x), ref_narrow(x, 8, 7)) << std::hex << "0x" << u;
  }
}

TEST(DTypeTest, NarrowingOverflowsToInfinity) {
  const float inf = std::numeric_limits<float>::infinity();
  EXPECT_EQ(f32_to_f16(65504.0f), 0x7bff);
  EXPECT_EQ(f32_to_f16(std::nextafter(65520.0f, 0.0f)), 0x7bff);
  EXPECT_EQ(f32_to_f16(65520.0f), 0x7c00);  // the tie above the largest finite value
  EXPECT_EQ(f32_to_f16(1e10f), 0x7c00);
  EXPECT_EQ(f32_to_f16(std::numeric_limits<float>::max()), 0x7c00);
  EXPECT_EQ(f32_to_f16(inf), 0x7c00);
  EXPECT_EQ(f32_to_f16(-inf), 0xfc00);
  EXPECT_EQ(f32_to_f16(-1e10f), 0xfc00);
  EXPECT_EQ(f32_to_bf16(std::numeric_limits<float>::max()), 0x7f80);
  EXPECT_EQ(f32_to_bf16(-std::numeric_limits<float>::max()), 0xff80);
  EXPECT_EQ(f32_to_bf16(inf), 0x7f80);
  EXPECT_EQ(f32_to_bf16(from_bits(0x7f7f7fff)), 0x7f7f);
}

TEST(DTypeTest, NarrowingKeepsNaNQuietAndSigned) {
  const uint32_t nans[] = {0x7fc00000, 0xffc00000, 0x7f800001, 0xff800001,
                           0x7fffffff, 0x7fa00000, 0xffffffff};
  for (uint32_t n : nans) {
    const uint16_t h = f32_to_f16(from_bits(n));
    EXPECT_TRUE(std::isnan(f16_to_f32(h))) << std::hex << n;
    EXPECT_EQ(h >> 15, n >> 31) << std::hex << n;
    EXPECT_EQ(h & 0x200, 0x200) << std::hex << n;  // quiet
    const uint16_t b = f32_to_bf16(from_bits(n));
    EXPECT_TRUE(std::isnan(bf16_to_f32(b))) << std::hex << n;
    EXPECT_EQ(b >> 15, n >> 31) << std::hex << n;
    EXPECT_EQ(b & 0x40, 0x40) << std::hex << n;
  }
  // A signalling NaN whose payload sits only in the dropped bits must not become infinity.
  EXPECT_NE(f32_to_bf16(from_bits(0x7f800001)), 0x7f80);
  EXPECT_NE(f32_to_f16(from_bits(0x7f800001)), 0x7c00);
}

TEST(DTypeTest, NarrowingKeepsSignedZeroAndUnderflowsToSignedZero) {
  EXPECT_EQ(f32_to_f16(0.0f), 0x0000);
  EXPECT_EQ(f32_to_f16(-0.0f), 0x8000);
  EXPECT_EQ(f32_to_f16(-1e-30f), 0x8000);
  EXPECT_EQ(f32_to_f16(from_bits(1)), 0x0000);  // the smallest float subnormal
  EXPECT_EQ(f32_to_bf16(-0.0f), 0x8000);
  EXPECT_EQ(f32_to_bf16(from_bits(0x00000001)), 0x0000);
  EXPECT_EQ(f32_to_bf16(from_bits(0x00008000)), 0x0000);  // tie, to even
  EXPECT_EQ(f32_to_bf16(from_bits(0x00018000)), 0x0002);  // tie, to even
}

TEST(DTypeTest, BulkConversionsMatchScalarOnes) {
  std::mt19937 rng(1234);
  const std::size_t n = 100003;  // not a multiple of any vector width
  std::vector<uint16_t> h(n);
  std::vector<float> f(n);
  for (auto& x : h) x = static_cast<uint16_t>(rng());
  for (auto& x : f) x = from_bits(static_cast<uint32_t>(rng()));
  std::vector<float> wide(n);
  std::vector<uint16_t> narrow(n);
  f16_to_f32(h, wide);
  for (std::size_t i = 0; i < n; ++i) ASSERT_EQ(bits(wide[i]), bits(f16_to_f32(h[i]))) << i;
  bf16_to_f32(h, wide);
  for (std::size_t i = 0; i < n; ++i) ASSERT_EQ(bits(wide[i]), bits(bf16_to_f32(h[i]))) << i;
  f32_to_f16(f, narrow);
  for (std::size_t i = 0; i < n; ++i) ASSERT_EQ(narrow[i], f32_to_f16(f[i])) << i;
  f32_to_bf16(f, narrow);
  for (std::size_t i = 0; i < n; ++i) ASSERT_EQ(narrow[i], f32_to_bf16(f[i])) << i;
}

TEST(DTypeTest, BulkConversionRejectsSizeMismatch) {
  std::vector<uint16_t> h(4);
  std::vector<float> f(3);
  try {
    f16_to_f32(h, f);
    FAIL() << "expected InvalidArgument";
  } catch (const InvalidArgument& e) {
    EXPECT_THAT(e.what(), HasSubstr("output holds 3 elements, expected 4"));
  }
}

}  // namespace
}  // namespace octet::io
