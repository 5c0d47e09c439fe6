#include "train/qat.h"

#include <fmt/format.h>

#include <cmath>
#include <fstream>
#include <iterator>
#include <limits>
#include <span>
#include <utility>

#include "io/atomic_file.h"
#include "octet/error.h"
#include "quant/bert_quant.h"

namespace octet::train {
namespace {

namespace fs = std::filesystem;
namespace F = torch::nn::functional;

struct FqParams {
  bool weight = false;  // [n, k] weight: quant::quantize_weights with `granularity`
  quant::WeightGranularity granularity = quant::WeightGranularity::per_tensor;
  bool asymmetric = false;
  float inv_scale = 1.0f;        // symmetric
  quant::AsymmetricParams asym;  // asymmetric
  SteMode ste = SteMode::identity;
  const std::string* what = nullptr;
};

std::span<const float> cspan(const torch::Tensor& t) {
  return {t.data_ptr<float>(), static_cast<std::size_t>(t.numel())};
}
std::span<float> mspan(torch::Tensor& t) {
  return {t.data_ptr<float>(), static_cast<std::size_t>(t.numel())};
}

torch::Tensor float_contiguous(const torch::Tensor& x, const std::string& what) {
  if (x.scalar_type() != torch::kFloat || !x.device().is_cpu())
    throw InvalidArgument(
        fmt::format("fake quantization of '{}': expected a float32 CPU tensor, "
                    "found {} on {}",
                    what, c10::toString(x.scalar_type()), x.device().str()));
  return x.contiguous();
}

// Forward: the engine's fake quantizer over the contiguous buffer. Backward: the straight-through
// estimator (identity, or masked to the unclamped elements).
class FakeQuantFn : public torch::autograd::Function<FakeQuantFn> {
 public:
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, torch::Tensor x, FqParams p) {
    const std::string what = p.what != nullptr ? *p.what : std::string("activation");
    torch::Tensor xc = float_contiguous(x, what);
    torch::Tensor out = torch::empty_like(xc);
    ctx->saved_data["clipped"] = false;
    if (p.weight) {
      const int n = static_cast<int>(xc.size(0)), k = static_cast<int>(xc.size(1));
      const quant::QuantizedWeights q =
          quant::quantize_weights(cspan(xc), n, k, p.granularity, what);
      float* o = out.data_ptr<float>();
      for (int c = 0; c < n; ++c) {
        const std::size_t off = static_cast<std::size_t>(c) * static_cast<std::size_t>(k);
        const float inv = q.inv_scales.size() == 1 ? q.inv_scales[0] : q.inv_scales[c];
        quant::dequantize_symmetric(std::span<const int8_t>(q.q.data() + off, k), inv,
                                    std::span<float>(o + off, k));
      }
      return out;  // max|W| is the range: nothing is clamped, the gradient is the identity
    }
    if (p.asymmetric)
      quant::fake_quantize_asymmetric(cspan(xc), p.asym, mspan(out), what);
    else
      quant::fake_quantize_symmetric(cspan(xc), p.inv_scale, mspan(out), what);
    const bool clipped = p.ste == SteMode::clipped;
    ctx->saved_data["clipped"] = clipped;
    if (clipped) {
      // Elements whose code was not clamped: inside the representable range.
      double lo = 0, hi = 0;
      if (p.asymmetric) {
        lo = (0.0 - p.asym.zero_point) * double(p.asym.scale);
        hi = (255.0 - p.asym.zero_point) * double(p.asym.scale);
      } else {
        hi = double(quant::kSymmetricMax) / double(p.inv_scale);
        lo = -hi;
      }
      ctx->save_for_backward({xc.ge(lo).logical_and(xc.le(hi)).to(torch::kFloat)});
    }
    return out;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    torch::Tensor g = grads[0];
    if (ctx->saved_data["clipped"].toBool()) g = g * ctx->get_saved_variables()[0];
    return {g, torch::Tensor()};
  }
};

torch::Tensor apply_activation(const torch::Tensor& y, io::Activation activation) {
  switch (activation) {
    case io::Activation::gelu:
      return torch::gelu(y);
    case io::Activation::gelu_tanh:
      return torch::gelu(y, "tanh");
    case io::Activation::relu:
      return torch::relu(y);
  }
  throw Unsupported("QAT: unknown activation");
}

std::string layer_prefix(std::size_t i) { return fmt::format("bert.encoder.layer.{}.", i); }

}  // namespace

