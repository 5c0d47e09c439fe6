// Integer-only (I-BERT) calibration and quantization. Contract in quant/integer_quant.h.
#include "quant/integer_quant.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>

#include "io/bert_config.h"
#include "io/model_dir.h"
#include "io/safetensors.h"
#include "layers/integer_encoder_layer.h"
#include "layers/linear_int8.h"
#include "models/bert.h"
#include "models/bert_integer.h"
#include "octet/error.h"

namespace octet::quant {

using nlohmann::json;

IntegerCalibrationCollector::IntegerCalibrationCollector(const std::filesystem::path& model_dir,
                                                         double momentum)
    : momentum_(momentum) {
  validate(CalibratorSpec{.kind = CalibratorKind::ema, .decay = momentum});
  const io::ModelFiles files = io::locate_model(model_dir);
  const io::BertConfig c = io::load_bert_config(files.config);
  const io::SafetensorsReader reader(files.weights);
  models::BertEncoder enc = models::load_bert_encoder(c, reader, /*load_head=*/false);
  emb_ = std::move(enc.embeddings);
  max_positions_ = c.max_position_embeddings;
  if (emb_.word.empty() || emb_.position.empty() || emb_.token_type.empty()) {
    throw InvalidArgument(
        fmt::format("{}: the FP32 embedding tables are needed for integer-only calibration",
                    files.dir.string()));
  }
}

void IntegerCalibrationCollector::observe(const std::string& name, const float* data, int64_t rows,
                                          int64_t cols, std::ptrdiff_t ld) {
  std::unique_ptr<Observer>& obs = observers_[name];
  if (!obs) obs = make_observer({.kind = CalibratorKind::ema, .decay = momentum_});
  std::span<const float> x(data, static_cast<std::size_t>(rows * cols));
  if (ld != cols) {
    packed_.resize(static_cast<std::size_t>(rows * cols));
    for (int64_t r = 0; r < rows; ++r) {
      std::copy(data + r * ld, data + r * ld + cols, packed_.begin() + r * cols);
    }
    x = packed_;
  }
  obs->observe(x);  // one update per forward batch (I-BERT's QuantAct)
}

ActivationTap IntegerCalibrationCollector::tap() {
  return [this](std::string_view name, TapPoint point, const float* data, int64_t rows,
                int64_t cols, std::ptrdiff_t ld) {
    std::string key(name);
    if (point == TapPoint::output) key += ":output";
    observe(key, data, rows, cols, ld);
  };
}

void IntegerCalibrationCollector::observe_embeddings(std::span<const BertSequence> batch) {
  const int64_t h = emb_.hidden;
  const int64_t vocab = static_cast<int64_t>(emb_.word.size()) / h;
  const int64_t types = static_cast<int64_t>(emb_.token_type.size()) / h;
  std::vector<float> sum;
  for (std::size_t b = 0; b < batch.size(); ++b) {
    const BertSequence& s = batch[b];
    if (static_cast<int64_t>(s.input_ids.size()) > max_positions_ ||
        (!s.token_type_ids.empty() && s.token_type_ids.size() != s.input_ids.size())) {
      throw InvalidArgument(fmt::format(
          "integer calibration: sequence {} has {} ids and {} type ids (at most {} positions)", b,
          s.input_ids.size(), s.token_type_ids.size(), max_positions_));
    }
    for (std::size_t i = 0; i < s.input_ids.size(); ++i) {
      const int32_t id = s.input_ids[i];
      const int32_t tt = s.token_type_ids.empty() ? 0 : s.token_type_ids[i];
      if (id < 0 || id >= vocab || tt < 0 || tt >= types) {
        throw InvalidArgument(
            fmt::format("integer calibration: sequence {}, position {}: id {} / type {} outside "
                        "[0, {}) / [0, {})",
                        b, i, id, tt, vocab, types));
      }
      for (int64_t c = 0; c < h; ++c) {
        sum.push_back(emb_.word[id * h + c] + emb_.token_type[tt * h + c] +
                      emb_.position[static_cast<int64_t>(i) * h + c]);
      }
    }
  }
  if (sum.empty()) return;
  observe(kEmbeddingSumTensor, sum.data(), static_cast<int64_t>(sum.size()) / h, h, h);
}

json IntegerCalibrationCollector::to_json() const {
  json out = json::object();
  for (const auto& [name, obs] : observers_) out[name] = {{"ema", obs->to_json()}};
  return out;
}

namespace {

// FP32 tensors of the source model ("bert." prefix optional), converted to float.
class FloatSource {
 public:
  explicit FloatSource(const io::SafetensorsReader& r) : r_(r) {
    prefix_ = r.find("bert.embeddings.word_embeddings.weight") != nullptr ? "bert." : "";
  }
  const io::TensorInfo* find(const std::string& name) const {
    if (name.rfind("bert.", 0) == 0) return r_.find(prefix_ + name.substr(5));
    return r_.find(name);
  }
  std::vector<float> read(const std::string& name, const std::vector<int64_t>& shape) const {
    const io::TensorInfo* t = find(name);
    if (t == nullptr) {
      throw ModelFormatError(
          fmt::format("{}: missing tensor '{}' (expected {})", r_.path().string(), name, shape));
    }
    if (t->shape != shape) {
      throw ModelFormatError(fmt::format("{}: tensor '{}' is {}, expected shape {}",
                                         r_.path().string(), name, t->describe(), shape));
    }
    return r_.read_f32(*t);
  }

