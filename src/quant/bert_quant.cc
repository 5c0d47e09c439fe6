#include "quant/bert_quant.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>

#include "io/atomic_file.h"
#include "io/json_util.h"
#include "io/mapped_file.h"
#include "io/model_dir.h"
#include "io/safetensors.h"
#include "octet/error.h"
#include "quant/quantizer.h"

namespace octet::quant {

using nlohmann::json;

// ---------------------------------------------------------------------------------------------
// Calibration

namespace {
bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}
}  // namespace

CalibrationCollector::CalibrationCollector(const CalibrationOptions& options) : options_(options) {
  if (!options.max && !options.ema && !options.histogram) {
    throw InvalidArgument("CalibrationCollector: no statistics requested (max, ema, histogram)");
  }
  CalibratorSpec ema{.kind = CalibratorKind::ema, .decay = options.ema_decay};
  CalibratorSpec hist{.kind = CalibratorKind::mse, .bins = options.bins};
  if (options.ema) validate(ema);
  if (options.histogram) validate(hist);
}

ActivationTap CalibrationCollector::tap() {
  return [this](std::string_view name, TapPoint point, const float* data, int64_t rows,
                int64_t cols, std::ptrdiff_t ld) {
    std::string key(name);
    if (point == TapPoint::output) {
      // The Q and K outputs, for quantize.attention_scores (Q8BERT's requantize_output).
      if (!ends_with(name, ".attention.self.query") && !ends_with(name, ".attention.self.key")) {
        return;
      }
      key += kOutputSuffix;
    } else if (point != TapPoint::input) {
      return;
    }
    Set& set = observers_[key];
    if (!set.max && !set.ema && !set.histogram) {
      if (options_.max) set.max = make_observer({.kind = CalibratorKind::max});
      if (options_.ema) {
        set.ema = make_observer({.kind = CalibratorKind::ema, .decay = options_.ema_decay});
      }
      if (options_.histogram) {
        set.histogram = make_observer({.kind = CalibratorKind::mse, .bins = options_.bins});
      }
    }
    std::span<const float> x(data, static_cast<std::size_t>(rows * cols));
    if (ld != cols) {
      packed_.resize(static_cast<std::size_t>(rows * cols));
      for (int64_t r = 0; r < rows; ++r) {
        std::copy(data + r * ld, data + r * ld + cols, packed_.begin() + r * cols);
      }
      x = packed_;
    }
    // One call per forward batch: the EMA observer averages per-batch statistics.
    if (set.max) set.max->observe(x);
    if (set.ema) set.ema->observe(x);
    if (set.histogram) set.histogram->observe(x);
  };
}

json CalibrationCollector::to_json() const {
  json out = json::object();
  for (const auto& [name, set] : observers_) {
    json j = json::object();
    if (set.max) j["max"] = set.max->to_json();
    if (set.ema) j["ema"] = set.ema->to_json();
    if (set.histogram) j["histogram"] = set.histogram->to_json();
    out[name] = std::move(j);
  }
  return out;
}

json file_fingerprint(const std::filesystem::path& file) {
  const io::MappedFile f(file);
  uint64_t h = 14695981039346656037ull;
  for (std::byte b : f.bytes()) {
    h ^= static_cast<uint64_t>(b);
    h *= 1099511628211ull;
  }
  return {{"bytes", f.size()}, {"fnv1a64", fmt::format("{:016x}", h)}};
}

void validate_calibration(const json& doc, const std::string& where) {
  auto fail = [&](const std::string& msg) { throw ModelFormatError(where + ": " + msg); };
  if (!doc.is_object()) fail(fmt::format("expected a JSON object, found {}", doc.type_name()));
  if (doc.value("format", json()) != kCalibrationFormat) {
    fail(fmt::format("key \"format\" is {}: expected \"{}\" (a file written by octet calibrate)",
                     doc.value("format", json()).dump(), kCalibrationFormat));
  }
  if (doc.value("version", json()) != kCalibrationVersion) {
    fail(fmt::format("key \"version\" is {}: expected {}", doc.value("version", json()).dump(),
                     kCalibrationVersion));
  }
  if (!doc.contains("tensors") || !doc["tensors"].is_object() || doc["tensors"].empty()) {
    fail("key \"tensors\" is missing or empty: expected {\"<layer>\": {statistics}}");
  }
  for (const auto& [name, stats] : doc["tensors"].items()) {
    if (!stats.is_object() || stats.empty()) {
      fail(fmt::format("tensors.\"{}\": expected an object of max / ema / histogram statistics",
                       name));
    }
    for (const auto& [kind, s] : stats.items()) {
      if (kind != "max" && kind != "ema" && kind != "histogram") {
        fail(fmt::format("tensors.\"{}\": unknown key \"{}\" (expected max, ema, histogram)", name,
                         kind));
      }
      observer_from_json(s, fmt::format("{}: tensors.\"{}\".{}", where, name, kind));
    }
  }
}

