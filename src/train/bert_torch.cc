#include "train/bert_torch.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <fstream>
#include <iterator>
#include <limits>
#include <map>
#include <numbers>
#include <span>

#include "io/atomic_file.h"
#include "io/safetensors.h"
#include "octet/error.h"

namespace octet::train {

namespace {
MatmulPrecision g_matmul_precision = MatmulPrecision::f32;
}  // namespace

void set_matmul_precision(MatmulPrecision p) { g_matmul_precision = p; }
MatmulPrecision matmul_precision() { return g_matmul_precision; }

torch::Tensor mixed_linear(torch::nn::Linear l, const torch::Tensor& x) {
  if (g_matmul_precision == MatmulPrecision::f32) return l->forward(x);
  const auto bf = torch::kBFloat16;
  torch::Tensor y = torch::nn::functional::linear(x.to(bf), l->weight.to(bf));
  y = y.to(torch::kFloat);
  return l->bias.defined() ? y + l->bias : y;
}

torch::Tensor mixed_matmul(const torch::Tensor& a, const torch::Tensor& b) {
  if (g_matmul_precision == MatmulPrecision::f32) return torch::matmul(a, b);
  const auto bf = torch::kBFloat16;
  return torch::matmul(a.to(bf), b.to(bf)).to(torch::kFloat);
}

namespace {

namespace nn = torch::nn;

// The d / 2 angular frequencies of the local initialisation's band: 2 pi m / (2 d) for
// m = d/2 + 1 .. d, the upper half of a period-2d Fourier basis (init_local_positions).
torch::Tensor local_band_frequencies(int64_t d) {
  return torch::arange(d / 2 + 1, d + 1, torch::kDouble) *
         (std::numbers::pi / static_cast<double>(d));
}

// Vaswani et al.'s angular frequencies for `width` columns: 10000^(-2i / width), i < width / 2.
torch::Tensor vaswani_frequencies(int64_t width) {
  return torch::exp(torch::arange(0, width, 2, torch::kDouble) * (-std::log(10000.0) / width));
}

// Columns first + 2i and first + 2i + 1 (within [first, first + width)) of a [positions, hidden]
// double table get sin and cos of position * freq[i].
void put_sinusoids(torch::Tensor& table, int64_t first, int64_t width, const torch::Tensor& freq) {
  using torch::indexing::Slice;
  const torch::Tensor pos = torch::arange(table.size(0), torch::kDouble).unsqueeze(1);
  table.index_put_({Slice(), Slice(first, first + width, 2)}, torch::sin(pos * freq));
  table.index_put_({Slice(), Slice(first + 1, first + width, 2)},
                   torch::cos(pos * freq.slice(0, 0, width / 2)));
}

double raw_number(const io::BertConfig& c, const char* key, double fallback) {
  auto it = c.raw.find(key);
  return it != c.raw.end() && it->is_number() ? it->get<double>() : fallback;
}

// Scales a position table to the config's initializer_range (Hugging Face's N(0, std)) and copies
// it into the embedding weight.
void copy_scaled_table(torch::Tensor& weight, torch::Tensor table, const io::BertConfig& c) {
  table = table * (raw_number(c, "initializer_range", 0.02) / table.std().item<double>());
  torch::NoGradGuard no_grad;
  weight.copy_(table.to(weight.scalar_type()));
}

nn::LayerNorm layer_norm(const io::BertConfig& c) {
  return nn::LayerNorm(nn::LayerNormOptions({c.hidden_size}).eps(c.layer_norm_eps));
}

// Hugging Face's BertPreTrainedModel._init_weights.
void init_weights(nn::Module& root, const io::BertConfig& c) {
  const double std = raw_number(c, "initializer_range", 0.02);
  torch::NoGradGuard no_grad;
  for (auto& m : root.modules(/*include_self=*/false)) {
    if (auto* lin = m->as<nn::Linear>()) {
      lin->weight.normal_(0.0, std);
      if (lin->bias.defined()) lin->bias.zero_();
    } else if (auto* emb = m->as<nn::Embedding>()) {
      emb->weight.normal_(0.0, std);
      if (emb->options.padding_idx()) emb->weight[*emb->options.padding_idx()].zero_();
    } else if (auto* ln = m->as<nn::LayerNorm>()) {
      ln->weight.fill_(1.0);
      ln->bias.zero_();
    }
  }
}

torch::Tensor apply_activation(const torch::Tensor& y, io::Activation activation) {
  switch (activation) {
    case io::Activation::gelu:
      return torch::gelu(y);  // erf form
    case io::Activation::gelu_tanh:
      return torch::gelu(y, "tanh");
    case io::Activation::relu:
      return torch::relu(y);
  }
  throw Unsupported("BERT: unknown activation");
}

}  // namespace

BertDropout BertDropout::from_config(const io::BertConfig& c) {
  BertDropout d;
  d.hidden = raw_number(c, "hidden_dropout_prob", 0.1);
  d.attention = raw_number(c, "attention_probs_dropout_prob", 0.1);
  // HF: classifier_dropout if set (not null), else hidden_dropout_prob.
  d.classifier = raw_number(c, "classifier_dropout", d.hidden);
  return d;
}

BertEmbeddingsImpl::BertEmbeddingsImpl(const io::BertConfig& c, const BertDropout& d) {
  word_embeddings = register_module(
      "word_embeddings",
      nn::Embedding(nn::EmbeddingOptions(c.vocab_size, c.hidden_size).padding_idx(c.pad_token_id)));
  position_embeddings = register_module("position_embeddings",
                                        nn::Embedding(c.max_position_embeddings, c.hidden_size));
  token_type_embeddings =
      register_module("token_type_embeddings", nn::Embedding(c.type_vocab_size, c.hidden_size));
  LayerNorm = register_module("LayerNorm", layer_norm(c));
  dropout = register_module("dropout", nn::Dropout(d.hidden));
}

torch::Tensor BertEmbeddingsImpl::forward(const torch::Tensor& input_ids,
                                          const torch::Tensor& token_type_ids) {
  const int64_t t = input_ids.size(1);
  torch::Tensor positions = torch::arange(t, input_ids.options().dtype(torch::kLong));
  torch::Tensor x = word_embeddings(input_ids) + token_type_embeddings(token_type_ids) +
                    position_embeddings(positions).unsqueeze(0);
  return dropout(LayerNorm(x));
}

BertSelfAttentionImpl::BertSelfAttentionImpl(const io::BertConfig& c, const BertDropout& d)
    : heads(c.num_attention_heads), head_dim(c.head_dim()) {
  query = register_module("query", nn::Linear(c.hidden_size, c.hidden_size));
  key = register_module("key", nn::Linear(c.hidden_size, c.hidden_size));
  value = register_module("value", nn::Linear(c.hidden_size, c.hidden_size));
  dropout = register_module("dropout", nn::Dropout(d.attention));
}

torch::Tensor BertSelfAttentionImpl::forward(const torch::Tensor& hidden,
                                             const torch::Tensor& additive_mask) {
  const int64_t b = hidden.size(0), t = hidden.size(1);
  // [B, T, H] -> [B, heads, T, head_dim]
  auto split = [&](const torch::Tensor& x) {
    return x.view({b, t, heads, head_dim}).permute({0, 2, 1, 3});
  };
  torch::Tensor q = split(mixed_linear(query, hidden)), k = split(mixed_linear(key, hidden)),
                v = split(mixed_linear(value, hidden));
  torch::Tensor scores = mixed_matmul(q, k.transpose(-1, -2)) / std::sqrt(double(head_dim));
  torch::Tensor probs = dropout(torch::softmax(scores + additive_mask, -1));
  return mixed_matmul(probs, v).permute({0, 2, 1, 3}).contiguous().view({b, t, heads * head_dim});
}

BertDenseResidualImpl::BertDenseResidualImpl(int64_t in, const io::BertConfig& c,
                                             const BertDropout& d) {
  dense = register_module("dense", nn::Linear(in, c.hidden_size));
  LayerNorm = register_module("LayerNorm", layer_norm(c));
  dropout = register_module("dropout", nn::Dropout(d.hidden));
}

torch::Tensor BertDenseResidualImpl::forward(const torch::Tensor& x,
                                             const torch::Tensor& residual) {
  return LayerNorm(dropout(mixed_linear(dense, x)) + residual);
}

BertAttentionImpl::BertAttentionImpl(const io::BertConfig& c, const BertDropout& d) {
  self = register_module("self", BertSelfAttention(c, d));
  output = register_module("output", BertDenseResidual(c.hidden_size, c, d));
}

torch::Tensor BertAttentionImpl::forward(const torch::Tensor& hidden,
                                         const torch::Tensor& additive_mask) {
  return output(self(hidden, additive_mask), hidden);
}

BertIntermediateImpl::BertIntermediateImpl(const io::BertConfig& c) : activation(c.hidden_act) {
  dense = register_module("dense", nn::Linear(c.hidden_size, c.intermediate_size));
}

torch::Tensor BertIntermediateImpl::forward(const torch::Tensor& x) {
  return apply_activation(mixed_linear(dense, x), activation);
}

BertLayerImpl::BertLayerImpl(const io::BertConfig& c, const BertDropout& d) {
  attention = register_module("attention", BertAttention(c, d));
  intermediate = register_module("intermediate", BertIntermediate(c));
  output = register_module("output", BertDenseResidual(c.intermediate_size, c, d));
}

torch::Tensor BertLayerImpl::forward(const torch::Tensor& hidden,
                                     const torch::Tensor& additive_mask) {
  torch::Tensor a = attention(hidden, additive_mask);
  return output(intermediate(a), a);
}

BertEncoderImpl::BertEncoderImpl(const io::BertConfig& c, const BertDropout& d) {
  layer = register_module("layer", nn::ModuleList());
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) layer->push_back(BertLayer(c, d));
}

