// Quantization-aware fine-tuning (Q8BERT, QUANT_SPEC A) on the libtorch BERT, and its export to
// the INT8 engine's static quantized model directory.
//
//   octet::train::QatOptions q;                         // Q8BERT defaults: symmetric, per tensor
//   octet::train::QatBert qat(model, config, q);         // wraps a BertForSequenceClassification
//   qat.set_step(step);                                  // before each training forward
//   torch::Tensor logits = qat.forward(ids, types, mask);   // fake-quantized forward pass
//   octet::train::export_qat(qat, config, "vocab.txt", "out/sst2-qat");   // `octet quantize`
//   format
//
// Fake quantization (FakeQuant): the forward pass calls the engine's quantizer
// (quant/quantizer.h: fake_quantize_symmetric / fake_quantize_asymmetric, quantize_weights +
// dequantize_symmetric) on the contiguous float buffer of the tensor, so the codes are the ones the
// INT8 engine computes, not a second implementation. The backward pass is the straight-through
// estimator: identity (Q8BERT) or clipped (zero gradient where the input was clamped to the
// range). Scales get no gradient.
//
// Where the quantizers sit: exactly where the engine's static INT8 graph quantizes
// (docs/quantization.md, "The INT8 graph"), so that the exported model reproduces the
// fake-quantized forward pass:
//   * the input of every Linear (Q, K and V share one input quantizer, as the engine's fused QKV
//     GEMM shares one input scale), the attention output, FFN in and out, pooler and classifier;
//     activation ranges are an EMA of each training batch's max|x| (and min / max for the
//     asymmetric scheme) with decay 0.9999, updated before the scale is read (A.2), through the
//     engine's own EMA observer (quant/observer.h), whose statistics become the calibration;
//   * every Linear weight from its current max|W| at every forward pass, per tensor (Q8BERT) or
//     per output channel;
//   * the word and position embedding tables, weights only, one scale per table.
//   * the Q and K projection outputs (Q8BERT's requantize_output: 8-bit inputs to Q K^T), each
//     with its own EMA range, recorded as "<prefix>:output"; exported as quantize.attention_scores
//     (the engine fake-quantizes Q and K in place after the QKV GEMM with those scales).
//     QatOptions::quantize_qk_outputs = false leaves them FP32.
//
// Engine-exact forward pass: once every site is active (training past every start step, or eval
// with every range observed), each value is computed by the INT8 engine's own code on the
// tensors' buffers, with the tensors the export would store: the int8 tables and
// layers::Embeddings (sum and LayerNorm), layers::LinearInt8 built from
// quant::quantize_static_linear (int8 weights, int32 bias at input_scale * weight_scale, the
// step of quant::activation_params from the site's range; Q, K and V fused as the loader fuses
// them) for every GEMM with its fused epilogue (bias, erf GELU / ReLU), ops::fake_quantize_static
// for the Q and K outputs, ops::self_attention (padded batch, `valid` lengths), the engine's
// LayerNorm and tanh. Each enters the graph through train/engine_fn.h: forward the engine's
// value, backward the gradient of the FP32 surrogate, which is the fake-quantized torch
// expression the pass computed before (fake-quantized input and weight, FP32 bias; torch's
// LayerNorm, GELU, softmax): the straight-through estimator, identity or clipped, as before.
// Dropout sits between the engine's pieces in training: after the embedding LayerNorm, on the
// attention-output and FFN-output GEMMs before the residual sum (the engine fuses the residual
// into the epilogue as a last float add, so the unfused sum is the same number), before the
// classifier, and on the attention probabilities, for which training computes attention with
// torch (the engine's attention has no dropout) whenever that dropout is > 0. So in eval mode the
// pass computes what the exported model computes on the active ISA; every real token's values do
// not depend on padding (row-wise ops, attention over each row's `valid` keys). Before every
// site is active (Q8BERT's classifier starts at step 200), the pass is the torch expression.
//
// Start steps: a quantizer is inactive (the layer runs in FP32 and its EMA is not updated) while
// the step set by set_step() is below its start step: `start_step` for every site, and
// `head_start_step` (Q8BERT: 200) for the classifier. In eval mode (the wrapped module's
// is_training() false) no EMA is updated; a site whose EMA has never been updated runs in FP32.
//
// Export (export_qat): every site must have been observed (InvalidArgument otherwise, naming the
// site and its start step). Writes <out>/fp32/ (the FP32 weights, save_pretrained),
// <out>/qat_calibration.json (an `octet calibrate` document whose "ema" statistics are the EMA
// ranges tracked in training, fingerprinted with <out>/fp32/model.safetensors) and the quantized
// model in <out> (quant::quantize_bert with calibrator "ema" + quant::write_quantized_dir), which
// BertModel::load, `octet eval` and `octet predict` run on the INT8 engine.
//
// Threading: like the wrapped module, not thread-safe.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "io/bert_config.h"
#include "quant/config.h"
#include "quant/observer.h"
#include "quant/quantizer.h"
#include "train/bert_torch.h"

