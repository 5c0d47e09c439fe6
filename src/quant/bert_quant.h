// Static post-training quantization of a BERT model directory: calibration statistics, scales
// from a QuantizationConfig, the quantized tensors, and quantized model directories.
//
//   // 1. Calibrate: run the FP32 model over training examples with a collector's tap.
//   octet::quant::CalibrationCollector col({.bins = 2048});
//   auto tap = col.tap();
//   for (auto& batch : batches) fp32_model.forward(batch, BertOutputKind::logits, tap);
//   nlohmann::json calib = col.to_json();          // + provenance keys, see make_calibration_doc
//   // 2. Quantize (in memory), run it, write it.
//   auto q = octet::quant::quantize_bert("models/sst2", config, &calib);
//   octet::BertModel m = octet::quant::load_in_memory(q, /*threads=*/1);
//   octet::quant::write_quantized_dir(q, "models/sst2-int8");   // BertModel::load reads it back
//
// Statistics are recorded at the *input* of every quantizable Linear (ActivationTap, octet/model.h)
// under its Hugging Face prefix; Q, K and V share one input, recorded once under "...query" and
// used for key and value too. The Q and K outputs are recorded under "...query:output" and
// "...key:output" (quantize.attention_scores: Q8BERT's 8-bit Q and K, stored as
// <prefix>.output_scale / .output_zero_point). For each tensor the collector keeps the observers
// asked for: "max" (running min / max), "ema" (decay) and "histogram" (`bins` per side; percentile,
// KL and MSE are all computed from this one histogram at quantize time).
//
// Scales (QUANT_SPEC A.1, A.4, C.2, C.5): the configured calibrator turns the statistics into a
// range with the configured threshold mode. Symmetric: T = max(|min|, |max|), input_scale =
// T / 127 (1 if T = 0), zero point 0, codes [-127, 127]. Asymmetric: asymmetric_params(min, max)
// (u8, zero point, nudged so 0.0 is exact). Weights: symmetric [-127, 127], per tensor or per
// output channel. Bias: int32 at scale input_scale * weight_scale[c] (static) or FP32 (dynamic).
// Embedding tables: int8 with one scale each.
//
// Errors: InvalidArgument for a bad config or calibration that does not fit (missing tensor
// statistics, different histogram bins or EMA decay than the config asks for, Q/K/V split by
// keep_fp32, missing Q / K output statistics); Unsupported for the attention context site and for
// attention_scores without static activations; ModelFormatError for malformed calibration files or
// model tensors; IoError from file access. Thread-compatible; the collector's tap is not
// thread-safe (forward() calls it from the calling thread).
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <vector>

#include "io/bert_config.h"
#include "models/bert.h"
#include "octet/model.h"
#include "quant/config.h"
#include "quant/observer.h"
#include "quant/quantizer.h"

namespace octet::quant {

inline constexpr const char* kCalibrationFormat = "octet-calibration";
inline constexpr int kCalibrationVersion = 1;
// Statistics of a Linear's output are recorded under its prefix + this suffix; the collector
// records the Q and K outputs ("bert.encoder.layer.<i>.attention.self.query:output", ".key:output")
// for quantize.attention_scores.
inline constexpr const char* kOutputSuffix = ":output";

struct CalibrationOptions {
  bool max = true;        // record "max" statistics
  bool ema = true;        // record "ema" statistics (decay below)
  bool histogram = true;  // record a histogram (percentile, kl, mse)
  double ema_decay = 0.9999;
  int bins = 2048;
};

class CalibrationCollector {
 public:
  explicit CalibrationCollector(const CalibrationOptions& options);
  // The tap to pass to BertModel::forward; records TapPoint::input tensors. Valid while the
  // collector lives.
  ActivationTap tap();
  // {"<prefix>": {"max": {...}, "ema": {...}, "histogram": {...}}, ...}
  nlohmann::json to_json() const;
  std::size_t tensors() const { return observers_.size(); }

 private:
  struct Set {
    std::unique_ptr<Observer> max, ema, histogram;
  };
  CalibrationOptions options_;
  std::map<std::string, Set> observers_;
  std::vector<float> packed_;
};

// A stable fingerprint of a weights file: its size and the FNV-1a 64-bit hash of its bytes, as
// {"bytes": N, "fnv1a64": "<16 hex digits>"}.
nlohmann::json file_fingerprint(const std::filesystem::path& file);

// Checks a calibration document's format, version and tensor statistics (each parses as its
// observer kind). Throws ModelFormatError naming `where` and the key.
void validate_calibration(const nlohmann::json& doc, const std::string& where);
nlohmann::json load_calibration(const std::filesystem::path& file);

// The range the config's calibrator and threshold mode give for one tensor's statistics
// (`stats` = one entry of the calibration's "tensors"). InvalidArgument if the statistics the
// calibrator needs were not recorded or were recorded with other parameters.
Range calibrated_range(const nlohmann::json& stats, const QuantizationConfig& cfg,
                       const std::string& tensor);

// The step and zero point quantize_bert stores for an activation whose calibrated range is r
// (<prefix>.input_scale / .input_zero_point): symmetric max(|min|, |max|) / 127 (1 for a zero
// range) and 0; asymmetric asymmetric_params(r.min, r.max).
struct ActivationParams {
  float scale = 1.0f;
  int32_t zero_point = 0;
};
ActivationParams activation_params(const Range& r, Scheme scheme);

// One Linear with static activations as quantize_bert stores it: int8 weights (`g`) and the
// int32 bias at scale input_scale * weight_scale[c], quantized with the reciprocals of exactly
// those stored values (the loader dequantizes it with layers::dequantize_static_bias).
// `what` names the Linear in errors (non-finite weights or biases).
struct StaticLinearInt8 {
  QuantizedWeights weights;
  std::vector<int32_t> bias;
};
StaticLinearInt8 quantize_static_linear(std::span<const float> w, std::span<const float> b,
                                        int64_t n, int64_t k, WeightGranularity g,
                                        float input_scale, const std::string& what);

// A quantized model in memory: what `octet quantize` writes.
struct QuantizedBert {
  io::BertConfig config;       // of the source model
  nlohmann::json config_json;  // config.json to write (with quantization_config)
  QuantizationConfig qconfig;
  models::MemoryTensors tensors;
  std::filesystem::path source_dir;
  int64_t fp32_encoder_bytes = 0;  // FP32 bytes of the encoder weights (embeddings + layers)
  int64_t int8_encoder_bytes = 0;  // the same tensors as stored here
};

// Quantizes the FP32 model in `model_dir` with `cfg`. `calibration` (a calibration document) is
// required for static activations and must come from the same weights file (fingerprint), unless
// it is null and activations are dynamic.
QuantizedBert quantize_bert(const std::filesystem::path& model_dir, const QuantizationConfig& cfg,
                            const nlohmann::json* calibration);

// Runs a quantized model without writing it (the same loader as BertModel::load of the written
// directory, so outputs are bit-identical).
// int8_attention: BertLoadOptions::int8_attention (Q K^T and P V on int8).
BertModel load_in_memory(const QuantizedBert& q, int threads, bool load_head = true,
                         bool int8_attention = false);

// Writes config.json, model.safetensors (atomically) and copies vocab.txt /
// tokenizer_config.json / special_tokens_map.json from the source. `out_dir` is created; it
// must differ from the source directory (InvalidArgument).
void write_quantized_dir(const QuantizedBert& q, const std::filesystem::path& out_dir);

}  // namespace octet::quant
