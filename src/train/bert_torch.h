// BERT as libtorch modules, for training, with Hugging Face's parameter names and numerics.
//
//   octet::io::BertConfig config = ...;                 // e.g. io::load_bert_config(path)
//   octet::train::BertForSequenceClassification model(config);
//   auto out = model->forward(input_ids, token_type_ids, attention_mask);   // [B, T] int64 each
//   torch::Tensor loss = torch::cross_entropy(out.logits, labels);
//   octet::train::save_pretrained(model, config, "vocab.txt", "out/sst2", SaveDType::F32);
//   octet::train::PretrainedBert p = octet::train::load_pretrained("out/sst2");
//
// Module tree and parameter names are those of transformers' BertForSequenceClassification
// (bert.embeddings.word_embeddings.weight, bert.encoder.layer.{i}.attention.self.query.weight,
// ..., bert.pooler.dense.weight, classifier.weight), so that a saved directory loads in
// octet::BertModel and in Hugging Face unchanged, and Hugging Face checkpoints load here.
// Numerics follow Hugging Face: post-LayerNorm encoder layers, GELU in the activation the config
// names (erf form for "gelu"), softmax attention with an additive mask of the float minimum on
// padded keys, tanh pooler over token 0; dropout after embeddings, on attention probabilities,
// after each dense output and before the classifier (rates from the config's
// hidden_dropout_prob / attention_probs_dropout_prob / classifier_dropout, HF defaults 0.1).
// Shapes: input_ids, token_type_ids (may be undefined: all zeros) and attention_mask (may be
// undefined: all ones; 1 = real token, 0 = padding) are [B, T] integer tensors; outputs are
// float [B, T, H] (last_hidden), [B, H] (pooled), [B, num_labels] (logits).
// Modules follow libtorch's rules: not thread-safe for concurrent training; eval() disables
// dropout.
#pragma once

#include <torch/torch.h>

#include <filesystem>
#include <string>
#include <vector>

#include "io/bert_config.h"

namespace octet::train {

// Precision of the matrix products of the forward and backward passes (every Linear, the
// attention score and context products, the MLM decoder). f32: everything in FP32 (default).
// bf16: the operands are rounded to bfloat16 for the product (accumulation in FP32, the result
// returned in FP32); parameters, optimizer state, LayerNorm, softmax, GELU and the loss stay
// FP32 ("mixed precision"). On CPUs with AMX or AVX-512 BF16, libtorch's bf16 products run several
// times faster than FP32. A process-wide setting read at every forward pass (training is
// single-model per process); not thread-safe against concurrent changes.
enum class MatmulPrecision { f32, bf16 };
void set_matmul_precision(MatmulPrecision p);
MatmulPrecision matmul_precision();
// y = x W^T + b under the current matmul precision.
torch::Tensor mixed_linear(torch::nn::Linear l, const torch::Tensor& x);
// torch::matmul under the current matmul precision.
torch::Tensor mixed_matmul(const torch::Tensor& a, const torch::Tensor& b);

// Dropout rates of a BertConfig (raw fields, Hugging Face defaults when absent).
struct BertDropout {
  double hidden = 0.1;
  double attention = 0.1;
  double classifier = 0.1;
  static BertDropout from_config(const io::BertConfig& c);
};

class BertEmbeddingsImpl : public torch::nn::Module {
 public:
  BertEmbeddingsImpl(const io::BertConfig& c, const BertDropout& d);
  torch::Tensor forward(const torch::Tensor& input_ids, const torch::Tensor& token_type_ids);

  torch::nn::Embedding word_embeddings{nullptr}, position_embeddings{nullptr},
      token_type_embeddings{nullptr};
  torch::nn::LayerNorm LayerNorm{nullptr};  // HF's spelling, part of the parameter names
  torch::nn::Dropout dropout{nullptr};
};
TORCH_MODULE(BertEmbeddings);

// attention.self: separate query / key / value projections and scaled dot-product attention.
class BertSelfAttentionImpl : public torch::nn::Module {
 public:
  BertSelfAttentionImpl(const io::BertConfig& c, const BertDropout& d);
  // hidden [B, T, H]; additive_mask [B, 1, 1, T] (0 or the float minimum).
  torch::Tensor forward(const torch::Tensor& hidden, const torch::Tensor& additive_mask);

  torch::nn::Linear query{nullptr}, key{nullptr}, value{nullptr};
  torch::nn::Dropout dropout{nullptr};
  int64_t heads = 0, head_dim = 0;
};
TORCH_MODULE(BertSelfAttention);

// attention.output and output: dense -> dropout -> LayerNorm(x + residual).
class BertDenseResidualImpl : public torch::nn::Module {
 public:
  BertDenseResidualImpl(int64_t in, const io::BertConfig& c, const BertDropout& d);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& residual);

  torch::nn::Linear dense{nullptr};
  torch::nn::LayerNorm LayerNorm{nullptr};
  torch::nn::Dropout dropout{nullptr};
};
TORCH_MODULE(BertDenseResidual);

