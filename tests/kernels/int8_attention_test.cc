// INT8 single-head attention (kernels/int8.h attention_head_s8) on every ISA the run may use:
// the probability code against exp, the reference against hand-computed cases and against FP32
// attention (the quantization error stays within a bound), every optimised kernel against the
// reference (bit for bit: exact integers and the same float operations), NaN propagation, padded
// queries, the returned max and the prefetch hint. Runs once per OCTET_MAX_ISA cap
// (tests/CMakeLists.txt); ISAs above the cap or the CPU skip visibly. ISAs without their own kernel
// (avx2, avx512) use the reference's, which the first test states.
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
#include "kernels/prob_code.h"
#include "octet/cpu.h"

namespace octet::kernels {
namespace {

using Head = test::AttentionHead;

Head make_head(std::size_t t, std::size_t d, float range, uint32_t seed) {
  return test::make_attention_head(t, d, range, seed);
}

float scale_for(std::size_t d) { return 1.0f / std::sqrt(static_cast<float>(d)); }

// Runs the int8 kernel `fn` on `h` (rows = t); output rows carry 3 padding floats preset to 7.
float run(AttentionHeadS8Fn fn, const Head& h, std::vector<float>& out,
          const float* next_q = nullptr) {
  AlignedBuffer<float> scratch(attention_s8_scratch_floats(h.t, h.d));
  out.assign(std::max<std::size_t>(h.t, 1) * h.ld_out, 7.0f);
  const float* q = h.qkv.data();
  return fn(q, q + h.d, q + 2 * h.d, h.ld, h.t, h.t, h.d, scale_for(h.d), out.data(), h.ld_out,
            scratch.data(), next_q);
}

float max_abs_v(const Head& h) {
  float m = 0.0f;
  for (std::size_t j = 0; j < h.t; ++j)
    for (std::size_t c = 0; c < h.d; ++c) m = std::max(m, std::fabs(h.qkv[j * h.ld + 2 * h.d + c]));
  return m;
}

AttentionHeadS8Fn ref_fn() { return table_for(Isa::ref).int8.attention_head_s8; }

class Int8AttentionTest : public test::Int8IsaTest {
 protected:
  AttentionHeadS8Fn fn() const { return kernels().attention_head_s8; }
};

// Which kernel this ISA runs (the table inherits the reference where an ISA has none).
TEST_P(Int8AttentionTest, ReportsItsKernel) {
  ASSERT_NE(fn(), nullptr);
  std::printf("%s: attention_head_s8 is %s\n", isa_name(GetParam()),
              fn() == ref_fn() ? "the reference (no kernel of its own)" : "its own kernel");
}

// One key: every probability code is 255 (n = 255), so the output is the dequantized V row:
// o_c = (float(255 vq_c) * (1 / 255)) * (a_c / 127) with vq_c = nearbyint(v_c * 127 / a_c),
// a_c = |v_c|: vq_c = +-127 exactly, whatever Q and K are.
TEST_P(Int8AttentionTest, OneKeyGivesTheDequantizedValueRow) {
  const Head h = make_head(1, 19, 3.0f, 11);
  std::vector<float> out;
  const float m = run(fn(), h, out);
  float want_max = 0.0f;
  for (std::size_t c = 0; c < h.d; ++c) {
    const float v = h.qkv[2 * h.d + c];
    const float a = std::fabs(v);
    const float step = a / 127.0f;
    const float code = v > 0 ? 127.0f : (v < 0 ? -127.0f : 0.0f);
    const float want = (code * 255.0f * (1.0f / 255.0f)) * step;
    EXPECT_EQ(out[c], want) << isa_name(GetParam()) << " channel " << c << " v " << v;
    want_max = std::max(want_max, std::fabs(want));
  }
  EXPECT_EQ(m, want_max);
}

// Q = 0: every score is 0, every code 255, so o_c is the mean of the V codes times the step.
TEST_P(Int8AttentionTest, ZeroQueriesAverageTheValues) {
  Head h = make_head(21, 8, 2.0f, 12);
  for (std::size_t j = 0; j < h.t; ++j)
    for (std::size_t c = 0; c < h.d; ++c) h.qkv[j * h.ld + c] = 0.0f;
  std::vector<float> out;
  run(fn(), h, out);
  for (std::size_t c = 0; c < h.d; ++c) {
    float a = 0.0f;
    for (std::size_t j = 0; j < h.t; ++j) a = std::max(a, std::fabs(h.qkv[j * h.ld + 2 * h.d + c]));
    int32_t acc = 0;
    for (std::size_t j = 0; j < h.t; ++j) {
      acc +=
          255 * static_cast<int32_t>(std::nearbyint(h.qkv[j * h.ld + 2 * h.d + c] * (127.0f / a)));
    }
    const float want =
        (static_cast<float>(acc) * (1.0f / static_cast<float>(255 * h.t))) * (a / 127.0f);
    for (std::size_t i = 0; i < h.t; ++i) {
      ASSERT_EQ(out[i * h.ld_out + c], want)
          << isa_name(GetParam()) << " row " << i << " col " << c;
    }
  }
}

// prob_code (kernels/prob_code.h) is nearbyint(255 exp(x)) but within 0.002 of a rounding
// boundary: checked on a dense grid of x in [-20, 0]; 255 at 0, 0 far below, never increasing.
TEST(Int8AttentionReference, ProbabilityCodeIsRoundedExp) {
  int32_t previous = 255;
  std::size_t off_by_one = 0, n = 0;
  for (float x = 0.0f; x >= -20.0f; x -= 1.0f / 4096.0f, ++n) {
    const int32_t c = prob_code(x);
    const double exact = 255.0 * std::exp(static_cast<double>(x));
    ASSERT_LE(std::fabs(c - exact), 0.5 + 0.003) << "x = " << x;
    if (c != static_cast<int32_t>(std::nearbyint(exact))) ++off_by_one;
    ASSERT_LE(c, previous) << "x = " << x;
    previous = c;
  }
  EXPECT_EQ(prob_code(0.0f), 255);
  EXPECT_EQ(prob_code(-17.5f), 0);
  EXPECT_EQ(prob_code(-std::numeric_limits<float>::infinity()), 0);
  EXPECT_LE(off_by_one * 100, n) << off_by_one << " of " << n << " codes differ from exact";
  std::printf("prob_code: %zu of %zu codes differ from nearbyint(255 exp(x))\n", off_by_one, n);
}

// The reference against FP32 attention: the int8 codes of Q, K, V and P cost a few percent of
// max |V| at most on random heads (the worst, printed, is 4.5% with |Q|, |K| up to 4, whose
// sharp softmax magnifies the score rounding); a wrong step or a lost +128 correction gives
// errors of the order of max |V| itself.
TEST(Int8AttentionReference, StaysCloseToFp32Attention) {
  const auto& f32 = table_for(Isa::ref).fp32;
  float worst = 0.0f;
  for (std::size_t d : {16, 64}) {
    for (std::size_t t : {7, 64, 128}) {
      for (float range : {1.0f, 4.0f}) {
        const Head h = make_head(t, d, range, static_cast<uint32_t>(d * 1000 + t));
        std::vector<float> got, want(t * h.ld_out);
        run(ref_fn(), h, got);
        AlignedBuffer<float> scratch(attention_scratch_floats(t, d));
        const float* q = h.qkv.data();
        f32.attention_head(q, q + d, q + 2 * d, h.ld, t, t, d, scale_for(d), want.data(), h.ld_out,
                           scratch.data(), nullptr);
        const float vmax = max_abs_v(h);
        for (std::size_t i = 0; i < t; ++i) {
          for (std::size_t c = 0; c < d; ++c) {
            const float e = std::fabs(got[i * h.ld_out + c] - want[i * h.ld_out + c]) / vmax;
            worst = std::max(worst, e);
            ASSERT_LE(e, 0.08f) << "d=" << d << " t=" << t << " range " << range << " row " << i
                                << " col " << c;
          }
        }
      }
    }
  }
  std::printf("int8 vs fp32 attention: largest |difference| %.4f of max |V|\n", worst);
}

// Every remainder of the row blocks, key panels and channel tiles, d beyond 64, t beyond 128:
// outputs and the returned max bit-identical to the reference.
TEST_P(Int8AttentionTest, MatchesReferenceBitForBit) {
  for (std::size_t d : {4, 8, 64, 72, 128}) {
    for (std::size_t t : {1, 5, 6, 7, 16, 17, 47, 64, 65, 128, 200}) {
      if (d == 128 && t > 65) continue;  // keep the reference's O(t^2 d) under the budget
      for (float range : {0.5f, 3.0f, 12.0f}) {
        const Head h = make_head(t, d, range, static_cast<uint32_t>(13 * d + t));
        std::vector<float> got, want;
        const float m = run(fn(), h, got);
        const float m_ref = run(ref_fn(), h, want);
        float amax = 0.0f;
        for (std::size_t i = 0; i < t; ++i) {
          for (std::size_t c = 0; c < h.ld_out; ++c) {
            const float g = got[i * h.ld_out + c], w = want[i * h.ld_out + c];
            ASSERT_EQ(std::bit_cast<uint32_t>(g), std::bit_cast<uint32_t>(w))
                << isa_name(GetParam()) << " d=" << d << " t=" << t << " range " << range << " row "
                << i << " col " << c << ": " << g << " vs reference " << w;
            if (c < d) amax = std::max(amax, std::fabs(g));
          }
        }
        EXPECT_EQ(std::bit_cast<uint32_t>(m), std::bit_cast<uint32_t>(amax))
            << "d=" << d << " t=" << t;
        EXPECT_EQ(m, m_ref);
      }
    }
  }
}

TEST_P(Int8AttentionTest, EmptyHeadReturnsZeroAndWritesNothing) {
  const Head h = make_head(0, 64, 1.0f, 3);
  std::vector<float> out;
  EXPECT_EQ(run(fn(), h, out), 0.0f);
  for (float x : out) EXPECT_EQ(x, 7.0f);
}

// A NaN or an infinity anywhere in Q, K or V: every output of the head is NaN, and so is the
// returned max (the caller rejects the batch).
TEST_P(Int8AttentionTest, NonFiniteInputMakesEveryOutputNan) {
  const std::size_t t = 37, d = 64;
  for (std::size_t col : {std::size_t{5}, d + 63, 2 * d + 17}) {
    for (float bad :
         {std::numeric_limits<float>::quiet_NaN(), -std::numeric_limits<float>::infinity()}) {
      Head h = make_head(t, d, 2.0f, 77);
      h.qkv[30 * h.ld + col] = bad;
      std::vector<float> out;
      EXPECT_TRUE(std::isnan(run(fn(), h, out))) << isa_name(GetParam()) << " col " << col;
      for (std::size_t i = 0; i < t; ++i) {
        for (std::size_t c = 0; c < d; ++c) ASSERT_TRUE(std::isnan(out[i * h.ld_out + c]));
        for (std::size_t c = d; c < h.ld_out; ++c) ASSERT_EQ(out[i * h.ld_out + c], 7.0f);
      }
    }
  }
}

// A sequence padded to a batch's longest (rows > t): the padded K and V rows hold NaN and must
// never be read; the valid rows' outputs equal the packed call's (rows == t).
TEST_P(Int8AttentionTest, PaddedQueriesAttendToValidKeysOnly) {
  for (std::size_t d : {16, 64, 13}) {
    for (std::size_t t : {1, 7, 16, 33}) {
      for (std::size_t pad : {1, 9, 40}) {
        const std::size_t rows = t + pad;
        Head h = make_head(rows, d, 2.0f, static_cast<uint32_t>(100 * d + 10 * t + pad));
        for (std::size_t r = t; r < rows; ++r)
          for (std::size_t c = d; c < 3 * d; ++c) h.qkv[r * h.ld + c] = std::nanf("");
        AlignedBuffer<float> scratch(attention_s8_scratch_floats(rows, d));
        const float* q = h.qkv.data();
        std::vector<float> padded(rows * h.ld_out, 7.0f), packed(t * h.ld_out, 7.0f);
        const float m = fn()(q, q + d, q + 2 * d, h.ld, rows, t, d, scale_for(d), padded.data(),
                             h.ld_out, scratch.data(), nullptr);
        fn()(q, q + d, q + 2 * d, h.ld, t, t, d, scale_for(d), packed.data(), h.ld_out,
             scratch.data(), nullptr);
        ASSERT_FALSE(std::isnan(m)) << "d=" << d << " t=" << t << " pad=" << pad;
        for (std::size_t r = 0; r < t; ++r) {
          for (std::size_t c = 0; c < h.ld_out; ++c) {
            ASSERT_EQ(padded[r * h.ld_out + c], packed[r * h.ld_out + c])
                << "d=" << d << " t=" << t << " pad=" << pad << " row " << r << " col " << c;
          }
        }
        for (std::size_t r = t; r < rows; ++r) {
          for (std::size_t c = 0; c < d; ++c) ASSERT_FALSE(std::isnan(padded[r * h.ld_out + c]));
        }
      }
    }
  }
}

// next_q is a prefetch hint: results are bit-identical with and without it.
TEST_P(Int8AttentionTest, NextHeadHintChangesNothing) {
  const Head h = make_head(50, 64, 2.0f, 5);
  std::vector<float> a, b;
  const float ma = run(fn(), h, a);
  const float mb = run(fn(), h, b, h.qkv.data() + 1);
  EXPECT_EQ(ma, mb);
  for (std::size_t i = 0; i < a.size(); ++i) ASSERT_EQ(a[i], b[i]) << "at " << i;
}

OCTET_INSTANTIATE_ISA_TESTS(Int8AttentionTest);

}  // namespace
}  // namespace octet::kernels
