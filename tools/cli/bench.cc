// `octet bench`: end-to-end speed and memory of the runtime (octet::Encoder) on one model and
// precision, in a fresh process (so that the peak resident memory is this precision's alone).
//
//   octet bench --shape bert-base --precision int8 --batch 8 --seq-len 128 --threads 1 --repeat 20
//   octet bench --model DIR --precision fp32 --task sst2 --data glue/SST-2/dev.tsv [--unsorted]
//               [--padding none|longest]
//
// Synthetic mode (default): `--batch` sequences of exactly `--seq-len` token ids ([CLS], ids
// drawn uniformly from [5, vocab) with a fixed seed, [SEP]) go through Encoder::encode_tokens
// `--repeat` times after `--warmup` untimed calls; each call's wall time is one latency sample.
// Data mode (--task and --data): the labelled GLUE file goes from raw text to predictions
// through Encoder::encode (tokenization included in the time), `--repeat` times; the report adds
// the task metrics, tokens run versus the padded-equivalent tokens, and the batches formed.
// --padding longest runs each batch padded to its longest sequence (the layout of padded engines;
// EncoderOptions::padding), to measure what packing and length sorting buy.
// Reported: median / p90 / min latency per call, sequences/s and tokens/s (from the median),
// peak resident memory (getrusage ru_maxrss, the whole process: load included), the resident
// memory after loading, the growth of resident memory across the load (what the model keeps), and
// the size of model.safetensors. --json FILE|- writes the same as one JSON object; --dump FILE
// writes the inputs and the logits of the last call (for the peer check in bench/compare.sh).
// --shape writes a random model (normal(0, 0.02) weights, BERT's real uncased vocabulary from
// $OCTET_DATA/vocab/vocab.txt when present, else token ids only) to a temporary directory from a
// forked child process, so that generating the weights does not count in this process's peak.
#include <fmt/format.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "cli.h"
#include "data/glue.h"
#include "eval/metrics.h"
#include "io/atomic_file.h"
#include "io/bert_config.h"
#include "io/safetensors.h"
#include "octet/cpu.h"
#include "octet/encoder.h"
#include "octet/error.h"

