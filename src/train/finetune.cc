#include "train/finetune.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <functional>
#include <limits>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <span>

#include "io/atomic_file.h"
#include "io/bert_config.h"
#include "octet/error.h"
#include "octet/model.h"
#include "text/wordpiece.h"
#include "train/optim.h"

namespace octet::train {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// splitmix64: a tiny generator whose output is fixed by its definition, so that the example
// order is the same on every platform and standard library.
struct SplitMix64 {
  uint64_t state;
  uint64_t next() {
    uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  // Uniform in [0, n) by rejection (no modulo bias).
  uint64_t below(uint64_t n) {
    const uint64_t limit =
        std::numeric_limits<uint64_t>::max() - std::numeric_limits<uint64_t>::max() % n;
    uint64_t x;
    do x = next();
    while (x >= limit);
    return x % n;
  }
};

void shuffle(std::vector<int64_t>& v, SplitMix64& rng) {
  for (std::size_t i = v.size(); i > 1; --i)
    std::swap(v[i - 1], v[rng.below(static_cast<uint64_t>(i))]);
}

// A tokenized example.
struct Encoded {
  std::vector<int32_t> ids, types;
  float label = 0;
};

std::vector<Encoded> encode_all(const text::WordPieceTokenizer& tok,
                                std::span<const data::Example> examples, int64_t max_len) {
  std::vector<Encoded> out;
  out.reserve(examples.size());
  for (const data::Example& ex : examples) {
    text::Encoding e = ex.text_b.empty() ? tok.encode(ex.text_a, static_cast<std::size_t>(max_len))
                                         : tok.encode_pair(ex.text_a, ex.text_b,
                                                           static_cast<std::size_t>(max_len));
    out.push_back({std::move(e.input_ids), std::move(e.token_type_ids), ex.label});
  }
  return out;
}

struct Batch {
  torch::Tensor ids, types, mask, labels;
};

// Pads the selected examples to the longest of them.
Batch make_batch(const std::vector<Encoded>& data, std::span<const int64_t> rows, int64_t pad_id,
                 bool regression) {
  const auto b = static_cast<int64_t>(rows.size());
  int64_t t = 0;
  for (int64_t r : rows) t = std::max<int64_t>(t, static_cast<int64_t>(data[r].ids.size()));
  Batch batch;
  batch.ids = torch::full({b, t}, pad_id, torch::kLong);
  batch.types = torch::zeros({b, t}, torch::kLong);
  batch.mask = torch::zeros({b, t}, torch::kLong);
  batch.labels = torch::empty({b}, regression ? torch::kFloat : torch::kLong);
  auto ids = batch.ids.accessor<int64_t, 2>();
  auto types = batch.types.accessor<int64_t, 2>();
  auto mask = batch.mask.accessor<int64_t, 2>();
  for (int64_t i = 0; i < b; ++i) {
    const Encoded& e = data[rows[i]];
    for (std::size_t k = 0; k < e.ids.size(); ++k) {
      ids[i][k] = e.ids[k];
      types[i][k] = e.types[k];
      mask[i][k] = 1;
    }
    if (regression)
      batch.labels.accessor<float, 1>()[i] = e.label;
    else
      batch.labels.accessor<int64_t, 1>()[i] = static_cast<int64_t>(e.label);
  }
  return batch;
}

eval::MetricResult metrics_from_logits(data::Task task, const std::vector<float>& logits,
                                       int64_t num_labels, const data::Dataset& gold) {
  const eval::Predictions p =
      eval::predictions_from_logits(task, logits, static_cast<std::size_t>(num_labels));
  return eval::glue_metrics(task, p.labels, p.scores, gold);
}

// Dev metrics with the libtorch model in eval mode (no dropout), in file order.
// With `qat`, its fake-quantized forward pass.
eval::MetricResult evaluate_torch(BertForSequenceClassification& model, data::Task task,
                                  const std::vector<Encoded>& dev, const data::Dataset& gold,
                                  int64_t batch_size, int64_t pad_id, int64_t num_labels,
                                  QatBert* qat = nullptr, IntegerQatBert* iqat = nullptr,
                                  std::vector<float>* logits_out = nullptr) {
  const data::TaskSpec& spec = data::task_spec(task);
  torch::NoGradGuard no_grad;
  model->eval();
  std::vector<float> logits;
  logits.reserve(dev.size() * static_cast<std::size_t>(num_labels));
  std::vector<int64_t> rows;
  for (std::size_t start = 0; start < dev.size(); start += static_cast<std::size_t>(batch_size)) {
    rows.clear();
    for (std::size_t i = start; i < std::min(dev.size(), start + batch_size); ++i)
      rows.push_back(static_cast<int64_t>(i));
    Batch b = make_batch(dev, rows, pad_id, spec.regression);
    torch::Tensor out = (qat != nullptr    ? qat->forward(b.ids, b.types, b.mask)
                         : iqat != nullptr ? iqat->forward(b.ids, b.types, b.mask)
                                           : model->forward(b.ids, b.types, b.mask).logits)
                            .contiguous();
    const float* p = out.data_ptr<float>();
    logits.insert(logits.end(), p, p + out.numel());
  }
  model->train();
  eval::MetricResult m = metrics_from_logits(task, logits, num_labels, gold);
  if (logits_out != nullptr) *logits_out = std::move(logits);
  return m;
}

// Dev metrics of the saved checkpoint with Octet's inference engine (what `octet eval` runs).
eval::MetricResult evaluate_engine(const fs::path& dir, data::Task task,
                                   const std::vector<Encoded>& dev, const data::Dataset& gold,
                                   int64_t batch_size, int threads, std::vector<float>& logits) {
  BertModel model = BertModel::load(dir, {.threads = threads});
  const int64_t num_labels = model.config().num_labels;
  logits.clear();
  std::vector<BertSequence> batch;
  for (std::size_t start = 0; start < dev.size(); start += static_cast<std::size_t>(batch_size)) {
    batch.clear();
    for (std::size_t i = start; i < std::min(dev.size(), start + batch_size); ++i)
      batch.push_back({dev[i].ids, dev[i].types});
    BertOutputs out = model.forward(batch, BertOutputKind::logits);
    logits.insert(logits.end(), out.logits.begin(), out.logits.end());
  }
  return metrics_from_logits(task, logits, num_labels, gold);
}

// The engine's dev logits against the training pass's, example by example.
EngineParity engine_parity(data::Task task, std::span<const float> torch_logits,
                           std::span<const float> engine_logits, int64_t num_labels) {
  if (torch_logits.size() != engine_logits.size() || num_labels < 1)
    throw Error(fmt::format("engine parity: {} libtorch logits against {} from the engine",
                            torch_logits.size(), engine_logits.size()));
  EngineParity p;
  const std::size_t n = static_cast<std::size_t>(num_labels);
  p.examples = static_cast<int64_t>(torch_logits.size() / n);
  double sum = 0;
  for (std::size_t i = 0; i < torch_logits.size(); ++i) {
    const double d = std::fabs(double(torch_logits[i]) - double(engine_logits[i]));
    p.max_abs_logit_diff = std::max(p.max_abs_logit_diff, d);
    sum += d;
  }
  p.mean_abs_logit_diff = torch_logits.empty() ? 0.0 : sum / double(torch_logits.size());
  if (data::task_spec(task).regression) return p;
  const eval::Predictions a = eval::predictions_from_logits(task, torch_logits, n);
  const eval::Predictions b = eval::predictions_from_logits(task, engine_logits, n);
  p.predictions_agree = 0;
  for (std::size_t e = 0; e < a.labels.size(); ++e) {
    if (a.labels[e] == b.labels[e]) {
      ++p.predictions_agree;
      continue;
    }
    std::vector<float> row(torch_logits.begin() + std::ptrdiff_t(e * n),
                           torch_logits.begin() + std::ptrdiff_t((e + 1) * n));
    std::partial_sort(row.begin(), row.begin() + std::min<std::size_t>(2, n), row.end(),
                      std::greater<>());
    p.max_disagreeing_margin =
        std::max(p.max_disagreeing_margin, n > 1 ? double(row[0]) - double(row[1]) : 0.0);
  }
  return p;
}

bool better(double candidate, double best) {
  if (std::isnan(candidate)) return false;
  return std::isnan(best) || candidate > best;
}

nlohmann::json metrics_json(const eval::MetricResult& m) {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [name, value] : m.values)
    j[name] = std::isfinite(value) ? nlohmann::json(value) : nlohmann::json(nullptr);
  return j;
}

nlohmann::json options_json(const FinetuneOptions& o) {
  return {{"model", o.model_dir.string()},
          {"init", o.init == InitMode::random ? "random" : "pretrained"},
          {"config", o.config_file.string()},
          {"vocab", o.vocab_file.string()},
          {"task", data::task_spec(o.task).name},
          {"train", o.train_file.string()},
          {"dev", o.dev_file.string()},
          {"out", o.out_dir.string()},
          {"epochs", o.epochs},
          {"batch_size", o.batch_size},
          {"eval_batch_size", o.eval_batch_size},
          {"lr", o.lr},
          {"warmup_ratio", o.warmup_ratio},
          {"weight_decay", o.weight_decay},
          {"max_grad_norm", o.max_grad_norm},
          {"max_seq_len", o.max_seq_len},
          {"seed", o.seed},
          {"threads", o.threads},
          {"max_train_examples", o.max_train_examples},
          {"dtype", o.dtype == SaveDType::F16 ? "f16" : "f32"},
          {"new_head", o.new_head},
          {"qat",
           o.qat.enabled && o.qat.mode == QatMode::integer_only
               ? nlohmann::json{{"mode", std::string(to_string(o.qat.mode))},
                                {"momentum", o.qat.integer_momentum}}
           : o.qat.enabled
               ? nlohmann::json{{"scheme", o.qat.scheme == quant::Scheme::symmetric ? "symmetric"
                                                                                    : "asymmetric"},
                                {"weights", o.qat.weights == quant::WeightGranularity::per_tensor
                                                ? "per_tensor"
                                                : "per_channel"},
                                {"ste", std::string(to_string(o.qat.ste))},
                                {"ema_decay", o.qat.ema_decay},
                                {"start_step", o.qat.start_step},
                                {"head_start_step", o.qat.head_start_step},
                                {"qk_outputs", o.qat.quantize_qk_outputs}}
               : nlohmann::json(nullptr)}};
}

// The model, its config (with the task's head) and the tokenizer's vocabulary, per InitMode.
struct Setup {
  io::BertConfig config;
  BertForSequenceClassification model{nullptr};
  fs::path vocab;                            // copied into out_dir
  std::optional<fs::path> tokenizer_config;  // copied into out_dir when present
  std::vector<std::string> newly_initialized;
};

void require_file(const fs::path& p, const std::string& what) {
  std::error_code ec;
  if (!fs::is_regular_file(p, ec))
    throw IoError(fmt::format("{} {} does not exist or is not a file", what, p.string()));
}

Setup build_model(const FinetuneOptions& o) {
  const data::TaskSpec& spec = data::task_spec(o.task);
  Setup s;
  if (!o.model_dir.empty()) {
    std::error_code ec;
    if (!fs::is_directory(o.model_dir, ec))
      throw IoError(fmt::format("model directory {} does not exist", o.model_dir.string()));
    s.vocab = o.model_dir / "vocab.txt";
    require_file(s.vocab, "vocabulary");
    if (fs::is_regular_file(o.model_dir / "tokenizer_config.json", ec))
      s.tokenizer_config = o.model_dir / "tokenizer_config.json";
  } else {
    s.vocab = o.vocab_file;
    require_file(s.vocab, "vocabulary");
  }

  // The classifier's initialisation draws from libtorch's generator: seed it first.
  torch::manual_seed(o.seed);
  if (o.init == InitMode::random) {
    const fs::path config = o.config_file.empty() ? o.model_dir / "config.json" : o.config_file;
    s.config = io::load_bert_config(config);
    set_task_head(s.config, o.task);
    s.model = BertForSequenceClassification(s.config);
    return s;
  }

  PretrainedBert p = load_pretrained(o.model_dir);
  s.newly_initialized = std::move(p.newly_initialized);
  const bool fresh_head = std::find(s.newly_initialized.begin(), s.newly_initialized.end(),
                                    "classifier.weight") != s.newly_initialized.end();
  const bool has_regression_head = p.config.problem_type == io::ProblemType::regression;
  if (!fresh_head && !o.new_head &&
      (has_regression_head != spec.regression ||
       (!spec.regression && p.config.num_labels != spec.num_labels))) {
    throw InvalidArgument(fmt::format(
        "model {} has a {} head with {} label(s), but task {} needs {}: start from the "
        "pretrained encoder (a checkpoint without classifier.*), or pass --new-head to replace "
        "the head",
        o.model_dir.string(), io::problem_type_name(p.config.problem_type), p.config.num_labels,
        spec.name,
        spec.regression ? std::string("a regression head (num_labels 1)")
                        : fmt::format("{} labels", spec.num_labels)));
  }
  s.config = p.config;
  set_task_head(s.config, o.task);
  s.model = p.model;
  if (o.new_head ||
      (fresh_head && s.config.num_labels != p.model->classifier->options.out_features())) {
    // A new head of the task's size, initialised as Hugging Face does (N(0, initializer_range),
    // zero bias).
    auto head = torch::nn::Linear(s.config.hidden_size, s.config.num_labels);
    double std = 0.02;
    if (auto it = s.config.raw.find("initializer_range");
        it != s.config.raw.end() && it->is_number())
      std = it->get<double>();
    torch::NoGradGuard no_grad;
    head->weight.normal_(0.0, std);
    head->bias.zero_();
    s.model->classifier = s.model->replace_module("classifier", head);
    if (!fresh_head) {
      s.newly_initialized.push_back("classifier.weight");
      s.newly_initialized.push_back("classifier.bias");
    }
  }
  return s;
}

void check_out_dir(const FinetuneOptions& o) {
  std::error_code ec;
  if (!o.model_dir.empty() && fs::exists(o.out_dir, ec) &&
      fs::equivalent(o.out_dir, o.model_dir, ec))
    throw InvalidArgument(fmt::format(
        "--out {} is the model directory: choose another directory so that the starting model is "
        "not overwritten",
        o.out_dir.string()));
  if (o.overwrite) return;
  for (const char* name : {"model.safetensors", "train_log.json"}) {
    if (fs::exists(o.out_dir / name, ec))
      throw InvalidArgument(
          fmt::format("--out {} already holds {}: pass --overwrite to replace it, or choose "
                      "another directory",
                      o.out_dir.string(), name));
  }
}

void copy_file_atomic(const fs::path& from, const fs::path& to) {
  std::ifstream in(from, std::ios::binary);
  if (!in) throw IoError(fmt::format("cannot read {}", from.string()));
  io::AtomicFileWriter w(to);
  w.stream() << in.rdbuf();
  if (in.bad()) throw IoError(fmt::format("error reading {}", from.string()));
  w.commit();
}

}  // namespace