torch::Tensor BertEncoderImpl::forward(torch::Tensor hidden, const torch::Tensor& additive_mask) {
  for (const auto& m : *layer) hidden = m->as<BertLayer>()->forward(hidden, additive_mask);
  return hidden;
}

BertPoolerImpl::BertPoolerImpl(const io::BertConfig& c) {
  dense = register_module("dense", nn::Linear(c.hidden_size, c.hidden_size));
}

torch::Tensor BertPoolerImpl::forward(const torch::Tensor& last_hidden) {
  return torch::tanh(mixed_linear(dense, last_hidden.select(1, 0)));
}

BertTorchModelImpl::BertTorchModelImpl(const io::BertConfig& c, const BertDropout& d) {
  embeddings = register_module("embeddings", BertEmbeddings(c, d));
  encoder = register_module("encoder", BertEncoder(c, d));
  pooler = register_module("pooler", BertPooler(c));
}

BertTorchOutputs BertTorchModelImpl::forward(const torch::Tensor& input_ids,
                                             torch::Tensor token_type_ids,
                                             torch::Tensor attention_mask) {
  if (input_ids.dim() != 2)
    throw InvalidArgument(
        fmt::format("BertTorchModel: input_ids must be [B, T], found {} dims", input_ids.dim()));
  if (!token_type_ids.defined()) token_type_ids = torch::zeros_like(input_ids);
  if (!attention_mask.defined()) attention_mask = torch::ones_like(input_ids);
  for (const auto* t : {&token_type_ids, &attention_mask})
    if (t->sizes() != input_ids.sizes())
      throw InvalidArgument(
          "BertTorchModel: token_type_ids and attention_mask must have the "
          "shape of input_ids");
  // HF's get_extended_attention_mask: (1 - mask) * finfo.min, broadcast over heads and queries.
  torch::Tensor additive =
      (1.0 - attention_mask.to(torch::kFloat)).mul(std::numeric_limits<float>::lowest());
  additive = additive.unsqueeze(1).unsqueeze(2);
  BertTorchOutputs out;
  out.last_hidden = encoder(embeddings(input_ids, token_type_ids), additive);
  out.pooled = pooler(out.last_hidden);
  return out;
}