namespace octet::cli {
namespace {

struct BenchOptions {
  std::string model, shape, precision = "fp32", task, data, json, dump, padding = "none";
  std::size_t batch = 1, seq_len = 0, max_batch_tokens = 4096, max_batch_size = 64;
  int threads = 1, workers = 0, intra_threads = 0, repeat = 10, warmup = 1;
  bool per_tensor = false, unsorted = false;
  std::string attention = "fp32";  // or "int8": INT8 attention matmuls (INT8 models)
};

struct Shape {
  int64_t layers, hidden, heads, intermediate;
};

Shape parse_shape(const std::string& s) {
  if (s == "bert-base") return {12, 768, 12, 3072};
  if (s == "bert-mini") return {4, 256, 4, 1024};
  throw InvalidArgument(fmt::format("--shape must be bert-base or bert-mini, found '{}'", s));
}

int64_t rss_bytes() {
  std::ifstream f("/proc/self/statm");
  int64_t size = 0, resident = 0;
  f >> size >> resident;
  return resident * static_cast<int64_t>(sysconf(_SC_PAGESIZE));
}

// The process's peak resident memory: ru_maxrss, but never below a resident size observed
// (`observed`) or the current one. Linux batches RSS counters per CPU, so ru_maxrss can lag
// /proc/self/statm by a few pages (seen: 8,269,824 vs 8,327,168 bytes on a tiny model).
int64_t peak_rss_bytes(int64_t observed) {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  const int64_t maxrss = static_cast<int64_t>(u.ru_maxrss) * 1024;  // Linux reports KiB
  return std::max({maxrss, observed, rss_bytes()});
}

// Writes config.json + model.safetensors (+ vocab.txt) of a random model of `shape` into dir.
void write_random_model(const std::filesystem::path& dir, const Shape& s,
                        const std::filesystem::path& vocab) {
  int64_t vocab_size = 30522;
  if (!vocab.empty()) {
    std::filesystem::copy_file(vocab, dir / "vocab.txt");
    std::ifstream in(vocab);
    vocab_size = 0;
    for (std::string line; std::getline(in, line);) ++vocab_size;
  }
  const int64_t pos = 512, types = 2, labels = 2, h = s.hidden;
  const nlohmann::json config = {{"model_type", "bert"},
                                 {"architectures", {"BertForSequenceClassification"}},
                                 {"hidden_size", h},
                                 {"num_hidden_layers", s.layers},
                                 {"num_attention_heads", s.heads},
                                 {"intermediate_size", s.intermediate},
                                 {"hidden_act", "gelu"},
                                 {"vocab_size", vocab_size},
                                 {"max_position_embeddings", pos},
                                 {"type_vocab_size", types},
                                 {"layer_norm_eps", 1e-12},
                                 {"num_labels", labels}};
  io::write_file_atomic(dir / "config.json", config.dump(2));
  std::vector<std::pair<std::string, std::vector<int64_t>>> shapes = {
      {"bert.embeddings.word_embeddings.weight", {vocab_size, h}},
      {"bert.embeddings.position_embeddings.weight", {pos, h}},
      {"bert.embeddings.token_type_embeddings.weight", {types, h}},
      {"bert.embeddings.LayerNorm.weight", {h}},
      {"bert.embeddings.LayerNorm.bias", {h}}};
  for (int64_t l = 0; l < s.layers; ++l) {
    const std::string p = fmt::format("bert.encoder.layer.{}.", l);
    for (const char* m : {"attention.self.query", "attention.self.key", "attention.self.value",
                          "attention.output.dense"}) {
      shapes.push_back({p + m + ".weight", {h, h}});
      shapes.push_back({p + m + ".bias", {h}});
    }
    shapes.push_back({p + "attention.output.LayerNorm.weight", {h}});
    shapes.push_back({p + "attention.output.LayerNorm.bias", {h}});
    shapes.push_back({p + "intermediate.dense.weight", {s.intermediate, h}});
    shapes.push_back({p + "intermediate.dense.bias", {s.intermediate}});
    shapes.push_back({p + "output.dense.weight", {h, s.intermediate}});
    shapes.push_back({p + "output.dense.bias", {h}});
    shapes.push_back({p + "output.LayerNorm.weight", {h}});
    shapes.push_back({p + "output.LayerNorm.bias", {h}});
  }
  shapes.push_back({"bert.pooler.dense.weight", {h, h}});
  shapes.push_back({"bert.pooler.dense.bias", {h}});
  shapes.push_back({"classifier.weight", {labels, h}});
  shapes.push_back({"classifier.bias", {labels}});
  std::mt19937 rng(1234);
  std::normal_distribution<float> normal(0.0f, 0.02f);
  std::vector<std::vector<float>> values;
  std::vector<io::TensorView> views;
  for (const auto& [name, shape] : shapes) {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    std::vector<float> v(n);
    const bool ln = name.find("LayerNorm") != std::string::npos;
    const bool bias = name.ends_with(".bias");
    for (float& x : v) x = ln ? (bias ? 0.0f : 1.0f) : (bias ? 0.0f : normal(rng));
    values.push_back(std::move(v));
    views.push_back(io::tensor_view<float>(name, shape, values.back()));
  }
  io::write_safetensors(dir / "model.safetensors", views);
}

// Forks a child that writes the random model and exits; returns the temporary directory.
std::filesystem::path make_shape_model(const std::string& shape_name) {
  const Shape shape = parse_shape(shape_name);
  std::string tmpl = (std::filesystem::temp_directory_path() / "octet-bench-XXXXXX").string();
  if (mkdtemp(tmpl.data()) == nullptr) {
    throw IoError(fmt::format("cannot create a temporary directory from '{}'", tmpl));
  }
  const std::filesystem::path dir = tmpl;
  std::filesystem::path vocab;
  const char* env = std::getenv("OCTET_DATA");
  const std::filesystem::path data = env != nullptr && *env != '\0' ? env : "../shared/data";
  if (std::filesystem::exists(data / "vocab" / "vocab.txt")) vocab = data / "vocab" / "vocab.txt";
  std::fflush(nullptr);
  const pid_t pid = fork();
  if (pid < 0) throw IoError("fork failed while writing the random model");
  if (pid == 0) {
    int code = 0;
    try {
      write_random_model(dir, shape, vocab);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "octet bench: writing the random model: %s\n", e.what());
      code = 1;
    }
    std::_Exit(code);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    std::filesystem::remove_all(dir);
    throw IoError(
        fmt::format("could not write the random {} model to {}", shape_name, dir.string()));
  }
  return dir;
}

double percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  const double pos = p * static_cast<double>(v.size() - 1);
  const auto lo = static_cast<std::size_t>(pos);
  const std::size_t hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (v[hi] - v[lo]) * (pos - static_cast<double>(lo));
}

