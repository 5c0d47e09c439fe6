// End-to-end FP32 BERT forward pass: latency per batch and GFLOP/s, on a model directory.
//
//   OCTET_BERT_MODEL=/path/to/model OCTET_THREADS=1 build/bench/bert_fp32_bench
//
// bench/fp32_vs_pytorch.sh writes a BERT-base-shaped model with random weights
// (scripts/make_golden.py --bench-model) and runs this next to PyTorch on the same weights.
// Every sequence has length `seq`; token ids are uniform over the vocabulary (fixed seed).
// The first forward pass of each shape (primitive creation, workspace allocation) is not timed.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "io/bert_config.h"
#include "octet/cpu.h"
#include "octet/model.h"
#include "random_batch.h"

namespace {

const octet::BertModel* model_or_null(std::string* error) {
  static std::unique_ptr<octet::BertModel> model;
  static std::string load_error;
  static bool tried = false;
  if (!tried) {
    tried = true;
    const char* dir = std::getenv("OCTET_BERT_MODEL");
    const char* threads = std::getenv("OCTET_THREADS");
    if (dir == nullptr || *dir == '\0') {
      load_error = "set OCTET_BERT_MODEL to a model directory (bench/fp32_vs_pytorch.sh makes one)";
    } else {
      try {
        octet::BertLoadOptions opt;
        opt.threads = threads != nullptr ? std::atoi(threads) : 1;
        model = std::make_unique<octet::BertModel>(octet::BertModel::load(dir, opt));
      } catch (const std::exception& e) {
        load_error = e.what();
      }
    }
  }
  *error = load_error;
  return model.get();
}

void BM_BertFp32Forward(benchmark::State& state) {
  std::string error;
  const octet::BertModel* model = model_or_null(&error);
  if (model == nullptr) {
    state.SkipWithError(error.c_str());
    return;
  }
  const int64_t batch = state.range(0), seq = state.range(1);
  const octet::io::BertConfig& c = model->config();
  const octet::bench::RandomBatch input = octet::bench::random_batch(c.vocab_size, batch, seq);
  const std::vector<octet::BertSequence>& seqs = input.sequences;
  const auto what =
      model->has_classifier() ? octet::BertOutputKind::logits : octet::BertOutputKind::mean_pooled;
  // Warm up once per shape and process, not per repetition (primitive creation, workspace).
  static std::vector<std::pair<int64_t, int64_t>> warmed;
  if (std::find(warmed.begin(), warmed.end(), std::make_pair(batch, seq)) == warmed.end()) {
    benchmark::DoNotOptimize(model->forward(seqs, what));
    warmed.emplace_back(batch, seq);
  }
  for (auto _ : state) benchmark::DoNotOptimize(model->forward(seqs, what));

  const double h = c.hidden_size, inter = c.intermediate_size, t = seq;
  const double flops_per_seq =
      c.num_hidden_layers * (2.0 * t * (4.0 * h * h + 2.0 * h * inter) + 4.0 * t * t * h);
  state.counters["GFLOP/s"] = benchmark::Counter(flops_per_seq * batch * 1e-9,
                                                 benchmark::Counter::kIsIterationInvariantRate);
  state.counters["seq/s"] =
      benchmark::Counter(static_cast<double>(batch), benchmark::Counter::kIsIterationInvariantRate);
  state.SetLabel(std::string(octet::isa_name(octet::active_isa())) + ", " +
                 std::to_string(model->threads()) + " thread(s)");
}

BENCHMARK(BM_BertFp32Forward)
    ->ArgNames({"batch", "seq"})
    ->Args({1, 128})
    ->Args({8, 128})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