 private:
  const io::SafetensorsReader& r_;
  std::string prefix_;
};

float step(const json& tensors, const std::string& name, int bits, const std::string& what) {
  if (!tensors.contains(name) || !tensors[name].contains("ema")) {
    throw InvalidArgument(fmt::format(
        "the calibration has no \"ema\" statistics for '{}' ({}), which the integer-only mode "
        "needs: record it with octet calibrate --calibrator ema-minmax",
        name, what));
  }
  const auto obs = observer_from_json(tensors[name]["ema"], "calibration: tensors." + name);
  return integer_activation_step(*obs, bits);
}

}  // namespace

float integer_activation_step(const Observer& ema, int bits) {
  const Range r = ema.range(ThresholdMode::symmetric);
  const double t = std::max(std::fabs(double{r.min}), std::fabs(double{r.max}));
  const double levels = std::ldexp(1.0, bits - 1) - 1.0;
  return t > 0.0 ? static_cast<float>(t / levels) : 1.0f;
}

QuantizedBert quantize_bert_integer(const std::filesystem::path& model_dir,
                                    const json& calibration) {
  const io::ModelFiles files = io::locate_model(model_dir);
  const io::BertConfig c = io::load_bert_config(files.config);
  if (c.raw.contains("quantization_config")) {
    throw InvalidArgument(fmt::format(
        "{} is already quantized (config.json has quantization_config): quantize an FP32 model",
        files.dir.string()));
  }
  if (c.hidden_act != io::Activation::gelu) {
    throw Unsupported(fmt::format(
        "{}: hidden_act \"{}\": the integer-only mode approximates the erf GELU (i-GELU) only",
        files.config.string(), c.hidden_act_name));
  }
  validate_calibration(calibration, "calibration");
  if (calibration.contains("model_weights")) {
    const json fp = file_fingerprint(files.weights);
    if (calibration["model_weights"] != fp) {
      throw InvalidArgument(fmt::format(
          "the calibration was recorded on weights {} but {} is {}: calibrate this model",
          calibration["model_weights"].dump(), files.weights.string(), fp.dump()));
    }
  }
  const json& st = calibration["tensors"];
  double momentum = kIbertEmaMomentum;
  if (st.contains(kEmbeddingSumTensor) && st[kEmbeddingSumTensor].contains("ema")) {
    momentum = st[kEmbeddingSumTensor]["ema"].value("decay", kIbertEmaMomentum);
  }

  const io::SafetensorsReader reader(files.weights);
  const FloatSource src(reader);
  QuantizedBert q;
  q.config = c;
  q.source_dir = files.dir;
  q.tensors = models::MemoryTensors("integer-only " + files.dir.string() + " (in memory)");
  models::MemoryTensors& out = q.tensors;
  const int64_t h = c.hidden_size, inter = c.intermediate_size;
  auto scalar = [&](const std::string& name, float v) {
    const float a[1] = {v};
    out.add<float>(name, {1}, a);
    q.int8_encoder_bytes += 4;
  };
  auto shift0 = [&](const std::string& name) {
    const int32_t a[1] = {0};
    out.add<int32_t>(name, {1}, a);
    q.int8_encoder_bytes += 4;
  };
  auto copy = [&](const std::string& name, const std::vector<int64_t>& shape, bool encoder) {
    const std::vector<float> v = src.read(name, shape);
    out.add<float>(name, shape, v);
    if (encoder) {
      q.fp32_encoder_bytes += static_cast<int64_t>(v.size()) * 4;
      q.int8_encoder_bytes += static_cast<int64_t>(v.size()) * 4;
    }
  };

  // Embeddings: int8 tables (one scale each), the 16-bit sum's step, LayerNorm.
  const std::string e = "bert.embeddings.";
  const std::pair<const char*, int64_t> tables[] = {
      {"word_embeddings", c.vocab_size},
      {"position_embeddings", c.max_position_embeddings},
      {"token_type_embeddings", c.type_vocab_size}};
  for (const auto& [name, rows] : tables) {
    const std::string p = e + name;
    const std::vector<float> w = src.read(p + ".weight", {rows, h});
    const layers::SymmetricInt8 t8 = layers::quantize_symmetric_int8(w, rows, h, false);
    out.add<int8_t>(p + ".weight", {rows, h}, t8.q);
    out.add<float>(p + ".weight_scale", {1}, t8.scales);
    q.fp32_encoder_bytes += rows * h * 4;
    q.int8_encoder_bytes += rows * h + 4;
  }
  scalar(e + "sum_scale", step(st, kEmbeddingSumTensor, models::kEmbeddingSumBits,
                               "word + position + token type, before the embedding LayerNorm"));
  copy(e + "LayerNorm.weight", {h}, true);
  copy(e + "LayerNorm.bias", {h}, true);
  shift0(e + "LayerNorm.shift");

  for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
    const std::string p = fmt::format("bert.encoder.layer.{}.", i);
    const std::string self = p + "attention.self.";
    layers::IntegerLayerScales s;
    s.input = step(st, self + "query", 8, "the layer input");
    s.q = step(st, self + "query:output", 8, "Q");
    s.k = step(st, self + "key:output", 8, "K");
    s.v = step(st, self + "value:output", 8, "V");
    s.context = step(st, p + "attention.output.dense", 8, "the attention context");
    s.attn_sum = step(st, p + "attention.output.dense:output", models::kResidualSumBits,
                      "the attention residual sum");
    s.ln1 = step(st, p + "intermediate.dense", 8, "the FFN input");
    s.gelu = step(st, p + "output.dense", 8, "the GELU output");
    s.ffn_sum =
        step(st, p + "output.dense:output", models::kResidualSumBits, "the FFN residual sum");
    s.output = 1.0f;  // not used by quantize_weights

    layers::FloatEncoderWeights fw;
    fw.hidden = static_cast<int>(h), fw.heads = static_cast<int>(c.num_attention_heads);
    fw.intermediate = static_cast<int>(inter);
    fw.wq = src.read(self + "query.weight", {h, h}), fw.bq = src.read(self + "query.bias", {h});
    fw.wk = src.read(self + "key.weight", {h, h}), fw.bk = src.read(self + "key.bias", {h});
    fw.wv = src.read(self + "value.weight", {h, h}), fw.bv = src.read(self + "value.bias", {h});
    fw.wo = src.read(p + "attention.output.dense.weight", {h, h});
    fw.bo = src.read(p + "attention.output.dense.bias", {h});
    fw.w1 = src.read(p + "intermediate.dense.weight", {inter, h});
    fw.b1 = src.read(p + "intermediate.dense.bias", {inter});
    fw.w2 = src.read(p + "output.dense.weight", {h, inter});
    fw.b2 = src.read(p + "output.dense.bias", {h});
    fw.ln1_gamma = fw.ln1_beta = fw.ln2_gamma = fw.ln2_beta = std::vector<float>(h, 1.0f);
    const layers::QuantizedEncoderWeights qw = layers::IntegerEncoderLayer::quantize_weights(fw, s);

    auto linear = [&](const std::string& name, const layers::QuantizedLinearWeights& l, int64_t n,
                      int64_t k) {
      out.add<int8_t>(name + ".weight", {n, k}, l.w);
      out.add<float>(name + ".weight_scale", {n}, l.scales);
      out.add<int32_t>(name + ".bias", {n}, l.bias);
      q.fp32_encoder_bytes += (n * k + n) * 4;
      q.int8_encoder_bytes += n * k + n * 8;
    };
    linear(self + "query", qw.q, h, h);
    linear(self + "key", qw.k, h, h);
    linear(self + "value", qw.v, h, h);
    linear(p + "attention.output.dense", qw.o, h, h);
    linear(p + "intermediate.dense", qw.fc1, inter, h);
    linear(p + "output.dense", qw.fc2, h, inter);
    scalar(self + "query.input_scale", s.input);
    scalar(self + "query.output_scale", s.q);
    scalar(self + "key.output_scale", s.k);
    scalar(self + "value.output_scale", s.v);
    scalar(p + "attention.output.dense.input_scale", s.context);
    scalar(p + "attention.output.dense.output_scale", s.attn_sum);
    scalar(p + "intermediate.dense.input_scale", s.ln1);
    scalar(p + "output.dense.input_scale", s.gelu);
    scalar(p + "output.dense.output_scale", s.ffn_sum);
    for (const char* ln : {"attention.output.LayerNorm", "output.LayerNorm"}) {
      copy(p + ln + ".weight", {h}, true);
      copy(p + ln + ".bias", {h}, true);
      shift0(p + ln + ".shift");
    }
  }
  if (src.find("bert.pooler.dense.weight") != nullptr) {
    copy("bert.pooler.dense.weight", {h, h}, false);
    copy("bert.pooler.dense.bias", {h}, false);
  }
  if (src.find("classifier.weight") != nullptr) {
    copy("classifier.weight", {c.num_labels, h}, false);
    copy("classifier.bias", {c.num_labels}, false);
  }
  q.config_json = io::to_json(c);
  q.config_json["quantization_config"] = models::integer_only_config(momentum);
  return q;
}

BertModel load_integer_in_memory(const QuantizedBert& q, int threads, bool load_head) {
  return models::make_model(
      models::load_bert_integer(q.config, q.config_json["quantization_config"], q.tensors,
                                load_head),
      threads);
}

}  // namespace octet::quant