// Not a switch: the enum grows (integer_only) and the report must not stop compiling then.
std::string precision_name(Precision p) {
  if (p == Precision::fp32) return "fp32";
  if (p == Precision::int8_dynamic) return "int8_dynamic";
  if (p == Precision::int8_static) return "int8_static";
  return "integer_only";
}

int run_bench(BenchOptions& o) {
  // Usage checks first: no file is read before the flags are known good.
  // integer-only: a directory written by `octet quantize --mode integer-only`, loaded as stored.
  const bool integer_only = o.precision == "integer-only" || o.precision == "integer_only";
  Precision precision = Precision::fp32;
  if (integer_only) {
    if (o.per_tensor) throw InvalidArgument("--per-tensor applies to --precision int8 only");
  } else if (o.precision == "fp32") {
    precision = Precision::fp32;
  } else if (o.precision == "int8" || o.precision == "int8-dynamic" ||
             o.precision == "int8_dynamic") {
    precision = Precision::int8_dynamic;
  } else {
    throw InvalidArgument(
        fmt::format("--precision must be fp32, int8 or integer-only, found '{}'", o.precision));
  }
  if (o.model.empty() == o.shape.empty()) {
    throw InvalidArgument("give exactly one of --model DIR and --shape bert-base|bert-mini");
  }
  if (!o.shape.empty()) parse_shape(o.shape);
  if (o.task.empty() != o.data.empty()) {
    throw InvalidArgument("--task and --data go together (real-data mode)");
  }
  if (o.batch < 1 || o.batch > 4096) {
    throw InvalidArgument(fmt::format("--batch must be in [1, 4096], found {}", o.batch));
  }
  if (o.repeat < 1 || o.warmup < 0) {
    throw InvalidArgument(fmt::format("--repeat must be >= 1 and --warmup >= 0, found {} and {}",
                                      o.repeat, o.warmup));
  }
  if (o.per_tensor && precision == Precision::fp32) {
    throw InvalidArgument("--per-tensor applies to --precision int8 only");
  }
  if (o.attention != "fp32" && (o.attention != "int8" || precision == Precision::fp32)) {
    throw InvalidArgument(fmt::format(
        "--attention must be fp32, or int8 with --precision int8, found '{}' with --precision {}",
        o.attention, o.precision));
  }
  if (o.threads < 0) {
    throw InvalidArgument(
        fmt::format("--threads must be >= 0 (0 = all cores), found {}", o.threads));
  }
  std::optional<data::Task> task;
  if (!o.task.empty()) task = data::parse_task(o.task);

  std::filesystem::path dir = o.model;
  std::filesystem::path temp;
  if (!o.shape.empty()) dir = temp = make_shape_model(o.shape);
  struct Cleanup {
    std::filesystem::path p;
    ~Cleanup() {
      std::error_code ec;
      if (!p.empty()) std::filesystem::remove_all(p, ec);
    }
  } cleanup{temp};

  // A quantized directory loads as stored: it is this bench's "int8", or "integer-only" when
  // its quantization_config says "mode": "integer-only".
  const io::BertConfig config = io::load_bert_config(dir / "config.json");
  const bool quantized_dir = config.raw.contains("quantization_config");
  const bool integer_dir = quantized_dir && config.raw["quantization_config"].is_object() &&
                           config.raw["quantization_config"].value("mode", "") == "integer-only";
  if (integer_only && !integer_dir) {
    throw InvalidArgument(fmt::format(
        "--precision integer-only runs a directory written by `octet quantize --mode "
        "integer-only`; {} is not one (its config.json has no quantization_config with \"mode\": "
        "\"integer-only\")",
        dir.string()));
  }
  if (integer_dir && !integer_only) {
    throw InvalidArgument(
        fmt::format("{} is an integer-only model directory: run it with --precision integer-only",
                    dir.string()));
  }
  if (quantized_dir && !integer_dir && precision != Precision::int8_dynamic) {
    throw InvalidArgument(fmt::format(
        "{} is a quantized model directory: run it with --precision int8", dir.string()));
  }
  if (o.seq_len == 0) {
    o.seq_len = static_cast<std::size_t>(std::min<int64_t>(128, config.max_position_embeddings));
  }
  if (o.seq_len < 3 || static_cast<int64_t>(o.seq_len) > config.max_position_embeddings) {
    throw InvalidArgument(
        fmt::format("--seq-len must be in [3, {}] (the model's max_position_embeddings), found {}",
                    config.max_position_embeddings, o.seq_len));
  }
  if (o.padding != "none" && o.padding != "longest") {
    throw InvalidArgument(fmt::format("--padding must be none or longest, found '{}'", o.padding));
  }
  BertLoadOptions load_options{.precision = quantized_dir ? Precision::fp32 : precision,
                               .per_channel = !o.per_tensor,
                               .int8_attention = o.attention == "int8"};
  EncoderOptions enc_options{.max_seq_len = o.seq_len,
                             .max_batch_tokens = o.max_batch_tokens,
                             .max_batch_size = o.max_batch_size,
                             .sort_by_length = !o.unsorted,
                             .padding = o.padding == "longest" ? Padding::longest : Padding::none,
                             .threads = o.threads,
                             .workers = o.workers,
                             .intra_threads = o.intra_threads,
                             .outputs = BertOutputKind::logits};
  const int64_t rss_before = rss_bytes();
  const auto t_load = std::chrono::steady_clock::now();
  Encoder enc = Encoder::load(dir, load_options, enc_options);
  const double load_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t_load).count();
  const int64_t rss_loaded = rss_bytes();
  const int64_t file_bytes =
      static_cast<int64_t>(std::filesystem::file_size(dir / "model.safetensors"));
  const io::BertConfig& c = enc.model().config();

  // Inputs.
  std::vector<std::vector<int32_t>> ids;
  std::vector<BertSequence> seqs;
  data::Dataset dataset;
  std::vector<TextInput> texts;
  if (task) {
    dataset = data::read_glue(*task, o.data);
    for (const data::Example& e : dataset.examples) texts.push_back({e.text_a, e.text_b});
  } else {
    std::mt19937 rng(42);
    std::uniform_int_distribution<int32_t> id(5, static_cast<int32_t>(c.vocab_size - 1));
    ids.assign(o.batch, std::vector<int32_t>(o.seq_len));
    for (auto& s : ids) {
      for (auto& x : s) x = id(rng);
      s.front() = 2;
      s.back() = 3;
    }
    for (const auto& s : ids) seqs.push_back({s, {}});
  }

  EncoderOutputs out;
  auto call = [&] {
    if (task) {
      enc.encode(texts, out);
    } else {
      enc.encode_tokens(seqs, out);
    }
  };
  for (int i = 0; i < o.warmup; ++i) call();
  std::vector<double> ms;
  for (int i = 0; i < o.repeat; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    call();
    ms.push_back(
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  const EncoderStats& st = enc.stats();
  const double median = percentile(ms, 0.5);
  const double n_seq = static_cast<double>(st.sequences);

  nlohmann::json j = {
      {"system", "octet"},
      {"model", o.shape.empty() ? o.model : "random " + o.shape},
      {"precision", precision_name(enc.model().precision())},
      {"per_channel", !o.per_tensor},
      {"attention", o.attention},
      {"isa", isa_name(active_isa())},
      {"threads", enc.options().threads},
      {"workers", enc.options().workers},
      {"intra_threads", enc.options().intra_threads},
      {"workers_used", st.workers_used},
      {"intra_threads_used", st.intra_threads_used},
      {"sorted", !o.unsorted},
      {"padding", o.padding},
      {"max_batch_tokens", o.max_batch_tokens},
      {"repeat", o.repeat},
      {"latency_ms",
       {{"median", median}, {"p90", percentile(ms, 0.9)}, {"min", percentile(ms, 0.0)}}},
      {"times_ms", ms},
      {"sequences", st.sequences},
      {"batches", st.batches},
      {"tokens", st.tokens},
      {"padded_tokens", st.padded_tokens},
      {"run_tokens", st.run_tokens},
      {"sequences_per_second", n_seq / (median / 1e3)},
      {"tokens_per_second", static_cast<double>(st.tokens) / (median / 1e3)},
      {"peak_rss_bytes", peak_rss_bytes(rss_loaded)},
      {"rss_after_load_bytes", rss_loaded},
      {"model_resident_bytes", rss_loaded - rss_before},
      {"model_file_bytes", file_bytes},
      {"parameters", enc.model().parameter_count()},
      {"load_seconds", load_seconds}};
  if (task) {
    j["task"] = o.task;
    j["data"] = o.data;
    j["truncated"] = st.truncated;
    j["tokenize_seconds"] = st.tokenize_seconds;
    const auto labels = static_cast<std::size_t>(c.num_labels);
    std::vector<int> pred;
    std::vector<double> scores;
    for (int64_t i = 0; i < out.count; ++i) {
      const float* row = out.logits.data() + i * labels;
      pred.push_back(static_cast<int>(std::max_element(row, row + labels) - row));
      scores.push_back(row[0]);
    }
    if (dataset.examples.empty() || dataset.examples.front().has_label) {
      const eval::MetricResult m = eval::glue_metrics(*task, pred, scores, dataset);
      for (const auto& [name, value] : m.values) j["metrics"][name] = value;
    }
  } else {
    j["batch"] = o.batch;
    j["seq_len"] = o.seq_len;
  }

  if (!o.dump.empty()) {
    nlohmann::json d = {{"precision", j["precision"]},
                        {"num_labels", out.num_labels},
                        {"input_ids", task ? nlohmann::json::array() : nlohmann::json(ids)},
                        {"logits", out.logits}};
    io::write_file_atomic(o.dump, d.dump());
  }
  if (o.json == "-") {
    std::cout << j.dump(2) << "\n";
  } else {
    if (!o.json.empty()) io::write_file_atomic(o.json, j.dump(2) + "\n");
    const double mib = 1024.0 * 1024.0;
    std::cout << fmt::format(
        "octet bench: {} {} on {}, {} thread(s) (ran {} worker(s) x {} intra-op; configured {} x "
        "{}), ISA {}\n",
        j["model"].get<std::string>(), j["precision"].get<std::string>(),
        task ? fmt::format("{} ({} examples, {}{})", o.task, st.sequences,
                           o.unsorted ? "input order" : "sorted by length",
                           o.padding == "longest" ? ", padded to each batch's longest" : "")
             : fmt::format("batch {} x {} tokens", o.batch, o.seq_len),
        enc.options().threads, st.workers_used, st.intra_threads_used, enc.options().workers,
        enc.options().intra_threads, isa_name(active_isa()));
    std::cout << fmt::format(
        "  latency per call: median {:.2f} ms, p90 {:.2f} ms, min {:.2f} ms ({} calls)\n", median,
        percentile(ms, 0.9), percentile(ms, 0.0), o.repeat);
    std::cout << fmt::format(
        "  throughput: {:.1f} sequences/s, {:.0f} tokens/s ({} batches/call)\n",
        j["sequences_per_second"].get<double>(), j["tokens_per_second"].get<double>(), st.batches);
    std::cout << fmt::format(
        "  memory: peak RSS {:.1f} MiB, after load {:.1f} MiB, kept by the model {:.1f} MiB; "
        "model.safetensors {:.1f} MiB\n",
        peak_rss_bytes(rss_loaded) / mib, rss_loaded / mib, (rss_loaded - rss_before) / mib,
        file_bytes / mib);
    if (task && j.contains("metrics")) {
      std::string m;
      for (const auto& [k, v] : j["metrics"].items())
        m += fmt::format(" {} {:.4f}", k, v.get<double>());
      std::cout << fmt::format(
          "  {}:{}; tokens {} (padded-equivalent {}, rows run {}), truncated {}\n", o.task, m,
          st.tokens, st.padded_tokens, st.run_tokens, st.truncated);
    }
  }
  return kExitOk;
}

}  // namespace

