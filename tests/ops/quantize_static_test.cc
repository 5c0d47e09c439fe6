// ops::quantize_activations_static (static INT8: calibrated scale, no range pass) against the
// quantizer formulas of quant/quantizer.h, saturation beyond the calibrated range, the same codes
// on one thread and many, NaN rows named, bad parameters refused; and LinearInt8 with static
// u8 activations against a float reference of the same codes.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "layers/linear_int8.h"
#include "octet/error.h"
#include "ops/gemm_int8.h"
#include "quant/quantizer.h"

namespace octet {
namespace {

using kernels::ActDtype;

std::vector<float> randn(std::size_t n, uint32_t seed, float sigma) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, sigma);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

TEST(QuantizeActivationsStatic, SymmetricMatchesQuantizerAndSaturates) {
  const int rows = 300, cols = 1024;  // big enough for the threaded path
  std::vector<float> x = randn(std::size_t(rows) * cols, 1, 2.0f);
  x[17] = 1e6f;  // far beyond the calibrated range
  x[18] = -1e6f;
  const float t = 3.0f;  // calibrated threshold: values beyond +-3 saturate
  const float inv = quant::symmetric_inv_scale(t);
  std::vector<int8_t> q(x.size()), want(x.size()), q1(x.size());
  const ops::ActivationsInt8 a = ops::quantize_activations_static(
      x.data(), rows, cols, cols, ActDtype::s8, inv, t / 127.0f, 0, q.data(), cols, 4);
  quant::quantize_symmetric(x, inv, want);
  EXPECT_EQ(q, want);
  EXPECT_EQ(q[17], 127);
  EXPECT_EQ(q[18], -127);
  EXPECT_EQ(a.dtype, ActDtype::s8);
  EXPECT_FLOAT_EQ(a.scale, t / 127.0f);
  ops::quantize_activations_static(x.data(), rows, cols, cols, ActDtype::s8, inv, t / 127.0f, 0,
                                   q1.data(), cols, 1);
  EXPECT_EQ(q, q1) << "codes depend on the thread count";
}

TEST(QuantizeActivationsStatic, AsymmetricMatchesQuantizer) {
  const int rows = 5, cols = 37;
  const std::vector<float> x = randn(std::size_t(rows) * cols, 2, 1.0f);
  const quant::AsymmetricParams p = quant::asymmetric_params(-0.2f, 2.5f);
  std::vector<uint8_t> q(x.size()), want(x.size());
  const ops::ActivationsInt8 a = ops::quantize_activations_static(
      x.data(), rows, cols, cols, ActDtype::u8, p.inv_scale, p.scale, p.zero_point, q.data(), cols);
  quant::quantize_asymmetric(x, p, want);
  EXPECT_EQ(q, want);
  EXPECT_EQ(a.zero_point, p.zero_point);
  EXPECT_EQ(a.dtype, ActDtype::u8);
}

TEST(QuantizeActivationsStatic, NamesTheRowWithANaNAndRefusesBadParameters) {
  std::vector<float> x(4 * 8, 0.5f);
  x[2 * 8 + 3] = NAN;
  std::vector<int8_t> q(x.size());
  try {
    ops::quantize_activations_static(x.data(), 4, 8, 8, ActDtype::s8, 1.0f, 1.0f, 0, q.data(), 8);
    FAIL() << "expected InvalidArgument";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("row 2"), std::string::npos) << e.what();
  }
  x[2 * 8 + 3] = 0.0f;
  EXPECT_THROW(
      ops::quantize_activations_static(x.data(), 4, 8, 8, ActDtype::s8, 0.0f, 1.0f, 0, q.data(), 8),
      InvalidArgument);
  EXPECT_THROW(
      ops::quantize_activations_static(x.data(), 4, 8, 8, ActDtype::s8, 1.0f, 1.0f, 3, q.data(), 8),
      InvalidArgument);
  EXPECT_THROW(ops::quantize_activations_static(x.data(), 4, 8, 8, ActDtype::u8, 1.0f, 1.0f, 256,
                                                q.data(), 8),
               InvalidArgument);
  EXPECT_THROW(
      ops::quantize_activations_static(x.data(), 4, 8, 4, ActDtype::s8, 1.0f, 1.0f, 0, q.data(), 8),
      InvalidArgument);
}

