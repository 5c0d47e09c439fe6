// FP32 row kernels: the reference against hand-checked values and libm, and every compiled ISA
// against the reference on ragged shapes (kernels/fp32.h).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "common/aligned_buffer.h"
#include "kernels/kernels.h"
#include "octet/cpu.h"

namespace octet::kernels {
namespace {

const KernelTable& ref_table() { return table_for(Isa::ref); }

bool runnable(Isa isa) {
  for (Isa r : runnable_isas())
    if (r == isa) return true;
  return false;
}

std::vector<float> random_vector(std::size_t n, float lo, float hi, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

// ---- Reference kernels, hand-checked -------------------------------------------------------

TEST(Fp32RefKernels, SoftmaxMatchesHandComputedValues) {
  std::vector<float> x = {1.0f, 2.0f, 3.0f, 100.0f};
  ref_table().fp32.softmax(x.data(), 4, 1, 4, 3, 1.0f);
  const double e1 = std::exp(-2.0), e2 = std::exp(-1.0), sum = e1 + e2 + 1.0;
  EXPECT_NEAR(x[0], e1 / sum, 1e-7);
  EXPECT_NEAR(x[1], e2 / sum, 1e-7);
  EXPECT_NEAR(x[2], 1.0 / sum, 1e-7);
  EXPECT_EQ(x[3], 0.0f) << "a padded key must get exactly zero probability";
}

TEST(Fp32RefKernels, LayerNormMatchesHandComputedValues) {
  const std::vector<float> x = {1.0f, 2.0f, 3.0f, 6.0f};
  const std::vector<float> gamma = {1.0f, 2.0f, 0.5f, 1.0f}, beta = {0.0f, 1.0f, 0.0f, -1.0f};
  std::vector<float> y(4);
  ref_table().fp32.layer_norm(x.data(), 4, y.data(), 4, 1, 4, gamma.data(), beta.data(), 0.0f);
  // mean 3, variance (4 + 1 + 0 + 9) / 4 = 3.5
  const double s = 1.0 / std::sqrt(3.5);
  EXPECT_NEAR(y[0], -2 * s, 1e-6);
  EXPECT_NEAR(y[1], -1 * s * 2 + 1, 1e-6);
  EXPECT_NEAR(y[2], 0.0, 1e-6);
  EXPECT_NEAR(y[3], 3 * s - 1, 1e-6);
}

TEST(Fp32RefKernels, GeluFormsMatchTheirDefinitions) {
  const std::vector<float> x = {-3.0f, -1.0f, -0.1f, 0.0f, 0.5f, 2.0f};
  std::vector<float> ye(x.size()), yt(x.size());
  ref_table().fp32.gelu_erf(x.data(), ye.data(), x.size());
  ref_table().fp32.gelu_tanh(x.data(), yt.data(), x.size());
  for (std::size_t i = 0; i < x.size(); ++i) {
    const double v = x[i];
    EXPECT_NEAR(ye[i], 0.5 * v * (1 + std::erf(v / std::sqrt(2.0))), 1e-6) << v;
    EXPECT_NEAR(yt[i], 0.5 * v * (1 + std::tanh(std::sqrt(2 / M_PI) * (v + 0.044715 * v * v * v))),
                1e-6)
        << v;
  }
  EXPECT_NEAR(ye[5], 1.9544997, 1e-6);  // gelu(2) = 2 * Phi(2)
}

// ---- Every ISA against the reference ---------------------------------------------------------

class Fp32IsaTest : public ::testing::TestWithParam<Isa> {
 protected:
  void SetUp() override {
    if (!runnable(GetParam())) {
      GTEST_SKIP() << isa_name(GetParam()) << " cannot run on this CPU or was not built";
    }
    k_ = &table_for(GetParam()).fp32;
    ASSERT_EQ(table_for(GetParam()).isa, GetParam());
  }
  const Fp32Kernels* k_ = nullptr;
};

// Relative error against double-precision libm, over dense sweeps of each function's range.
TEST_P(Fp32IsaTest, VectorMathIsAccurate) {
  struct Case {
    const char* name;
    UnaryF32Fn f;
    double (*g)(double);
    float lo, hi;
    double max_rel;
  };
  const Case cases[] = {
      {"exp", k_->exp, [](double x) { return std::exp(x); }, -87.0f, 88.5f, 2.5e-7},
      {"erf", k_->erf, [](double x) { return std::erf(x); }, -6.0f, 6.0f, 6e-7},
      {"tanh", k_->tanh, [](double x) { return std::tanh(x); }, -10.0f, 10.0f, 5e-7},
      {"gelu_erf", k_->gelu_erf,
       [](double x) { return 0.5 * x * (1 + std::erf(x / std::sqrt(2.0))); }, -3.0f, 10.0f, 2e-4},
      {"gelu_tanh", k_->gelu_tanh,
       [](double x) {
         return 0.5 * x * (1 + std::tanh(0.7978845608028654 * (x + 0.044715 * x * x * x)));
       },
       -3.0f, 10.0f, 2e-4},
  };
  const std::size_t n = 1 << 18;
  for (const Case& c : cases) {
    std::vector<float> x(n + 5), y(n + 5);
    for (std::size_t i = 0; i < x.size(); ++i) x[i] = c.lo + (c.hi - c.lo) * (i / double(x.size()));
    // Small magnitudes, where relative error is hardest for erf and tanh.
    for (std::size_t i = 0; i < 64; ++i)
      x[i] = (i % 2 ? -1.0f : 1.0f) * std::ldexp(1.0f, -int(i) / 2);
    c.f(x.data(), y.data(), x.size());
    double worst = 0.0;
    float worst_x = 0.0f;
    for (std::size_t i = 0; i < x.size(); ++i) {
      const double r = c.g(x[i]);
      const double rel = std::fabs(y[i] - r) / std::max(std::fabs(r), 1e-30);
      if (rel > worst) worst = rel, worst_x = x[i];
    }
    EXPECT_LE(worst, c.max_rel) << c.name << " on " << isa_name(GetParam())
                                << ": worst at x = " << worst_x;
  }
  // Special values.
  const float inf = std::numeric_limits<float>::infinity();
  std::vector<float> sx = {-inf, inf, -100.0f, 100.0f, std::nanf("")}, sy(5);
  k_->exp(sx.data(), sy.data(), 5);
  EXPECT_EQ(sy[0], 0.0f);
  EXPECT_EQ(sy[1], inf);
  EXPECT_EQ(sy[2], 0.0f);
  EXPECT_EQ(sy[3], inf);
  EXPECT_TRUE(std::isnan(sy[4]));
  k_->tanh(sx.data(), sy.data(), 5);
  EXPECT_EQ(sy[0], -1.0f);
  EXPECT_EQ(sy[1], 1.0f);
  EXPECT_TRUE(std::isnan(sy[4]));
}

TEST_P(Fp32IsaTest, ElementwiseMatchesReferenceOnRaggedLengths) {
  for (std::size_t n : {1, 7, 8, 9, 15, 16, 17, 31, 33, 100, 3072}) {
    const std::vector<float> x = random_vector(n, -6.0f, 6.0f, 17 + n);
    for (auto f : {&Fp32Kernels::exp, &Fp32Kernels::erf, &Fp32Kernels::tanh, &Fp32Kernels::gelu_erf,
                   &Fp32Kernels::gelu_tanh, &Fp32Kernels::relu}) {
      std::vector<float> want(n + 1, -7.0f), got(n + 1, -7.0f);
      (ref_table().fp32.*f)(x.data(), want.data(), n);
      (k_->*f)(x.data(), got.data(), n);
      for (std::size_t i = 0; i < n; ++i) {
        ASSERT_NEAR(got[i], want[i], 1e-6f * std::max(1.0f, std::fabs(want[i])))
            << "n=" << n << " i=" << i << " x=" << x[i];
      }
      EXPECT_EQ(got[n], -7.0f) << "wrote past the end, n=" << n;
    }
  }
}

TEST_P(Fp32IsaTest, LayerNormMatchesReferenceOnRaggedShapes) {
  for (std::size_t cols : {1, 5, 8, 15, 16, 17, 33, 64, 127, 768}) {
    const std::size_t rows = 3, ld = cols + 3;
    std::vector<float> x = random_vector(rows * ld, -3.0f, 5.0f, 100 + cols);
    const std::vector<float> g = random_vector(cols, 0.5f, 1.5f, 1),
                             b = random_vector(cols, -1, 1, 2);
    std::vector<float> want(rows * ld, 9.0f), got(rows * ld, 9.0f);
    ref_table().fp32.layer_norm(x.data(), ld, want.data(), ld, rows, cols, g.data(), b.data(),
                                1e-12f);
    k_->layer_norm(x.data(), ld, got.data(), ld, rows, cols, g.data(), b.data(), 1e-12f);
    for (std::size_t r = 0; r < rows; ++r) {
      for (std::size_t c = 0; c < ld; ++c) {
        ASSERT_NEAR(got[r * ld + c], want[r * ld + c], 2e-5f)
            << "cols=" << cols << " r=" << r << " c=" << c;
      }
    }
  }
}

TEST_P(Fp32IsaTest, LayerNormOfConstantRowIsExactlyBeta) {
  for (const Fp32Kernels* k : {&ref_table().fp32, k_}) {
    for (float value : {0.1f, -3.3f, 1e4f, 0.0f}) {
      const std::size_t cols = 77;
      std::vector<float> x(cols, value), y(cols);
      const std::vector<float> g = random_vector(cols, 0.5f, 1.5f, 3),
                               b = random_vector(cols, -1, 1, 4);
      k->layer_norm(x.data(), cols, y.data(), cols, 1, cols, g.data(), b.data(), 1e-12f);
      for (std::size_t c = 0; c < cols; ++c)
        ASSERT_EQ(y[c], b[c]) << "value " << value << " c=" << c;
    }
  }
}

TEST_P(Fp32IsaTest, SoftmaxMatchesReferenceAndZeroesMaskedColumns) {
  for (std::size_t cols : {1, 7, 16, 17, 33, 128, 129}) {
    for (std::size_t valid : {std::size_t{0}, std::size_t{1}, cols / 2, cols}) {
      const std::size_t rows = 2, ld = cols + 1;
      const std::vector<float> x = random_vector(rows * ld, -20.0f, 20.0f, 7 * cols + valid);
      std::vector<float> want = x, got = x;
      ref_table().fp32.softmax(want.data(), ld, rows, cols, valid, 0.125f);
      k_->softmax(got.data(), ld, rows, cols, valid, 0.125f);
      for (std::size_t r = 0; r < rows; ++r) {
        double sum = 0.0;
        for (std::size_t c = 0; c < cols; ++c) {
          const float g = got[r * ld + c];
          ASSERT_NEAR(g, want[r * ld + c], 2e-6f) << "cols=" << cols << " valid=" << valid;
          if (c >= valid) {
            ASSERT_EQ(g, 0.0f) << "masked column " << c << " valid=" << valid;
          }
          sum += g;
        }
        EXPECT_NEAR(sum, valid == 0 ? 0.0 : 1.0, 1e-5) << "cols=" << cols << " valid=" << valid;
        EXPECT_EQ(got[r * ld + cols], x[r * ld + cols]) << "touched the row padding";
      }
    }
  }
}

TEST_P(Fp32IsaTest, AttentionHeadMatchesReferenceOnRaggedShapes) {
  for (std::size_t d : {1, 8, 13, 16, 32, 64, 80}) {
    for (std::size_t t : {1, 2, 3, 5, 16, 17, 33, 128}) {
      const std::size_t ld = 3 * d + 5, ld_out = d + 2;
      const std::vector<float> qkv = random_vector(t * ld, -2.0f, 2.0f, 1000 * d + t);
      AlignedBuffer<float> scratch(attention_scratch_floats(t, d));
      std::vector<float> want(t * ld_out, 5.0f), got(t * ld_out, 5.0f);
      const float scale = 1.0f / std::sqrt(static_cast<float>(d));
      ref_table().fp32.attention_head(qkv.data(), qkv.data() + d, qkv.data() + 2 * d, ld, t, t, d,
                                      scale, want.data(), ld_out, scratch.data(), nullptr);
      k_->attention_head(qkv.data(), qkv.data() + d, qkv.data() + 2 * d, ld, t, t, d, scale,
                         got.data(), ld_out, scratch.data(), nullptr);
      for (std::size_t i = 0; i < t; ++i) {
        for (std::size_t c = 0; c < ld_out; ++c) {
          ASSERT_NEAR(got[i * ld_out + c], want[i * ld_out + c], 2e-5f)
              << isa_name(GetParam()) << " d=" << d << " t=" << t << " row " << i << " col " << c;
        }
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(AllIsas, Fp32IsaTest, ::testing::Values(Isa::avx2, Isa::avx512),
                         [](const auto& info) { return std::string(isa_name(info.param)); });

}  // namespace
}  // namespace octet::kernels
