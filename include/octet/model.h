// octet::BertModel: a BERT-family encoder (Hugging Face layout) loaded from a model directory
// and run on the CPU in FP32 or in INT8 (Q8BERT dynamic quantization).
//
//   octet::BertModel model = octet::BertModel::load("models/sst2", {.threads = 4});
//   std::vector<octet::BertSequence> batch = {{ids_a, types_a}, {ids_b, {}}};  // any lengths
//   octet::BertOutputs out = model.forward(batch, octet::BertOutputKind::logits |
//                                                 octet::BertOutputKind::mean_pooled);
//   float first_logit = out.logits[0];                  // [B, num_labels], row-major
//
// Model directory: config.json + model.safetensors (see io/model_dir.h). Weights may be F32,
// F16 or BF16 (converted to FP32 at load), with or without the "bert." name prefix; every tensor
// is checked against config.json. Extra tensors (MLM head, position_ids) are ignored. Without
// pooler.dense the pooled vector and logits are unavailable; without classifier.* the logits are.
//
// Precision (BertLoadOptions::precision):
//   fp32          every operation in FP32.
//   int8_dynamic  Q8BERT's post-training "DQ" baseline: every Linear (fused QKV, attention
//                 output, FFN in and out, pooler, classifier) runs as an INT8 GEMM with weights
//                 quantized once at load (symmetric, [-127, 127], per output channel, or per
//                 tensor with per_channel = false) and activations quantized per call with a
//                 dynamic per-tensor scale max|x| / 127; the int32 result is dequantized with
//                 the FP32 bias (and GELU / residual) in the GEMM epilogue. The word and position
//                 embedding tables are int8 weight-only (one scale each); the token-type table,
//                 softmax, attention, LayerNorm, GELU and tanh stay FP32. Weights are packed
//                 for the ISA active at load (octet::set_max_isa before load() to choose).
//                 The activation scale is taken over the whole packed batch, so a sequence's
//                 INT8 outputs vary (within quantization noise) with the rest of its batch.
//   int8_static   reported by precision() for a quantized model directory (config.json holds a
//                 `quantization_config`, written by `octet quantize`; docs/quantization.md):
//                 int8 weights, int32 biases and calibrated activation scales are read from the
//                 file, s8 (symmetric) or u8 (asymmetric, zero point) activations are quantized
//                 with those fixed scales; layers listed in keep_fp32 run in FP32. A quantized
//                 directory whose config says "activations": "dynamic" reports int8_dynamic. A
//                 quantized directory always loads as stored: options.precision must be fp32 and
//                 per_channel true (the defaults), else InvalidArgument.
//   integer_only  reported for a quantized directory whose quantization_config has "mode":
//                 "integer-only" (`octet quantize --mode integer-only`): I-BERT, the encoder from
//                 the embedding lookup to the last LayerNorm in integer arithmetic only, scales
//                 folded into integer multipliers at load; the pooler and classifier stay FP32
//                 (models/bert_integer.h, docs/integer_only.md). Sequences run one per OpenMP
//                 thread; results do not depend on the batch or the thread count.
// Inputs: a batch of already tokenized sequences of any lengths in [1, max_position_embeddings];
// token_type_ids may be empty (all zeros) or have the same length as input_ids. Sequences are
// never padded to a common length: the valid tokens of all sequences are packed for the dense
// layers and attention runs per sequence, so padding costs nothing and cannot leak.
// Outputs (all FP32, row-major, B = batch size, H = hidden_size, T_b = length of sequence b):
//   logits        [B, num_labels]  classifier(pooled); regression models: [B, 1] scores
//   last_hidden   B arrays [T_b, H], the encoder output per token
//   pooled        [B, H]           tanh(pooler.dense(hidden of token 0))
//   mean_pooled   [B, H]           mean of last_hidden over the T_b tokens of each sequence
// Errors: InvalidArgument for bad inputs (naming the sequence and position: id outside the
// vocabulary, type id outside type_vocab_size, a sequence empty or longer than
// max_position_embeddings, mismatched type-id length, or asking for an output the model lacks);
// ModelFormatError / IoError from load() naming the file, tensor, expected and found.
//
// Ownership and threading: BertModel owns its weights (reordered once at load into the layout
// the GEMM library prefers) and is immutable after load(). forward() is const and may be called
// concurrently from several threads; each call takes a scratch workspace from an internal pool
// (allocated on first use and reused, so steady-state calls do not allocate per layer) and runs
// its OpenMP parallel regions with `threads` threads; it sets the calling thread's OpenMP
// thread count (omp_set_num_threads) to that value, which oneDNN follows. Movable, not
// copyable.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <span>
#include <string_view>
#include <vector>

