// The integer-only (I-BERT) BERT encoder (issue 7, item 2; QUANT_SPEC B.5, B.10): from the
// embedding lookup to the last LayerNorm, every operation is an integer kernel; all float scales
// are folded into integer constants once, when the model is loaded (prepare). The pooler and the
// classifier stay FP32, as in I-BERT: the last LayerNorm's int64 output is dequantized once
// (models::BertEncoder::forward) and the head runs on those floats.
//
//   // A quantized model directory whose quantization_config has "mode": "integer-only" (written
//   // by `octet quantize --mode integer-only`, quant/integer_quant.h) loads through
//   // BertModel::load like any other; Precision::integer_only.
//   octet::BertModel m = octet::BertModel::load("models/sst2-ibert", {.threads = 4});
//
//   // The integer encoder itself, one sequence:
//   const models::IntegerBertEncoder& e = ...;
//   std::vector<int64_t> out(ids.size() * e.hidden());
//   e.encode(ids, types, out);        // out[i * H + c] * e.output_scale()[c] = hidden state
//
// Dataflow: int8 word, position and token-type tables (per-tensor scales) -> word + type as a
// 16-bit QuantAct with identity, then + position into the same 16-bit QuantAct (HF's
// embeddings_act1 used twice) -> i-LayerNorm (int64) -> 8 bits -> IntegerEncoderLayer x L (the
// last one stops at its i-LayerNorm: forward_ln). Sequences are encoded one at a time, unpadded;
// forward_dequantized runs the sequences of a batch in parallel (OpenMP over sequences, one
// thread per sequence), and every sequence's result is independent of the batch and of the
// thread count (bit-identical).
//
// Tensors of an integer-only directory (docs/model_format.md, "Integer-only models"), prefix
// "bert." everywhere except the classifier:
//   embeddings.{word,position,token_type}_embeddings.weight   I8 [rows, H], codes in [-127, 127]
//   embeddings.{word,position,token_type}_embeddings.weight_scale   F32 [1]
//   embeddings.sum_scale F32 [1] (the 16-bit sums), embeddings.LayerNorm.{weight,bias} F32 [H],
//   embeddings.LayerNorm.shift I32 [1]
//   encoder.layer.<i>.attention.self.{query,key,value}.{weight I8 [H, H], weight_scale F32 [H],
//     bias I32 [H] (at input_scale * weight_scale), output_scale F32 [1]}
//   encoder.layer.<i>.attention.self.query.input_scale F32 [1]   (the layer's 8-bit input)
//   encoder.layer.<i>.attention.output.dense.{weight, weight_scale, bias, input_scale (context),
//     output_scale (22-bit residual sum)}, attention.output.LayerNorm.{weight, bias, shift}
//   encoder.layer.<i>.intermediate.dense.{weight, weight_scale, bias, input_scale}
//   encoder.layer.<i>.output.dense.{weight, weight_scale, bias, input_scale (i-GELU output, 8
//     bits), output_scale (22-bit residual sum)}, output.LayerNorm.{weight, bias, shift}
//   pooler.dense.{weight,bias}, classifier.{weight,bias}   F32 (optional, as for FP32 models)
// The output of layer i is requantized at layer i + 1's input_scale; the embeddings' 8-bit output
// at layer 0's.
//
// Errors: load_bert_integer throws ModelFormatError naming the source, the tensor or key,
// expected and found (missing tensor, wrong dtype or shape, code -128, non-positive or non-finite
// scale, shift outside [0, 24], unknown quantization_config key or value), Unsupported for a
// hidden_act other than gelu (i-GELU approximates the erf GELU). The encoder is immutable after
// load; encode() is const and reentrant; its scratch is per thread, grown on demand and reused,
// so the steady state allocates nothing.
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "io/bert_config.h"
#include "layers/integer_encoder_layer.h"
#include "models/bert.h"
#include "octet/cpu.h"
#include "ops/integer_ops.h"

namespace octet::models {

inline constexpr const char* kIntegerOnlyMode = "integer-only";
inline constexpr int kEmbeddingSumBits = 16;  // QUANT_SPEC B.5
inline constexpr int kResidualSumBits = 22;   // B.10

// The static scales of the integer embeddings.
struct IntegerEmbeddingScales {
  float word = 0, position = 0, token_type = 0;  // table steps
  float sum = 0;                                 // 16-bit word + type + position
  float output = 0;                              // 8-bit LayerNorm output (= layer 0's input)
};

// Everything the integer encoder is built from (what an integer-only directory stores).
struct IntegerBertWeights {
  int hidden = 0;
  std::vector<int8_t> word, position, token_type;  // [rows, hidden]
  std::vector<float> ln_gamma, ln_beta;
  int ln_shift = 0;
  IntegerEmbeddingScales emb;
  std::vector<layers::QuantizedEncoderWeights> layers;
  std::vector<layers::IntegerLayerScales> scales;  // per layer; the last one's output unused
  std::vector<int> ln1_shift, ln2_shift;
};

class IntegerBertEncoder {
 public:
  // Folds every scale into integer constants (float64), kernels of `isa`. Throws InvalidArgument.
  static IntegerBertEncoder prepare(const IntegerBertWeights& w, Isa isa = active_isa());

  // One sequence: ids / types (same length, already validated against the tables) ->
  // out [tokens, hidden] int64 at output_scale(). Integer arithmetic only.
  void encode(std::span<const int32_t> ids, std::span<const int32_t> types,
              std::span<int64_t> out) const;
  // The real value of one unit of encode()'s column c.
  const std::vector<double>& output_scale() const;

  // The packed batch (offsets: B + 1 entries) -> hidden [tokens, hidden] FP32 (the one
  // dequantization), sequences spread over `threads` OpenMP threads.
  void forward_dequantized(std::span<const int32_t> ids, std::span<const int32_t> types,
                           std::span<const int64_t> offsets, float* hidden, int threads) const;

  int hidden() const { return hidden_; }
  int num_layers() const { return static_cast<int>(layers_.size()); }

 private:
  int hidden_ = 0;
  Isa isa_ = Isa::ref;
  std::vector<int8_t> word_, position_, token_type_;
  ops::ResidualParams word_type_, plus_position_;  // -> 16 bits at the sum scale
  ops::ILayerNormParams norm_;
  std::vector<int32_t> norm_m_, norm_s_;  // int64 -> 8 bits
  std::vector<layers::IntegerEncoderLayer> layers_;
};

// The encoder path's signature carries integers only (checked at compile time; the disassembly
// check, scripts/check_integer_only.sh, covers its body).
static_assert(
    std::is_same_v<decltype(&IntegerBertEncoder::encode),
                   void (IntegerBertEncoder::*)(std::span<const int32_t>, std::span<const int32_t>,
                                                std::span<int64_t>) const>);

// True when a quantization_config selects the integer-only mode ("mode": "integer-only").
bool is_integer_only_config(const nlohmann::json& qconfig);
// The quantization_config an integer-only directory carries (what load_bert_integer accepts).
nlohmann::json integer_only_config(double ema_momentum);

// Builds the integer-only encoder (and the FP32 head when load_head) of an integer-only
// directory. `config_where` names config.json in messages about quantization_config.
BertEncoder load_bert_integer(const io::BertConfig& config, const nlohmann::json& qconfig,
                              const TensorSource& weights, bool load_head,
                              const std::string& config_where = "config.json");

}  // namespace octet::models
