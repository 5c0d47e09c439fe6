#include "train/qat.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <iterator>
#include <limits>
#include <optional>
#include <span>
#include <utility>

#include "common/aligned_buffer.h"
#include "common/check.h"
#include "io/atomic_file.h"
#include "layers/bert_layers.h"
#include "layers/linear_int8.h"
#include "octet/error.h"
#include "ops/fp32_ops.h"
#include "ops/gemm_int8.h"
#include "quant/bert_quant.h"
#include "train/engine_fn.h"

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

std::vector<float> to_vector(const torch::Tensor& t) {
  const torch::Tensor c = t.detach().to(torch::kFloat).contiguous();
  return {c.data_ptr<float>(), c.data_ptr<float>() + c.numel()};
}

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

quant::Range ActivationQuantizer::observe(const torch::Tensor& x, bool training) {
  if (training) {
    torch::Tensor xc = float_contiguous(x.detach(), name_);
    observer_->observe(cspan(xc));  // EMA update before the scale is read (A.2)
  }
  return range();
}

torch::Tensor ActivationQuantizer::fake_quantize(const torch::Tensor& x,
                                                 const quant::Range& r) const {
  if (scheme_ == quant::Scheme::symmetric) {
    const float t = std::max(std::fabs(r.min), std::fabs(r.max));
    return fake_quantize_symmetric(x, t, ste_);
  }
  return fake_quantize_asymmetric(x, r.min, r.max, ste_);
}