class BertAttentionImpl : public torch::nn::Module {
 public:
  BertAttentionImpl(const io::BertConfig& c, const BertDropout& d);
  torch::Tensor forward(const torch::Tensor& hidden, const torch::Tensor& additive_mask);

  BertSelfAttention self{nullptr};
  BertDenseResidual output{nullptr};
};
TORCH_MODULE(BertAttention);

// intermediate: dense -> activation.
class BertIntermediateImpl : public torch::nn::Module {
 public:
  explicit BertIntermediateImpl(const io::BertConfig& c);
  torch::Tensor forward(const torch::Tensor& x);

  torch::nn::Linear dense{nullptr};
  io::Activation activation = io::Activation::gelu;
};
TORCH_MODULE(BertIntermediate);

class BertLayerImpl : public torch::nn::Module {
 public:
  BertLayerImpl(const io::BertConfig& c, const BertDropout& d);
  torch::Tensor forward(const torch::Tensor& hidden, const torch::Tensor& additive_mask);

  BertAttention attention{nullptr};
  BertIntermediate intermediate{nullptr};
  BertDenseResidual output{nullptr};
};
TORCH_MODULE(BertLayer);

class BertEncoderImpl : public torch::nn::Module {
 public:
  BertEncoderImpl(const io::BertConfig& c, const BertDropout& d);
  torch::Tensor forward(torch::Tensor hidden, const torch::Tensor& additive_mask);

  torch::nn::ModuleList layer{nullptr};  // of BertLayer
};
TORCH_MODULE(BertEncoder);

class BertPoolerImpl : public torch::nn::Module {
 public:
  explicit BertPoolerImpl(const io::BertConfig& c);
  torch::Tensor forward(const torch::Tensor& last_hidden);  // tanh(dense(last_hidden[:, 0]))

  torch::nn::Linear dense{nullptr};
};
TORCH_MODULE(BertPooler);

struct BertTorchOutputs {
  torch::Tensor last_hidden;  // [B, T, H]; rows of padded positions are meaningless
  torch::Tensor pooled;       // [B, H]
  torch::Tensor logits;       // [B, num_labels] (classification) or [B, 1] (regression)
};

// The bare encoder with pooler ("bert." in the full model's names).
class BertTorchModelImpl : public torch::nn::Module {
 public:
  BertTorchModelImpl(const io::BertConfig& c, const BertDropout& d);
  // Returns last_hidden and pooled (logits undefined).
  BertTorchOutputs forward(const torch::Tensor& input_ids, torch::Tensor token_type_ids,
                           torch::Tensor attention_mask);

  BertEmbeddings embeddings{nullptr};
  BertEncoder encoder{nullptr};
  BertPooler pooler{nullptr};
};
TORCH_MODULE(BertTorchModel);

// BERT with the sequence classification / regression head: classifier(dropout(pooled)).
// Weights start with Hugging Face's initialisation: N(0, initializer_range) for Linear and
// Embedding weights (the padding row zeroed), zero biases, LayerNorm weight 1 and bias 0.
class BertForSequenceClassificationImpl : public torch::nn::Module {
 public:
  explicit BertForSequenceClassificationImpl(const io::BertConfig& c);
  BertForSequenceClassificationImpl(const io::BertConfig& c, const BertDropout& d);
  BertTorchOutputs forward(const torch::Tensor& input_ids, torch::Tensor token_type_ids = {},
                           torch::Tensor attention_mask = {});

  BertTorchModel bert{nullptr};
  torch::nn::Dropout dropout{nullptr};
  torch::nn::Linear classifier{nullptr};
};
TORCH_MODULE(BertForSequenceClassification);

// The masked-language-model head, Hugging Face's cls.predictions: transform (dense, activation
// of the config, LayerNorm) then a decoder tied to the word embeddings plus its own bias.
class BertPredictionTransformImpl : public torch::nn::Module {
 public:
  explicit BertPredictionTransformImpl(const io::BertConfig& c);
  torch::Tensor forward(const torch::Tensor& x);

  torch::nn::Linear dense{nullptr};
  torch::nn::LayerNorm LayerNorm{nullptr};
  io::Activation activation = io::Activation::gelu;
};
TORCH_MODULE(BertPredictionTransform);

class BertLMPredictionHeadImpl : public torch::nn::Module {
 public:
  explicit BertLMPredictionHeadImpl(const io::BertConfig& c);
  // hidden [N, H] -> logits [N, vocab] = transform(hidden) @ word_embeddings^T + bias.
  torch::Tensor forward(const torch::Tensor& hidden, const torch::Tensor& word_embeddings);

  BertPredictionTransform transform{nullptr};
  torch::Tensor bias;  // [vocab]
};
TORCH_MODULE(BertLMPredictionHead);