namespace octet::train {

enum class SteMode { identity, clipped };

// What the fine-tuning simulates: Q8BERT's fake-quantized INT8 graph (QatBert, exported as a
// static INT8 model), or I-BERT's integer-only encoder (IntegerQatBert, train/integer_qat.h,
// exported as an integer-only model). The integer-only scheme is fixed (symmetric, per-channel
// weights, identity STE, every site from step 0, FP32 head): scheme, weights, ste, ema_decay
// and the start steps below apply to q8bert only.
enum class QatMode { q8bert, integer_only };

struct QatOptions {
  bool enabled = false;  // FinetuneOptions: run quantization-aware fine-tuning
  QatMode mode = QatMode::q8bert;
  double integer_momentum = 0.95;  // integer_only: EMA momentum of the activation ranges (I-BERT)
  quant::Scheme scheme =
      quant::Scheme::symmetric;  // activations: s8 [-127, 127] or u8 + zero point
  quant::WeightGranularity weights = quant::WeightGranularity::per_tensor;  // Q8BERT: per tensor
  SteMode ste = SteMode::identity;
  double ema_decay = 0.9999;
  int64_t start_step = 0;           // every site but the classifier
  int64_t head_start_step = 200;    // the classifier (Q8BERT's task head)
  bool quantize_qk_outputs = true;  // Q8BERT: the Q and K outputs too (requantize_output)
};

// Throws InvalidArgument naming the field (decay outside (0, 1), negative start steps).
void check_qat_options(const QatOptions& o);

std::string_view to_string(SteMode m);
std::string_view to_string(QatMode m);  // "q8bert", "integer-only"

// --- Fake-quantization ops (autograd) -----------------------------------------------------------

// Symmetric [-127, 127] with threshold T (inv_scale = 127 / T, T = 0 -> 1).
torch::Tensor fake_quantize_symmetric(const torch::Tensor& x, float threshold, SteMode ste);
// Asymmetric u8 over [min, max] (quant::asymmetric_params: widened to contain 0, zero point
// nudged).
torch::Tensor fake_quantize_asymmetric(const torch::Tensor& x, float min, float max, SteMode ste);
// A weight [n, k] fake-quantized with quant::quantize_weights (max|W| per tensor or per row);
// identity gradient.
torch::Tensor fake_quantize_weight(const torch::Tensor& w, quant::WeightGranularity g,
                                   const std::string& what);

// One activation site: an EMA observer of its input and the fake quantizer it drives.
class ActivationQuantizer {
 public:
  ActivationQuantizer(std::string name, const QatOptions& o, int64_t start_step);
  // Training: from start_step on, observes x (EMA update) then fake-quantizes it with the updated
  // range. Eval: fake-quantizes with the current range if any batch was observed, else returns x.
  torch::Tensor forward(const torch::Tensor& x, bool training, int64_t step);
  // forward()'s two halves, for a site known to be active: observe (training: the EMA update with
  // x) returns the range to use, fake_quantize quantizes x with it.
  quant::Range observe(const torch::Tensor& x, bool training);
  torch::Tensor fake_quantize(const torch::Tensor& x, const quant::Range& r) const;
  bool active(bool training, int64_t step) const;
  bool observed() const { return observer_->count() > 0; }
  const std::string& name() const { return name_; }
  int64_t start_step() const { return start_step_; }
  quant::Range range() const;               // the range the engine will use
  nlohmann::json statistics() const;        // {"ema": observer to_json}
  void restore(const nlohmann::json& ema);  // replaces the EMA state (observer JSON)