std::string_view to_string(SteMode m) { return m == SteMode::identity ? "identity" : "clipped"; }
std::string_view to_string(QatMode m) { return m == QatMode::q8bert ? "q8bert" : "integer-only"; }

void check_qat_options(const QatOptions& o) {
  if (!(o.ema_decay > 0.0 && o.ema_decay < 1.0))
    throw InvalidArgument(
        fmt::format("QAT EMA decay must be in (0, 1), found {} (Q8BERT: 0.9999)", o.ema_decay));
  if (o.start_step < 0)
    throw InvalidArgument(fmt::format("QAT start step must be >= 0, found {}", o.start_step));
  if (o.head_start_step < 0)
    throw InvalidArgument(
        fmt::format("QAT head start step must be >= 0, found {}", o.head_start_step));
  if (!(o.integer_momentum > 0.0 && o.integer_momentum < 1.0))
    throw InvalidArgument(
        fmt::format("integer-only QAT EMA momentum must be in (0, 1), found {} (I-BERT: 0.95)",
                    o.integer_momentum));
}

torch::Tensor fake_quantize_symmetric(const torch::Tensor& x, float threshold, SteMode ste) {
  static const std::string what = "activation";
  FqParams p;
  p.inv_scale = quant::symmetric_inv_scale(threshold);
  p.ste = ste;
  p.what = &what;
  return FakeQuantFn::apply(x, p);
}

torch::Tensor fake_quantize_asymmetric(const torch::Tensor& x, float min, float max, SteMode ste) {
  static const std::string what = "activation";
  FqParams p;
  p.asymmetric = true;
  p.asym = quant::asymmetric_params(min, max);
  p.ste = ste;
  p.what = &what;
  return FakeQuantFn::apply(x, p);
}

torch::Tensor fake_quantize_weight(const torch::Tensor& w, quant::WeightGranularity g,
                                   const std::string& what) {
  if (w.dim() != 2)
    throw InvalidArgument(
        fmt::format("fake quantization of '{}': expected a [n, k] weight, "
                    "found {} dims",
                    what, w.dim()));
  FqParams p;
  p.weight = true;
  p.granularity = g;
  p.what = &what;
  return FakeQuantFn::apply(w, p);
}

// --- ActivationQuantizer -------------------------------------------------------------------------

ActivationQuantizer::ActivationQuantizer(std::string name, const QatOptions& o, int64_t start_step)
    : name_(std::move(name)), scheme_(o.scheme), ste_(o.ste), start_step_(start_step) {
  quant::CalibratorSpec spec;
  spec.kind = quant::CalibratorKind::ema;
  spec.decay = o.ema_decay;
  observer_ = quant::make_observer(spec);
}

bool ActivationQuantizer::active(bool training, int64_t step) const {
  return training ? step >= start_step_ : observed();
}

quant::Range ActivationQuantizer::range() const {
  return observer_->range(scheme_ == quant::Scheme::symmetric ? quant::ThresholdMode::symmetric
                                                              : quant::ThresholdMode::independent);
}

torch::Tensor ActivationQuantizer::forward(const torch::Tensor& x, bool training, int64_t step) {
  if (!active(training, step)) return x;
  if (training) {
    torch::Tensor xc = float_contiguous(x.detach(), name_);
    observer_->observe(cspan(xc));  // EMA update before the scale is read (A.2)
  }
  const quant::Range r = range();
  if (scheme_ == quant::Scheme::symmetric) {
    const float t = std::max(std::fabs(r.min), std::fabs(r.max));
    return fake_quantize_symmetric(x, t, ste_);
  }
  return fake_quantize_asymmetric(x, r.min, r.max, ste_);
}

