// The fusions around the dynamic INT8 GEMMs of the encoder layer (issue 5's speed item) give bit
// for bit what the unfused passes give: ops::layer_norm_abs_max = layer_norm then max |y|;
// ops::abs_max on any thread count = the maximum of the per-row kernel; LinearInt8::quantize_input
// (own range pass or a known max, any thread count) = ops::quantize_activations_s8; the GEMM on row
// slices = the GEMM on all rows; and a NaN is reported with its row.
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "common/aligned_buffer.h"
#include "kernels/kernels.h"
#include "layers/bert_layers.h"
#include "layers/linear_int8.h"
#include "octet/error.h"
#include "ops/fp32_ops.h"
#include "ops/gemm_int8.h"

namespace octet::layers {
namespace {

std::vector<float> random_floats(std::size_t n, float stddev, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, stddev);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

TEST(FusedInt8, LayerNormAbsMaxEqualsLayerNormThenAbsMaxOnAnyThreadCount) {
  const int64_t rows = 77, cols = 768;  // several LayerNorm chunks
  const std::vector<float> x = random_floats(rows * cols, 2.0f, 1);
  const std::vector<float> gamma = random_floats(cols, 1.0f, 2),
                           beta = random_floats(cols, 0.5f, 3);
  std::vector<float> ref(x.size());
  ops::layer_norm(x.data(), ref.data(), rows, cols, gamma.data(), beta.data(), 1e-12f, 1);
  float ref_max = 0.0f;
  for (float v : ref) ref_max = std::max(ref_max, std::fabs(v));
  for (int threads : {1, 2, 3}) {
    std::vector<float> y = x;
    int64_t bad = 7;
    const float m = ops::layer_norm_abs_max(y.data(), y.data(), rows, cols, gamma.data(),
                                            beta.data(), 1e-12f, threads, &bad);
    EXPECT_TRUE(same_bits(y, ref)) << threads << " thread(s)";
    EXPECT_EQ(m, ref_max) << threads << " thread(s)";
    EXPECT_EQ(bad, -1);
    int64_t bad2 = 7;
    EXPECT_EQ(ops::abs_max(ref.data(), rows, cols, cols, threads, &bad2), ref_max);
    EXPECT_EQ(bad2, -1);
  }
}

TEST(FusedInt8, NonFiniteRowsAreReportedWithTheirIndex) {
  const int64_t rows = 70, cols = 512;
  std::vector<float> x = random_floats(rows * cols, 1.0f, 4);
  x[53 * cols + 9] = std::numeric_limits<float>::infinity();
  x[61 * cols + 1] = std::numeric_limits<float>::quiet_NaN();
  const std::vector<float> gamma(cols, 1.0f), beta(cols, 0.0f);
  for (int threads : {1, 2}) {
    int64_t bad = -1;
    EXPECT_TRUE(std::isnan(ops::abs_max(x.data(), rows, cols, cols, threads, &bad)));
    EXPECT_EQ(bad, 53) << threads;
    std::vector<float> y(x.size());
    bad = -1;
    EXPECT_TRUE(std::isnan(ops::layer_norm_abs_max(x.data(), y.data(), rows, cols, gamma.data(),
                                                   beta.data(), 1e-12f, threads, &bad)));
    EXPECT_EQ(bad, 53) << threads;
  }
  LayerNorm ln{gamma, beta, 1e-12f};
  try {
    ln.forward_abs_max(x.data(), rows, 2, "layer 3 ", "output.LayerNorm");
    FAIL() << "expected InvalidArgument";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("layer 3 output.LayerNorm: row 53 of the 70 x 512"),
              std::string::npos)
        << e.what();
  }
}

// FP32 (int8 = false) and INT8 (int8 = true) attention matmuls alike: any thread count gives the
// single-thread outputs bit for bit, the reported max is theirs, a NaN makes it NaN; the INT8
// outputs are each head's attention_head_s8 on its slices, and within 8% of max |V| of FP32.
TEST(FusedInt8, AttentionReportsTheMaxOfItsOutput) {
  for (bool int8 : {false, true}) {
    const int64_t heads = 4, d = 16, hidden = heads * d;
    const std::vector<int64_t> offsets = {0, 37, 40, 101};
    const int64_t tokens = offsets.back();
    const std::vector<float> qkv = random_floats(tokens * 3 * hidden, 1.5f, 11);
    const std::size_t per_thread = ops::attention_scratch_per_thread(61, d);
    AlignedBuffer<float> scratch;  // 64-byte aligned per-thread slices
    scratch.ensure(3 * per_thread);
    std::vector<float> ref(tokens * hidden), ctx(tokens * hidden);
    ops::self_attention(qkv.data(), 3 * hidden, offsets, heads, d, ref.data(), hidden,
                        scratch.data(), per_thread, 1, nullptr, {}, int8);
    int64_t bad = 0;
    const float ref_max = ops::abs_max(ref.data(), tokens, hidden, hidden, 1, &bad);
    for (int threads : {1, 3}) {
      float m = -1.0f;
      ops::self_attention(qkv.data(), 3 * hidden, offsets, heads, d, ctx.data(), hidden,
                          scratch.data(), per_thread, threads, &m, {}, int8);
      EXPECT_TRUE(same_bits(ctx, ref)) << threads << (int8 ? " int8" : " fp32");
      EXPECT_EQ(m, ref_max) << threads;
    }
    if (int8) {
      // Sequence 2 (tokens 40..100), head 3, straight from the kernel table.
      std::vector<float> head(61 * d);
      const float* q = qkv.data() + 40 * 3 * hidden + 3 * d;
      kernels::table().int8.attention_head_s8(q, q + hidden, q + 2 * hidden, 3 * hidden, 61, 61, d,
                                              0.25f, head.data(), d, scratch.data(), nullptr);
      std::vector<float> fp32(tokens * hidden);
      ops::self_attention(qkv.data(), 3 * hidden, offsets, heads, d, fp32.data(), hidden,
                          scratch.data(), per_thread, 1);
      for (int64_t r = 0; r < 61; ++r) {
        for (int64_t c = 0; c < d; ++c) {
          ASSERT_EQ(head[r * d + c], ref[(40 + r) * hidden + 3 * d + c]) << r << " " << c;
        }
      }
      for (std::size_t i = 0; i < ref.size(); ++i) ASSERT_NEAR(ref[i], fp32[i], 0.08f * 1.5f) << i;
    }
    std::vector<float> nan_qkv = qkv;
    nan_qkv[50 * 3 * hidden + 2 * hidden + 3] =
        std::numeric_limits<float>::quiet_NaN();  // a V value
    float m = 0.0f;
    ops::self_attention(nan_qkv.data(), 3 * hidden, offsets, heads, d, ctx.data(), hidden,
                        scratch.data(), per_thread, 2, &m, {}, int8);
    EXPECT_TRUE(std::isnan(m));
  }
}

TEST(FusedInt8, QuantizeInputEqualsQuantizeActivationsS8) {
  const int64_t m = 45, k = 3072, n = 40;
  const LinearInt8 fc(random_floats(n * k, 0.05f, 5), n, k, random_floats(n, 0.1f, 6));
  const std::vector<float> x = random_floats(m * k, 3.0f, 7);
  std::vector<int8_t> ref_q(m * k);
  const ops::ActivationsInt8 ref = ops::quantize_activations_s8(
      x.data(), static_cast<int>(m), static_cast<int>(k), k, ref_q.data(), k);
  int64_t bad = 0;
  const float amax = ops::abs_max(x.data(), m, k, k, 1, &bad);
  for (int threads : {1, 2, 3}) {
    for (bool known : {false, true}) {
      std::vector<int8_t> q(m * k, 99);
      const ops::ActivationsInt8 a =
          fc.quantize_input(x.data(), m, k, q.data(), threads, known ? &amax : nullptr);
      EXPECT_EQ(a.scale, ref.scale) << threads << (known ? " known max" : "");
      EXPECT_EQ(a.m, m);
      // On VNNI the same codes come as u8 with zero point 128 (what the u8 x s8 GEMM reads).
      if (a.dtype == kernels::ActDtype::u8) {
        EXPECT_EQ(active_isa(), Isa::avx512_vnni);
        EXPECT_EQ(a.zero_point, 128);
        std::vector<int8_t> codes(q.size());
        for (std::size_t i = 0; i < q.size(); ++i) {
          codes[i] = static_cast<int8_t>(static_cast<int>(static_cast<uint8_t>(q[i])) - 128);
        }
        EXPECT_EQ(codes, ref_q) << threads << (known ? " known max" : "");
      } else {
        EXPECT_EQ(a.zero_point, 0);
        EXPECT_EQ(q, ref_q) << threads << (known ? " known max" : "");
      }
      // Either way the GEMM gives the s8 path's outputs bit for bit.
      std::vector<float> y(m * n), y_ref(m * n);
      fc.gemm(a, y.data(), n, {}, threads);
      fc.gemm(ref, y_ref.data(), n, {}, threads);
      EXPECT_TRUE(same_bits(y, y_ref)) << threads << (known ? " known max" : "");
    }
  }
  // A NaN in x is named by its row (own range pass); a bad known max is refused.
  std::vector<float> bad_x = x;
  bad_x[31 * k + 100] = std::numeric_limits<float>::quiet_NaN();
  std::vector<int8_t> q(m * k);
  try {
    fc.quantize_input(bad_x.data(), m, k, q.data(), 2);
    FAIL() << "expected InvalidArgument";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("row 31"), std::string::npos) << e.what();
  }
  const float nan = std::numeric_limits<float>::quiet_NaN();
  EXPECT_THROW(fc.quantize_input(x.data(), m, k, q.data(), 1, &nan), InvalidArgument);
}