BertForSequenceClassificationImpl::BertForSequenceClassificationImpl(const io::BertConfig& c)
    : BertForSequenceClassificationImpl(c, BertDropout::from_config(c)) {}

BertForSequenceClassificationImpl::BertForSequenceClassificationImpl(const io::BertConfig& c,
                                                                     const BertDropout& d) {
  bert = register_module("bert", BertTorchModel(c, d));
  dropout = register_module("dropout", nn::Dropout(d.classifier));
  classifier = register_module("classifier", nn::Linear(c.hidden_size, c.num_labels));
  init_weights(*this, c);
}

BertTorchOutputs BertForSequenceClassificationImpl::forward(const torch::Tensor& input_ids,
                                                            torch::Tensor token_type_ids,
                                                            torch::Tensor attention_mask) {
  BertTorchOutputs out = bert(input_ids, std::move(token_type_ids), std::move(attention_mask));
  out.logits = mixed_linear(classifier, dropout(out.pooled));
  return out;
}

BertPredictionTransformImpl::BertPredictionTransformImpl(const io::BertConfig& c)
    : activation(c.hidden_act) {
  dense = register_module("dense", nn::Linear(c.hidden_size, c.hidden_size));
  LayerNorm = register_module("LayerNorm", layer_norm(c));
}

