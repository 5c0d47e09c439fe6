// Quantizer formulas (QUANT_SPEC A.1, A.4, B.1, C.2, B.4) on hand-computed values.
#include "quant/quantizer.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "kernels/fixedpoint.h"
#include "octet/error.h"

namespace octet::quant {
namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr float kInf = std::numeric_limits<float>::infinity();

std::vector<int> to_ints(const std::vector<int8_t>& q) { return {q.begin(), q.end()}; }

TEST(SymmetricQuantizer, ScaleIs127OverThreshold) {
  EXPECT_FLOAT_EQ(symmetric_inv_scale(2.0f), 63.5f);
  EXPECT_FLOAT_EQ(symmetric_inv_scale(127.0f), 1.0f);
}

TEST(SymmetricQuantizer, ZeroThresholdGivesUnitScaleNotInfinity) {
  EXPECT_EQ(symmetric_inv_scale(0.0f), 1.0f);
  std::vector<float> x(5, 0.0f);
  std::vector<int8_t> q(5, 7);
  quantize_symmetric(x, symmetric_inv_scale(0.0f), q);
  EXPECT_EQ(to_ints(q), std::vector<int>(5, 0));
}

TEST(SymmetricQuantizer, RejectsNegativeOrNonFiniteThreshold) {
  EXPECT_THROW(symmetric_inv_scale(-1.0f), InvalidArgument);
  EXPECT_THROW(symmetric_inv_scale(kNaN), InvalidArgument);
  EXPECT_THROW(symmetric_inv_scale(kInf), InvalidArgument);
}

TEST(SymmetricQuantizer, RoundsHalfToEven) {
  // x * 2 = 0.5, 1.5, 2.5, -0.5, -1.5, -2.5: ties go to the even neighbour (std::round would give
  // 1, 2, 3, -1, -2, -3).
  const std::vector<float> x = {0.25f, 0.75f, 1.25f, -0.25f, -0.75f, -1.25f};
  std::vector<int8_t> q(x.size());
  quantize_symmetric(x, 2.0f, q);
  EXPECT_EQ(to_ints(q), (std::vector<int>{0, 2, 2, 0, -2, -2}));
}

TEST(SymmetricQuantizer, SaturatesToRestrictedRangeNever128) {
  const std::vector<float> x = {100.0f, -100.0f, 63.5f, -63.5f, 63.76f, -64.0f};
  std::vector<int8_t> q(x.size());
  quantize_symmetric(x, 2.0f, q);
  EXPECT_EQ(to_ints(q), (std::vector<int>{127, -127, 127, -127, 127, -127}));
}

TEST(SymmetricQuantizer, RejectsNaNAndInfNamingTheElement) {
  std::vector<int8_t> q(3);
  for (float bad : {kNaN, kInf, -kInf}) {
    const std::vector<float> x = {1.0f, 2.0f, bad};
    try {
      quantize_symmetric(x, 1.0f, q, "layer0.query input");
      FAIL() << "no exception for " << bad;
    } catch (const InvalidArgument& e) {
      EXPECT_NE(std::string(e.what()).find("layer0.query input: element 2"), std::string::npos)
          << e.what();
    }
  }
}

TEST(SymmetricQuantizer, RejectsSizeMismatchAndBadScale) {
  const std::vector<float> x = {1.0f, 2.0f};
  std::vector<int8_t> q(3);
  EXPECT_THROW(quantize_symmetric(x, 1.0f, q), InvalidArgument);
  std::vector<int8_t> q2(2);
  EXPECT_THROW(quantize_symmetric(x, 0.0f, q2), InvalidArgument);
  EXPECT_THROW(quantize_symmetric(x, kInf, q2), InvalidArgument);
}

TEST(SymmetricQuantizer, DequantizeDividesByScale) {
  const std::vector<int8_t> q = {127, -127, 1, 0};
  std::vector<float> out(4);
  dequantize_symmetric(q, 63.5f, out);
  EXPECT_FLOAT_EQ(out[0], 2.0f);
  EXPECT_FLOAT_EQ(out[1], -2.0f);
  EXPECT_FLOAT_EQ(out[2], 1.0f / 63.5f);
  EXPECT_EQ(out[3], 0.0f);
}

TEST(SymmetricQuantizer, FakeQuantizeIsQuantizeThenDequantize) {
  // inv_scale 2: 0.3 -> 0.6 -> 1 -> 0.5; 0.75 -> 1.5 -> 2 -> 1.0; 99 -> 127 -> 63.5.
  std::vector<float> x = {0.3f, 0.75f, 99.0f, -99.0f, 0.0f};
  fake_quantize_symmetric(x, 2.0f, x);  // in place
  EXPECT_EQ(x, (std::vector<float>{0.5f, 1.0f, 63.5f, -63.5f, 0.0f}));
  std::vector<float> bad = {kNaN};
  EXPECT_THROW(fake_quantize_symmetric(bad, 2.0f, bad), InvalidArgument);
}

// The fake quantizers run the engine's kernels on chunks of 4096: every element, across chunk
// boundaries and in place, equals the scalar formula (QUANT_SPEC A.1 / C.2), ties included, and
// a non-finite element is named by its index in the whole input.
TEST(FakeQuantizer, ChunkedKernelsEqualTheScalarFormulaAndNameTheBadElement) {
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0.0f, 3.0f);
  const float inv = 127.0f / 4.0f;
  const AsymmetricParams p = asymmetric_params(-3.0f, 5.0f);
  for (std::size_t n : {1u, 4095u, 4096u, 4097u, 12289u}) {
    std::vector<float> x(n);
    for (std::size_t i = 0; i < n; ++i) {
      // Every fourth element an exact tie (k + 0.5) / inv, some far outside the range.
      x[i] = i % 4 == 0 ? (static_cast<float>(static_cast<int>(i % 301) - 150) + 0.5f) / inv
                        : normal(rng) * (i % 7 == 0 ? 100.0f : 1.0f);
    }
    std::vector<float> sym(n), asym = x;
    fake_quantize_symmetric(x, inv, sym);
    fake_quantize_asymmetric(asym, p, asym);  // in place
    for (std::size_t i = 0; i < n; ++i) {
      const float c = std::clamp(std::nearbyint(x[i] * inv), -127.0f, 127.0f);
      ASSERT_EQ(sym[i], c / inv) << "n " << n << " element " << i << " x " << x[i];
      const float u = std::clamp(std::nearbyint(x[i] * p.inv_scale) + p.zero_point, 0.0f, 255.0f);
      ASSERT_EQ(asym[i], (u - p.zero_point) * p.scale) << "n " << n << " element " << i;
    }
  }
  std::vector<float> x(9000, 1.0f), out(9000);
  x[8500] = kInf;
  try {
    fake_quantize_symmetric(x, inv, out, "layer.0.input");
    FAIL() << "no error for an infinite element";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("layer.0.input: element 8500 is inf"), std::string::npos)
        << e.what();
  }
  EXPECT_THROW(fake_quantize_asymmetric(x, p, out), InvalidArgument);
  std::vector<float> w(2 * 3000, 0.5f);
  w[3000 + 17] = kNaN;  // second row of a per-channel weight: named by its index in w
  try {
    quantize_weights(w, 2, 3000, WeightGranularity::per_channel, "fc.weight");
    FAIL() << "no error for a NaN weight";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("fc.weight: element 3017 is nan"), std::string::npos)
        << e.what();
  }
}

