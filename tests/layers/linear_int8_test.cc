// layers::LinearInt8 and layers::quantize_symmetric_int8 against a plain reference written here:
// quantize weights and activations with the Q8BERT formulas, multiply in int64, dequantize in
// double, add bias, GELU and residual. The integer part is exact, so the only tolerance is the
// float epilogue (and the erf GELU's vector approximation). Every runnable ISA is checked.
#include "layers/linear_int8.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "octet/cpu.h"
#include "octet/error.h"
#include "ops/fp32_ops.h"

namespace octet::layers {
namespace {

std::vector<float> random_floats(std::size_t n, float stddev, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, stddev);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

// Q8BERT quantization of one group: scale a / 127, codes round-half-even of x * 127 / a.
struct RefQuant {
  std::vector<int32_t> q;
  double scale = 1.0;
};
RefQuant ref_quantize(const float* x, std::size_t n) {
  float amax = 0.0f;
  for (std::size_t i = 0; i < n; ++i) amax = std::max(amax, std::fabs(x[i]));
  RefQuant r;
  r.q.resize(n);
  const float inv = amax > 0.0f ? 127.0f / amax : 1.0f;
  r.scale = amax > 0.0f ? amax / 127.0f : 1.0f;
  for (std::size_t i = 0; i < n; ++i) {
    const float v = std::nearbyint(x[i] * inv);  // ties to even in the default FP environment
    r.q[i] = static_cast<int32_t>(std::clamp(v, -127.0f, 127.0f));
  }
  return r;
}

double gelu(double v) { return 0.5 * v * (1.0 + std::erf(v / std::sqrt(2.0))); }

// y = act(deq(q_x q_W^T) + b) (+ residual), all in double from the integer codes.
std::vector<double> reference(const std::vector<float>& x, int64_t m, int64_t k,
                              const std::vector<float>& w, int64_t n,
                              const std::vector<float>& bias, bool per_channel,
                              kernels::Activation act, const std::vector<float>* residual) {
  const RefQuant qx = ref_quantize(x.data(), x.size());
  std::vector<RefQuant> qw;
  if (per_channel) {
    for (int64_t j = 0; j < n; ++j) qw.push_back(ref_quantize(w.data() + j * k, k));
  } else {
    qw.push_back(ref_quantize(w.data(), w.size()));
  }
  std::vector<double> y(m * n);
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      const RefQuant& g = per_channel ? qw[j] : qw[0];
      const int32_t* wq = g.q.data() + (per_channel ? 0 : j * k);
      int64_t acc = 0;
      for (int64_t c = 0; c < k; ++c) acc += int64_t{qx.q[i * k + c]} * wq[c];
      double v = static_cast<double>(acc) * qx.scale * g.scale + (bias.empty() ? 0.0 : bias[j]);
      if (act == kernels::Activation::gelu) v = gelu(v);
      if (act == kernels::Activation::relu) v = std::max(v, 0.0);
      if (residual != nullptr) v += (*residual)[i * n + j];
      y[i * n + j] = v;
    }
  }
  return y;
}

// Worst |got - want| relative to the largest |want|.
double max_rel_error(const std::vector<float>& got, const std::vector<double>& want) {
  double worst = 0.0, scale = 1e-30;
  for (std::size_t i = 0; i < got.size(); ++i) {
    worst = std::max(worst, std::fabs(got[i] - want[i]));
    scale = std::max(scale, std::fabs(want[i]));
  }
  return worst / scale;
}

struct Shape {
  int64_t m, n, k;
};

TEST(QuantizeSymmetricInt8, RoundsHalfToEvenAndClampsToRestrictedRange) {
  // Scale 254 / 127 = 2: 1 / 2 = 0.5 -> 0, 3 / 2 = 1.5 -> 2, 5 / 2 = 2.5 -> 2, -254 -> -127.
  const std::vector<float> w = {254.0f, 1.0f, 3.0f, 5.0f, -254.0f, -3.0f};
  const SymmetricInt8 q = quantize_symmetric_int8(w, 1, 6, /*per_row=*/true);
  EXPECT_EQ(q.q, (std::vector<int8_t>{127, 0, 2, 2, -127, -2}));
  ASSERT_EQ(q.scales.size(), 1u);
  EXPECT_FLOAT_EQ(q.scales[0], 2.0f);
}

TEST(QuantizeSymmetricInt8, PerRowScalesFollowEachRowAndPerTensorTheWholeMatrix) {
  const std::vector<float> w = {1.0f, -0.5f, 0.0f, 0.0f, 4.0f, 2.0f, 0.0f, 0.0f, 0.0f};
  const SymmetricInt8 rows = quantize_symmetric_int8(w, 3, 3, /*per_row=*/true);
  EXPECT_EQ(rows.scales, (std::vector<float>{1.0f / 127, 4.0f / 127, 1.0f}));  // zero row: 1
  EXPECT_EQ(rows.q, (std::vector<int8_t>{127, -64, 0, 0, 127, 64, 0, 0, 0}));  // -63.5 -> -64
  const SymmetricInt8 all = quantize_symmetric_int8(w, 3, 3, /*per_row=*/false);
  EXPECT_EQ(all.scales, (std::vector<float>{4.0f / 127}));
  EXPECT_EQ(all.q, (std::vector<int8_t>{32, -16, 0, 0, 127, 64, 0, 0, 0}));  // 31.75, -15.875
}

