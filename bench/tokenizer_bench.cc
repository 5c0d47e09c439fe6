// WordPiece tokenizer throughput on real text: the 67,349 SST-2 training sentences (the
// fine-tuning input) and the MRPC training pairs, single thread, BERT uncased vocabulary.
// Counters: tokens/s and sentences/s (examples/s for pairs), bytes/s of input text.
//
//   build/bench/tokenizer_bench [--benchmark_min_time=2]      (data: $OCTET_DATA or ../shared/data)
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "text/wordpiece.h"

namespace {

std::filesystem::path data_path(const std::string& relative) {
  std::filesystem::path root;
  if (const char* env = std::getenv("OCTET_DATA"); env != nullptr && *env != '\0') {
    root = env;
  } else {
    root = std::filesystem::path(__FILE__).parent_path().parent_path().parent_path() / "shared" /
           "data";
  }
  auto p = root / relative;
  if (!std::filesystem::exists(p)) {
    throw std::runtime_error("missing shared data " + p.string() + " (set OCTET_DATA)");
  }
  return p;
}

// Columns of a GLUE TSV with a header row (the first line, BOM included, is skipped).
std::vector<std::vector<std::string>> read_tsv(const std::string& relative) {
  std::ifstream in(data_path(relative));
  std::vector<std::vector<std::string>> rows;
  std::string line;
  std::getline(in, line);
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    std::vector<std::string> cols;
    std::size_t start = 0;
    for (std::size_t tab; (tab = line.find('\t', start)) != std::string::npos; start = tab + 1) {
      cols.push_back(line.substr(start, tab - start));
    }
    cols.push_back(line.substr(start));
    rows.push_back(std::move(cols));
  }
  return rows;
}

const octet::text::WordPieceTokenizer& tokenizer() {
  static const auto tok =
      octet::text::WordPieceTokenizer::from_vocab_file(data_path("vocab/vocab.txt"));
  return tok;
}

const std::vector<std::string>& sst2_train() {
  static const auto sentences = [] {
    std::vector<std::string> s;
    for (auto& row : read_tsv("glue/SST-2/train.tsv")) s.push_back(row[0]);
    return s;
  }();
  return sentences;
}

void BM_Tokenize_SST2Train(benchmark::State& state) {
  const auto& tok = tokenizer();
  const auto& sentences = sst2_train();
  std::size_t tokens = 0, bytes = 0;
  for (auto _ : state) {
    for (const auto& s : sentences) {
      auto t = tok.tokenize(s);
      tokens += t.size();
      bytes += s.size();
      benchmark::DoNotOptimize(t.data());
    }
  }
  state.counters["tokens/s"] = benchmark::Counter(double(tokens), benchmark::Counter::kIsRate);
  state.counters["sentences/s"] = benchmark::Counter(double(sentences.size() * state.iterations()),
                                                     benchmark::Counter::kIsRate);
  state.SetBytesProcessed(static_cast<int64_t>(bytes));
}
BENCHMARK(BM_Tokenize_SST2Train)->Unit(benchmark::kMillisecond);

void BM_Encode128_SST2Train(benchmark::State& state) {
  const auto& tok = tokenizer();
  const auto& sentences = sst2_train();
  std::size_t tokens = 0;
  for (auto _ : state) {
    for (const auto& s : sentences) {
      auto e = tok.encode(s, 128);
      tokens += e.size();
      benchmark::DoNotOptimize(e.input_ids.data());
    }
  }
  state.counters["tokens/s"] = benchmark::Counter(double(tokens), benchmark::Counter::kIsRate);
  state.counters["sentences/s"] = benchmark::Counter(double(sentences.size() * state.iterations()),
                                                     benchmark::Counter::kIsRate);
}
BENCHMARK(BM_Encode128_SST2Train)->Unit(benchmark::kMillisecond);

void BM_EncodePair128_MRPCTrain(benchmark::State& state) {
  const auto& tok = tokenizer();
  static const auto rows = read_tsv("glue/MRPC/train.tsv");
  std::size_t tokens = 0;
  for (auto _ : state) {
    for (const auto& r : rows) {
      auto e = tok.encode_pair(r[3], r[4], 128);
      tokens += e.size();
      benchmark::DoNotOptimize(e.input_ids.data());
    }
  }
  state.counters["tokens/s"] = benchmark::Counter(double(tokens), benchmark::Counter::kIsRate);
  state.counters["examples/s"] =
      benchmark::Counter(double(rows.size() * state.iterations()), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_EncodePair128_MRPCTrain)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