json load_calibration(const std::filesystem::path& file) {
  const io::MappedFile f(file);
  const std::string_view text(reinterpret_cast<const char*>(f.bytes().data()), f.size());
  json doc = io::detail::parse_json_strict(text, file.string(), 0, 64);
  validate_calibration(doc, file.string());
  return doc;
}

Range calibrated_range(const json& stats, const QuantizationConfig& cfg,
                       const std::string& tensor) {
  const CalibratorSpec& spec = cfg.calibrator;
  auto need = [&](const char* key) -> const json& {
    if (!stats.contains(key)) {
      throw InvalidArgument(fmt::format(
          "calibration of '{}' has no \"{}\" statistics, which calibrator \"{}\" needs; re-run "
          "octet calibrate with --calibrator all (or {})",
          tensor, key, to_string(spec.kind), key == std::string("histogram") ? "kl" : key));
    }
    return stats[key];
  };
  json j;
  switch (spec.kind) {
    case CalibratorKind::max:
      j = need("max");
      break;
    case CalibratorKind::ema:
      j = need("ema");
      if (j.value("decay", 0.0) != spec.decay) {
        throw InvalidArgument(fmt::format(
            "calibration of '{}' averaged with EMA decay {}, the config asks for {}: re-run "
            "octet calibrate with --ema-decay {}",
            tensor, j.value("decay", 0.0), spec.decay, spec.decay));
      }
      break;
    default:
      j = need("histogram");
      if (j.value("bins", 0) != spec.bins) {
        throw InvalidArgument(fmt::format(
            "calibration of '{}' has a histogram of {} bins, the config asks for {}: re-run "
            "octet calibrate with --bins {} (or set calibrator.bins)",
            tensor, j.value("bins", 0), spec.bins, spec.bins));
      }
      j["kind"] = std::string(to_string(spec.kind));
      if (spec.kind == CalibratorKind::percentile) j["percentile"] = spec.percentile;
      if (spec.kind == CalibratorKind::kl) j["kl_form"] = std::string(to_string(spec.kl_form));
      break;
  }
  return observer_from_json(j, "calibration of '" + tensor + "'")->range(cfg.threshold_mode);
}

// ---------------------------------------------------------------------------------------------
// Quantization

ActivationParams activation_params(const Range& r, Scheme scheme) {
  if (scheme == Scheme::symmetric) {
    const float t = std::max(std::fabs(r.min), std::fabs(r.max));
    return {t > 0.0f ? t / static_cast<float>(kSymmetricMax) : 1.0f, 0};
  }
  const AsymmetricParams a = asymmetric_params(r.min, r.max);
  return {a.scale, a.zero_point};
}

StaticLinearInt8 quantize_static_linear(std::span<const float> w, std::span<const float> b,
                                        int64_t n, int64_t k, WeightGranularity g,
                                        float input_scale, const std::string& what) {
  StaticLinearInt8 out;
  out.weights = quantize_weights(w, static_cast<int>(n), static_cast<int>(k), g, what + ".weight");
  // The loader dequantizes the int32 bias with input_scale * weight_scale: quantize with the
  // reciprocals of exactly those stored values.
  std::vector<float> inv_w(out.weights.scales.size());
  for (std::size_t c = 0; c < inv_w.size(); ++c) inv_w[c] = 1.0f / out.weights.scales[c];
  out.bias = quantize_bias(b, 1.0f / input_scale, inv_w, what + ".bias");
  return out;
}