torch::Tensor BertPredictionTransformImpl::forward(const torch::Tensor& x) {
  return LayerNorm(apply_activation(mixed_linear(dense, x), activation));
}

BertLMPredictionHeadImpl::BertLMPredictionHeadImpl(const io::BertConfig& c) {
  transform = register_module("transform", BertPredictionTransform(c));
  bias = register_parameter("bias", torch::zeros({c.vocab_size}));
}

torch::Tensor BertLMPredictionHeadImpl::forward(const torch::Tensor& hidden,
                                                const torch::Tensor& word_embeddings) {
  if (matmul_precision() == MatmulPrecision::f32)
    return torch::addmm(bias, transform(hidden), word_embeddings.t());
  return mixed_matmul(transform(hidden), word_embeddings.t()) + bias;
}

BertOnlyMLMHeadImpl::BertOnlyMLMHeadImpl(const io::BertConfig& c) {
  predictions = register_module("predictions", BertLMPredictionHead(c));
}

BertForMaskedLMImpl::BertForMaskedLMImpl(const io::BertConfig& c) : hidden_size(c.hidden_size) {
  const BertDropout d = BertDropout::from_config(c);
  bert = register_module("bert", BertTorchModel(c, d));
  cls = register_module("cls", BertOnlyMLMHead(c));
  init_weights(*this, c);
}

torch::Tensor BertForMaskedLMImpl::forward(const torch::Tensor& input_ids,
                                           const torch::Tensor& positions,
                                           torch::Tensor token_type_ids,
                                           torch::Tensor attention_mask) {
  torch::Tensor hidden = bert->embeddings(
      input_ids, token_type_ids.defined() ? token_type_ids : torch::zeros_like(input_ids));
  torch::Tensor additive;
  if (attention_mask.defined()) {
    additive = (1.0 - attention_mask.to(torch::kFloat)).mul(std::numeric_limits<float>::lowest());
    additive = additive.unsqueeze(1).unsqueeze(2);
  } else {
    additive = torch::zeros({input_ids.size(0), 1, 1, input_ids.size(1)});
  }
  hidden = bert->encoder(hidden, additive);
  torch::Tensor selected = hidden.reshape({-1, hidden_size}).index_select(0, positions);
  return cls->predictions(selected, bert->embeddings->word_embeddings->weight);
}

