// QuantizationConfig: what to quantize and how, as stored in a quantized model's config.json
// (`quantization_config`) and accepted by the CLI. docs/quantization.md has the JSON schema.
//
//   auto cfg = octet::quant::parse_quantization_config(json, "config.json: quantization_config",
//                                                      /*model_file=*/true);
//   if (cfg.quantizes("bert.encoder.layer.0.attention.self.query")) { ... }
//   nlohmann::json out = octet::quant::to_json(cfg);   // parse(to_json(c)) == c
//
// Parsing is strict: an unknown key, a wrong type or a bad value throws (InvalidArgument for
// user-supplied files, ModelFormatError for model files) naming the key, the value found and what
// was expected. Missing keys take the documented defaults. Plain value type; no shared state.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "quant/observer.h"
#include "quant/quantizer.h"

namespace octet::quant {

enum class ActivationMode { dynamic, static_ };  // "dynamic" / "static"
enum class Scheme { symmetric, asymmetric };

// The places a BERT model can be quantized, by Hugging Face parameter prefix
// (`bert.encoder.layer.<i>.` + the suffix; the heads and embeddings as written).
enum class Site {
  query,                // attention.self.query
  key,                  // attention.self.key
  value,                // attention.self.value
  attention_output,     // attention.output.dense
  intermediate,         // intermediate.dense (FFN 1)
  output,               // output.dense (FFN 2)
  pooler,               // bert.pooler.dense
  classifier,           // classifier, qa_outputs
  word_embeddings,      // bert.embeddings.word_embeddings
  position_embeddings,  // bert.embeddings.position_embeddings
  attention_scores,     // the Q K^T matmul of bert.encoder.layer.<i>.attention.self
  attention_context,    // the P V matmul of bert.encoder.layer.<i>.attention.self
};
inline constexpr int kNumSites = 12;
std::string_view to_string(Site s);

// The site of a parameter prefix ("bert.encoder.layer.3.attention.self.query",
// "bert.pooler.dense", "classifier"); nullopt for anything that is never quantized (LayerNorm,
// token-type embeddings, unknown names). The two matmul sites have no parameters and are never
// returned.
std::optional<Site> classify_prefix(std::string_view prefix);

// Glob match over the whole string: `*` any run of characters (including dots), `?` one character.
bool glob_match(std::string_view pattern, std::string_view text);

struct QuantizationConfig {
  ActivationMode activations = ActivationMode::static_;
  Scheme scheme = Scheme::symmetric;
  WeightGranularity weights = WeightGranularity::per_channel;
  CalibratorSpec calibrator;  // default: max
  ThresholdMode threshold_mode = ThresholdMode::symmetric;
  // Indexed by Site: every Linear and the word + position embeddings on, the matmuls off.
  bool sites[kNumSites] = {true, true, true, true, true,  true,
                           true, true, true, true, false, false};
  std::vector<std::string> keep_fp32;  // glob patterns over parameter prefixes

  bool enabled(Site s) const { return sites[static_cast<int>(s)]; }
  // True when `prefix` names a quantizable site that is enabled and matches no keep_fp32 pattern.
  bool quantizes(std::string_view prefix) const;
  // True when the score matmul of the attention `self_prefix` ("bert.encoder.layer.<i>.
  // attention.self") reads quantized Q and K: attention_scores enabled and no keep_fp32 pattern
  // matching `self_prefix`.
  bool quantizes_scores(std::string_view self_prefix) const;

  bool operator==(const QuantizationConfig& o) const;
};

// Checks cross-field rules (a symmetric scheme needs the symmetric or conjugate threshold mode;
// calibrator values in range). Throws InvalidArgument naming the key.
void validate(const QuantizationConfig& c);

// Throws Unsupported (naming `where`) for what the engine cannot run: the attention context
// matmul (P V stays FP32, as in Q8BERT), and quantized attention scores without static
// activations (the Q and K output scales are calibrated; for dynamic int8 attention matmuls load
// the model with BertLoadOptions::int8_attention instead).
void check_supported(const QuantizationConfig& c, std::string_view where);

QuantizationConfig parse_quantization_config(const nlohmann::json& j, std::string_view where,
                                             bool model_file = false);
nlohmann::json to_json(const QuantizationConfig& c);

}  // namespace octet::quant
