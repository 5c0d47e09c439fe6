// Calibration and quantization for the integer-only (I-BERT) mode (issue 7, items 2 and 3a;
// QUANT_SPEC B.2, B.5, B.10): static ranges from an EMA of per-batch min and max (momentum
// 0.95, I-BERT's QuantAct), recorded on the FP32 model, then a quantized model directory that
// models::load_bert_integer (through BertModel::load) runs integer-only.
//
//   octet::quant::IntegerCalibrationCollector col("models/sst2");     // momentum 0.95
//   auto tap = col.tap();
//   for (auto& batch : batches) {
//     col.observe_embeddings(batch);                                  // the 16-bit sums
//     fp32_model.forward(batch, BertOutputKind::logits, tap);         // every other activation
//   }
//   nlohmann::json calib = ...;   // make_calibration_doc fields + {"tensors": col.to_json()}
//   auto q = octet::quant::quantize_bert_integer("models/sst2", calib);
//   octet::BertModel m = octet::quant::load_integer_in_memory(q, /*threads=*/1);
//   octet::quant::write_quantized_dir(q, "models/sst2-ibert");
//
// Statistics (one "ema" observer per tensor, CalibratorKind::ema with decay = momentum, one
// update per forward batch): "<prefix>" for the input of every quantizable layer (as the static
// calibration), "<prefix>:output" for its output (Q, K, V projections; the residual sums before
// each LayerNorm; FFN 1 after GELU), and "bert.embeddings.sum" for word + position + token type
// before the embedding LayerNorm. A calibration written this way also serves the static INT8 path
// with the ema calibrator (same input entries).
//
// Scales: T = max(|ema min|, |ema max|); step T / 127 for 8-bit activations, T / 32767 for the
// 16-bit embedding sums, T / (2^21 - 1) for the 22-bit residual sums (1 when T = 0). Weights:
// int8 symmetric per output channel, int32 biases; embedding tables int8 with one scale each
// (B.5). LayerNorm overflow shifts: 0 (Octet's i-LayerNorm sums squares in int64, so no shift is
// needed and 0 is the most precise). Head (pooler, classifier): FP32, copied.
//
// Errors: InvalidArgument for a calibration without the statistics this mode needs (naming the
// tensor and how to record it), from other weights (fingerprint), or a source model that is
// already quantized; Unsupported for a hidden_act other than gelu; ModelFormatError / IoError
// from the model files.
#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <vector>

#include "layers/bert_layers.h"
#include "octet/model.h"
#include "quant/bert_quant.h"
#include "quant/observer.h"

namespace octet::quant {

inline constexpr double kIbertEmaMomentum = 0.95;
inline constexpr const char* kEmbeddingSumTensor = "bert.embeddings.sum";

class IntegerCalibrationCollector {
 public:
  // Reads the FP32 embedding tables of `model_dir` (for the embedding sums). Throws
  // InvalidArgument for a momentum outside (0, 1).
  explicit IntegerCalibrationCollector(const std::filesystem::path& model_dir,
                                       double momentum = kIbertEmaMomentum);
  ActivationTap tap();
  // The embedding sums of one batch (validated ids, as BertModel::forward takes them).
  void observe_embeddings(std::span<const BertSequence> batch);
  nlohmann::json to_json() const;  // {"<name>": {"ema": {...}}, ...}
  std::size_t tensors() const { return observers_.size(); }
  double momentum() const { return momentum_; }

 private:
  void observe(const std::string& name, const float* data, int64_t rows, int64_t cols,
               std::ptrdiff_t ld);
  double momentum_;
  layers::Embeddings emb_;
  int64_t max_positions_ = 0;
  std::map<std::string, std::unique_ptr<Observer>> observers_;
  std::vector<float> packed_;
};

// The static step of an activation of `bits` bits (8, 16 or 22) from its EMA observer, as
// quantize_bert_integer computes it: T / (2^(bits-1) - 1) with T the observer's symmetric range
// (1 when T = 0). Exposed so that integer-only-aware training (train/integer_qat.h) quantizes with
// the very steps the exported model will hold.
float integer_activation_step(const Observer& ema, int bits);

// Quantizes the FP32 model in `model_dir` for integer-only execution with a calibration document
// recorded by IntegerCalibrationCollector (`octet calibrate --calibrator ema-minmax`).
QuantizedBert quantize_bert_integer(const std::filesystem::path& model_dir,
                                    const nlohmann::json& calibration);

// Runs it without writing it (the loader BertModel::load uses, so outputs are bit-identical).
BertModel load_integer_in_memory(const QuantizedBert& q, int threads, bool load_head = true);

}  // namespace octet::quant
