// Elementwise INT8 kernels: hand-checked reference cases (rounding half to even, clamping, zero
// points), then every runnable ISA bit-exact against the reference, including ties, tails and
// non-finite input detection; gather and requantize.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include "kernels/fixedpoint.h"
#include "kernels/int8_test_util.h"

namespace octet {
namespace {

using kernels::GemmOutput;
using test::Int8IsaTest;

const kernels::Int8Kernels& ref() { return kernels::table_for(Isa::ref).int8; }

TEST(Int8QuantReference, QuantizeS8RoundsHalfToEvenAndClampsSymmetric) {
  const std::vector<float> x{0.5f, 1.5f, 2.5f, -0.5f, -1.5f, -2.5f, 126.5f, 200.0f, -200.0f, 3.49f};
  std::vector<int8_t> q(x.size());
  const float amax = ref().quantize_s8(x.data(), x.size(), 1.0f, q.data());
  EXPECT_EQ(q, (std::vector<int8_t>{0, 2, 2, 0, -2, -2, 126, 127, -127, 3}));
  EXPECT_EQ(amax, 200.0f);
}

TEST(Int8QuantReference, QuantizeU8AddsZeroPointAndReportsRange) {
  const std::vector<float> x{-1.0f, 0.0f, 0.25f, 10.0f, -10.0f};
  std::vector<uint8_t> q(x.size());
  float lo, hi;
  ref().quantize_u8(x.data(), x.size(), 10.0f, 100, q.data(), &lo, &hi);
  EXPECT_EQ(q, (std::vector<uint8_t>{90, 100, 102, 200, 0}));  // 2.5 -> 2 (even), -100 -> 0
  EXPECT_EQ(lo, -10.0f);
  EXPECT_EQ(hi, 10.0f);
}

TEST(Int8QuantReference, DequantizeAndGatherAreExact) {
  const int8_t q[] = {-128, -1, 0, 127};
  float x[4];
  ref().dequantize_s8(q, 4, 0.5f, x);
  EXPECT_EQ(std::vector<float>(x, x + 4), (std::vector<float>{-64.0f, -0.5f, 0.0f, 63.5f}));
  const uint8_t u[] = {0, 128, 255};
  ref().dequantize_u8(u, 3, 2.0f, 128, x);
  EXPECT_EQ(std::vector<float>(x, x + 3), (std::vector<float>{-256.0f, 0.0f, 254.0f}));
  const int8_t table[] = {1, 2, 3, 4, 5, 6, 7, 8, 9};  // 3 rows of 3
  const int32_t ids[] = {2, 0, 2};
  int8_t out[6];
  ref().gather_rows_s8(table, 3, ids, 3, 2, out, 2);
  EXPECT_EQ(std::vector<int8_t>(out, out + 6), (std::vector<int8_t>{7, 8, 1, 2, 7, 8}));
}

TEST(Int8QuantReference, RequantizeAppliesBiasMultiplierShiftAndSaturates) {
  const int32_t x[] = {100, -100, 1000000, -1000000, 24, -24};
  const int32_t bias[] = {4, 4};
  const int32_t mult[] = {1 << 30, 1 << 30};
  const int32_t shift[] = {33, 33};  // ratio 1/8
  int8_t y[6];
  ref().requantize(x, 3, 2, 2, bias, mult, shift, 1, GemmOutput::s8, y, 2);
  // 104/8 = 13, -96/8 = -12, saturate, saturate, 28/8 = 3.5 -> 4, -20/8 = -2.5 -> -2; then +1.
  EXPECT_EQ(std::vector<int8_t>(y, y + 6), (std::vector<int8_t>{14, -11, 127, -128, 5, -1}));
  uint8_t u[6];
  ref().requantize(x, 3, 2, 2, nullptr, mult, shift, 128, GemmOutput::u8, u, 2);
  // 12.5 -> 12, -12.5 -> -12, then +128 and saturate; 3, -3.
  EXPECT_EQ(std::vector<uint8_t>(u, u + 6), (std::vector<uint8_t>{140, 116, 255, 0, 131, 125}));
}

class Int8QuantTest : public Int8IsaTest {};

std::vector<float> test_values(std::mt19937& rng, size_t n) {
  std::vector<float> x = test::random_floats(rng, n, -3.0f, 3.0f);
  // Exact ties after scaling by 10 (k + 0.5) / 10 are not exact in float; use power-of-two
  // scales in the tests and plant ties directly.
  for (size_t i = 0; i < n; i += 3) x[i] = static_cast<float>(static_cast<int>(i % 41) - 20) + 0.5f;
  return x;
}

TEST_P(Int8QuantTest, QuantizeMatchesReferenceBitExact) {
  std::mt19937 rng(7);
  for (size_t n : {0, 1, 3, 15, 16, 17, 31, 33, 64, 100, 1000, 4099}) {
    const std::vector<float> x = test_values(rng, n);
    for (float inv_scale : {1.0f, 4.0f, 42.5f, 0.0625f}) {
      std::vector<int8_t> q(n + 1, 55), qr(n + 1, 55);
      const float a = kernels().quantize_s8(x.data(), n, inv_scale, q.data());
      const float ar = ref().quantize_s8(x.data(), n, inv_scale, qr.data());
      ASSERT_EQ(q, qr) << "quantize_s8 n=" << n << " inv_scale=" << inv_scale;
      ASSERT_EQ(a, ar) << "abs max n=" << n;
      ASSERT_EQ(kernels().abs_max(x.data(), n), ar) << "abs_max n=" << n;
      std::vector<uint8_t> u(n + 1, 55), ur(n + 1, 55);
      float lo, hi, lor, hir;
      kernels().quantize_u8(x.data(), n, inv_scale, 93, u.data(), &lo, &hi);
      ref().quantize_u8(x.data(), n, inv_scale, 93, ur.data(), &lor, &hir);
      ASSERT_EQ(u, ur) << "quantize_u8 n=" << n << " inv_scale=" << inv_scale;
      ASSERT_EQ(lo, lor);
      ASSERT_EQ(hi, hir);
      // Without the range (null min / max): the same codes, clamped by the saturating packs.
      for (int32_t zp : {93, 128, 0, 255}) {
        std::vector<uint8_t> un(n + 1, 55), unr(n + 1, 55);
        ref().quantize_u8(x.data(), n, inv_scale, zp, unr.data(), &lor, &hir);
        kernels().quantize_u8(x.data(), n, inv_scale, zp, un.data(), nullptr, nullptr);
        ASSERT_EQ(un, unr) << "quantize_u8 without range, n=" << n << " inv_scale=" << inv_scale
                           << " zero point " << zp;
      }
      kernels().min_max(x.data(), n, &lo, &hi);
      ASSERT_EQ(lo, lor);
      ASSERT_EQ(hi, hir);
    }
  }
}

TEST_P(Int8QuantTest, ReportsNonFiniteInputAsNaNRange) {
  const float bad[] = {std::numeric_limits<float>::quiet_NaN(),
                       std::numeric_limits<float>::infinity(),
                       -std::numeric_limits<float>::infinity()};
  for (size_t n : {1, 5, 16, 37, 64, 200}) {  // 64, 200: the 64-wide loop and its tail
    for (size_t pos : {size_t{0}, n / 2, n - 1}) {
      for (float b : bad) {
        std::vector<float> x(n, 1.0f);
        x[pos] = b;
        std::vector<int8_t> q(n);
        std::vector<uint8_t> u(n);
        float lo, hi;
        EXPECT_TRUE(std::isnan(kernels().quantize_s8(x.data(), n, 1.0f, q.data())))
            << "n=" << n << " pos=" << pos << " value=" << b;
        EXPECT_TRUE(std::isnan(kernels().abs_max(x.data(), n)));
        kernels().quantize_u8(x.data(), n, 1.0f, 0, u.data(), &lo, &hi);
        EXPECT_TRUE(std::isnan(lo) && std::isnan(hi));
        kernels().min_max(x.data(), n, &lo, &hi);
        EXPECT_TRUE(std::isnan(lo) && std::isnan(hi));
      }
    }
  }
}

TEST_P(Int8QuantTest, DequantizeMatchesReferenceBitExact) {
  std::mt19937 rng(8);
  for (size_t n : {0, 1, 15, 16, 17, 100, 1025}) {
    const auto q = test::random_ints<int8_t>(rng, n, -128, 127);
    const auto u = test::random_ints<uint8_t>(rng, n, 0, 255);
    std::vector<float> x(n + 1, 9.0f), xr(n + 1, 9.0f);
    kernels().dequantize_s8(q.data(), n, 0.037f, x.data());
    ref().dequantize_s8(q.data(), n, 0.037f, xr.data());
    ASSERT_EQ(x, xr) << "dequantize_s8 n=" << n;
    kernels().dequantize_u8(u.data(), n, 0.011f, 131, x.data());
    ref().dequantize_u8(u.data(), n, 0.011f, 131, xr.data());
    ASSERT_EQ(x, xr) << "dequantize_u8 n=" << n;
  }
}

TEST_P(Int8QuantTest, RequantizeMatchesReferenceBitExact) {
  std::mt19937 rng(9);
  for (int cols : {1, 7, 16, 17, 40}) {
    const int rows = 5, ldx = cols + 2, ldy = cols + 1;
    std::vector<int32_t> x = test::random_ints<int32_t>(rng, size_t(rows) * ldx, -3000000, 3000000);
    x[0] = std::numeric_limits<int32_t>::max();
    x[1 % x.size()] = std::numeric_limits<int32_t>::min();
    std::vector<int32_t> bias = test::random_ints<int32_t>(rng, cols, -100000, 100000);
    bias[0] = std::numeric_limits<int32_t>::min();
    std::vector<int32_t> mult(cols), shift(cols);
    std::uniform_real_distribution<double> lr(std::log(1e-9), std::log(1e-2));
    for (int j = 0; j < cols; ++j) {
      int s;
      kernels::quantize_multiplier(std::exp(lr(rng)), &mult[j], &s);
      shift[j] = s;
    }
    for (GemmOutput out : {GemmOutput::s8, GemmOutput::u8}) {
      for (const int32_t* b :
           {static_cast<const int32_t*>(nullptr), static_cast<const int32_t*>(bias.data())}) {
        const int32_t zp = out == GemmOutput::s8 ? -5 : 128;
        std::vector<uint8_t> y(size_t(rows) * ldy, 77), yr(size_t(rows) * ldy, 77);
        kernels().requantize(x.data(), rows, cols, ldx, b, mult.data(), shift.data(), zp, out,
                             y.data(), ldy);
        ref().requantize(x.data(), rows, cols, ldx, b, mult.data(), shift.data(), zp, out,
                         yr.data(), ldy);
        for (size_t i = 0; i < y.size(); ++i) {
          ASSERT_EQ(y[i], yr[i]) << "cols=" << cols << " row " << i / ldy << " col " << i % ldy
                                 << (out == GemmOutput::s8 ? " s8" : " u8")
                                 << (b ? " with bias" : "");
        }
      }
    }
  }
}

TEST_P(Int8QuantTest, GatherCopiesRequestedRows) {
  std::mt19937 rng(10);
  const int rows = 50, cols = 77;
  const auto table = test::random_ints<int8_t>(rng, size_t(rows) * cols, -128, 127);
  const auto ids = test::random_ints<int32_t>(rng, 33, 0, rows - 1);
  std::vector<int8_t> out(33 * 80, 1), want(33 * 80, 1);
  kernels().gather_rows_s8(table.data(), cols, ids.data(), ids.size(), cols, out.data(), 80);
  for (size_t r = 0; r < ids.size(); ++r) {
    for (int c = 0; c < cols; ++c) want[r * 80 + c] = table[size_t(ids[r]) * cols + c];
  }
  EXPECT_EQ(out, want);
}

OCTET_INSTANTIATE_ISA_TESTS(Int8QuantTest);

}  // namespace
}  // namespace octet