TEST(IbertQuantizer, ScaleIsRangeOver127WithFloor) {
  EXPECT_FLOAT_EQ(ibert_scale(-2.0f, 1.0f), 2.0f / 127.0f);
  EXPECT_FLOAT_EQ(ibert_scale(-0.5f, 3.0f), 3.0f / 127.0f);
  EXPECT_FLOAT_EQ(ibert_scale(0.0f, 0.0f), 1e-8f / 127.0f);
  EXPECT_THROW(ibert_scale(kNaN, 1.0f), InvalidArgument);
}

TEST(IbertQuantizer, ClampsToMinus127Plus126AndRoundsHalfToEven) {
  // scale 0.5: x / S = 2x. The maximum maps to 126, not 127 (I-BERT's code quirk).
  const std::vector<float> x = {63.5f, -63.5f, 0.25f, 0.75f, -0.25f, 1000.0f};
  std::vector<int8_t> q(x.size());
  quantize_ibert(x, 0.5f, q);
  EXPECT_EQ(to_ints(q), (std::vector<int>{126, -127, 0, 2, 0, 126}));
  const std::vector<float> bad = {1.0f, kInf};
  std::vector<int8_t> q2(2);
  EXPECT_THROW(quantize_ibert(bad, 0.5f, q2), InvalidArgument);
}