void ActivationQuantizer::restore(const nlohmann::json& ema) {
  std::unique_ptr<quant::Observer> o =
      quant::observer_from_json(ema, fmt::format("QAT calibration: tensors.\"{}\".ema", name_));
  if (o->spec().kind != quant::CalibratorKind::ema || o->spec().decay != observer_->spec().decay)
    throw InvalidArgument(
        fmt::format("QAT calibration of '{}': expected EMA statistics with decay {}", name_,
                    observer_->spec().decay));
  observer_ = std::move(o);
}

nlohmann::json ActivationQuantizer::statistics() const { return {{"ema", observer_->to_json()}}; }

// --- QatBert -------------------------------------------------------------------------------------

QatBert::QatBert(BertForSequenceClassification model, const io::BertConfig& config, QatOptions o)
    : model_(std::move(model)), config_(config), o_(o) {
  check_qat_options(o_);
  for (std::size_t i = 0; i < model_->bert->encoder->layer->size(); ++i) {
    const std::string p = layer_prefix(i);
    std::vector<std::string> names = {p + "attention.self.query"};
    if (o_.quantize_qk_outputs) {
      for (const char* s : {"attention.self.query", "attention.self.key"})
        names.push_back(p + s + quant::kOutputSuffix);
    }
    for (const char* s : {"attention.output.dense", "intermediate.dense", "output.dense"})
      names.push_back(p + s);
    for (std::string& n : names)
      sites_.push_back(std::make_unique<ActivationQuantizer>(std::move(n), o_, o_.start_step));
  }
  sites_.push_back(std::make_unique<ActivationQuantizer>("bert.pooler.dense", o_, o_.start_step));
  sites_.push_back(std::make_unique<ActivationQuantizer>("classifier", o_, o_.head_start_step));
}

torch::Tensor QatBert::linear(torch::nn::Linear lin, const std::string& name,
                              const torch::Tensor& x_quantized, bool active) {
  if (!active) return lin->forward(x_quantized);
  return F::linear(x_quantized, fake_quantize_weight(lin->weight, o_.weights, name + ".weight"),
                   lin->bias);
}

torch::Tensor QatBert::embed(torch::nn::Embedding emb, const std::string& name,
                             const torch::Tensor& ids, bool active) {
  torch::Tensor rows = emb->forward(ids);
  if (!active) return rows;
  // Weights only, one scale for the table (max|W|, as quant::quantize_weights per tensor):
  // quantizing the looked-up rows with the table's scale equals looking up the quantized table.
  float t = 0;
  {
    torch::NoGradGuard no_grad;
    torch::Tensor w = float_contiguous(emb->weight.detach(), name);
    t = quant::abs_max(cspan(w), name + ".weight");
  }
  return fake_quantize_symmetric(rows, t, SteMode::identity);
}

