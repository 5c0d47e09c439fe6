// octet::BertModel (include/octet/model.h): loading, input validation, packing and the
// workspace pool around models::BertEncoder.
#include <fmt/format.h>
#include <omp.h>

#include <algorithm>
#include <mutex>
#include <utility>

#include "io/bert_config.h"
#include "io/model_dir.h"
#include "io/safetensors.h"
#include "models/bert.h"
#include "models/bert_integer.h"
#include "octet/error.h"
#include "octet/model.h"

namespace octet {

struct BertModel::Impl {
  models::BertEncoder encoder;
  int threads = 1;
  // Idle workspaces; forward() takes one (or makes one) and returns it when done.
  mutable std::mutex pool_mu;
  mutable std::vector<std::unique_ptr<models::BertWorkspace>> pool;
};

BertModel::BertModel(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
BertModel::BertModel(BertModel&&) noexcept = default;
BertModel& BertModel::operator=(BertModel&&) noexcept = default;
BertModel::~BertModel() = default;

BertModel BertModel::load(const std::filesystem::path& dir, const BertLoadOptions& options) {
  if (options.threads < 0) {
    throw InvalidArgument(
        fmt::format("BertLoadOptions.threads = {}: expected 0 (OpenMP "
                    "default) or a positive thread count",
                    options.threads));
  }
  const io::ModelFiles files = io::locate_model(dir);
  const io::BertConfig config = io::load_bert_config(files.config);
  const io::SafetensorsReader reader(files.weights);
  auto impl = std::make_unique<Impl>();
  if (config.raw.contains("quantization_config")) {
    if (options.precision != Precision::fp32 || !options.per_channel) {
      throw InvalidArgument(fmt::format(
          "{} is a quantized model directory (config.json has quantization_config): it loads as "
          "stored; precision int8_dynamic / per_channel = false apply to FP32 directories only",
          files.dir.string()));
    }
    const nlohmann::json& qc = config.raw["quantization_config"];
    if (models::is_integer_only_config(qc)) {
      impl->encoder = models::load_bert_integer(config, qc, models::SafetensorsSource(reader),
                                                options.load_head, files.config.string());
    } else {
      impl->encoder = models::load_bert_encoder_quantized(
          config, qc, models::SafetensorsSource(reader), options.load_head, files.config.string());
    }
  } else {
    if (options.precision != Precision::fp32 && options.precision != Precision::int8_dynamic) {
      throw InvalidArgument(
          fmt::format("BertLoadOptions.precision = {}: expected fp32 or int8_dynamic (int8_static "
                      "comes from a quantized model directory, see octet quantize)",
                      static_cast<int>(options.precision)));
    }
    impl->encoder = models::load_bert_encoder(config, reader, options.load_head, options.precision,
                                              options.per_channel);
  }
  if (options.int8_attention) models::use_int8_attention(impl->encoder, files.dir.string());
  impl->threads = options.threads > 0 ? options.threads : omp_get_max_threads();
  return BertModel(std::move(impl));
}

namespace models {
namespace {
thread_local int forward_threads_override = 0;
}
ScopedForwardThreads::ScopedForwardThreads(int n) : previous_(forward_threads_override) {
  forward_threads_override = n;
}
ScopedForwardThreads::~ScopedForwardThreads() { forward_threads_override = previous_; }

void use_int8_attention(BertEncoder& encoder, std::string_view what) {
  if (!encoder.uses_int8 || encoder.integer != nullptr) {
    throw InvalidArgument(fmt::format(
        "int8_attention applies to INT8 models (precision int8_dynamic, or a directory from "
        "octet quantize --mode dynamic / static); {} is {}",
        what, encoder.integer != nullptr ? "integer-only" : "FP32"));
  }
  for (layers::EncoderLayer& layer : encoder.layers) layer.int8_attention = true;
}

BertModel make_model(BertEncoder encoder, int threads) {
  if (threads < 0) throw InvalidArgument(fmt::format("threads = {}: expected >= 0", threads));
  auto impl = std::make_unique<BertModel::Impl>();
  impl->encoder = std::move(encoder);
  impl->threads = threads > 0 ? threads : omp_get_max_threads();
  return BertModel(std::move(impl));
}
}  // namespace models

const io::BertConfig& BertModel::config() const { return impl_->encoder.config; }
int64_t BertModel::parameter_count() const { return impl_->encoder.parameter_count; }
bool BertModel::has_pooler() const { return impl_->encoder.has_pooler; }
bool BertModel::has_classifier() const { return impl_->encoder.has_classifier; }
int BertModel::threads() const { return impl_->threads; }
Precision BertModel::precision() const { return impl_->encoder.precision; }

BertOutputs BertModel::forward(std::span<const BertSequence> batch, BertOutputKind what,
                               Padding padding) const {
  BertOutputs out;
  forward(batch, what, padding, nullptr, out);
  return out;
}

void BertModel::forward(std::span<const BertSequence> batch, BertOutputKind what, Padding padding,
                        BertOutputs& out) const {
  forward(batch, what, padding, nullptr, out);
}

BertOutputs BertModel::forward(std::span<const BertSequence> batch, BertOutputKind what,
                               const ActivationTap& tap) const {
  BertOutputs out;
  forward(batch, what, Padding::none, tap ? &tap : nullptr, out);
  return out;
}

void BertModel::forward(std::span<const BertSequence> batch, BertOutputKind what, Padding padding,
                        const ActivationTap* tap, BertOutputs& out) const {
  const models::BertEncoder& enc = impl_->encoder;
  if (padding == Padding::longest && enc.integer != nullptr) {
    throw InvalidArgument(
        "BertModel::forward: Padding::longest is not supported by an integer-only model (its "
        "encoder runs one sequence at a time, so there is nothing to pad); use Padding::none");
  }
  const io::BertConfig& c = enc.config;
  if (batch.empty()) throw InvalidArgument("BertModel::forward: the batch is empty");
  if (static_cast<unsigned>(what) == 0) {
    throw InvalidArgument("BertModel::forward: no output requested");
  }
  if (has(what, BertOutputKind::logits) && !enc.has_classifier) {
    throw InvalidArgument(
        "BertModel::forward: logits requested, but the model has no classifier "
        "(classifier.weight absent or load_head = false); ask for "
        "last_hidden, pooled or mean_pooled instead");
  }
  if (has(what, BertOutputKind::pooled) && !enc.has_pooler) {
    throw InvalidArgument(
        "BertModel::forward: pooled output requested, but the model has no "
        "pooler (pooler.dense.weight absent or load_head = false)");
  }

  std::unique_ptr<models::BertWorkspace> ws;
  {
    std::lock_guard<std::mutex> lock(impl_->pool_mu);
    if (!impl_->pool.empty()) {
      ws = std::move(impl_->pool.back());
      impl_->pool.pop_back();
    }
  }
  if (!ws) ws = std::make_unique<models::BertWorkspace>();

  // Validate and pack: the valid tokens of all sequences back to back, or (Padding::longest)
  // each sequence followed by pad tokens up to the batch's longest.
  std::size_t longest = 0;
  for (const BertSequence& s : batch) longest = std::max(longest, s.input_ids.size());
  const bool pad = padding == Padding::longest;
  ws->ids.clear();
  ws->types.clear();
  ws->offsets.assign(1, 0);
  ws->valid.clear();
  for (std::size_t b = 0; b < batch.size(); ++b) {
    const BertSequence& s = batch[b];
    const std::size_t n = s.input_ids.size();
    if (n == 0)
      throw InvalidArgument(fmt::format("sequence {}: no tokens (input_ids is empty)", b));
    if (static_cast<int64_t>(n) > c.max_position_embeddings) {
      throw InvalidArgument(
          fmt::format("sequence {}: {} tokens, more than "
                      "max_position_embeddings = {}; truncate it",
                      b, n, c.max_position_embeddings));
    }
    if (!s.token_type_ids.empty() && s.token_type_ids.size() != n) {
      throw InvalidArgument(
          fmt::format("sequence {}: {} token_type_ids for {} input_ids; "
                      "expected the same length (or none)",
                      b, s.token_type_ids.size(), n));
    }
    for (std::size_t i = 0; i < n; ++i) {
      const int32_t id = s.input_ids[i];
      if (id < 0 || id >= c.vocab_size) {
        throw InvalidArgument(
            fmt::format("sequence {}, position {}: input id {} outside the "
                        "vocabulary [0, {})",
                        b, i, id, c.vocab_size));
      }
      const int32_t tt = s.token_type_ids.empty() ? 0 : s.token_type_ids[i];
      if (tt < 0 || tt >= c.type_vocab_size) {
        throw InvalidArgument(
            fmt::format("sequence {}, position {}: token type id {} outside "
                        "[0, type_vocab_size = {})",
                        b, i, tt, c.type_vocab_size));
      }
      ws->ids.push_back(id);
      ws->types.push_back(tt);
    }
    if (pad) {
      ws->ids.insert(ws->ids.end(), longest - n, static_cast<int32_t>(c.pad_token_id));
      ws->types.insert(ws->types.end(), longest - n, 0);
      ws->valid.push_back(static_cast<int64_t>(n));
    }
    ws->offsets.push_back(ws->offsets.back() + static_cast<int64_t>(pad ? longest : n));
  }

  const int threads =
      models::forward_threads_override > 0 ? models::forward_threads_override : impl_->threads;
  // oneDNN sizes its parallel regions from the calling thread's OpenMP setting.
  omp_set_num_threads(threads);
  try {
    enc.forward(ws->ids, ws->types, ws->offsets, ws->valid, what, *ws, threads, out, tap);
  } catch (...) {
    std::lock_guard<std::mutex> lock(impl_->pool_mu);
    impl_->pool.push_back(std::move(ws));
    throw;
  }
  std::lock_guard<std::mutex> lock(impl_->pool_mu);
  impl_->pool.push_back(std::move(ws));
}

}  // namespace octet