TEST(AsymmetricQuantizer, ZeroPointFromMinMax) {
  // [-1, 3]: inv_scale = 255 / 4 = 63.75, zero point = rint(63.75) = 64.
  const AsymmetricParams p = asymmetric_params(-1.0f, 3.0f);
  EXPECT_FLOAT_EQ(p.inv_scale, 63.75f);
  EXPECT_FLOAT_EQ(p.scale, 4.0f / 255.0f);
  EXPECT_EQ(p.zero_point, 64);
  const std::vector<float> x = {-1.0f, 0.0f, 3.0f, 10.0f, -10.0f, 1.0f};
  std::vector<uint8_t> q(x.size());
  quantize_asymmetric(x, p, q);
  // 1.0 -> rint(63.75) + 64 = 128; saturation at 0 and 255.
  EXPECT_EQ(std::vector<int>(q.begin(), q.end()), (std::vector<int>{0, 64, 255, 255, 0, 128}));
}

TEST(AsymmetricQuantizer, ZeroIsExactlyRepresentableAfterNudge) {
  // [-0.1, 0.9]: inv_scale 255, -min * inv_scale = 25.5 -> 26 (tie to even): 0.0 -> 26 -> 0.0.
  const AsymmetricParams p = asymmetric_params(-0.1f, 0.9f);
  EXPECT_EQ(p.zero_point, 26);
  std::vector<float> x = {0.0f};
  std::vector<uint8_t> q(1);
  quantize_asymmetric(x, p, q);
  EXPECT_EQ(q[0], 26);
  std::vector<float> back(1, 1.0f);
  dequantize_asymmetric(q, p, back);
  EXPECT_EQ(back[0], 0.0f);
  fake_quantize_asymmetric(x, p, x);
  EXPECT_EQ(x[0], 0.0f);
}

TEST(AsymmetricQuantizer, RangeIsWidenedToContainZero) {
  const AsymmetricParams pos = asymmetric_params(1.0f, 2.0f);  // -> [0, 2]
  EXPECT_EQ(pos.zero_point, 0);
  EXPECT_FLOAT_EQ(pos.inv_scale, 127.5f);
  const AsymmetricParams neg = asymmetric_params(-2.0f, -1.0f);  // -> [-2, 0]
  EXPECT_EQ(neg.zero_point, 255);
}

TEST(AsymmetricQuantizer, ConstantZeroRangeAndBadRanges) {
  const AsymmetricParams p = asymmetric_params(0.0f, 0.0f);
  EXPECT_EQ(p.inv_scale, 1.0f);
  EXPECT_EQ(p.zero_point, 0);
  EXPECT_THROW(asymmetric_params(2.0f, 1.0f), InvalidArgument);
  EXPECT_THROW(asymmetric_params(-kInf, 1.0f), InvalidArgument);
  const std::vector<float> bad = {kNaN};
  std::vector<uint8_t> q(1);
  EXPECT_THROW(quantize_asymmetric(bad, asymmetric_params(-1.0f, 1.0f), q), InvalidArgument);
}

TEST(WeightQuantizer, PerChannelUsesEachRowsAbsMax) {
  // Row 0: T = 2, inv_scale 63.5: 1 -> 63.5 -> 64 (tie to even), -2 -> -127, 0.5 -> 31.75 -> 32.
  // Row 1: all zeros: scale 1, codes 0.
  const std::vector<float> w = {1.0f, -2.0f, 0.5f, 0.0f, 0.0f, 0.0f};
  const QuantizedWeights q = quantize_weights(w, 2, 3, WeightGranularity::per_channel);
  EXPECT_EQ(to_ints(q.q), (std::vector<int>{64, -127, 32, 0, 0, 0}));
  ASSERT_EQ(q.scales.size(), 2u);
  EXPECT_FLOAT_EQ(q.scales[0], 2.0f / 127.0f);
  EXPECT_FLOAT_EQ(q.inv_scales[0], 63.5f);
  EXPECT_EQ(q.scales[1], 1.0f);
  EXPECT_EQ(q.inv_scales[1], 1.0f);
}

TEST(WeightQuantizer, PerTensorSharesOneScale) {
  const std::vector<float> w = {1.0f, -2.0f, 0.5f, 0.02f};
  const QuantizedWeights q = quantize_weights(w, 2, 2, WeightGranularity::per_tensor);
  EXPECT_EQ(to_ints(q.q), (std::vector<int>{64, -127, 32, 1}));  // 0.02 * 63.5 = 1.27 -> 1
  ASSERT_EQ(q.scales.size(), 1u);
}