namespace {

// Reads FP32 (or F16 / BF16) tensors of the source model, with or without the "bert." prefix.
class Source {
 public:
  explicit Source(const io::SafetensorsReader& r) : r_(r) {
    prefixed_ = r.find("bert.embeddings.word_embeddings.weight") != nullptr;
    if (!prefixed_ && r.find("embeddings.word_embeddings.weight") == nullptr) {
      throw ModelFormatError(fmt::format(
          "{}: missing tensor 'bert.embeddings.word_embeddings.weight': not a BERT checkpoint?",
          r.path().string()));
    }
  }
  // `name` in canonical form ("bert.…" or "classifier.…").
  const io::TensorInfo* find(const std::string& name) const {
    if (name.rfind("bert.", 0) == 0 && !prefixed_) return r_.find(name.substr(5));
    return r_.find(name);
  }
  std::vector<float> read(const std::string& name, const std::vector<int64_t>& shape) const {
    const io::TensorInfo* t = find(name);
    if (t == nullptr) {
      throw ModelFormatError(fmt::format("{}: missing tensor '{}' (expected shape {})",
                                         r_.path().string(), name, shape));
    }
    if (t->shape != shape) {
      throw ModelFormatError(
          fmt::format("{}: tensor '{}' has shape {}, expected {} from "
                      "config.json",
                      r_.path().string(), t->name, t->shape, shape));
    }
    if (t->dtype != io::DType::F32 && t->dtype != io::DType::F16 && t->dtype != io::DType::BF16) {
      throw ModelFormatError(
          fmt::format("{}: tensor '{}' is {}: expected an FP32 / F16 / BF16 "
                      "model (is it already quantized?)",
                      r_.path().string(), t->name, t->describe()));
    }
    std::vector<float> v(static_cast<std::size_t>(t->numel()));
    r_.read_f32_into(*t, v);
    check_finite(v, r_.path().string() + ": " + t->name);
    return v;
  }

 private:
  const io::SafetensorsReader& r_;
  bool prefixed_ = true;
};

struct Builder {
  const Source& src;
  const QuantizationConfig& cfg;
  const json* tensors;  // calibration "tensors", or null
  models::MemoryTensors& out;
  int64_t fp32_encoder = 0, int8_encoder = 0;

  void add_f32(const std::string& name, const std::vector<float>& v, std::vector<int64_t> shape,
               bool encoder) {
    out.add<float>(name, std::move(shape), v);
    if (encoder) {
      fp32_encoder += static_cast<int64_t>(v.size() * 4);
      int8_encoder += static_cast<int64_t>(v.size() * 4);
    }
  }

  void copy(const std::string& name, std::vector<int64_t> shape, bool encoder) {
    const std::vector<float> v = src.read(name, shape);
    add_f32(name, v, std::move(shape), encoder);
  }

  const json& stats_for(const std::string& prefix) const {
    // Q, K and V share their input: its statistics are recorded under "...query".
    std::string key = prefix;
    for (const char* s : {".attention.self.key", ".attention.self.value"}) {
      const std::string suffix = s;
      if (key.size() > suffix.size() &&
          key.compare(key.size() - suffix.size(), suffix.size(), suffix) == 0) {
        key = key.substr(0, key.size() - suffix.size()) + ".attention.self.query";
      }
    }
    if (tensors == nullptr || !tensors->contains(key)) {
      throw InvalidArgument(fmt::format(
          "the calibration has no statistics for '{}' (the input of '{}'): was it calibrated on "
          "this model, with its head?",
          key, prefix));
    }
    return (*tensors)[key];
  }

  // The step and zero point of one calibrated activation tensor (`what` names it in errors).
  ActivationParams activation(const json& stats, const std::string& what) const {
    return activation_params(calibrated_range(stats, cfg, what), cfg.scheme);
  }

  // <base>_scale F32 [1] and <base>_zero_point I32 [1].
  void add_activation(const std::string& base, float scale, int32_t zero_point) {
    const float s1[1] = {scale};
    const int32_t z1[1] = {zero_point};
    out.add<float>(base + "_scale", {1}, s1);
    out.add<int32_t>(base + "_zero_point", {1}, z1);
  }

