// End-to-end BERT forward pass, INT8 (Precision::int8_dynamic) next to FP32 in one binary, and a
// per-op profile of one encoder layer's dense layers at the same shapes.
//
//   OCTET_BERT_MODEL=/path/to/model OCTET_THREADS=1 build/bench/bert_int8_bench
//
// Any BERT model directory works; the figures in docs/engine.md use the BERT-base-shaped model
// of `scripts/make_golden.py --bench-model` (or <golden>/base). Every sequence has length `seq`;
// token ids are uniform over the vocabulary (fixed seed). The first forward pass of each shape
// (workspace allocation, oneDNN primitive creation) is not timed.
//
// BM_BertForward/precision:0|1|2 (0 = fp32, 1 = int8_dynamic, 2 = int8_static)/batch/seq: whole
//   model, logits. int8_static is quantized in memory (quant::quantize_bert, symmetric, per
//   channel, max calibrator) from statistics of one FP32 pass over a different random batch
//   (8 x 128 tokens), exactly what `octet quantize` would write.
// BM_QuantizeActivationsStatic: the one-pass static quantization that replaces
//   BM_QuantizeActivations' two passes in static models.
// BM_Dense*/op/m: one dense layer of the encoder at m = batch * seq token rows, where op is
//   0 QKV [2304 x 768], 1 attention output [768 x 768] + residual, 2 FFN in [3072 x 768] + GELU,
//   3 FFN out [768 x 3072] + residual. INT8 includes the dynamic activation quantization (with
//   GELU and residual fused into the epilogue); FP32 is oneDNN with a separate GELU pass for op 2,
//   as the FP32 engine does. 12 x (sum of the four) against BM_BertForward shows what the rest
//   costs; BM_SharedFp32Attention / LayerNorm time the FP32 parts both precisions share.
#include <benchmark/benchmark.h>
#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "common/aligned_buffer.h"
#include "io/bert_config.h"
#include "layers/linear_int8.h"
#include "octet/cpu.h"
#include "octet/model.h"
#include "ops/fp32_ops.h"
#include "ops/gemm_int8.h"
#include "ops/matmul_f32.h"
#include "quant/bert_quant.h"
#include "random_batch.h"