// The Q / K output quantization of quantize.attention_scores: columns [c0, c0 + cols) of a wider
// row are replaced by their dequantized codes, the other columns are untouched, and the values
// are exactly float(code) * scale with the codes of the quantizer (s8 and u8), on 1 and 2 threads.
TEST(FakeQuantizeStatic, ReplacesTheColumnsByTheirDequantizedCodes) {
  const int rows = 260, cols = 1024, ld = 3 * cols,
            c0 = cols;  // threaded path: rows * cols >= 256K
  const std::vector<float> x0 = randn(std::size_t(rows) * ld, 3, 1.5f);
  for (const bool s8 : {true, false}) {
    for (const int threads : {1, 2}) {
      std::vector<float> x = x0;
      std::vector<int8_t> scratch(std::size_t(rows) * cols);
      const float t = 2.5f;
      const quant::AsymmetricParams p = quant::asymmetric_params(-1.0f, 3.0f);
      const float inv = s8 ? quant::symmetric_inv_scale(t) : p.inv_scale;
      const float scale = s8 ? t / 127.0f : p.scale;
      const int32_t zp = s8 ? 0 : p.zero_point;
      ops::fake_quantize_static(x.data() + c0, rows, cols, ld, s8 ? ActDtype::s8 : ActDtype::u8,
                                inv, scale, zp, scratch.data(), threads);
      int saturated = 0;
      for (int r = 0; r < rows; ++r) {
        for (int c = 0; c < ld; ++c) {
          const std::size_t i = std::size_t(r) * ld + c;
          if (c < c0 || c >= c0 + cols) {
            ASSERT_EQ(x[i], x0[i]) << "column " << c << " outside the range changed";
            continue;
          }
          const float v = std::nearbyint(x0[i] * inv);
          const float code =
              s8 ? std::clamp(v, -127.0f, 127.0f) : std::clamp(v + zp, 0.0f, 255.0f) - zp;
          saturated += code != v;
          ASSERT_EQ(x[i], code * scale) << "row " << r << " column " << c << " s8 " << s8;
        }
      }
      EXPECT_GT(saturated, 0) << "no value beyond the range: the clamp is untested";
    }
  }
  std::vector<float> bad(4 * 8, 0.5f);
  bad[3 * 8 + 1] = INFINITY;
  std::vector<int8_t> q(bad.size());
  try {
    ops::fake_quantize_static(bad.data(), 4, 8, 8, ActDtype::s8, 1.0f, 1.0f, 0, q.data());
    FAIL() << "expected InvalidArgument";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("row 3"), std::string::npos) << e.what();
  }
}

TEST(LinearInt8Static, U8ActivationsMatchAFloatReferenceOfTheSameCodes) {
  const int m = 9, n = 33, k = 70;
  const std::vector<float> w = randn(std::size_t(n) * k, 3, 0.05f);
  std::vector<float> x = randn(std::size_t(m) * k, 4, 1.0f);
  for (float& v : x) v = std::fabs(v) - 0.1f;  // mostly positive, like a GELU output
  const std::vector<float> bias = randn(n, 5, 0.1f);
  const quant::QuantizedWeights qw =
      quant::quantize_weights(w, n, k, quant::WeightGranularity::per_channel);
  const quant::AsymmetricParams p = quant::asymmetric_params(-0.1f, 3.0f);
  const layers::LinearInt8 fc = layers::LinearInt8::from_quantized(
      qw.q, n, k, qw.scales, bias,
      {.dynamic = false, .dtype = ActDtype::u8, .scale = p.scale, .zero_point = p.zero_point});
  std::vector<int8_t> scratch(layers::LinearInt8::scratch_bytes(m, k));
  std::vector<float> y(std::size_t(m) * n);
  fc.forward(x.data(), m, k, y.data(), n, scratch.data());
  std::vector<uint8_t> xq(x.size());
  quant::quantize_asymmetric(x, p, xq);
  double worst = 0.0;
  for (int i = 0; i < m; ++i) {
    for (int j = 0; j < n; ++j) {
      int64_t acc = 0;
      for (int c = 0; c < k; ++c) {
        acc += int64_t(int(xq[i * k + c]) - p.zero_point) * qw.q[j * k + c];
      }
      const double want = double(acc) * p.scale * qw.scales[j] + bias[j];
      worst = std::max(worst, std::fabs(want - y[i * n + j]));
    }
  }
  EXPECT_LT(worst, 1e-4) << "largest difference from the integer reference";
  EXPECT_THROW(layers::LinearInt8::from_quantized(qw.q, n, k, qw.scales, bias,
                                                  {.dynamic = false, .scale = -1.0f}),
               InvalidArgument);
}

}  // namespace
}  // namespace octet
