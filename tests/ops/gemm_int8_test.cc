// ops/gemm_int8: argument checks (each bad input raises InvalidArgument naming what is wrong),
// packing (column sums, per-tensor scale expansion), the work partition, and results that do
// not depend on the thread count. Kernel arithmetic is covered per ISA in tests/kernels.
#include "ops/gemm_int8.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "octet/error.h"

namespace octet::ops {
namespace {

using kernels::ActDtype;
using kernels::Activation;
using kernels::GemmOutput;

// Expects InvalidArgument whose message contains `needle`.
template <typename F>
void expect_invalid(F&& f, const std::string& needle) {
  try {
    f();
    ADD_FAILURE() << "expected InvalidArgument mentioning '" << needle << "'";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos)
        << "message: " << e.what() << "\nexpected to mention: " << needle;
  }
}

struct Fixture {
  int m = 4, n = 20, k = 12;
  std::vector<int8_t> w = std::vector<int8_t>(size_t(n) * k);
  std::vector<int8_t> a = std::vector<int8_t>(size_t(m) * k);
  std::vector<float> scales = {0.5f};
  PackedWeightsInt8 pw;
  Fixture() {
    std::mt19937 rng(3);
    for (auto& x : w) x = static_cast<int8_t>(rng() % 256);
    for (auto& x : a) x = static_cast<int8_t>(rng() % 256);
    pw = PackedWeightsInt8::pack(w.data(), n, k, k, scales);
  }
  ActivationsInt8 act() const { return {a.data(), ActDtype::s8, m, k, k, 0, 0.1f}; }
};

TEST(PackedWeightsInt8, StoresColumnSumsAndExpandsPerTensorScale) {
  Fixture f;
  ASSERT_EQ(f.pw.n(), f.n);
  ASSERT_EQ(f.pw.k(), f.k);
  EXPECT_EQ(f.pw.isa(), active_isa());
  for (int j = 0; j < f.n; ++j) {
    int32_t sum = 0;
    for (int kk = 0; kk < f.k; ++kk) sum += f.w[size_t(j) * f.k + kk];
    EXPECT_EQ(f.pw.col_sums()[j], sum) << "column " << j;
    EXPECT_EQ(f.pw.scales()[j], 0.5f);
  }
}

TEST(PackedWeightsInt8, RejectsBadShapesStridesAndScales) {
  Fixture f;
  const std::vector<float> none;
  expect_invalid([&] { PackedWeightsInt8::pack(f.w.data(), 0, f.k, f.k, none); }, "n = 0");
  expect_invalid([&] { PackedWeightsInt8::pack(f.w.data(), f.n, 0, f.k, none); }, "k = 0");
  expect_invalid(
      [&] {
        PackedWeightsInt8::pack(f.w.data(), f.n, kernels::kMaxGemmK + 1, kernels::kMaxGemmK + 1,
                                none);
      },
      "65536");
  expect_invalid([&] { PackedWeightsInt8::pack(f.w.data(), f.n, f.k, f.k - 1, none); },
                 "row stride 11");
  expect_invalid([&] { PackedWeightsInt8::pack(nullptr, f.n, f.k, f.k, none); }, "null");
  const std::vector<float> three = {1.0f, 2.0f, 3.0f};
  expect_invalid([&] { PackedWeightsInt8::pack(f.w.data(), f.n, f.k, f.k, three); }, "found 3");
  std::vector<float> bad(f.n, 1.0f);
  bad[7] = -1.0f;
  expect_invalid([&] { PackedWeightsInt8::pack(f.w.data(), f.n, f.k, f.k, bad); },
                 "weight scale 7 is -1");
  bad[7] = std::nanf("");
  expect_invalid([&] { PackedWeightsInt8::pack(f.w.data(), f.n, f.k, f.k, bad); },
                 "weight scale 7");
}

TEST(GemmInt8, RejectsMismatchedActivations) {
  Fixture f;
  std::vector<int32_t> c(size_t(f.m) * f.n);
  ActivationsInt8 a = f.act();
  a.k = f.k + 1;
  expect_invalid([&] { gemm_int8_s32(a, f.pw, nullptr, c.data(), f.n); },
                 "A has k = 13 columns but the packed weights have k = 12");
  a = f.act();
  a.ld = f.k - 1;
  expect_invalid([&] { gemm_int8_s32(a, f.pw, nullptr, c.data(), f.n); }, "A row stride 11");
  a = f.act();
  a.zero_point = 3;
  expect_invalid([&] { gemm_int8_s32(a, f.pw, nullptr, c.data(), f.n); },
                 "zero point must be 0, found 3");
  a.dtype = ActDtype::u8;
  a.zero_point = 256;
  expect_invalid([&] { gemm_int8_s32(a, f.pw, nullptr, c.data(), f.n); },
                 "zero point 256 is outside [0, 255]");
  a = f.act();
  a.data = nullptr;
  expect_invalid([&] { gemm_int8_s32(a, f.pw, nullptr, c.data(), f.n); }, "A data pointer");
  a = f.act();
  a.m = -1;
  expect_invalid([&] { gemm_int8_s32(a, f.pw, nullptr, c.data(), f.n); }, "m = -1");
  expect_invalid([&] { gemm_int8_s32(f.act(), PackedWeightsInt8(), nullptr, c.data(), f.n); },
                 "never packed");
}

TEST(GemmInt8, RejectsBadOutputsAndEpilogues) {
  Fixture f;
  std::vector<float> c(size_t(f.m) * f.n);
  expect_invalid([&] { gemm_int8_f32(f.act(), f.pw, {}, c.data(), f.n - 1); },
                 "C row stride 19 is smaller than n = 20");
  expect_invalid([&] { gemm_int8_f32(f.act(), f.pw, {}, nullptr, f.n); }, "C data pointer");
  ActivationsInt8 a = f.act();
  a.scale = 0.0f;
  expect_invalid([&] { gemm_int8_f32(a, f.pw, {}, c.data(), f.n); }, "activation scale is 0");
  const auto unscaled = PackedWeightsInt8::pack(f.w.data(), f.n, f.k, f.k, {});
  expect_invalid([&] { gemm_int8_f32(f.act(), unscaled, {}, c.data(), f.n); }, "no scales");
  expect_invalid(
      [&] {
        gemm_int8_f32(f.act(), f.pw, {nullptr, Activation::none, c.data(), 5}, c.data(), f.n);
      },
      "residual row stride 5");

  std::vector<int8_t> q(size_t(f.m) * f.n);
  const std::vector<int32_t> good_m = {1 << 30}, good_s = {31};
  const std::vector<int32_t> small_m = {12345}, bad_s = {64}, two = {1 << 30, 1 << 30};
  expect_invalid(
      [&] {
        gemm_int8_requant(f.act(), f.pw, {nullptr, small_m, good_s, 0, GemmOutput::s8}, q.data(),
                          f.n);
      },
      "multiplier 0 is 12345");
  expect_invalid(
      [&] {
        gemm_int8_requant(f.act(), f.pw, {nullptr, good_m, bad_s, 0, GemmOutput::s8}, q.data(),
                          f.n);
      },
      "shift 0 is 64");
  expect_invalid(
      [&] {
        gemm_int8_requant(f.act(), f.pw, {nullptr, two, good_s, 0, GemmOutput::s8}, q.data(), f.n);
      },
      "found 2 and 1");
  expect_invalid(
      [&] {
        gemm_int8_requant(f.act(), f.pw, {nullptr, good_m, good_s, 128, GemmOutput::s8}, q.data(),
                          f.n);
      },
      "output zero point 128 is outside [-128, 127]");
  expect_invalid(
      [&] {
        gemm_int8_requant(f.act(), f.pw, {nullptr, good_m, good_s, 0, GemmOutput::f32}, q.data(),
                          f.n);
      },
      "s8 or ::u8");
}

TEST(GemmInt8, EmptyBatchIsANoOp) {
  Fixture f;
  ActivationsInt8 a = f.act();
  a.m = 0;
  a.data = nullptr;
  EXPECT_NO_THROW(gemm_int8_s32(a, f.pw, nullptr, nullptr, f.n));
}

TEST(GemmInt8, ResultsDoNotDependOnThreadCount) {
  const int m = 300, n = 200, k = 96;
  std::mt19937 rng(11);
  std::vector<int8_t> w(size_t(n) * k), a(size_t(m) * k);
  for (auto& x : w) x = static_cast<int8_t>(rng() % 256);
  for (auto& x : a) x = static_cast<int8_t>(rng() % 256);
  const auto pw = PackedWeightsInt8::pack(w.data(), n, k, k, std::vector<float>{0.01f});
  const ActivationsInt8 act{a.data(), ActDtype::s8, m, k, k, 0, 0.02f};
  std::vector<int32_t> c1(size_t(m) * n), c2(size_t(m) * n), c3(size_t(m) * n);
  gemm_int8_s32(act, pw, nullptr, c1.data(), n, 1);
  gemm_int8_s32(act, pw, nullptr, c2.data(), n, 2);
  gemm_int8_s32(act, pw, nullptr, c3.data(), n, 3);
  EXPECT_EQ(c1, c2);
  EXPECT_EQ(c1, c3);
}

TEST(QuantizeActivationsS8, UsesTensorMaxAndRejectsNonFiniteRows) {
  const std::vector<float> x = {0.5f, -1.0f, 2.0f, 4.0f, -8.0f, 0.0f};  // 2 x 3
  std::vector<int8_t> q(6);
  const ActivationsInt8 a = quantize_activations_s8(x.data(), 2, 3, 3, q.data(), 3);
  EXPECT_FLOAT_EQ(a.scale, 8.0f / 127.0f);
  EXPECT_EQ(a.m, 2);
  EXPECT_EQ(a.k, 3);
  // x * 127 / 8: 7.94 -> 8, -15.9 -> -16, 31.75 -> 32, 63.5 -> 64 (half to even), -127, 0.
  EXPECT_EQ(q, (std::vector<int8_t>{8, -16, 32, 64, -127, 0}));
  std::vector<float> bad = x;
  bad[4] = std::numeric_limits<float>::infinity();
  expect_invalid([&] { quantize_activations_s8(bad.data(), 2, 3, 3, q.data(), 3); },
                 "row 1 of the 2 x 3 input holds a NaN or an infinity");
  const std::vector<float> zeros(4, 0.0f);
  EXPECT_EQ(quantize_activations_s8(zeros.data(), 1, 4, 4, q.data(), 4).scale, 1.0f);
}

TEST(GemmInt8Partition, SplitsColumnsWhenRowBlocksCannotFeedEveryThread) {
  // M = 128, N = 3072, 2 threads: one row block, so the columns are halved.
  GemmPartition p = plan_gemm_int8(128, 3072, 768, 2);
  EXPECT_EQ(p.threads, 2);
  EXPECT_EQ(p.block_m, 128);
  EXPECT_EQ(p.block_n, 1536);
  // M = 512: four row blocks share out evenly; no column split.
  p = plan_gemm_int8(512, 768, 768, 2);
  EXPECT_EQ(p.block_n % 16, 0);
  EXPECT_GE(p.block_n, 768);
  // Tiny problems stay on the calling thread.
  p = plan_gemm_int8(1, 64, 64, 8);
  EXPECT_EQ(p.threads, 1);
}

}  // namespace
}  // namespace octet::ops