void save_pretrained(BertForSequenceClassification& model, const io::BertConfig& config,
                     const std::filesystem::path& vocab_path, const std::filesystem::path& out_dir,
                     SaveDType dtype) {
  save_pretrained(*model, config, vocab_path, out_dir, dtype, {});
}

void save_pretrained(torch::nn::Module& model, const io::BertConfig& config,
                     const std::filesystem::path& vocab_path, const std::filesystem::path& out_dir,
                     SaveDType dtype, const std::vector<std::string>& skip_prefixes) {
  std::error_code ec;
  std::filesystem::create_directories(out_dir, ec);
  if (ec)
    throw IoError(
        fmt::format("save_pretrained: cannot create {}: {}", out_dir.string(), ec.message()));

  // Contiguous CPU copies that outlive the write.
  std::vector<torch::Tensor> keep;
  std::vector<io::TensorView> views;
  const auto target = dtype == SaveDType::F16 ? torch::kHalf : torch::kFloat;
  for (const auto& p : model.named_parameters(/*recurse=*/true)) {
    bool skip = false;
    for (const auto& prefix : skip_prefixes) skip = skip || p.key().starts_with(prefix);
    if (skip) continue;
    torch::Tensor t = p.value().detach().to(torch::kCPU, target).contiguous();
    keep.push_back(t);
    views.push_back(io::TensorView{
        p.key(), dtype == SaveDType::F16 ? io::DType::F16 : io::DType::F32,
        std::vector<int64_t>(t.sizes().begin(), t.sizes().end()),
        std::span<const std::byte>(static_cast<const std::byte*>(t.data_ptr()), t.nbytes())});
  }
  io::write_safetensors(out_dir / "model.safetensors", views, {{"format", "pt"}});

  {
    io::AtomicFileWriter w(out_dir / "config.json");
    w.stream() << io::to_json(config).dump(2) << '\n';
    w.commit();
  }
  if (!vocab_path.empty()) {
    std::ifstream in(vocab_path, std::ios::binary);
    if (!in)
      throw IoError(fmt::format("save_pretrained: cannot read vocabulary {}", vocab_path.string()));
    io::AtomicFileWriter w(out_dir / "vocab.txt");
    w.stream() << in.rdbuf();
    if (in.bad())
      throw IoError(fmt::format("save_pretrained: error reading {}", vocab_path.string()));
    w.commit();
  }
}

PretrainedBert load_pretrained(const std::filesystem::path& dir) {
  PretrainedBert p;
  p.config = io::load_bert_config(dir / "config.json");
  p.model = BertForSequenceClassification(p.config);
  const std::filesystem::path weights = dir / "model.safetensors";
  io::SafetensorsReader reader(weights);

  // A checkpoint saved from BertModel (not ...ForSequenceClassification) lacks the "bert."
  // prefix; accept either spelling, never both for the same tensor.
  torch::NoGradGuard no_grad;
  for (auto& param : p.model->named_parameters(/*recurse=*/true)) {
    const std::string& name = param.key();
    const io::TensorInfo* info = reader.find(name);
    if (!info && name.starts_with("bert.")) info = reader.find(name.substr(5));
    const bool optional = name.starts_with("bert.pooler.") || name.starts_with("classifier.");
    if (!info) {
      if (optional) {
        p.newly_initialized.push_back(name);
        continue;
      }
      throw ModelFormatError(
          fmt::format("{}: tensor {} is missing (nor found without the "
                      "\"bert.\" prefix)",
                      weights.string(), name));
    }
    torch::Tensor& dst = param.value();
    const std::vector<int64_t> expected(dst.sizes().begin(), dst.sizes().end());
    if (info->shape != expected)
      throw ModelFormatError(
          fmt::format("{}: tensor {}: expected shape [{}] from config.json, "
                      "found {}",
                      weights.string(), info->name, fmt::join(expected, ", "), info->describe()));
    std::vector<float> values = reader.read_f32(*info);
    dst.copy_(torch::from_blob(values.data(), dst.sizes(), torch::kFloat));
  }
  return p;
}