 private:
  std::string name_;
  quant::Scheme scheme_;
  SteMode ste_;
  int64_t start_step_;
  std::unique_ptr<quant::Observer> observer_;
};

// The fake-quantized forward pass of a BertForSequenceClassification (shares its parameters,
// dropout and LayerNorm modules).
class QatBert {
 public:
  QatBert(BertForSequenceClassification model, const io::BertConfig& config, QatOptions o);
  // Logits [B, num_labels]; shapes as BertForSequenceClassification::forward.
  torch::Tensor forward(const torch::Tensor& input_ids, torch::Tensor token_type_ids = {},
                        torch::Tensor attention_mask = {});
  void set_step(int64_t step) { step_ = step; }
  int64_t step() const { return step_; }
  const QatOptions& options() const { return o_; }
  // Every site has observed at least one batch: the model can be exported.
  bool ready() const;
  BertForSequenceClassification& model() { return model_; }

  // Activation sites in order, named by the Hugging Face prefix whose input they quantize (or
  // prefix + ":output" for the Q and K outputs).
  const std::vector<std::unique_ptr<ActivationQuantizer>>& sites() const { return sites_; }
  // The engine's quantization_config matching this training graph (static, calibrator ema).
  quant::QuantizationConfig quantization_config() const;
  // Restores every site's EMA from a calibration document written by export_qat
  // (qat_calibration.json), e.g. to rebuild the fake-quantized model of an exported directory.
  // ModelFormatError / InvalidArgument name the missing or malformed site.
  void restore(const nlohmann::json& calibration);
  // An `octet calibrate` document of the EMA ranges for the weights file `weights_file`.
  // InvalidArgument if a site was never observed.
  nlohmann::json calibration(const std::filesystem::path& weights_file) const;

 private:
  // Every site quantizes in this pass (training: past its start step; eval: observed).
  bool all_active(bool training) const;
  // The engine-exact forward pass (see the header comment), when all_active.
  torch::Tensor forward_engine(const torch::Tensor& input_ids, const torch::Tensor& token_type_ids,
                               const torch::Tensor& attention_mask);
  torch::Tensor linear(torch::nn::Linear lin, const std::string& name,
                       const torch::Tensor& x_quantized, bool active);
  torch::Tensor embed(torch::nn::Embedding emb, const std::string& name, const torch::Tensor& ids,
                      bool active);

  BertForSequenceClassification model_;
  io::BertConfig config_;
  QatOptions o_;
  int64_t step_ = 0;
  std::vector<std::unique_ptr<ActivationQuantizer>>
      sites_;  // per layer 4 (6 with Q, K outputs); pooler; classifier
};

// Writes <out_dir>/fp32/, <out_dir>/qat_calibration.json and the quantized model in <out_dir>
// (see the header comment). tokenizer_config, when set, is copied next to vocab.txt.
// The part both QAT exports share: writes <out_dir>/fp32/ (save_pretrained, F32, plus a copy of
// tokenizer_config when given), asks `calibration` for the calibration document of
// <out_dir>/fp32/model.safetensors, validates it (`what` names it in errors), writes it to
// <out_dir>/qat_calibration.json and returns it.
nlohmann::json write_qat_fp32_and_calibration(
    BertForSequenceClassification& model, const io::BertConfig& config,
    const std::filesystem::path& vocab, const std::filesystem::path& out_dir,
    const std::optional<std::filesystem::path>& tokenizer_config,
    const std::function<nlohmann::json(const std::filesystem::path&)>& calibration,
    const std::string& what);

void export_qat(QatBert& qat, const io::BertConfig& config, const std::filesystem::path& vocab,
                const std::filesystem::path& out_dir,
                const std::optional<std::filesystem::path>& tokenizer_config = std::nullopt);

}  // namespace octet::train