TEST(QuantizeSymmetricInt8, ErrorIsAtMostHalfAStep) {
  const std::vector<float> w = random_floats(64 * 48, 0.05f, 3);
  for (bool per_row : {true, false}) {
    const SymmetricInt8 q = quantize_symmetric_int8(w, 64, 48, per_row);
    for (std::size_t i = 0; i < w.size(); ++i) {
      const float s = q.scales[per_row ? i / 48 : 0];
      EXPECT_LE(std::fabs(w[i] - q.q[i] * s), 0.5f * s * (1 + 1e-5f)) << "index " << i;
    }
  }
}

TEST(QuantizeSymmetricInt8, RejectsNonFiniteWeightNamingRowAndColumn) {
  std::vector<float> w(12, 0.5f);
  w[7] = std::numeric_limits<float>::infinity();
  try {
    quantize_symmetric_int8(w, 3, 4, true);
    FAIL() << "expected InvalidArgument";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("row 1, column 3"), std::string::npos) << e.what();
  }
  EXPECT_THROW(quantize_symmetric_int8(w, 4, 4, true), InvalidArgument);  // size mismatch
}

TEST(LinearInt8, RejectsBadShapesAndBias) {
  const std::vector<float> w(6, 0.1f), bias(2, 0.0f);
  EXPECT_THROW(LinearInt8(w, 3, 2, bias), InvalidArgument);  // bias has 2 values for n = 3
  EXPECT_THROW(LinearInt8(w, 0, 6, {}), InvalidArgument);
  EXPECT_THROW(LinearInt8(w, 4, 2, {}), InvalidArgument);  // 6 values for 4 x 2
}

TEST(LinearInt8, RejectsNonFiniteInputNamingTheRow) {
  const std::vector<float> w = random_floats(4 * 8, 0.1f, 1);
  const LinearInt8 fc(w, 4, 8, {});
  std::vector<float> x = random_floats(3 * 8, 1.0f, 2), y(3 * 4);
  x[2 * 8 + 5] = std::numeric_limits<float>::quiet_NaN();
  std::vector<int8_t> q(LinearInt8::scratch_bytes(3, 8));
  try {
    fc.forward(x.data(), 3, 8, y.data(), 4, q.data());
    FAIL() << "expected InvalidArgument";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("row 2"), std::string::npos) << e.what();
  }
}

// The main differential test: BERT-like shapes (odd m, n not a multiple of 16, K up to 3072),
// per channel and per tensor, with each epilogue, on every ISA.
TEST(LinearInt8, MatchesQuantizeMatmulDequantizeReferenceOnEveryIsa) {
  const Shape shapes[] = {{1, 2, 768}, {5, 33, 64}, {17, 96, 40}, {37, 64, 3072}, {128, 48, 768}};
  for (Isa isa : runnable_isas()) {
    for (const Shape& s : shapes) {
      const std::vector<float> w = random_floats(s.n * s.k, 0.04f, 11);
      const std::vector<float> bias = random_floats(s.n, 0.3f, 12);
      const std::vector<float> x = random_floats(s.m * s.k, 1.0f, 13);
      for (bool per_channel : {true, false}) {
        const LinearInt8 fc(w, s.n, s.k, bias, per_channel, isa);
        EXPECT_EQ(fc.weights().isa(), isa);
        std::vector<int8_t> q(LinearInt8::scratch_bytes(s.m, s.k));
        for (kernels::Activation act :
             {kernels::Activation::none, kernels::Activation::gelu, kernels::Activation::relu}) {
          SCOPED_TRACE(std::string(isa_name(isa)) + " m=" + std::to_string(s.m) +
                       " n=" + std::to_string(s.n) + " k=" + std::to_string(s.k) +
                       (per_channel ? " per-channel" : " per-tensor") +
                       " act=" + std::to_string(static_cast<int>(act)));
          std::vector<float> y(s.m * s.n, -7.0f);
          fc.forward(x.data(), s.m, s.k, y.data(), s.n, q.data(), {.activation = act}, 1);
          const std::vector<double> want =
              reference(x, s.m, s.k, w, s.n, bias, per_channel, act, nullptr);
          EXPECT_LE(max_rel_error(y, want), 2e-6);
        }
      }
    }
  }
}