namespace octet {

namespace io {
struct BertConfig;
}

namespace models {
struct BertEncoder;
}
class BertModel;
namespace models {
BertModel make_model(BertEncoder encoder, int threads);
}

enum class Precision { fp32, int8_dynamic, int8_static, integer_only };

// Where forward() shows an activation to an ActivationTap.
enum class TapPoint { input, output };
// Called synchronously, in graph order, during forward() at the input and the output of each
// quantizable layer, named by Hugging Face parameter prefix: "bert.encoder.layer.<i>.attention.
// self.query" (input: the layer's input, shared by query, key and value, reported once under
// "query"; output: each projection), "...attention.output.dense" (output: x + dense(ctx), the
// residual sum before LayerNorm), "...intermediate.dense" (output after the activation),
// "...output.dense" (output: residual sum before LayerNorm), "bert.pooler.dense" (output after
// tanh), "classifier" (output: logits) and "bert.embeddings" (output only, after LayerNorm).
// data: rows x cols FP32, row stride ld, valid only during the call; rows = the batch's packed
// tokens (or the batch size for the head). Used by calibration and the per-layer comparison.
using ActivationTap = std::function<void(std::string_view name, TapPoint point, const float* data,
                                         int64_t rows, int64_t cols, std::ptrdiff_t ld)>;

struct BertLoadOptions {
  // OpenMP threads used by forward(); 0 keeps the OpenMP default (OMP_NUM_THREADS or all cores).
  int threads = 0;
  // Load the pooler and classifier if present; false gives an encoder-only model.
  bool load_head = true;
  Precision precision = Precision::fp32;
  // int8_dynamic: one weight scale per output channel (true) or per matrix (false, as Q8BERT).
  bool per_channel = true;
  // INT8 models (int8_dynamic, or a quantized directory other than integer-only): run the two
  // attention matmuls, Q K^T and P V, on int8 with int32 accumulation (Bhandare et al.), with
  // dynamic per-row Q, per-key K and per-channel V steps and u8 probabilities, instead of FP32
  // (Q8BERT's choice and the default). Faster; accuracy measured in docs/results/accuracy.md.
  bool int8_attention = false;
};

// What forward() computes; combine with |.
enum class BertOutputKind : unsigned {
  logits = 1u << 0,
  last_hidden = 1u << 1,
  pooled = 1u << 2,
  mean_pooled = 1u << 3,
};
constexpr BertOutputKind operator|(BertOutputKind a, BertOutputKind b) {
  return static_cast<BertOutputKind>(static_cast<unsigned>(a) | static_cast<unsigned>(b));
}
constexpr bool has(BertOutputKind set, BertOutputKind k) {
  return (static_cast<unsigned>(set) & static_cast<unsigned>(k)) != 0;
}

// How forward() lays out a batch.
//   none:    the valid tokens of all sequences back to back (packed); attention runs per
//            sequence, and nothing is computed for padding. The default and the fast path.
//   longest: every sequence padded with config().pad_token_id to the batch's longest, the
//            layout of padded engines (PyTorch or ONNX Runtime fed a [B, T] tensor and an
//            attention mask): the pad rows run through every GEMM, LayerNorm and activation
//            and attend to the valid keys; the outputs are those of the valid tokens. A
//            baseline, for measuring what packing and length sorting buy. Outputs equal none's
//            up to float rounding, except that dynamic INT8's per-batch activation scales also
//            see the pad rows (as in padded engines). Not supported by integer-only models
//            (InvalidArgument), whose encoder runs one sequence at a time.
enum class Padding { none, longest };

// One tokenized sequence; the spans must stay valid during forward().
struct BertSequence {
  std::span<const int32_t> input_ids;
  std::span<const int32_t> token_type_ids;  // empty: all zeros
};

struct BertOutputs {
  int64_t batch = 0;
  int64_t hidden_size = 0;
  int64_t num_labels = 0;
  std::vector<float> logits;                    // [batch, num_labels] if requested
  std::vector<std::vector<float>> last_hidden;  // batch arrays of [T_b, hidden_size]
  std::vector<float> pooled;                    // [batch, hidden_size]
  std::vector<float> mean_pooled;               // [batch, hidden_size]
};

class BertModel {
 public:
  // Loads <dir>/config.json and <dir>/model.safetensors. Throws IoError, ModelFormatError,
  // Unsupported (e.g. an activation Octet lacks) or InvalidArgument (bad options).
  static BertModel load(const std::filesystem::path& dir, const BertLoadOptions& options = {});

  BertModel(BertModel&&) noexcept;
  BertModel& operator=(BertModel&&) noexcept;
  ~BertModel();

  const io::BertConfig& config() const;  // fields: include "io/bert_config.h"
  // Number of parameters loaded (embeddings, encoder, and the head if loaded).
  int64_t parameter_count() const;
  bool has_pooler() const;
  bool has_classifier() const;
  int threads() const;
  Precision precision() const;

  BertOutputs forward(std::span<const BertSequence> batch, BertOutputKind what,
                      Padding padding = Padding::none) const;
  // The same, into `out`, whose vectors are overwritten in place (their capacity reused; outputs
  // not requested are emptied): with a reused `out`, a steady state of calls no larger than an
  // earlier one allocates nothing in Octet's INT8 and integer-only paths (the FP32 GEMMs are
  // oneDNN's, which allocates per call; tests/runtime/steady_state_alloc_test.cc).
  void forward(std::span<const BertSequence> batch, BertOutputKind what, Padding padding,
               BertOutputs& out) const;
  // Packed, calling `tap` at every quantizable layer (see ActivationTap).
  BertOutputs forward(std::span<const BertSequence> batch, BertOutputKind what,
                      const ActivationTap& tap) const;

 private:
  void forward(std::span<const BertSequence> batch, BertOutputKind what, Padding padding,
               const ActivationTap* tap, BertOutputs& out) const;
  struct Impl;
  friend BertModel models::make_model(models::BertEncoder encoder, int threads);
  explicit BertModel(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace octet