torch::Tensor ActivationQuantizer::forward(const torch::Tensor& x, bool training, int64_t step) {
  if (!active(training, step)) return x;
  return fake_quantize(x, observe(x, training));
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

bool QatBert::all_active(bool training) const {
  for (const auto& s : sites_)
    if (!s->active(training, step_)) return false;
  return true;
}

torch::Tensor QatBert::forward_engine(const torch::Tensor& input_ids,
                                      const torch::Tensor& token_type_ids,
                                      const torch::Tensor& attention_mask) {
  const bool training = model_->is_training();
  const bool grad = torch::GradMode::is_enabled();
  const int threads = std::max(1, at::get_num_threads());
  auto& bert = model_->bert;
  auto& emb = bert->embeddings;
  const int64_t B = input_ids.size(0), T = input_ids.size(1), N = B * T;
  const int64_t H = config_.hidden_size, I = config_.intermediate_size;
  const auto eps = static_cast<float>(config_.layer_norm_eps);
  if (T > config_.max_position_embeddings)
    throw InvalidArgument(fmt::format("QatBert: {} tokens, more than the {} positions", T,
                                      config_.max_position_embeddings));
  const std::vector<int64_t> valid = padded_lengths(attention_mask, "QatBert");
  std::vector<int64_t> offsets(B + 1);
  for (int64_t b = 0; b <= B; ++b) offsets[b] = b * T;
  std::vector<int32_t> ids32, types32;
  engine_ids(input_ids, token_type_ids, emb->word_embeddings->weight.size(0),
             emb->token_type_embeddings->weight.size(0), "QatBert", ids32, types32);
  std::vector<int8_t> q8(static_cast<std::size_t>(N * std::max(H, I)));  // codes of one GEMM input
  auto empty = [&](int64_t cols) { return torch::empty({B, T, cols}, torch::kFloat); };
  auto fptr = [](const torch::Tensor& t) { return t.data_ptr<float>(); };
  auto norm = [&](torch::nn::LayerNorm& ln) {
    layers::LayerNorm n;
    n.gamma = to_vector(ln->weight);
    n.beta = to_vector(ln->bias);
    n.eps = eps;
    return n;
  };
  // The engine's LayerNorm of x, with torch's as the surrogate.
  auto layer_norm = [&](torch::nn::LayerNorm& ln, const torch::Tensor& x) {
    return attach(
        grad, [&] { return ln->forward(x); },
        [&] {
          torch::Tensor y = x.detach().contiguous().clone();
          norm(ln).forward(fptr(y), y.numel() / H, threads);
          return y;
        });
  };
  std::size_t site = 0;
  // The next site: its range (after the EMA update in training) and the engine's activation
  // parameters for it.
  struct Site {
    ActivationQuantizer* q;
    quant::Range range;
    layers::ActivationQuant act;
  };
  auto next_site = [&](const torch::Tensor& x) {
    ActivationQuantizer& q = *sites_[site++];
    const quant::Range r = q.observe(x, training);
    const quant::ActivationParams p = quant::activation_params(r, o_.scheme);
    layers::ActivationQuant a;
    a.dynamic = false;
    a.dtype =
        o_.scheme == quant::Scheme::asymmetric ? kernels::ActDtype::u8 : kernels::ActDtype::s8;
    a.scale = p.scale;
    a.zero_point = p.zero_point;
    return Site{&q, r, a};
  };
  // One Linear (or Q, K and V fused: several, stacked) as the exported model's loader builds
  // it, each named by its Hugging Face prefix; with its int8 weights dequantized, the surrogate's
  // fake-quantized weight (one quantization serves both).
  using Linears = std::initializer_list<std::pair<torch::nn::Linear*, std::string>>;
  struct EngineLinear {
    layers::LinearInt8 lin;
    torch::Tensor w;  // [n, k]: the int8 codes times their scales (when recording gradients)
  };
  auto engine_linear = [&](Linears lins, const layers::ActivationQuant& a) {
    std::vector<int8_t> w;
    std::vector<float> scales, bias, deq;
    int64_t n = 0, k = 0;
    for (const auto& [lin, name] : lins) {
      const torch::Tensor wt = (*lin)->weight.detach().contiguous();
      const torch::Tensor bt = (*lin)->bias.detach().contiguous();
      const int64_t ni = wt.size(0);
      k = wt.size(1);
      const quant::StaticLinearInt8 q =
          quant::quantize_static_linear(cspan(wt), cspan(bt), ni, k, o_.weights, a.scale, name);
      std::vector<float> s(ni);
      if (grad) deq.resize(static_cast<std::size_t>((n + ni) * k));
      for (int64_t j = 0; j < ni; ++j) {
        const std::size_t c = q.weights.scales.size() == 1 ? 0 : static_cast<std::size_t>(j);
        s[j] = q.weights.scales[c];
        if (!grad) continue;  // the surrogate's weight is only needed for gradients
        const auto off = static_cast<std::size_t>(j * k);
        quant::dequantize_symmetric(
            std::span<const int8_t>(q.weights.q.data() + off, static_cast<std::size_t>(k)),
            q.weights.inv_scales[c],
            std::span<float>(deq.data() + static_cast<std::size_t>(n * k) + off,
                             static_cast<std::size_t>(k)));
      }
      const std::vector<float> bf = layers::dequantize_static_bias(q.bias, a.scale, s);
      w.insert(w.end(), q.weights.q.begin(), q.weights.q.end());
      scales.insert(scales.end(), s.begin(), s.end());
      bias.insert(bias.end(), bf.begin(), bf.end());
      n += ni;
    }
    return EngineLinear{
        layers::LinearInt8::from_quantized(w, n, k, scales, bias, a),
        grad ? torch::from_blob(deq.data(), {n, k}, torch::kFloat).clone() : torch::Tensor()};
  };
  // The surrogate's operands: the fake-quantized weight (the engine's, with the identity
  // gradient to the FP32 weights) and the FP32 bias.
  auto stacked = [](Linears lins, auto part) {
    std::vector<torch::Tensor> t;
    for (const auto& l : lins) t.push_back(part(*l.first));
    return t.size() == 1 ? t[0] : torch::cat(t, 0);
  };
  auto weight_fq = [&](Linears lins, const EngineLinear& e) {
    return attach(
        true, [&] { return stacked(lins, [](torch::nn::Linear& l) { return l->weight; }); },
        [&] { return e.w; });
  };
  auto bias = [&](Linears lins) {
    return stacked(lins, [](torch::nn::Linear& l) { return l->bias; });
  };
  // The engine's GEMM of x [B, T, k] or [B, k] with `lin`.
  auto run = [&](const layers::LinearInt8& lin, const torch::Tensor& x) {
    const torch::Tensor xc = x.detach().contiguous();
    std::vector<int64_t> shape = xc.sizes().vec();
    shape.back() = lin.n();
    torch::Tensor y = torch::empty(shape, torch::kFloat);
    const int64_t m = xc.numel() / lin.k();
    lin.forward(fptr(xc), m, lin.k(), fptr(y), lin.n(), q8.data(), {}, threads);
    return y;
  };
  // The engine's GEMM of the site's input x, then `act` (none: the GEMM alone); its gradient that
  // of act(fake-quantized x times the fake-quantized weight + bias), without the FP32 product.
  // The activation runs after the GEMM (its pre-activation is the backward pass's), which is the
  // fused epilogue's arithmetic: the parity tests check that the two agree bit for bit.
  auto gemm = [&](const Site& s, const torch::Tensor& x, Linears lins, const EngineLinear& e,
                  std::optional<io::Activation> act = std::nullopt) {
    const LinearAct la = !act                                ? LinearAct::none
                         : *act == io::Activation::gelu      ? LinearAct::gelu
                         : *act == io::Activation::gelu_tanh ? LinearAct::gelu_tanh
                                                             : LinearAct::relu;
    return attach_linear(
        grad, [&] { return s.q->fake_quantize(x, s.range); }, [&] { return weight_fq(lins, e); },
        grad ? bias(lins) : torch::Tensor(), la,
        [&] {
          LinearOut out;
          out.pre = run(e.lin, x);
          if (!act) {
            out.value = out.pre;
            return out;
          }
          out.value = grad ? out.pre.clone() : out.pre;
          ops::activation(*act, fptr(out.value), out.value.numel(), threads);
          return out;
        });
  };

  // --- Embeddings: int8 word and position tables, FP32 type table, LayerNorm -----------------
  torch::Tensor hidden;
  {
    layers::Embeddings e;
    e.hidden = H;
    auto table = [&](torch::nn::Embedding& t, const char* name, std::vector<int8_t>& q,
                     float& scale) {
      const torch::Tensor w = t->weight.detach().contiguous();
      quant::QuantizedWeights qw = quant::quantize_weights(
          cspan(w), static_cast<int>(w.size(0)), static_cast<int>(w.size(1)),
          quant::WeightGranularity::per_tensor, std::string(name) + ".weight");
      q = std::move(qw.q);
      scale = qw.scales[0];
    };
    table(emb->word_embeddings, "bert.embeddings.word_embeddings", e.word_q, e.word_scale);
    table(emb->position_embeddings, "bert.embeddings.position_embeddings", e.position_q,
          e.position_scale);
    e.token_type = to_vector(emb->token_type_embeddings->weight);
    e.norm = norm(emb->LayerNorm);
    hidden = attach(
        grad,
        [&] {
          torch::Tensor positions = torch::arange(T, input_ids.options().dtype(torch::kLong));
          torch::Tensor x =
              embed(emb->word_embeddings, "bert.embeddings.word_embeddings", input_ids, true) +
              emb->token_type_embeddings(token_type_ids) +
              embed(emb->position_embeddings, "bert.embeddings.position_embeddings", positions,
                    true)
                  .unsqueeze(0);
          return emb->LayerNorm(x);
        },
        [&] {
          torch::Tensor y = empty(H);
          e.forward(ids32, types32, offsets, fptr(y), threads);
          return y;
        });
    hidden = emb->dropout(hidden);
  }

  torch::Tensor additive =
      (1.0 - attention_mask.to(torch::kFloat)).mul(std::numeric_limits<float>::lowest());
  additive = additive.unsqueeze(1).unsqueeze(2);
  const int64_t longest = *std::max_element(valid.begin(), valid.end());
  for (std::size_t i = 0; i < bert->encoder->layer->size(); ++i) {
    auto layer = bert->encoder->layer[i]->as<BertLayer>();
    const std::string p = layer_prefix(i);
    auto& self = layer->attention->self;
    const int64_t heads = self->heads, hd = self->head_dim;

    // Q, K and V: one GEMM with one input scale, as the engine fuses them.
    const Site sx = next_site(hidden);
    const Linears qkv_l = {{&self->query, p + "attention.self.query"},
                           {&self->key, p + "attention.self.key"},
                           {&self->value, p + "attention.self.value"}};
    torch::Tensor qkv = gemm(sx, hidden, qkv_l, engine_linear(qkv_l, sx.act));
    if (o_.quantize_qk_outputs) {  // Q8BERT's 8-bit Q and K (the engine: in place after the GEMM)
      const torch::Tensor q = qkv.narrow(-1, 0, H), k = qkv.narrow(-1, H, H);
      const Site sq = next_site(q), sk = next_site(k);
      qkv = attach(
          grad,
          [&] {
            return torch::cat({sq.q->fake_quantize(q, sq.range), sk.q->fake_quantize(k, sk.range),
                               qkv.narrow(-1, 2 * H, H)},
                              -1);
          },
          [&] {
            torch::Tensor y = qkv.detach().contiguous().clone();
            for (const auto& [col, a] : {std::pair{int64_t{0}, &sq.act}, std::pair{H, &sk.act}})
              ops::fake_quantize_static(fptr(y) + col, static_cast<int>(N), static_cast<int>(H),
                                        3 * H, a->dtype, 1.0f / a->scale, a->scale, a->zero_point,
                                        q8.data(), threads);
            return y;
          });
    }
    auto torch_attention = [&] {
      auto split = [&](const torch::Tensor& y) {
        return y.reshape({B, T, heads, hd}).permute({0, 2, 1, 3});
      };
      torch::Tensor scores = torch::matmul(split(qkv.narrow(-1, 0, H)),
                                           split(qkv.narrow(-1, H, H)).transpose(-1, -2)) /
                             std::sqrt(double(hd));
      torch::Tensor probs = self->dropout(torch::softmax(scores + additive, -1));
      return torch::matmul(probs, split(qkv.narrow(-1, 2 * H, H)))
          .permute({0, 2, 1, 3})
          .reshape({B, T, H});
    };
    torch::Tensor ctx;
    if (training && self->dropout->options.p() > 0.0) {
      ctx = torch_attention();  // attention dropout: the engine's attention has none
    } else {
      ctx = attach(grad, torch_attention, [&] {
        const torch::Tensor in = qkv.detach().contiguous();
        torch::Tensor y = empty(H);
        const std::size_t per = ops::attention_scratch_per_thread(longest, hd);
        AlignedBuffer<float> scratch(per * static_cast<std::size_t>(threads));
        ops::self_attention(fptr(in), 3 * H, offsets, heads, hd, fptr(y), H, scratch.data(), per,
                            threads, nullptr, valid);
        return y;
      });
    }

    // Attention output, dropout, residual, LayerNorm.
    auto& ao = layer->attention->output;
    const Site sc = next_site(ctx);
    const Linears ao_l = {{&ao->dense, p + "attention.output.dense"}};
    const torch::Tensor y = gemm(sc, ctx, ao_l, engine_linear(ao_l, sc.act));
    const torch::Tensor a = layer_norm(ao->LayerNorm, ao->dropout(y) + hidden);

    // FFN in and its activation (the exported model fuses it into the GEMM's epilogue).
    auto& inter = layer->intermediate;
    const Site sa = next_site(a);
    const Linears in_l = {{&inter->dense, p + "intermediate.dense"}};
    const torch::Tensor mid = gemm(sa, a, in_l, engine_linear(in_l, sa.act), inter->activation);

    // FFN out, dropout, residual, LayerNorm.
    auto& out = layer->output;
    const Site sm = next_site(mid);
    const Linears out_l = {{&out->dense, p + "output.dense"}};
    const torch::Tensor z = gemm(sm, mid, out_l, engine_linear(out_l, sm.act));
    hidden = layer_norm(out->LayerNorm, out->dropout(z) + a);
  }

  // Head: pooler (tanh) on each sequence's first row, dropout, classifier.
  const torch::Tensor cls = hidden.select(1, 0);
  auto& pooler = bert->pooler->dense;
  const Site sp = next_site(cls);
  const Linears pool_l = {{&pooler, "bert.pooler.dense"}};
  const EngineLinear pool_lin = engine_linear(pool_l, sp.act);
  torch::Tensor pooled = attach(
      grad,
      [&] {
        return torch::tanh(F::linear(sp.q->fake_quantize(cls, sp.range),
                                     weight_fq(pool_l, pool_lin), bias(pool_l)));
      },
      [&] {
        torch::Tensor y = run(pool_lin.lin, cls);
        ops::tanh_inplace(fptr(y), y.numel(), threads);
        return y;
      });
  pooled = model_->dropout(pooled);
  auto& head = model_->classifier;
  const Site sh = next_site(pooled);
  const Linears head_l = {{&head, "classifier"}};
  OCTET_CHECK(site == sites_.size());
  return gemm(sh, pooled, head_l, engine_linear(head_l, sh.act));
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
  if (all_active(training)) return forward_engine(input_ids, token_type_ids, attention_mask);
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
