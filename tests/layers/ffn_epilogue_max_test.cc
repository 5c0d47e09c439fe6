// The dynamic INT8 encoder layer takes FFN-out's input range from the FFN-in GEMM epilogue
// (LinearInt8Epilogue::abs_max) instead of a pass over the [tokens, I] intermediate: the layer's
// output is bit for bit the unfused sequence (FFN-in GEMM, then FFN-out with its own range pass),
// on every ISA and thread count, and a non-finite intermediate is still refused naming its row.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "layers/bert_layers.h"
#include "octet/cpu.h"
#include "octet/error.h"
#include "ops/fp32_ops.h"

namespace octet::layers {
namespace {

std::vector<float> randn(std::size_t n, float std, std::mt19937& rng) {
  std::normal_distribution<float> d(0.0f, std);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

constexpr int64_t kH = 32, kHeads = 4, kD = 8, kInter = 128;

struct Layer {
  EncoderLayer L;
  std::vector<float> w1, b1, w2, b2;
};

// FP32 attention, dynamic INT8 FFN in and out (per channel), erf GELU.
Layer make_layer(Isa isa, std::mt19937& rng) {
  Layer l;
  EncoderLayer& L = l.L;
  L.hidden = kH, L.heads = kHeads, L.head_dim = kD, L.intermediate = kInter;
  L.act = io::Activation::gelu;
  L.qkv = ops::MatmulF32(randn(3 * kH * kH, 0.3f, rng), 3 * kH, kH, randn(3 * kH, 0.1f, rng));
  L.attn_out = ops::MatmulF32(randn(kH * kH, 0.2f, rng), kH, kH, randn(kH, 0.1f, rng));
  l.w1 = randn(kInter * kH, 0.2f, rng), l.b1 = randn(kInter, 0.1f, rng);
  l.w2 = randn(kH * kInter, 0.2f, rng), l.b2 = randn(kH, 0.1f, rng);
  L.ffn_in_q = LinearInt8(l.w1, kInter, kH, l.b1, true, isa);
  L.ffn_out_q = LinearInt8(l.w2, kH, kInter, l.b2, true, isa);
  L.int8 = true;
  for (LayerNorm* ln : {&L.attn_norm, &L.ffn_norm}) {
    ln->gamma = randn(kH, 0.1f, rng);
    for (float& g : ln->gamma) g += 1.0f;
    ln->beta = randn(kH, 0.1f, rng);
    ln->eps = 1e-12f;
  }
  return l;
}

struct LayerRun {
  std::vector<float> ffn_input;   // the attention LayerNorm's output (FFN-in input)
  std::vector<float> ffn_output;  // FFN-out output + residual, before the last LayerNorm
  std::vector<float> x;           // the layer's output
};

LayerRun run_layer(const EncoderLayer& L, const std::vector<int64_t>& offsets, std::vector<float> x,
                   int threads) {
  const int64_t tokens = offsets.back();
  std::vector<float> qkv(tokens * 3 * kH), ctx(tokens * kH), mid(tokens * kInter);
  std::vector<int8_t> q8(tokens * kInter);
  const std::size_t per_thread = ops::attention_scratch_per_thread(256, kD);
  std::vector<float> attn_scratch(4 * per_thread + 16);
  AlignedBuffer<std::byte> gemm;
  LayerRun r;
  const ActivationTap tap = [&](std::string_view name, TapPoint point, const float* data,
                                int64_t rows, int64_t cols, std::ptrdiff_t ld) {
    std::vector<float>* dst = nullptr;
    if (name.ends_with("intermediate.dense") && point == TapPoint::input) dst = &r.ffn_input;
    if (name.ends_with("output.dense") && !name.ends_with("attention.output.dense") &&
        point == TapPoint::output) {
      dst = &r.ffn_output;
    }
    if (dst == nullptr) return;
    dst->resize(rows * cols);
    for (int64_t i = 0; i < rows; ++i) std::memcpy(dst->data() + i * cols, data + i * ld, cols * 4);
  };
  EncoderScratch s{qkv.data(), ctx.data(), mid.data(), attn_scratch.data(), per_thread, &gemm};
  s.q8 = q8.data();
  s.tap = &tap;
  L.forward(x.data(), offsets, s, threads);
  r.x = std::move(x);
  return r;
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

TEST(FfnEpilogueMax, LayerEqualsTheUnfusedFfnOnEveryIsaAndThreadCount) {
  const std::vector<int64_t> offsets = {0, 100, 117, 300};  // 300 tokens: more than one row block
  const int64_t tokens = offsets.back();
  for (Isa isa : runnable_isas()) {
    std::mt19937 rng(21);
    const Layer l = make_layer(isa, rng);
    const std::vector<float> x0 = randn(tokens * kH, 1.0f, rng);
    std::vector<float> first;
    for (int threads : {1, 2, 3}) {
      SCOPED_TRACE(fmt::format("{} threads={}", isa_name(isa), threads));
      const LayerRun r = run_layer(l.L, offsets, x0, threads);
      ASSERT_EQ(r.ffn_input.size(), static_cast<std::size_t>(tokens * kH));
      // Unfused: FFN-in GEMM + GELU, then FFN-out quantizing with its own range pass.
      std::vector<float> mid(tokens * kInter), out = r.ffn_input;
      std::vector<int8_t> q(tokens * kInter);
      l.L.ffn_in_q.forward(r.ffn_input.data(), tokens, kH, mid.data(), kInter, q.data(),
                           {.activation = kernels::Activation::gelu}, 1);
      l.L.ffn_out_q.forward(mid.data(), tokens, kInter, out.data(), kH, q.data(),
                            {.residual = out.data(), .ldr = kH}, 1);
      EXPECT_TRUE(same_bits(r.ffn_output, out));
      if (first.empty()) first = r.x;
      EXPECT_TRUE(same_bits(r.x, first)) << "output differs from the 1-thread run";
    }
  }
}

TEST(FfnEpilogueMax, NonFiniteIntermediateIsRefusedNamingTheRow) {
  const std::vector<int64_t> offsets = {0, 40};
  std::mt19937 rng(22);
  Layer l = make_layer(active_isa(), rng);
  const std::vector<float> x0 = randn(40 * kH, 1.0f, rng);
  for (float bad :
       {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity()}) {
    // A non-finite FFN-in bias makes one column of every row non-finite: row 0 is the first.
    std::vector<float> b1 = l.b1;
    b1[kInter - 1] = bad;
    l.L.ffn_in_q = LinearInt8(l.w1, kInter, kH, b1, true, active_isa());
    l.L.name = "bert.encoder.layer.3.";
    try {
      run_layer(l.L, offsets, x0, 2);
      FAIL() << "expected InvalidArgument for bias " << bad;
    } catch (const InvalidArgument& e) {
      const std::string what = e.what();
      EXPECT_NE(what.find("bert.encoder.layer.3.intermediate.dense: row 0 of the 40 x 128"),
                std::string::npos)
          << what;
    }
  }
}

}  // namespace
}  // namespace octet::layers