class BertOnlyMLMHeadImpl : public torch::nn::Module {
 public:
  explicit BertOnlyMLMHeadImpl(const io::BertConfig& c);
  BertLMPredictionHead predictions{nullptr};
};
TORCH_MODULE(BertOnlyMLMHead);

// BERT with the MLM head (Hugging Face's BertForMaskedLM names: bert.*, cls.predictions.*; the
// pooler is kept so that a fine-tuning run finds every encoder tensor). Hugging Face
// initialisation, as BertForSequenceClassification.
class BertForMaskedLMImpl : public torch::nn::Module {
 public:
  explicit BertForMaskedLMImpl(const io::BertConfig& c);
  // The logits [N, vocab] of the N positions selected by `positions` (flat indices into the
  // [B * T] tokens, int64): the head runs only where a loss is taken.
  torch::Tensor forward(const torch::Tensor& input_ids, const torch::Tensor& positions,
                        torch::Tensor token_type_ids = {}, torch::Tensor attention_mask = {});

  BertTorchModel bert{nullptr};
  BertOnlyMLMHead cls{nullptr};
  int64_t hidden_size = 0;
};
TORCH_MODULE(BertForMaskedLM);

// Overwrites a [positions, hidden] position-embedding table with Vaswani et al.'s sinusoids
// (sin in even, cos in odd columns, wavelengths 2*pi .. 10000*2*pi), scaled so that the table's
// standard deviation is the config's initializer_range, that of Hugging Face's N(0, std).
void init_sinusoidal_positions(torch::Tensor& weight, const io::BertConfig& c);

// Local attention initialisation (`octet pretrain --position-init local`): an MLM with uniform
// attention is a bag of words, and the bilinear Q K^T form is slow to find position-based
// attention from Hugging Face's N(0, 0.02) start (docs/training.md, "Why the loss plateaus"). So:
// - init_local_positions: the first head_dim columns of the position table hold the upper half of
//   a period-(2 head_dim) Fourier basis, (sin, cos)(2 pi m p / (2 head_dim)) for m = head_dim/2+1
//   .. head_dim; the other columns hold Vaswani et al.'s sinusoids over the remaining width. The
//   table is scaled to std initializer_range. Needs >= 2 heads and an even head size.
// - add_local_attention: adds to every layer's query and key weights a form that reads those
//   columns, so that head h starts by attending to the token at offset local_attention_offsets(h)
//   (-1, +1, -2, +2, ...): q_i . k_j = gain^2 sum_m cos(w_m (i - j + offset)), sharply largest at
//   j = i + offset (the band's high frequencies make it narrow; a token's own content adds
//   sum_m cos(w_m offset), -21 for offsets -1 and +1 and +1 for -2 and +2 against the peak's 32
//   with head size 64, so no head starts by attending to itself). Every weight trains.
void init_local_positions(torch::Tensor& weight, const io::BertConfig& c);
std::vector<int64_t> local_attention_offsets(int64_t heads);
void add_local_attention(BertTorchModelImpl& bert, const io::BertConfig& c, double gain);

// Adds gain * I to every layer's query and key weights (a "mimetic" start, Trockman and Kolter
// 2023: W_q^T W_k ~ gain^2 I), so that attention starts from the similarity of the inputs, and so
// of their positions, instead of uniform weights that the bilinear Q K^T form is slow to leave.
void add_identity_to_query_key(BertTorchModelImpl& bert, double gain);

enum class SaveDType { F32, F16 };

// Writes a Hugging Face model directory `out_dir` (created if needed): config.json
// (io::to_json(config)), model.safetensors (every parameter, in `dtype`, written atomically) and
// a copy of `vocab_path` as vocab.txt (skipped if vocab_path is empty). IoError on failure.
void save_pretrained(BertForSequenceClassification& model, const io::BertConfig& config,
                     const std::filesystem::path& vocab_path, const std::filesystem::path& out_dir,
                     SaveDType dtype = SaveDType::F32);
// The same for any module: every parameter whose name does not start with one of `skip_prefixes`.
void save_pretrained(torch::nn::Module& model, const io::BertConfig& config,
                     const std::filesystem::path& vocab_path, const std::filesystem::path& out_dir,
                     SaveDType dtype, const std::vector<std::string>& skip_prefixes);

struct PretrainedBert {
  io::BertConfig config;
  BertForSequenceClassification model{nullptr};
  // Parameters the checkpoint lacked and that kept their fresh initialisation (e.g. the
  // classifier of a pretrained encoder), by full name.
  std::vector<std::string> newly_initialized;
};

// Reads <dir>/config.json and <dir>/model.safetensors of any Hugging Face BERT directory (F32,
// F16, BF16 or F64 weights, names with or without the "bert." prefix; extra tensors such as the
// MLM head are ignored). Every embeddings / encoder parameter must be present with the shape the
// config implies; the pooler and classifier may be absent (then freshly initialised and listed
// in newly_initialized). ModelFormatError / IoError name the file, tensor, expected and found.
PretrainedBert load_pretrained(const std::filesystem::path& dir);

}  // namespace octet::train