void set_task_head(io::BertConfig& config, data::Task task) {
  const data::TaskSpec& spec = data::task_spec(task);
  if (spec.regression) {
    config.num_labels = 1;
    config.id2label = {"LABEL_0"};
    config.problem_type = io::ProblemType::regression;
  } else {
    config.num_labels = spec.num_labels;
    config.id2label = spec.label_names;
    config.problem_type = io::ProblemType::single_label_classification;
  }
  if (!config.raw.is_object()) config.raw = nlohmann::json::object();
  config.raw["architectures"] = {"BertForSequenceClassification"};
  config.raw["finetuning_task"] = spec.name;
}

void check_finetune_options(const FinetuneOptions& o) {
  auto fail = [](const std::string& msg) { throw InvalidArgument(msg); };
  if (o.init == InitMode::random && o.new_head) fail("--new-head applies to --init pretrained");
  if (o.init == InitMode::pretrained) {
    if (o.model_dir.empty()) fail("--model is required (the pretrained model directory)");
    if (!o.config_file.empty() || !o.vocab_file.empty())
      fail("--config and --vocab apply to --init random only");
  } else {
    if (o.model_dir.empty() == o.config_file.empty())
      fail(
          "--init random needs exactly one of --model DIR (its config.json and vocab.txt) or "
          "--config FILE (with --vocab FILE)");
    if (!o.config_file.empty() && o.vocab_file.empty())
      fail("--init random --config FILE needs --vocab FILE");
    if (o.config_file.empty() && !o.vocab_file.empty())
      fail("--vocab applies with --config only (--model DIR uses DIR/vocab.txt)");
  }
  if (o.train_file.empty()) fail("--train is required");
  if (o.dev_file.empty()) fail("--dev is required");
  if (o.out_dir.empty()) fail("--out is required");
  if (o.epochs < 1 || o.epochs > 1000)
    fail(fmt::format("--epochs must be in [1, 1000], found {}", o.epochs));
  if (o.batch_size < 1 || o.batch_size > 65536)
    fail(fmt::format("--batch-size must be in [1, 65536], found {}", o.batch_size));
  if (o.eval_batch_size < 1 || o.eval_batch_size > 65536)
    fail(fmt::format("--eval-batch-size must be in [1, 65536], found {}", o.eval_batch_size));
  if (!(o.lr > 0 && o.lr < 1)) fail(fmt::format("--lr must be in (0, 1), found {}", o.lr));
  if (!(o.warmup_ratio >= 0 && o.warmup_ratio < 1))
    fail(fmt::format("--warmup-ratio must be in [0, 1), found {}", o.warmup_ratio));
  if (!(o.weight_decay >= 0 && o.weight_decay < 1))
    fail(fmt::format("--weight-decay must be in [0, 1), found {}", o.weight_decay));
  if (!(o.max_grad_norm >= 0 && std::isfinite(o.max_grad_norm)))
    fail(fmt::format("--max-grad-norm must be >= 0 (0: no clipping), found {}", o.max_grad_norm));
  if (o.max_seq_len < 3)
    fail(fmt::format("--max-seq-len must be at least 3, found {}", o.max_seq_len));
  if (o.threads < 0) fail(fmt::format("--threads must be >= 0, found {}", o.threads));
  if (o.max_train_examples < 0)
    fail(fmt::format("--max-train-examples must be >= 0, found {}", o.max_train_examples));
  if (o.qat.enabled) {
    check_qat_options(o.qat);
    if (o.dtype != SaveDType::F32)
      fail(
          "--qat writes an INT8 model whose scales come from the FP32 weights: --dtype must be "
          "f32");
  }
}

