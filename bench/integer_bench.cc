// Integer-only (I-BERT) kernels per ISA, next to the FP32 kernels they replace, on BERT-base
// shapes: i-GELU and FP32 GELU on the FC1 output (128 x 3072), i-softmax and FP32 softmax on one
// sequence's attention scores for 12 heads (1536 x 128), i-LayerNorm and FP32 LayerNorm
// (128 x 768), the wide requantization after i-GELU (128 x 3072 -> int8) and the residual
// addition before LayerNorm (128 x 768 -> 22 bits). Every integer kernel is checked bit-exact
// against the reference before it is timed. Counter: elements per second.
//
//   ninja -C build integer_bench && build/bench/integer_bench
#include <benchmark/benchmark.h>

#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "kernels/kernels.h"
#include "octet/cpu.h"
#include "ops/integer_ops.h"

namespace octet {
namespace {

constexpr int kTokens = 128, kHidden = 768, kInter = 3072, kHeads = 12;

std::vector<int32_t> random_i32(std::size_t n, int32_t lo, int32_t hi, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int32_t> d(lo, hi);
  std::vector<int32_t> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

void set_items(benchmark::State& state, std::size_t n) {
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * n));
}

template <typename T>
bool same(const std::vector<T>& a, const std::vector<T>& b, benchmark::State& state) {
  if (a != b) state.SkipWithError("result differs from the reference kernel");
  return a == b;
}

void BM_IGelu(benchmark::State& state, Isa isa) {
  const auto x = random_i32(std::size_t(kTokens) * kInter, -200000, 200000, 1);
  const ops::IGeluParams p = ops::prepare_igelu(std::vector<float>(kInter, 5e-5f));
  std::vector<int64_t> y(x.size()), yr(x.size());
  ops::igelu(x.data(), kTokens, kInter, kInter, p, y.data(), kInter, isa);
  ops::igelu(x.data(), kTokens, kInter, kInter, p, yr.data(), kInter, Isa::ref);
  if (!same(y, yr, state)) return;
  for (auto _ : state) {
    ops::igelu(x.data(), kTokens, kInter, kInter, p, y.data(), kInter, isa);
    benchmark::DoNotOptimize(y.data());
  }
  set_items(state, x.size());
}

void BM_RequantizeWide(benchmark::State& state, Isa isa) {
  const auto x32 = random_i32(std::size_t(kTokens) * kInter, -200000, 200000, 2);
  const ops::IGeluParams p = ops::prepare_igelu(std::vector<float>(kInter, 5e-5f));
  std::vector<int64_t> x(x32.size());
  ops::igelu(x32.data(), kTokens, kInter, kInter, p, x.data(), kInter, Isa::ref);
  const ops::Dyadic d = ops::dyadic(p.out_scale[0] / 0.05, kernels::kMaxWideShift);
  const std::vector<int32_t> m(kInter, d.multiplier), s(kInter, d.shift);
  std::vector<int8_t> y(x.size()), yr(x.size());
  ops::requantize_wide(x.data(), kTokens, kInter, kInter, m, s, 8, y.data(), kInter, isa);
  ops::requantize_wide(x.data(), kTokens, kInter, kInter, m, s, 8, yr.data(), kInter, Isa::ref);
  if (!same(y, yr, state)) return;
  for (auto _ : state) {
    ops::requantize_wide(x.data(), kTokens, kInter, kInter, m, s, 8, y.data(), kInter, isa);
    benchmark::DoNotOptimize(y.data());
  }
  set_items(state, x.size());
}

void BM_ISoftmax(benchmark::State& state, Isa isa) {
  const int rows = kHeads * kTokens;
  const auto x = random_i32(std::size_t(rows) * kTokens, -4000, 4000, 3);
  const kernels::IexpParams p = ops::prepare_iexp(2e-3f);
  std::vector<uint8_t> y(x.size()), yr(x.size());
  ops::isoftmax(x.data(), rows, kTokens, kTokens, kTokens, p, y.data(), kTokens, isa);
  ops::isoftmax(x.data(), rows, kTokens, kTokens, kTokens, p, yr.data(), kTokens, Isa::ref);
  if (!same(y, yr, state)) return;
  for (auto _ : state) {
    ops::isoftmax(x.data(), rows, kTokens, kTokens, kTokens, p, y.data(), kTokens, isa);
    benchmark::DoNotOptimize(y.data());
  }
  set_items(state, x.size());
}

void BM_ILayerNorm(benchmark::State& state, Isa isa) {
  const auto x = random_i32(std::size_t(kTokens) * kHidden, -(1 << 21), 1 << 21, 4);
  const ops::ILayerNormParams p =
      ops::prepare_ilayernorm(std::vector<float>(kHidden, 1.0f), std::vector<float>(kHidden, 0.1f),
                              ops::ilayernorm_calibrate_shift(x.data(), kTokens, kHidden, kHidden));
  std::vector<int64_t> y(x.size()), yr(x.size());
  ops::ilayernorm(x.data(), kTokens, kHidden, kHidden, p, y.data(), kHidden, isa);
  ops::ilayernorm(x.data(), kTokens, kHidden, kHidden, p, yr.data(), kHidden, Isa::ref);
  if (!same(y, yr, state)) return;
  for (auto _ : state) {
    ops::ilayernorm(x.data(), kTokens, kHidden, kHidden, p, y.data(), kHidden, isa);
    benchmark::DoNotOptimize(y.data());
  }
  set_items(state, x.size());
}

void BM_ResidualAdd(benchmark::State& state, Isa isa) {
  const auto x = random_i32(std::size_t(kTokens) * kHidden, -(1 << 24), 1 << 24, 5);
  const auto r32 = random_i32(x.size(), -128, 127, 6);
  const std::vector<int8_t> r(r32.begin(), r32.end());
  const ops::ResidualParams p =
      ops::prepare_residual(std::vector<float>{2e-6f}, std::vector<float>{0.04f}, 1e-4f, kHidden);
  std::vector<int32_t> y(x.size()), yr(x.size());
  ops::residual_add(x.data(), kHidden, r.data(), kHidden, kTokens, kHidden, p, 22, y.data(),
                    kHidden, isa);
  ops::residual_add(x.data(), kHidden, r.data(), kHidden, kTokens, kHidden, p, 22, yr.data(),
                    kHidden, Isa::ref);
  if (!same(y, yr, state)) return;
  for (auto _ : state) {
    ops::residual_add(x.data(), kHidden, r.data(), kHidden, kTokens, kHidden, p, 22, y.data(),
                      kHidden, isa);
    benchmark::DoNotOptimize(y.data());
  }
  set_items(state, x.size());
}

// FP32 baselines (the kernels the FP32 and Q8BERT paths use).
void BM_Fp32Gelu(benchmark::State& state, Isa isa) {
  std::vector<float> x(std::size_t(kTokens) * kInter, 0.3f), y(x.size());
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = float(int(i % 997) - 498) / 100.0f;
  const auto& k = kernels::table_for(isa).fp32;
  for (auto _ : state) {
    k.gelu_erf(x.data(), y.data(), x.size());
    benchmark::DoNotOptimize(y.data());
  }
  set_items(state, x.size());
}

void BM_Fp32Softmax(benchmark::State& state, Isa isa) {
  const int rows = kHeads * kTokens;
  std::vector<float> x0(std::size_t(rows) * kTokens), x(x0.size());
  for (std::size_t i = 0; i < x0.size(); ++i) x0[i] = float(int(i % 613) - 306) / 40.0f;
  const auto& k = kernels::table_for(isa).fp32;
  for (auto _ : state) {
    state.PauseTiming();
    x = x0;
    state.ResumeTiming();
    k.softmax(x.data(), kTokens, rows, kTokens, kTokens, 1.0f);
    benchmark::DoNotOptimize(x.data());
  }
  set_items(state, x.size());
}

void BM_Fp32LayerNorm(benchmark::State& state, Isa isa) {
  std::vector<float> x(std::size_t(kTokens) * kHidden), y(x.size()), g(kHidden, 1.0f),
      b(kHidden, 0.1f);
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = float(int(i % 389) - 194) / 50.0f;
  const auto& k = kernels::table_for(isa).fp32;
  for (auto _ : state) {
    k.layer_norm(x.data(), kHidden, y.data(), kHidden, kTokens, kHidden, g.data(), b.data(),
                 1e-12f);
    benchmark::DoNotOptimize(y.data());
  }
  set_items(state, x.size());
}

const bool kRegistered = [] {
  for (Isa isa : runnable_isas()) {
    const std::string n = std::string("/") + isa_name(isa);
    benchmark::RegisterBenchmark(("IGelu/3072x128" + n).c_str(), BM_IGelu, isa);
    benchmark::RegisterBenchmark(("Fp32Gelu/3072x128" + n).c_str(), BM_Fp32Gelu, isa);
    benchmark::RegisterBenchmark(("RequantizeWide/3072x128" + n).c_str(), BM_RequantizeWide, isa);
    benchmark::RegisterBenchmark(("ISoftmax/12x128x128" + n).c_str(), BM_ISoftmax, isa);
    benchmark::RegisterBenchmark(("Fp32Softmax/12x128x128" + n).c_str(), BM_Fp32Softmax, isa);
    benchmark::RegisterBenchmark(("ILayerNorm/128x768" + n).c_str(), BM_ILayerNorm, isa);
    benchmark::RegisterBenchmark(("Fp32LayerNorm/128x768" + n).c_str(), BM_Fp32LayerNorm, isa);
    benchmark::RegisterBenchmark(("ResidualAdd22/128x768" + n).c_str(), BM_ResidualAdd, isa);
  }
  return true;
}();

}  // namespace
}  // namespace octet

BENCHMARK_MAIN();