TEST(LinearInt8, ResidualAddsInPlaceIntoTheOutput) {
  const int64_t m = 9, n = 40, k = 96;
  const std::vector<float> w = random_floats(n * k, 0.05f, 21);
  const std::vector<float> bias = random_floats(n, 0.2f, 22);
  const std::vector<float> x = random_floats(m * k, 1.0f, 23);
  const std::vector<float> residual = random_floats(m * n, 2.0f, 24);
  for (Isa isa : runnable_isas()) {
    SCOPED_TRACE(isa_name(isa));
    const LinearInt8 fc(w, n, k, bias, true, isa);
    std::vector<int8_t> q(LinearInt8::scratch_bytes(m, k));
    std::vector<float> y = residual;  // y += x W^T + b, as BERT's attention output does
    fc.forward(x.data(), m, k, y.data(), n, q.data(), {.residual = y.data(), .ldr = n}, 2);
    const std::vector<double> want =
        reference(x, m, k, w, n, bias, true, kernels::Activation::none, &residual);
    EXPECT_LE(max_rel_error(y, want), 2e-6);
  }
}

TEST(LinearInt8, HonoursInputAndOutputStrides) {
  const int64_t m = 6, n = 20, k = 24, ldx = 31, ldy = 27;
  const std::vector<float> w = random_floats(n * k, 0.05f, 31);
  const std::vector<float> x = random_floats(m * k, 1.0f, 32);
  std::vector<float> x_strided(m * ldx, 1e6f);  // padding would wreck the scale if it were read
  for (int64_t i = 0; i < m; ++i) std::copy_n(&x[i * k], k, &x_strided[i * ldx]);
  const LinearInt8 fc(w, n, k, {});
  std::vector<int8_t> q(LinearInt8::scratch_bytes(m, k));
  std::vector<float> y(m * ldy, -3.0f);
  fc.forward(x_strided.data(), m, ldx, y.data(), ldy, q.data());
  const std::vector<double> want =
      reference(x, m, k, w, n, {}, true, kernels::Activation::none, nullptr);
  std::vector<float> packed(m * n);
  for (int64_t i = 0; i < m; ++i) {
    std::copy_n(&y[i * ldy], n, &packed[i * n]);
    for (int64_t j = n; j < ldy; ++j) EXPECT_EQ(y[i * ldy + j], -3.0f) << "padding written";
  }
  EXPECT_LE(max_rel_error(packed, want), 2e-6);
}

TEST(LinearInt8, StaysCloseToTheFp32Product) {
  // Not a spec check but the point of the exercise: 8-bit codes keep the product within ~1%.
  const int64_t m = 32, n = 64, k = 768;
  const std::vector<float> w = random_floats(n * k, 0.02f, 41);
  const std::vector<float> x = random_floats(m * k, 1.0f, 42);
  const LinearInt8 fc(w, n, k, {});
  std::vector<int8_t> q(LinearInt8::scratch_bytes(m, k));
  std::vector<float> y(m * n);
  fc.forward(x.data(), m, k, y.data(), n, q.data());
  double err = 0.0, norm = 0.0;
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      double exact = 0.0;
      for (int64_t c = 0; c < k; ++c) exact += double{x[i * k + c]} * w[j * k + c];
      err += (y[i * n + j] - exact) * (y[i * n + j] - exact);
      norm += exact * exact;
    }
  }
  EXPECT_LT(std::sqrt(err / norm), 0.02);
}

// The epilogue's max |y| (EncoderLayer's FFN-in -> FFN-out dynamic scale) is exactly what a
// separate ops::abs_max pass over the output finds, in place with a residual, over a strided
// output, on every ISA and thread count; 0 for no rows.
TEST(LinearInt8, EpilogueAbsMaxEqualsAbsMaxOfTheOutput) {
  const int64_t m = 150, n = 200, k = 96, ldy = 203;
  const std::vector<float> w = random_floats(n * k, 0.05f, 61);
  const std::vector<float> bias = random_floats(n, 0.2f, 62);
  const std::vector<float> x = random_floats(m * k, 1.0f, 63);
  const std::vector<float> residual = random_floats(m * ldy, 2.0f, 64);
  for (Isa isa : runnable_isas()) {
    const LinearInt8 fc(w, n, k, bias, true, isa);
    std::vector<int8_t> q(LinearInt8::scratch_bytes(m, k));
    for (int threads : {1, 2, 3}) {
      for (bool with_residual : {false, true}) {
        SCOPED_TRACE(
            fmt::format("{} threads={} residual={}", isa_name(isa), threads, with_residual));
        std::vector<float> y = residual;  // padding columns: values larger than most outputs
        for (int64_t i = 0; i < m; ++i) y[i * ldy + n] = 1e6f;
        float amax = -1.0f;
        fc.forward(x.data(), m, k, y.data(), ldy, q.data(),
                   {.activation = kernels::Activation::gelu,
                    .residual = with_residual ? y.data() : nullptr,
                    .ldr = with_residual ? ldy : 0,
                    .abs_max = &amax},
                   threads);
        int64_t bad = -1;
        const float want = ops::abs_max(y.data(), m, n, ldy, 1, &bad);
        ASSERT_EQ(bad, -1);
        EXPECT_EQ(amax, want);
        EXPECT_GT(amax, 0.0f);
      }
    }
    float amax = -1.0f;
    fc.forward(x.data(), 0, k, nullptr, n, q.data(), {.abs_max = &amax}, 1);
    EXPECT_EQ(amax, 0.0f);
  }
}

}  // namespace
}  // namespace octet::layers