FinetuneResult finetune(const FinetuneOptions& o, const FinetuneCallback& progress) {
  const auto t_start = Clock::now();
  check_finetune_options(o);
  check_out_dir(o);
  const data::TaskSpec& spec = data::task_spec(o.task);
  set_torch_threads(o.threads);

  // Data first: a bad file should fail before minutes of model loading.
  data::Dataset train = data::read_glue(o.task, o.train_file);
  data::Dataset dev = data::read_glue(o.task, o.dev_file);
  for (const data::Dataset* d : {&train, &dev}) {
    if (d->examples.empty()) throw DataError(fmt::format("{} has no examples", d->source.string()));
    if (!d->labeled())
      throw DataError(
          fmt::format("{} has no labels (a test split?): fine-tuning needs labelled "
                      "train and dev files",
                      d->source.string()));
  }
  if (o.max_train_examples > 0 &&
      static_cast<std::size_t>(o.max_train_examples) < train.examples.size())
    train.examples.resize(static_cast<std::size_t>(o.max_train_examples));

  Setup s = build_model(o);
  if (o.max_seq_len > s.config.max_position_embeddings)
    throw InvalidArgument(
        fmt::format("--max-seq-len {} exceeds the model's max_position_embeddings ({})",
                    o.max_seq_len, s.config.max_position_embeddings));
  text::WordPieceTokenizer tok = o.model_dir.empty()
                                     ? text::WordPieceTokenizer::from_vocab_file(s.vocab)
                                     : text::WordPieceTokenizer::from_model_dir(o.model_dir);
  if (static_cast<int64_t>(tok.vocab_size()) > s.config.vocab_size)
    throw ModelFormatError(fmt::format("{} has {} entries but the model's vocab_size is {}",
                                       s.vocab.string(), tok.vocab_size(), s.config.vocab_size));
  const int64_t pad_id = tok.pad_id();
  const std::vector<Encoded> train_enc = encode_all(tok, train.examples, o.max_seq_len);
  const std::vector<Encoded> dev_enc = encode_all(tok, dev.examples, o.max_seq_len);

  FinetuneResult r;
  r.newly_initialized = s.newly_initialized;
  r.train_examples = static_cast<int64_t>(train_enc.size());
  r.dev_examples = static_cast<int64_t>(dev_enc.size());
  r.steps_per_epoch = (r.train_examples + o.batch_size - 1) / o.batch_size;
  r.total_steps = r.steps_per_epoch * o.epochs;
  r.warmup_steps = static_cast<int64_t>(std::ceil(o.warmup_ratio * double(r.total_steps)));

  BertForSequenceClassification& model = s.model;
  model->train();
  std::unique_ptr<QatBert> qat;
  std::unique_ptr<IntegerQatBert> iqat;
  if (o.qat.enabled && o.qat.mode == QatMode::integer_only)
    iqat = std::make_unique<IntegerQatBert>(model, s.config, o.qat.integer_momentum);
  else if (o.qat.enabled)
    qat = std::make_unique<QatBert>(model, s.config, o.qat);
  auto optimizer = make_adamw(*model, {.lr = o.lr, .weight_decay = o.weight_decay});
  std::vector<torch::Tensor> params;
  for (auto& p : model->parameters())
    if (p.requires_grad()) params.push_back(p);

  std::error_code ec;
  fs::create_directories(o.out_dir, ec);
  if (ec)
    throw IoError(fmt::format("cannot create --out {}: {}", o.out_dir.string(), ec.message()));

  nlohmann::json log = {{"task", spec.name},
                        {"options", options_json(o)},
                        {"seed", o.seed},
                        {"threads", o.threads},
                        {"torch_threads", torch::get_num_threads()},
                        {"train_examples", r.train_examples},
                        {"dev_examples", r.dev_examples},
                        {"steps_per_epoch", r.steps_per_epoch},
                        {"total_steps", r.total_steps},
                        {"warmup_steps", r.warmup_steps},
                        {"main_metric", spec.main_metric},
                        {"newly_initialized", r.newly_initialized},
                        {"epochs", nlohmann::json::array()}};
  auto write_log = [&] { io::write_file_atomic(o.out_dir / "train_log.json", log.dump(2) + "\n"); };

  SplitMix64 rng{o.seed};
  std::vector<int64_t> order(train_enc.size());
  double best = std::numeric_limits<double>::quiet_NaN();
  std::vector<float> epoch_logits, best_logits;  // libtorch dev logits: this epoch, the kept one
  double train_seconds = 0;
  int64_t step = 0, seen = 0;
  for (int epoch = 1; epoch <= o.epochs; ++epoch) {
    for (std::size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int64_t>(i);
    shuffle(order, rng);
    const auto t_epoch = Clock::now();
    double loss_sum = 0;
    int64_t epoch_steps = 0;
    for (std::size_t start = 0; start < order.size();
         start += static_cast<std::size_t>(o.batch_size)) {
      const std::size_t n = std::min<std::size_t>(o.batch_size, order.size() - start);
      const std::span<const int64_t> rows(order.data() + start, n);
      Batch b = make_batch(train_enc, rows, pad_id, spec.regression);
      const double lr = linear_warmup_decay(step, r.warmup_steps, r.total_steps, o.lr);
      set_learning_rate(*optimizer, lr);
      optimizer->zero_grad();
      if (qat) qat->set_step(step);
      torch::Tensor logits = qat    ? qat->forward(b.ids, b.types, b.mask)
                             : iqat ? iqat->forward(b.ids, b.types, b.mask)
                                    : model->forward(b.ids, b.types, b.mask).logits;
      torch::Tensor loss = spec.regression
                               ? torch::nn::functional::mse_loss(logits.squeeze(-1), b.labels)
                               : torch::nn::functional::cross_entropy(logits, b.labels);
      const double loss_value = loss.item<double>();
      if (!std::isfinite(loss_value))
        throw Error(fmt::format(
            "fine-tuning diverged: the training loss is {} at step {} (epoch {}, learning rate "
            "{:.3g}); try a lower --lr",
            loss_value, step + 1, epoch, lr));
      loss.backward();
      if (o.max_grad_norm > 0) torch::nn::utils::clip_grad_norm_(params, o.max_grad_norm);
      optimizer->step();
      ++step;
      ++epoch_steps;
      seen += static_cast<int64_t>(n);
      loss_sum += loss_value;
      r.step_losses.push_back(loss_value);
      if (progress) {
        const double elapsed = train_seconds + seconds_since(t_epoch);
        FinetuneProgress p;
        p.kind = FinetuneProgress::Kind::step;
        p.epoch = epoch;
        p.epochs = o.epochs;
        p.step = step;
        p.total_steps = r.total_steps;
        p.loss = loss_value;
        p.lr = lr;
        p.examples_per_second = double(seen) / std::max(elapsed, 1e-9);
        p.eta_seconds = elapsed / double(step) * double(r.total_steps - step);
        progress(p);
      }
    }
    EpochRecord rec;
    rec.epoch = epoch;
    rec.seconds = seconds_since(t_epoch);
    train_seconds += rec.seconds;
    rec.train_loss = loss_sum / double(std::max<int64_t>(epoch_steps, 1));
    rec.examples_per_second = double(train_enc.size()) / std::max(rec.seconds, 1e-9);
    const auto t_eval = Clock::now();
    rec.dev = evaluate_torch(model, o.task, dev_enc, dev, o.eval_batch_size, pad_id,
                             s.config.num_labels, qat.get(), iqat.get(), &epoch_logits);
    rec.eval_seconds = seconds_since(t_eval);
    const double main = rec.dev.main_value();
    // QAT: only once every quantizer is active can the INT8 model reproduce the dev figure.
    if ((better(main, best) || r.best_epoch == 0) && (!qat || qat->ready()) &&
        (!iqat || iqat->ready())) {
      if (qat) {
        export_qat(*qat, s.config, s.vocab, o.out_dir, s.tokenizer_config);
      } else if (iqat) {
        export_integer_qat(*iqat, s.config, s.vocab, o.out_dir, s.tokenizer_config);
      } else {
        save_pretrained(model, s.config, s.vocab, o.out_dir, o.dtype);
        if (s.tokenizer_config)
          copy_file_atomic(*s.tokenizer_config, o.out_dir / "tokenizer_config.json");
      }
      rec.saved = true;
      best_logits = epoch_logits;
      r.best_epoch = epoch;
      r.best_dev = rec.dev;
      if (!std::isnan(main)) best = main;
    }
    r.epochs.push_back(rec);

    log["epochs"].push_back({{"epoch", epoch},
                             {"train_loss", rec.train_loss},
                             {"dev", metrics_json(rec.dev)},
                             {"dev_main", std::isfinite(main) ? nlohmann::json(main) : nullptr},
                             {"seconds", rec.seconds},
                             {"eval_seconds", rec.eval_seconds},
                             {"examples_per_second", rec.examples_per_second},
                             {"saved", rec.saved}});
    log["best_epoch"] = r.best_epoch;
    log["best_dev"] = metrics_json(r.best_dev);
    log["seconds"] = seconds_since(t_start);
    write_log();
    if (progress) {
      FinetuneProgress p;
      p.kind = FinetuneProgress::Kind::epoch;
      p.epoch = epoch;
      p.epochs = o.epochs;
      p.step = step;
      p.total_steps = r.total_steps;
      p.loss = rec.train_loss;
      p.examples_per_second = double(seen) / std::max(train_seconds, 1e-9);
      p.eta_seconds = train_seconds / double(step) * double(r.total_steps - step);
      p.record = &r.epochs.back();
      progress(p);
    }
  }

  if (qat && r.best_epoch == 0)
    throw InvalidArgument(fmt::format(
        "--qat: no epoch could be exported: the classifier's quantizer starts at step {} but "
        "training ran {} steps; lower --qat-head-start-step or train longer",
        o.qat.head_start_step, step));
  if (o.engine_eval) {
    const auto t_eval = Clock::now();
    std::vector<float> engine_logits;
    r.engine_dev = evaluate_engine(o.out_dir, o.task, dev_enc, dev, o.eval_batch_size, o.threads,
                                   engine_logits);
    log["engine_dev"] = metrics_json(r.engine_dev);
    r.engine_parity = engine_parity(o.task, best_logits, engine_logits, s.config.num_labels);
    const EngineParity& p = r.engine_parity;
    log["engine_parity"] = {
        {"examples", p.examples},
        {"predictions_agree",
         p.predictions_agree >= 0 ? nlohmann::json(p.predictions_agree) : nlohmann::json(nullptr)},
        {"max_abs_logit_diff", p.max_abs_logit_diff},
        {"mean_abs_logit_diff", p.mean_abs_logit_diff},
        {"max_disagreeing_margin", p.max_disagreeing_margin}};
    log["engine_eval_seconds"] = seconds_since(t_eval);
  }
  r.seconds = seconds_since(t_start);
  log["seconds"] = r.seconds;
  write_log();
  return r;
}

}  // namespace octet::train