  // quantize.attention_scores: the Q (or K) output scale of `p` (".../attention.self.query" or
  // ".key") from the statistics recorded under "<p>:output".
  void output_activation(const std::string& p) {
    const std::string key = p + kOutputSuffix;
    if (tensors == nullptr || !tensors->contains(key)) {
      throw InvalidArgument(fmt::format(
          "the calibration has no statistics for '{}' (the output of '{}', which "
          "quantize.attention_scores quantizes): re-run octet calibrate with this version",
          key, p));
    }
    const ActivationParams a = activation((*tensors)[key], key);
    add_activation(p + ".output", a.scale, a.zero_point);
    int8_encoder += 8;
  }

  void linear(const std::string& p, int64_t n, int64_t k, bool encoder) {
    const std::vector<float> w = src.read(p + ".weight", {n, k});
    const std::vector<float> b = src.read(p + ".bias", {n});
    if (!cfg.quantizes(p)) {
      add_f32(p + ".weight", w, {n, k}, encoder);
      add_f32(p + ".bias", b, {n}, encoder);
      return;
    }
    const int64_t scales = cfg.weights == WeightGranularity::per_channel ? n : 1;
    int64_t bytes = n * k + scales * 4 + n * 4;
    if (cfg.activations == ActivationMode::dynamic) {
      const QuantizedWeights q =
          quantize_weights(w, static_cast<int>(n), static_cast<int>(k), cfg.weights, p + ".weight");
      out.add<int8_t>(p + ".weight", {n, k}, q.q);
      out.add<float>(p + ".weight_scale", {scales}, q.scales);
      out.add<float>(p + ".bias", {n}, b);
    } else {
      const ActivationParams a = activation(stats_for(p), p);
      const StaticLinearInt8 q = quantize_static_linear(w, b, n, k, cfg.weights, a.scale, p);
      out.add<int8_t>(p + ".weight", {n, k}, q.weights.q);
      out.add<float>(p + ".weight_scale", {scales}, q.weights.scales);
      out.add<int32_t>(p + ".bias", {n}, q.bias);
      add_activation(p + ".input", a.scale, a.zero_point);
      bytes += 8;
    }
    if (encoder) {
      fp32_encoder += (n * k + n) * 4;
      int8_encoder += bytes;
    }
  }

  void table(const std::string& p, int64_t rows, int64_t h) {
    const std::vector<float> w = src.read(p + ".weight", {rows, h});
    fp32_encoder += rows * h * 4;
    if (!cfg.quantizes(p)) {
      out.add<float>(p + ".weight", {rows, h}, w);
      int8_encoder += rows * h * 4;
      return;
    }
    const QuantizedWeights q = quantize_weights(w, static_cast<int>(rows), static_cast<int>(h),
                                                WeightGranularity::per_tensor, p + ".weight");
    out.add<int8_t>(p + ".weight", {rows, h}, q.q);
    out.add<float>(p + ".weight_scale", {1}, q.scales);
    int8_encoder += rows * h + 4;
  }
};

}  // namespace

