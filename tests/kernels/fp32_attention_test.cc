// Single-head FP32 attention (kernels/fp32.h attention_head) on every ISA the run may use: the
// returned max |O| against the values written, NaN propagation, and the optimised kernels
// against the reference on shapes that exercise every row-block and tile remainder. Runs once
// per OCTET_MAX_ISA cap (tests/CMakeLists.txt); ISAs above the cap or the CPU skip visibly.
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "common/aligned_buffer.h"
#include "kernels/int8_test_util.h"
#include "kernels/kernels.h"
#include "octet/cpu.h"

namespace octet::kernels {
namespace {

using Head = test::AttentionHead;

Head make_head(std::size_t t, std::size_t d, float range, uint32_t seed) {
  return test::make_attention_head(t, d, range, seed);
}

// Runs `k` on `h`; the output rows carry 3 padding floats preset to 7 that must stay 7.
float run(const Fp32Kernels& k, const Head& h, std::vector<float>& out) {
  AlignedBuffer<float> scratch(attention_scratch_floats(h.t, h.d));
  out.assign(std::max<std::size_t>(h.t, 1) * h.ld_out, 7.0f);
  const float* q = h.qkv.data();
  return k.attention_head(q, q + h.d, q + 2 * h.d, h.ld, h.t, h.t, h.d,
                          1.0f / std::sqrt(static_cast<float>(h.d)), out.data(), h.ld_out,
                          scratch.data(), nullptr);
}

class Fp32AttentionTest : public ::testing::TestWithParam<Isa> {
 protected:
  void SetUp() override {
    const Isa isa = GetParam();
    if (!test::isa_runnable(isa)) {
      GTEST_SKIP() << "ISA " << isa_name(isa) << " not runnable here (CPU supports up to "
                   << isa_name(cpu_isa()) << ", build has up to " << isa_name(built_isa()) << ")";
    }
    if (static_cast<int>(isa) > static_cast<int>(active_isa())) {
      GTEST_SKIP() << "ISA " << isa_name(isa)
                   << " excluded by the cap OCTET_MAX_ISA=" << isa_name(active_isa());
    }
    ASSERT_EQ(table_for(isa).isa, isa);
  }
  const Fp32Kernels& k() const { return table_for(GetParam()).fp32; }
  const Fp32Kernels& ref() const { return table_for(Isa::ref).fp32; }
};

TEST_P(Fp32AttentionTest, ReturnsTheMaxAbsOfWhatItWrote) {
  for (std::size_t d : {1, 3, 16, 64, 65, 130}) {
    for (std::size_t t : {1, 5, 6, 7, 13, 128}) {
      const Head h = make_head(t, d, 2.0f, static_cast<uint32_t>(31 * d + t));
      std::vector<float> out;
      const float m = run(k(), h, out);
      float want = 0.0f;
      for (std::size_t i = 0; i < t; ++i) {
        for (std::size_t c = 0; c < d; ++c) want = std::max(want, std::fabs(out[i * h.ld_out + c]));
        for (std::size_t c = d; c < h.ld_out; ++c) {
          ASSERT_EQ(out[i * h.ld_out + c], 7.0f) << "wrote row padding: d=" << d << " t=" << t;
        }
      }
      ASSERT_GT(want, 0.0f);
      EXPECT_EQ(std::bit_cast<uint32_t>(m), std::bit_cast<uint32_t>(want))
          << isa_name(GetParam()) << " d=" << d << " t=" << t << ": returned " << m
          << ", max |output| " << want;
    }
  }
}

TEST_P(Fp32AttentionTest, EmptyHeadReturnsZeroAndWritesNothing) {
  const Head h = make_head(0, 64, 1.0f, 3);
  std::vector<float> out;
  EXPECT_EQ(run(k(), h, out), 0.0f);
  for (float x : out) EXPECT_EQ(x, 7.0f);
}

// A NaN in Q poisons its query row, in K every row (its score column), in V one output column:
// the NaN outputs are the reference's, and the returned max is NaN.
TEST_P(Fp32AttentionTest, NanInputMakesTheSameOutputsAndTheMaxNan) {
  const std::size_t t = 37, d = 64;
  struct Case {
    const char* what;
    std::size_t row, col;  // col within [Q | K | V]
  };
  for (const Case& c : {Case{"Q", 9, 5}, Case{"K", 30, d + 63}, Case{"V", 36, 2 * d + 17}}) {
    Head h = make_head(t, d, 2.0f, 77);
    h.qkv[c.row * h.ld + c.col] = std::numeric_limits<float>::quiet_NaN();
    std::vector<float> got, want;
    const float m = run(k(), h, got);
    const float m_ref = run(ref(), h, want);
    EXPECT_TRUE(std::isnan(m)) << isa_name(GetParam()) << " NaN in " << c.what << ": got " << m;
    EXPECT_TRUE(std::isnan(m_ref)) << "reference, NaN in " << c.what;
    std::size_t nans = 0;
    for (std::size_t i = 0; i < t; ++i) {
      for (std::size_t j = 0; j < d; ++j) {
        const float g = got[i * h.ld_out + j], w = want[i * h.ld_out + j];
        ASSERT_EQ(std::isnan(g), std::isnan(w))
            << isa_name(GetParam()) << " NaN in " << c.what << ": output row " << i << " col " << j
            << " got " << g << " reference " << w;
        nans += std::isnan(g) ? 1 : 0;
        if (!std::isnan(g)) {
          ASSERT_NEAR(g, w, 2e-5f) << c.what << " row " << i << " col " << j;
        }
      }
    }
    EXPECT_GT(nans, 0u) << c.what;
  }
}

// Every remainder of the 6-row blocks and 64-key / 64-channel tiles, sequences longer than
// BERT's 128, and inputs twice as wide as the ragged-shape test in tests/ops (|Q|, |K|, |V| <= 4).
// Bound: 2e-5 per 64 keys (values of V up to 4; the FP32 rounding of the d-term scores and of
// the t-term P V sums in a different order); the worst case is printed (about a third of it).
TEST_P(Fp32AttentionTest, MatchesReferenceOnEveryBlockRemainder) {
  float worst_ratio = 0.0f;
  std::string worst_at;
  for (std::size_t d : {8, 64, 80, 130}) {
    for (std::size_t t : {6, 11, 12, 47, 64, 65, 200, 384}) {
      if (d == 130 && t > 65) continue;  // keep the reference's O(t^2 d) under the unit-test budget
      const Head h = make_head(t, d, 4.0f, static_cast<uint32_t>(7 * d + t));
      std::vector<float> got, want;
      run(k(), h, got);
      run(ref(), h, want);
      const float tol = 2e-5f * static_cast<float>((t + 63) / 64);
      float worst = 0.0f;
      for (std::size_t i = 0; i < t; ++i) {
        for (std::size_t c = 0; c < d; ++c) {
          const float diff = std::fabs(got[i * h.ld_out + c] - want[i * h.ld_out + c]);
          worst = std::max(worst, diff);
          ASSERT_LE(diff, tol) << isa_name(GetParam()) << " d=" << d << " t=" << t << " row " << i
                               << " col " << c << ": " << got[i * h.ld_out + c] << " vs reference "
                               << want[i * h.ld_out + c];
        }
      }
      if (worst / tol > worst_ratio) {
        worst_ratio = worst / tol;
        worst_at =
            "d=" + std::to_string(d) + " t=" + std::to_string(t) + ": " + std::to_string(worst);
      }
    }
  }
  if (GetParam() != Isa::ref)
    std::printf("%s: largest |difference| %s (%.0f%% of the bound)\n", isa_name(GetParam()),
                worst_at.c_str(), 100.0 * worst_ratio);
}

// next_q is a prefetch hint: results are bit-identical with and without it.
TEST_P(Fp32AttentionTest, NextHeadHintChangesNothing) {
  const std::size_t t = 50, d = 64, heads = 2, ld = 3 * heads * d;
  std::mt19937 rng(5);
  const std::vector<float> qkv = test::random_floats(rng, t * ld, -2.0f, 2.0f);
  AlignedBuffer<float> scratch(attention_scratch_floats(t, d));
  std::vector<float> a(t * d), b(t * d);
  const float* q = qkv.data();
  const float* kp = q + heads * d;
  const float* vp = q + 2 * heads * d;
  const float ma =
      k().attention_head(q, kp, vp, ld, t, t, d, 0.125f, a.data(), d, scratch.data(), nullptr);
  const float mb =
      k().attention_head(q, kp, vp, ld, t, t, d, 0.125f, b.data(), d, scratch.data(), q + d);
  EXPECT_EQ(ma, mb);
  for (std::size_t i = 0; i < a.size(); ++i) ASSERT_EQ(a[i], b[i]) << "at " << i;
}

// A sequence padded to a batch's longest (rows > t): every query row, pads included, attends to
// the t valid keys only. The padded K and V rows hold NaN and must never be read; the valid rows'
// outputs are bit-identical to the packed call (rows == t), and all rows match the reference.
TEST_P(Fp32AttentionTest, PaddedQueriesAttendToValidKeysOnly) {
  for (std::size_t d : {16, 64, 13}) {
    for (std::size_t t : {1, 7, 16, 33}) {
      for (std::size_t pad : {1, 9, 40}) {
        const std::size_t rows = t + pad;
        Head h = make_head(rows, d, 2.0f, static_cast<uint32_t>(100 * d + 10 * t + pad));
        for (std::size_t r = t; r < rows; ++r) {
          for (std::size_t c = d; c < 3 * d; ++c) {
            h.qkv[r * h.ld + c] = std::numeric_limits<float>::quiet_NaN();
          }
        }
        AlignedBuffer<float> scratch(attention_scratch_floats(t, d));
        const float* q = h.qkv.data();
        const float scale = 1.0f / std::sqrt(static_cast<float>(d));
        std::vector<float> padded(rows * h.ld_out, 7.0f), packed(t * h.ld_out, 7.0f),
            want(rows * h.ld_out, 7.0f);
        const float m = k().attention_head(q, q + d, q + 2 * d, h.ld, rows, t, d, scale,
                                           padded.data(), h.ld_out, scratch.data(), nullptr);
        k().attention_head(q, q + d, q + 2 * d, h.ld, t, t, d, scale, packed.data(), h.ld_out,
                           scratch.data(), nullptr);
        table_for(Isa::ref).fp32.attention_head(q, q + d, q + 2 * d, h.ld, rows, t, d, scale,
                                                want.data(), h.ld_out, scratch.data(), nullptr);
        ASSERT_FALSE(std::isnan(m)) << "d=" << d << " t=" << t << " pad=" << pad;
        float amax = 0.0f;
        for (std::size_t r = 0; r < rows; ++r) {
          for (std::size_t c = 0; c < h.ld_out; ++c) {
            const float g = padded[r * h.ld_out + c];
            if (c >= d) {
              ASSERT_EQ(g, 7.0f) << "wrote past the row: d=" << d << " t=" << t << " row " << r;
              continue;
            }
            amax = std::max(amax, std::fabs(g));
            ASSERT_NEAR(g, want[r * h.ld_out + c], 2e-5f)
                << "d=" << d << " t=" << t << " pad=" << pad << " row " << r << " col " << c;
            if (r < t) {
              ASSERT_EQ(g, packed[r * h.ld_out + c]) << "valid row " << r << " col " << c;
            }
          }
        }
        EXPECT_EQ(m, amax) << "d=" << d << " t=" << t << " pad=" << pad;
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Isa, Fp32AttentionTest,
                         ::testing::Values(Isa::ref, Isa::avx2, Isa::avx512), test::isa_param_name);

}  // namespace
}  // namespace octet::kernels