TEST(FusedInt8, GemmOnRowSlicesEqualsOneGemm) {
  const int64_t m = 300, k = 256, n = 96;
  const LinearInt8 fc(random_floats(n * k, 0.05f, 8), n, k, random_floats(n, 0.1f, 9));
  const std::vector<float> x = random_floats(m * k, 1.0f, 10);
  std::vector<int8_t> q(m * k);
  const ops::ActivationsInt8 a = fc.quantize_input(x.data(), m, k, q.data(), 1);
  std::vector<float> whole(m * n), sliced(m * n);
  fc.gemm(a, whole.data(), n, {.activation = kernels::Activation::gelu}, 2);
  for (int64_t r0 = 0; r0 < m; r0 += 128) {
    const int64_t rows = std::min<int64_t>(128, m - r0);
    fc.gemm(row_slice(a, r0, rows), sliced.data() + r0 * n, n,
            {.activation = kernels::Activation::gelu}, 1);
  }
  EXPECT_TRUE(same_bits(whole, sliced));
  // forward() = quantize_input + gemm.
  std::vector<float> fwd(m * n);
  fc.forward(x.data(), m, k, fwd.data(), n, q.data(), {.activation = kernels::Activation::gelu}, 1);
  EXPECT_TRUE(same_bits(whole, fwd));
}

}  // namespace
}  // namespace octet::layers
