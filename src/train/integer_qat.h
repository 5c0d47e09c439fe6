// Integer-only-aware fine-tuning (I-BERT, QUANT_SPEC B.11; issue 7, item 3b) on the libtorch
// BERT, and its export to the integer-only engine's model directory (`octet quantize --mode
// integer-only` format).
//
//   octet::train::IntegerQatBert iq(model, config);           // momentum 0.95 (I-BERT)
//   torch::Tensor logits = iq.forward(ids, types, mask);      // the engine's integer forward
//   loss.backward();                                          // straight-through gradients
//   octet::train::export_integer_qat(iq, config, "vocab.txt", "out/sst2-ibert");
//   // octet eval --model out/sst2-ibert runs it on IntegerBertEncoder.
//
// Forward pass: at every site where models::IntegerBertEncoder works in integers, the values are
// computed by the engine's own code on the tensors' buffers, with the constants the engine's
// loader would fold from the same scales: int8 embedding tables and per-channel int8 weights with
// int32 biases (layers::quantize_symmetric_int8, IntegerEncoderLayer::quantize_linear), the 16-
// and 22-bit requantizing residual additions (ops::prepare_residual / dyadic, ops::residual_add),
// the INT8 GEMM kernel of the kernel table (s8 x s8 and u8 x s8, int32 out), i-softmax
// (ops::prepare_iexp, ops::isoftmax with the sequence's length as `valid`), i-LayerNorm
// (ops::prepare_ilayernorm, shift 0, ops::ilayernorm), i-GELU (ops::prepare_igelu, ops::igelu)
// and the wide requantizations to 8 bits (ops::requantize_wide). The last LayerNorm's int64
// output is dequantized as the engine does; pooler and classifier run in FP32 on it (as the
// engine's head). Sequences are padded to the batch's longest: Linear layers and LayerNorms are
// row-wise and the softmax ignores padded keys, so every real token's integers are those of the
// engine, which runs each sequence unpadded (the parity test checks it on all of SST-2 dev).
//
// Backward pass: straight-through. Each integer result enters the graph through an autograd
// function whose forward calls the engine and whose backward hands the gradient unchanged to an
// FP32 "surrogate": the FP32 operation the integer one approximates (Linear with the int8
// weights dequantized, softmax with the additive mask, LayerNorm, GELU, residual sums),
// evaluated by torch on the integer path's dequantized inputs. So the gradient of i-GELU is
// GELU's at that point, of i-softmax softmax's, of i-LayerNorm LayerNorm's, and every quantizer
// passes the gradient through unclipped (I-BERT's STE, B.1). Weights get the gradient of their
// dequantized int8 values (identity). Scales get none.
//
// Activation ranges: one EMA observer (quant/observer.h, CalibratorKind::ema, decay = momentum,
// 0.95 by default) per quantized activation, named as `octet calibrate --calibrator ema-minmax`
// names them ("bert.embeddings.sum", "<layer>attention.self.query", "...query:output",
// "...key:output", "...value:output", "...attention.output.dense" and ":output",
// "...intermediate.dense", "...output.dense" and ":output"). In training mode each observer is
// updated with the batch's real (non-padded) values before its step is read (I-BERT's QuantAct);
// the step is quant::integer_activation_step, exactly what quantize_bert_integer derives from the
// exported statistics. In eval mode nothing is updated; running before every site has observed a
// batch is an InvalidArgument.
//
// Not simulated: dropout inside the encoder (the integer pipeline has no place for a dropout
// rescale; the classifier's dropout stays). The embedding-sum observer sees the FP32 sum of the
// three table rows, as the calibration collector does.
//
// Threading: the engine calls run on the calling thread; not thread-safe (like the module).
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
#include "quant/observer.h"
#include "train/bert_torch.h"

namespace octet::train {

inline constexpr double kIntegerQatMomentum = 0.95;  // I-BERT's QuantAct

// One quantized activation: its EMA observer and its width.
struct IntegerQatSite {
  std::string name;
  int bits = 8;
  std::unique_ptr<quant::Observer> observer;
};

class IntegerQatBert {
 public:
  // Throws InvalidArgument for a momentum outside (0, 1), Unsupported for a hidden_act other than
  // gelu (i-GELU approximates the erf GELU only).
  IntegerQatBert(BertForSequenceClassification model, const io::BertConfig& config,
                 double momentum = kIntegerQatMomentum);
  // Logits [B, num_labels]; input_ids [B, T] int64, token_type_ids (default zeros) and
  // attention_mask (default ones; 1 = token, 0 = padding, padding at the end of each row).
  torch::Tensor forward(const torch::Tensor& input_ids, torch::Tensor token_type_ids = {},
                        torch::Tensor attention_mask = {});
  // Every site has observed a batch: the integer forward can run in eval mode and be exported.
  bool ready() const;
  BertForSequenceClassification& model() { return model_; }
  double momentum() const { return momentum_; }
  const std::vector<IntegerQatSite>& sites() const { return sites_; }
  int64_t batches() const { return batches_; }  // training batches observed

  // An `octet calibrate --calibrator ema-minmax` document of the EMA ranges for `weights_file`.
  // InvalidArgument if a site was never observed.
  nlohmann::json calibration(const std::filesystem::path& weights_file) const;
  // Replaces every site's EMA with a document written by calibration() (e.g. to rebuild the
  // simulated model of an exported directory). ModelFormatError names a missing site.
  void restore(const nlohmann::json& calibration);

 private:
  float step(std::size_t site, const std::function<torch::Tensor()>& real_value,
             const torch::Tensor& valid, bool training);

  BertForSequenceClassification model_;
  io::BertConfig config_;
  double momentum_;
  int64_t batches_ = 0;
  std::vector<IntegerQatSite> sites_;  // embeddings sum, then 9 per layer
};

// Writes <out_dir>/fp32/ (the FP32 weights, save_pretrained F32), <out_dir>/qat_calibration.json
// (the EMA ranges, fingerprinted with fp32/model.safetensors) and the integer-only model in
// <out_dir> (quant::quantize_bert_integer + write_quantized_dir): the directory `octet quantize
// --mode integer-only --model OUT/fp32 --calibration OUT/qat_calibration.json` would write.
void export_integer_qat(
    IntegerQatBert& qat, const io::BertConfig& config, const std::filesystem::path& vocab,
    const std::filesystem::path& out_dir,
    const std::optional<std::filesystem::path>& tokenizer_config = std::nullopt);

}  // namespace octet::train