torch::Tensor QatBert::forward(const torch::Tensor& input_ids, torch::Tensor token_type_ids,
                               torch::Tensor attention_mask) {
  if (input_ids.dim() != 2)
    throw InvalidArgument(
        fmt::format("QatBert: input_ids must be [B, T], found {} dims", input_ids.dim()));
  if (!token_type_ids.defined()) token_type_ids = torch::zeros_like(input_ids);
  if (!attention_mask.defined()) attention_mask = torch::ones_like(input_ids);
  if (token_type_ids.sizes() != input_ids.sizes() || attention_mask.sizes() != input_ids.sizes())
    throw InvalidArgument(
        "QatBert: token_type_ids and attention_mask must have the shape of input_ids");
  const bool training = model_->is_training();
  const bool base_active = training ? step_ >= o_.start_step : sites_.front()->observed();
  auto& bert = model_->bert;
  auto& emb = bert->embeddings;

  const int64_t b = input_ids.size(0), t = input_ids.size(1);
  torch::Tensor positions = torch::arange(t, input_ids.options().dtype(torch::kLong));
  torch::Tensor x =
      embed(emb->word_embeddings, "bert.embeddings.word_embeddings", input_ids, base_active) +
      emb->token_type_embeddings(token_type_ids) +
      embed(emb->position_embeddings, "bert.embeddings.position_embeddings", positions, base_active)
          .unsqueeze(0);
  torch::Tensor hidden = emb->dropout(emb->LayerNorm(x));

  torch::Tensor additive =
      (1.0 - attention_mask.to(torch::kFloat)).mul(std::numeric_limits<float>::lowest());
  additive = additive.unsqueeze(1).unsqueeze(2);

  std::size_t site = 0;
  // The next site (in sites_ order) quantizes `in`; `active`: whether it did.
  auto quantize_site = [&](const torch::Tensor& in, bool& active) {
    ActivationQuantizer& q = *sites_[site++];
    active = q.active(training, step_);
    return q.forward(in, training, step_);
  };
  for (std::size_t i = 0; i < bert->encoder->layer->size(); ++i) {
    auto layer = bert->encoder->layer[i]->as<BertLayer>();
    const std::string p = layer_prefix(i);
    auto& self = layer->attention->self;
    bool active = false;
    // Q, K and V read one quantized input (the engine's fused QKV GEMM has one input scale).
    torch::Tensor hq = quantize_site(hidden, active);
    auto split = [&](const torch::Tensor& y) {
      return y.view({b, t, self->heads, self->head_dim}).permute({0, 2, 1, 3});
    };
    torch::Tensor q = linear(self->query, p + "attention.self.query", hq, active);
    torch::Tensor k = linear(self->key, p + "attention.self.key", hq, active);
    if (o_.quantize_qk_outputs) {  // Q8BERT's requantize_output: 8-bit inputs to Q K^T
      bool qk_active = false;      // not read: V's GEMM keeps the QKV input site's `active`
      q = quantize_site(q, qk_active);
      k = quantize_site(k, qk_active);
    }
    q = split(q);
    k = split(k);
    torch::Tensor v = split(linear(self->value, p + "attention.self.value", hq, active));
    torch::Tensor scores =
        torch::matmul(q, k.transpose(-1, -2)) / std::sqrt(double(self->head_dim));
    torch::Tensor probs = self->dropout(torch::softmax(scores + additive, -1));
    torch::Tensor ctxv = torch::matmul(probs, v)
                             .permute({0, 2, 1, 3})
                             .contiguous()
                             .view({b, t, self->heads * self->head_dim});

    auto& ao = layer->attention->output;
    torch::Tensor cq = quantize_site(ctxv, active);
    torch::Tensor a = ao->LayerNorm(
        ao->dropout(linear(ao->dense, p + "attention.output.dense", cq, active)) + hidden);

    torch::Tensor aq = quantize_site(a, active);
    torch::Tensor inter =
        apply_activation(linear(layer->intermediate->dense, p + "intermediate.dense", aq, active),
                         layer->intermediate->activation);

    auto& out = layer->output;
    torch::Tensor iq = quantize_site(inter, active);
    hidden = out->LayerNorm(out->dropout(linear(out->dense, p + "output.dense", iq, active)) + a);
  }
  bool active = false;
  torch::Tensor pq = quantize_site(hidden.select(1, 0), active);
  torch::Tensor pooled = torch::tanh(linear(bert->pooler->dense, "bert.pooler.dense", pq, active));
  torch::Tensor cq = quantize_site(model_->dropout(pooled), active);
  return linear(model_->classifier, "classifier", cq, active);
}