namespace {

int bench_threads() {
  const char* t = std::getenv("OCTET_THREADS");
  return t != nullptr && *t != '\0' ? std::atoi(t) : 1;
}

const octet::BertModel* model_or_null(octet::Precision precision, std::string* error) {
  static std::map<octet::Precision, std::unique_ptr<octet::BertModel>> models;
  static std::map<octet::Precision, std::string> errors;
  if (!models.contains(precision) && !errors.contains(precision)) {
    const char* dir = std::getenv("OCTET_BERT_MODEL");
    if (dir == nullptr || *dir == '\0') {
      errors[precision] = "set OCTET_BERT_MODEL to a model directory";
    } else {
      try {
        octet::BertLoadOptions opt;
        opt.threads = bench_threads();
        if (precision == octet::Precision::int8_static) {
          const octet::BertModel fp32 = octet::BertModel::load(dir, opt);
          octet::quant::CalibrationCollector col({.ema = false, .histogram = false});
          const octet::bench::RandomBatch calib =
              octet::bench::random_batch(fp32.config().vocab_size, 8, 128, /*seed=*/99);
          fp32.forward(calib.sequences,
                       fp32.has_classifier() ? octet::BertOutputKind::logits
                                             : octet::BertOutputKind::last_hidden,
                       col.tap());
          const nlohmann::json doc = {{"format", octet::quant::kCalibrationFormat},
                                      {"version", octet::quant::kCalibrationVersion},
                                      {"tensors", col.to_json()}};
          const octet::quant::QuantizedBert q =
              octet::quant::quantize_bert(dir, octet::quant::QuantizationConfig{}, &doc);
          models[precision] =
              std::make_unique<octet::BertModel>(octet::quant::load_in_memory(q, opt.threads));
        } else {
          opt.precision = precision;
          models[precision] = std::make_unique<octet::BertModel>(octet::BertModel::load(dir, opt));
        }
      } catch (const std::exception& e) {
        errors[precision] = e.what();
      }
    }
  }
  *error = errors.contains(precision) ? errors[precision] : "";
  return models.contains(precision) ? models[precision].get() : nullptr;
}

void BM_BertForward(benchmark::State& state) {
  const auto precision = static_cast<octet::Precision>(state.range(0));
  std::string error;
  const octet::BertModel* model = model_or_null(precision, &error);
  if (model == nullptr) {
    state.SkipWithError(error.c_str());
    return;
  }
  const int64_t batch = state.range(1), seq = state.range(2);
  const octet::io::BertConfig& c = model->config();
  const octet::bench::RandomBatch input = octet::bench::random_batch(c.vocab_size, batch, seq);
  const std::vector<octet::BertSequence>& seqs = input.sequences;
  const auto what =
      model->has_classifier() ? octet::BertOutputKind::logits : octet::BertOutputKind::mean_pooled;
  benchmark::DoNotOptimize(model->forward(seqs, what));  // warm-up (workspace, primitives)
  for (auto _ : state) benchmark::DoNotOptimize(model->forward(seqs, what));

  const double h = c.hidden_size, inter = c.intermediate_size, t = seq;
  const double flops_per_seq =
      c.num_hidden_layers * (2.0 * t * (4.0 * h * h + 2.0 * h * inter) + 4.0 * t * t * h);
  state.counters["GFLOP/s"] = benchmark::Counter(flops_per_seq * batch * 1e-9,
                                                 benchmark::Counter::kIsIterationInvariantRate);
  state.counters["seq/s"] =
      benchmark::Counter(static_cast<double>(batch), benchmark::Counter::kIsIterationInvariantRate);
  state.SetLabel(std::string(precision == octet::Precision::fp32           ? "fp32, "
                             : precision == octet::Precision::int8_dynamic ? "int8 dynamic, "
                                                                           : "int8 static, ") +
                 octet::isa_name(octet::active_isa()) + ", " + std::to_string(model->threads()) +
                 " thread(s)");
}

// BERT-base dense shapes: {n, k}.
constexpr int64_t kDense[4][2] = {{2304, 768}, {768, 768}, {3072, 768}, {768, 3072}};

std::vector<float> random_floats(std::size_t n, float stddev) {
  std::mt19937 rng(7);
  std::normal_distribution<float> d(0.0f, stddev);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

void set_dense_counters(benchmark::State& state, int64_t m, int64_t n, int64_t k) {
  state.counters["GOP/s"] =
      benchmark::Counter(2.0 * m * n * k * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

void BM_DenseInt8(benchmark::State& state) {
  const int op = static_cast<int>(state.range(0));
  const int64_t m = state.range(1), n = kDense[op][0], k = kDense[op][1];
  const std::vector<float> w = random_floats(n * k, 0.02f), b = random_floats(n, 0.02f);
  const std::vector<float> x = random_floats(m * k, 1.0f);
  const octet::layers::LinearInt8 fc(w, n, k, b);
  std::vector<int8_t> q(octet::layers::LinearInt8::scratch_bytes(m, k));
  octet::AlignedBuffer<float> y;
  y.ensure(m * n);
  std::fill(y.data(), y.data() + m * n, 0.0f);
  octet::layers::LinearInt8Epilogue e;
  if (op == 2) e.activation = octet::kernels::Activation::gelu;
  if (op == 1 || op == 3) e = {.residual = y.data(), .ldr = n};
  const int threads = bench_threads();
  for (auto _ : state) {
    fc.forward(x.data(), m, k, y.data(), n, q.data(), e, threads);
    benchmark::ClobberMemory();
  }
  set_dense_counters(state, m, n, k);
  state.SetLabel(octet::isa_name(fc.weights().isa()));
}

void BM_DenseFp32(benchmark::State& state) {
  const int op = static_cast<int>(state.range(0));
  const int64_t m = state.range(1), n = kDense[op][0], k = kDense[op][1];
  const std::vector<float> w = random_floats(n * k, 0.02f), b = random_floats(n, 0.02f);
  const std::vector<float> x = random_floats(m * k, 1.0f);
  const octet::ops::MatmulF32 mm(w, n, k, b);
  octet::AlignedBuffer<std::byte> scratch;
  octet::AlignedBuffer<float> y;
  y.ensure(m * n);
  std::fill(y.data(), y.data() + m * n, 0.0f);
  const int threads = bench_threads();
  omp_set_num_threads(threads);
  const bool accumulate = op == 1 || op == 3;
  for (auto _ : state) {
    mm.run(x.data(), m, y.data(), accumulate, scratch);
    if (op == 2) octet::ops::activation(octet::io::Activation::gelu, y.data(), m * n, threads);
    benchmark::ClobberMemory();
  }
  set_dense_counters(state, m, n, k);
}

// The dynamic quantization alone (two passes over x: max |x|, then codes), part of BM_DenseInt8.
void BM_QuantizeActivations(benchmark::State& state) {
  const int64_t m = state.range(0), k = state.range(1);
  const std::vector<float> x = random_floats(m * k, 1.0f);
  std::vector<int8_t> q(m * k);
  for (auto _ : state) {
    benchmark::DoNotOptimize(octet::ops::quantize_activations_s8(
        x.data(), static_cast<int>(m), static_cast<int>(k), k, q.data(), k));
    benchmark::ClobberMemory();
  }
  state.counters["GB/s"] = benchmark::Counter(9.0 * m * k * 1e-9,  // 4 + 4 bytes read, 1 written
                                              benchmark::Counter::kIsIterationInvariantRate);
}

void BM_QuantizeActivationsStatic(benchmark::State& state) {
  const int64_t m = state.range(0), k = state.range(1);
  const std::vector<float> x = random_floats(m * k, 1.0f);
  std::vector<int8_t> q(m * k);
  for (auto _ : state) {
    benchmark::DoNotOptimize(octet::ops::quantize_activations_static(
        x.data(), static_cast<int>(m), static_cast<int>(k), k, octet::kernels::ActDtype::s8,
        127.0f / 4.0f, 4.0f / 127.0f, 0, q.data(), k, bench_threads()));
    benchmark::ClobberMemory();
  }
  state.counters["GB/s"] = benchmark::Counter(5.0 * m * k * 1e-9,  // 4 bytes read, 1 written
                                              benchmark::Counter::kIsIterationInvariantRate);
}

// The FP32 parts both precisions share, per encoder layer of one 128-token sequence at BERT-base
// width: self-attention over 12 heads (QK^T, softmax, PV) and one LayerNorm. Attention with
// int8 = 1 runs the two matmuls on int8 (BertLoadOptions::int8_attention).
void BM_Attention(benchmark::State& state) {
  const int64_t t = state.range(0), h = 768, heads = 12, d = 64;
  const bool int8 = state.range(1) != 0;
  const std::vector<float> qkv = random_floats(t * 3 * h, 1.0f);
  std::vector<float> ctx(t * h);
  const std::vector<int64_t> offsets = {0, t};
  const std::size_t per_thread = octet::ops::attention_scratch_per_thread(t, d);
  std::vector<float> scratch(per_thread);
  for (auto _ : state) {
    octet::ops::self_attention(qkv.data(), 3 * h, offsets, heads, d, ctx.data(), h, scratch.data(),
                               per_thread, 1, nullptr, {}, int8);
    benchmark::ClobberMemory();
  }
}

void BM_SharedFp32LayerNorm(benchmark::State& state) {
  const int64_t t = state.range(0), h = 768;
  std::vector<float> x = random_floats(t * h, 1.0f);
  const std::vector<float> gamma(h, 1.0f), beta(h, 0.0f);
  for (auto _ : state) {
    octet::ops::layer_norm(x.data(), x.data(), t, h, gamma.data(), beta.data(), 1e-12f, 1);
    benchmark::ClobberMemory();
  }
}

BENCHMARK(BM_Attention)
    ->ArgNames({"seq", "int8"})
    ->ArgsProduct({{128}, {0, 1}})
    ->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_SharedFp32LayerNorm)->ArgName("tokens")->Arg(128)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_BertForward)
    ->ArgNames({"precision", "batch", "seq"})
    ->ArgsProduct({{0, 1, 2}, {1, 8}, {128}})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK(BM_DenseInt8)
    ->ArgNames({"op", "m"})
    ->ArgsProduct({{0, 1, 2, 3}, {128, 1024}})
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();
BENCHMARK(BM_QuantizeActivations)
    ->ArgNames({"m", "k"})
    ->ArgsProduct({{128, 1024}, {768, 3072}})
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();
BENCHMARK(BM_QuantizeActivationsStatic)
    ->ArgNames({"m", "k"})
    ->ArgsProduct({{128, 1024}, {768, 3072}})
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();
BENCHMARK(BM_DenseFp32)
    ->ArgNames({"op", "m"})
    ->ArgsProduct({{0, 1, 2, 3}, {128, 1024}})
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