QuantizedBert quantize_bert(const std::filesystem::path& model_dir, const QuantizationConfig& cfg,
                            const json* calibration) {
  validate(cfg);
  check_supported(cfg, "quantization_config");
  const io::ModelFiles files = io::locate_model(model_dir);
  const io::BertConfig c = io::load_bert_config(files.config);
  if (c.raw.contains("quantization_config")) {
    throw InvalidArgument(fmt::format(
        "{} is already quantized (config.json has quantization_config): quantize an FP32 model",
        files.dir.string()));
  }
  const json* tensors = nullptr;
  if (cfg.activations == ActivationMode::static_) {
    if (calibration == nullptr) {
      throw InvalidArgument(
          "static activations need calibration statistics (--calibration FILE from octet "
          "calibrate), or use activations: dynamic");
    }
    validate_calibration(*calibration, "calibration");
    if (calibration->contains("model_weights")) {
      const json fp = file_fingerprint(files.weights);
      if ((*calibration)["model_weights"] != fp) {
        throw InvalidArgument(fmt::format(
            "the calibration was recorded on weights {} but {} is {}: calibrate this model",
            (*calibration)["model_weights"].dump(), files.weights.string(), fp.dump()));
      }
    }
    tensors = &(*calibration)["tensors"];
  }
  const io::SafetensorsReader reader(files.weights);
  const Source src(reader);
  QuantizedBert q;
  q.config = c;
  q.qconfig = cfg;
  q.source_dir = files.dir;
  q.tensors = models::MemoryTensors("quantized " + files.dir.string() + " (in memory)");
  Builder b{src, cfg, tensors, q.tensors};
  const int64_t h = c.hidden_size, inter = c.intermediate_size;

  b.table("bert.embeddings.word_embeddings", c.vocab_size, h);
  b.table("bert.embeddings.position_embeddings", c.max_position_embeddings, h);
  b.copy("bert.embeddings.token_type_embeddings.weight", {c.type_vocab_size, h}, true);
  for (const char* s : {"weight", "bias"}) {
    b.copy(std::string("bert.embeddings.LayerNorm.") + s, {h}, true);
  }
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
    const std::string p = fmt::format("bert.encoder.layer.{}.", i);
    const bool q8 = cfg.quantizes(p + "attention.self.query"),
               k8 = cfg.quantizes(p + "attention.self.key"),
               v8 = cfg.quantizes(p + "attention.self.value");
    if (q8 != k8 || q8 != v8) {
      throw InvalidArgument(fmt::format(
          "layer {}: query / key / value quantized as {} / {} / {}: they share one fused GEMM, so "
          "keep_fp32 must cover all three or none",
          i, q8, k8, v8));
    }
    for (const char* s : {"query", "key", "value"}) {
      b.linear(p + "attention.self." + s, h, h, true);
    }
    if (cfg.quantizes_scores(p + "attention.self")) {
      for (const char* s : {"query", "key"}) b.output_activation(p + "attention.self." + s);
    }
    b.linear(p + "attention.output.dense", h, h, true);
    b.linear(p + "intermediate.dense", inter, h, true);
    b.linear(p + "output.dense", h, inter, true);
    for (const char* ln : {"attention.output.LayerNorm", "output.LayerNorm"}) {
      for (const char* s : {"weight", "bias"}) {
        b.copy(p + ln + "." + s, {h}, true);
      }
    }
  }
  if (src.find("bert.pooler.dense.weight") != nullptr) {
    b.linear("bert.pooler.dense", h, h, false);
  }
  if (src.find("classifier.weight") != nullptr) {
    b.linear("classifier", c.num_labels, h, false);
  }
  q.fp32_encoder_bytes = b.fp32_encoder;
  q.int8_encoder_bytes = b.int8_encoder;
  q.config_json = io::to_json(c);
  q.config_json["quantization_config"] = to_json(cfg);
  return q;
}

BertModel load_in_memory(const QuantizedBert& q, int threads, bool load_head, bool int8_attention) {
  models::BertEncoder encoder = models::load_bert_encoder_quantized(
      q.config, q.config_json["quantization_config"], q.tensors, load_head);
  if (int8_attention) models::use_int8_attention(encoder, "the quantized model");
  return models::make_model(std::move(encoder), threads);
}

void write_quantized_dir(const QuantizedBert& q, const std::filesystem::path& out_dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (fs::exists(out_dir) && fs::equivalent(out_dir, q.source_dir, ec)) {
    throw InvalidArgument(
        fmt::format("--out {} is the source model directory: write the quantized model elsewhere",
                    out_dir.string()));
  }
  fs::create_directories(out_dir, ec);
  if (ec) {
    throw IoError(fmt::format("cannot create directory {}: {}", out_dir.string(), ec.message()));
  }
  const std::vector<io::TensorView> views = q.tensors.views();
  io::write_safetensors(out_dir / "model.safetensors", views,
                        {{"format", "pt"}, {"octet_quantized", "1"}});
  for (const char* name : {"vocab.txt", "tokenizer_config.json", "special_tokens_map.json"}) {
    const fs::path from = q.source_dir / name;
    if (!fs::exists(from)) continue;
    std::ifstream in(from, std::ios::binary);
    if (!in) throw IoError(fmt::format("cannot read {}", from.string()));
    std::ostringstream ss;
    ss << in.rdbuf();
    io::write_file_atomic(out_dir / name, ss.str());
  }
  // config.json last: a directory without it is not mistaken for a finished model.
  io::write_file_atomic(out_dir / "config.json", q.config_json.dump(2) + "\n");
}

}  // namespace octet::quant