void QatBert::restore(const nlohmann::json& calibration) {
  quant::validate_calibration(calibration, "QAT calibration");
  const nlohmann::json& tensors = calibration["tensors"];
  for (auto& s : sites_) {
    if (!tensors.contains(s->name()) || !tensors[s->name()].contains("ema"))
      throw ModelFormatError(
          fmt::format("QAT calibration: no \"ema\" statistics for '{}': expected a file written by "
                      "octet finetune --qat",
                      s->name()));
    s->restore(tensors[s->name()]["ema"]);
  }
}

bool QatBert::ready() const {
  for (const auto& s : sites_)
    if (!s->observed()) return false;
  return true;
}

quant::QuantizationConfig QatBert::quantization_config() const {
  quant::QuantizationConfig c;
  c.activations = quant::ActivationMode::static_;
  c.scheme = o_.scheme;
  c.weights = o_.weights;
  c.calibrator.kind = quant::CalibratorKind::ema;
  c.calibrator.decay = o_.ema_decay;
  c.threshold_mode = o_.scheme == quant::Scheme::symmetric ? quant::ThresholdMode::symmetric
                                                           : quant::ThresholdMode::independent;
  c.sites[static_cast<int>(quant::Site::attention_scores)] = o_.quantize_qk_outputs;
  quant::validate(c);
  return c;
}

nlohmann::json QatBert::calibration(const fs::path& weights_file) const {
  nlohmann::json tensors = nlohmann::json::object();
  for (const auto& s : sites_) {
    if (!s->observed())
      throw InvalidArgument(fmt::format(
          "QAT export: the range of '{}' was never observed (its quantizer starts at step "
          "{}, training stopped at step {}): train longer or lower the start step",
          s->name(), s->start_step(), step_));
    tensors[s->name()] = s->statistics();
  }
  return {{"format", quant::kCalibrationFormat},
          {"version", quant::kCalibrationVersion},
          {"model", weights_file.parent_path().string()},
          {"model_weights", quant::file_fingerprint(weights_file)},
          {"source", "quantization-aware training (octet finetune --qat)"},
          {"step", step_},
          {"statistics",
           {{"max", false},
            {"ema", true},
            {"histogram", false},
            {"ema_decay", o_.ema_decay},
            {"ste", std::string(to_string(o_.ste))}}},
          {"tensors", tensors}};
}

nlohmann::json write_qat_fp32_and_calibration(
    BertForSequenceClassification& model, const io::BertConfig& config, const fs::path& vocab,
    const fs::path& out_dir, const std::optional<fs::path>& tokenizer_config,
    const std::function<nlohmann::json(const fs::path&)>& calibration, const std::string& what) {
  const fs::path fp32 = out_dir / "fp32";
  save_pretrained(model, config, vocab, fp32, SaveDType::F32);
  if (tokenizer_config) {
    io::write_file_atomic(fp32 / "tokenizer_config.json", [&] {
      std::ifstream in(*tokenizer_config, std::ios::binary);
      if (!in) throw IoError(fmt::format("cannot read {}", tokenizer_config->string()));
      return std::string(std::istreambuf_iterator<char>(in), {});
    }());
  }
  nlohmann::json calib = calibration(fp32 / "model.safetensors");
  quant::validate_calibration(calib, what);
  io::write_file_atomic(out_dir / "qat_calibration.json", calib.dump(2) + "\n");
  return calib;
}

void export_qat(QatBert& qat, const io::BertConfig& config, const fs::path& vocab,
                const fs::path& out_dir, const std::optional<fs::path>& tokenizer_config) {
  const nlohmann::json calib = write_qat_fp32_and_calibration(
      qat.model(), config, vocab, out_dir, tokenizer_config,
      [&](const fs::path& weights) { return qat.calibration(weights); }, "QAT calibration");
  const quant::QuantizedBert q =
      quant::quantize_bert(out_dir / "fp32", qat.quantization_config(), &calib);
  quant::write_quantized_dir(q, out_dir);
}

}  // namespace octet::train