void init_sinusoidal_positions(torch::Tensor& weight, const io::BertConfig& c) {
  const int64_t hidden = weight.size(1);
  torch::Tensor table = torch::zeros(weight.sizes(), torch::kDouble);
  put_sinusoids(table, 0, hidden, vaswani_frequencies(hidden));
  copy_scaled_table(weight, table, c);
}

void init_local_positions(torch::Tensor& weight, const io::BertConfig& c) {
  const int64_t hidden = weight.size(1), d = c.head_dim();
  if (hidden <= d || d % 2 != 0)
    throw InvalidArgument(fmt::format(
        "local position initialisation needs an even head size smaller than the hidden size "
        "(at least 2 heads); found hidden {} and head size {}",
        hidden, d));
  torch::Tensor table = torch::zeros(weight.sizes(), torch::kDouble);
  put_sinusoids(table, 0, d, local_band_frequencies(d));
  put_sinusoids(table, d, hidden - d, vaswani_frequencies(hidden - d));
  copy_scaled_table(weight, table, c);
}

std::vector<int64_t> local_attention_offsets(int64_t heads) {
  std::vector<int64_t> offsets;
  for (int64_t h = 0; h < heads; ++h) offsets.push_back((h / 2 + 1) * (h % 2 == 0 ? -1 : 1));
  return offsets;
}

void add_local_attention(BertTorchModelImpl& bert, const io::BertConfig& c, double gain) {
  const int64_t d = c.head_dim();
  const torch::Tensor band = local_band_frequencies(d);
  const std::vector<int64_t> offsets = local_attention_offsets(c.num_attention_heads);
  torch::NoGradGuard no_grad;
  for (const auto& m : *bert.encoder->layer) {
    BertSelfAttentionImpl& self = *m->as<BertLayerImpl>()->attention->self;
    torch::Tensor q = torch::zeros_like(self.query->weight, torch::kDouble);
    torch::Tensor k = torch::zeros_like(self.key->weight, torch::kDouble);
    for (int64_t h = 0; h < c.num_attention_heads; ++h) {
      for (int64_t j = 0; j < d / 2; ++j) {
        // Query pair = the input's (sin, cos) of position i; key pair = position j's rotated by
        // theta, so that their product is cos(w (i - j + offset)): largest at j = i + offset.
        const double theta = -band[j].item<double>() * static_cast<double>(offsets[h]);
        const int64_t r = h * d + 2 * j;
        q[r][2 * j] = gain;
        q[r + 1][2 * j + 1] = gain;
        k[r][2 * j] = gain * std::cos(theta);
        k[r][2 * j + 1] = gain * std::sin(theta);
        k[r + 1][2 * j + 1] = gain * std::cos(theta);
        k[r + 1][2 * j] = -gain * std::sin(theta);
      }
    }
    self.query->weight.add_(q.to(self.query->weight.scalar_type()));
    self.key->weight.add_(k.to(self.key->weight.scalar_type()));
  }
}

void add_identity_to_query_key(BertTorchModelImpl& bert, double gain) {
  torch::NoGradGuard no_grad;
  for (const auto& m : *bert.encoder->layer) {
    BertSelfAttentionImpl& self = *m->as<BertLayerImpl>()->attention->self;
    for (torch::Tensor* w : {&self.query->weight, &self.key->weight})
      w->add_(torch::eye(w->size(0), w->size(1), w->options()) * gain);
  }
}

}  // namespace octet::train