TEST(WeightQuantizer, ConstantTensorMapsTo127) {
  const std::vector<float> w(6, -3.0f);
  const QuantizedWeights q = quantize_weights(w, 3, 2, WeightGranularity::per_tensor);
  EXPECT_EQ(to_ints(q.q), std::vector<int>(6, -127));
  EXPECT_FLOAT_EQ(q.scales[0] * -127.0f, -3.0f);
}

TEST(WeightQuantizer, RejectsShapeMismatchAndNonFiniteWeights) {
  const std::vector<float> w = {1.0f, 2.0f, 3.0f};
  EXPECT_THROW(quantize_weights(w, 2, 2, WeightGranularity::per_tensor), InvalidArgument);
  EXPECT_THROW(quantize_weights(w, 0, 3, WeightGranularity::per_tensor), InvalidArgument);
  const std::vector<float> bad = {1.0f, kNaN};
  try {
    quantize_weights(bad, 1, 2, WeightGranularity::per_channel, "bert.pooler.dense.weight");
    FAIL();
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("bert.pooler.dense.weight: element 1"), std::string::npos)
        << e.what();
  }
}

TEST(BiasQuantizer, RoundsBiasTimesBothScales) {
  // s_b = 2 * 63.5 = 127: 1 -> 127, -0.5 -> -63.5 -> -64 (tie to even), 0.1 -> 12.7 -> 13.
  const std::vector<float> b = {1.0f, -0.5f, 0.1f};
  const std::vector<float> sw = {63.5f};
  EXPECT_EQ(quantize_bias(b, 2.0f, sw), (std::vector<int32_t>{127, -64, 13}));
  const std::vector<float> per_channel = {1.0f, 2.0f, 10.0f};
  EXPECT_EQ(quantize_bias(b, 2.0f, per_channel), (std::vector<int32_t>{2, -2, 2}));
}

TEST(BiasQuantizer, SaturatesToSymmetricInt32) {
  const std::vector<float> b = {1e10f, -1e10f};
  const std::vector<float> sw = {1.0f};
  EXPECT_EQ(quantize_bias(b, 1.0f, sw), (std::vector<int32_t>{2147483647, -2147483647}));
}

TEST(BiasQuantizer, RejectsScaleCountMismatchAndNaN) {
  const std::vector<float> b = {1.0f, 2.0f, 3.0f};
  const std::vector<float> two = {1.0f, 1.0f};
  EXPECT_THROW(quantize_bias(b, 1.0f, two), InvalidArgument);
  const std::vector<float> bad = {kNaN};
  const std::vector<float> one = {1.0f};
  EXPECT_THROW(quantize_bias(bad, 1.0f, one), InvalidArgument);
}

TEST(RequantParams, RatioOfScalesAsDyadicMultiplier) {
  // 0.5 * 0.25 / 0.125 = 1 = 2^30 / 2^30; 0.5 * 0.375 / 0.125 = 1.5 = 3 * 2^29 / 2^30.
  const std::vector<float> sw = {0.25f, 0.375f};
  const RequantParams p = requant_params(0.5f, sw, 0.125f);
  ASSERT_EQ(p.multiplier.size(), 2u);
  EXPECT_EQ(p.multiplier[0], 1 << 30);
  EXPECT_EQ(p.shift[0], 30);
  EXPECT_EQ(p.multiplier[1], 3 << 29);
  EXPECT_EQ(p.shift[1], 30);
  // Applied by the kernels' rule: 7 * 1.5 = 10.5 -> 10 (half to even).
  EXPECT_EQ(kernels::requantize_value(7, p.multiplier[1], p.shift[1], 0, -128, 127), 10);
}

TEST(RequantParams, RejectsNonPositiveScales) {
  const std::vector<float> sw = {0.25f, 0.0f};
  EXPECT_THROW(requant_params(0.5f, sw, 0.125f), InvalidArgument);
  const std::vector<float> ok = {0.25f};
  EXPECT_THROW(requant_params(0.5f, ok, 0.0f), InvalidArgument);
  EXPECT_THROW(requant_params(kNaN, ok, 1.0f), InvalidArgument);
}

}  // namespace
}  // namespace octet::quant