Runner register_bench(CLI::App& app) {
  auto o = std::make_shared<BenchOptions>();
  CLI::App* sub = app.add_subcommand(
      "bench", "Measure latency, throughput and memory of the runtime on one model and precision");
  sub->add_option("--model", o->model, "Model directory");
  sub->add_option("--shape", o->shape, "Random weights of this shape: bert-base or bert-mini");
  sub->add_option("--precision", o->precision,
                  "fp32, int8 (dynamic INT8, or a quantized directory as stored), integer-only (a "
                  "directory from octet quantize --mode integer-only)")
      ->capture_default_str();
  sub->add_flag("--per-tensor", o->per_tensor, "int8: one weight scale per matrix");
  sub->add_option("--attention", o->attention,
                  "int8: attention matmuls in fp32 (Q8BERT, default) or int8 (Bhandare et al.)")
      ->capture_default_str();
  sub->add_option("--batch", o->batch, "Sequences per call (synthetic mode)")
      ->capture_default_str();
  sub->add_option("--seq-len", o->seq_len,
                  "Tokens per sequence (synthetic mode); truncation limit (data mode) [default: "
                  "128, or the model's max_position_embeddings if smaller]");
  sub->add_option("--threads", o->threads, "Total threads (0 = all cores)")->capture_default_str();
  sub->add_option("--workers", o->workers, "Batches run at once (0 = automatic)");
  sub->add_option("--intra-threads", o->intra_threads, "OpenMP threads per batch (0 = automatic)");
  sub->add_option("--max-batch-tokens", o->max_batch_tokens,
                  "Token budget per batch (sequences x longest)")
      ->capture_default_str();
  sub->add_option("--max-batch-size", o->max_batch_size, "Sequences per batch at most")
      ->capture_default_str();
  sub->add_option("--repeat", o->repeat, "Timed calls")->capture_default_str();
  sub->add_option("--warmup", o->warmup, "Untimed calls first")->capture_default_str();
  sub->add_option("--task", o->task, "Real-data mode: GLUE task of --data (sst2, mrpc, ...)");
  sub->add_option("--data", o->data, "Real-data mode: labelled GLUE file");
  sub->add_flag("--unsorted", o->unsorted, "Batch in input order instead of sorting by length");
  sub->add_option("--padding", o->padding,
                  "none: packed batches (default); longest: pad each batch to its longest "
                  "sequence, as padded engines do (a baseline)")
      ->capture_default_str();
  sub->add_option("--json", o->json, "Write the report as JSON to FILE, or - for stdout only");
  sub->add_option("--dump", o->dump, "Write the inputs and last logits as JSON to FILE");
  return [o]() -> int { return run_bench(*o); };
}

}  // namespace octet::cli
