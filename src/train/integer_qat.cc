// Integer-only-aware fine-tuning: the engine's integer forward pass inside libtorch autograd.
// Contract in train/integer_qat.h.
#include "train/integer_qat.h"

#include <fmt/format.h>

#include <cmath>
#include <fstream>
#include <functional>
#include <iterator>
#include <limits>
#include <span>
#include <utility>

#include "common/aligned_buffer.h"
#include "io/atomic_file.h"
#include "kernels/int8.h"
#include "kernels/integer.h"
#include "kernels/kernels.h"
#include "layers/integer_encoder_layer.h"
#include "layers/linear_int8.h"
#include "models/bert_integer.h"
#include "octet/cpu.h"
#include "octet/error.h"
#include "ops/integer_ops.h"
#include "quant/bert_quant.h"
#include "quant/integer_quant.h"
#include "train/engine_fn.h"
#include "train/qat.h"

namespace octet::train {
namespace {

namespace fs = std::filesystem;
namespace F = torch::nn::functional;

std::span<const float> fspan(const torch::Tensor& t) {
  return {t.data_ptr<float>(), static_cast<std::size_t>(t.numel())};
}

// A buffer of integers viewed as a tensor (no copy: the caller keeps the buffer alive).
template <typename T>
torch::Tensor view(std::vector<T>& v, std::vector<int64_t> shape) {
  torch::ScalarType st = torch::kInt;
  if constexpr (std::is_same_v<T, int8_t>) st = torch::kChar;
  if constexpr (std::is_same_v<T, uint8_t>) st = torch::kByte;
  if constexpr (std::is_same_v<T, int16_t>) st = torch::kShort;
  if constexpr (std::is_same_v<T, int64_t>) st = torch::kLong;
  return torch::from_blob(v.data(), shape, st);
}

// codes * scale (per tensor) or codes * scale[c] (per last-dimension channel), in float64, as
// float: the real value of an integer tensor.
template <typename T>
torch::Tensor dequantize(std::vector<T>& codes, std::vector<int64_t> shape, double scale) {
  return (view(codes, std::move(shape)).to(torch::kDouble) * scale).to(torch::kFloat);
}
template <typename T>
torch::Tensor dequantize(std::vector<T>& codes, std::vector<int64_t> shape,
                         const std::vector<double>& scale) {
  torch::Tensor s = torch::from_blob(const_cast<double*>(scale.data()),
                                     {static_cast<int64_t>(scale.size())}, torch::kDouble);
  return (view(codes, std::move(shape)).to(torch::kDouble) * s).to(torch::kFloat);
}

// int8 weights [n, k] packed for the active ISA's INT8 GEMM, as IntegerEncoderLayer packs them.
struct Packed {
  int n = 0, k = 0;
  AlignedBuffer<uint8_t> packed;
  std::vector<int32_t> col_sums;
};

Packed pack(const int8_t* w, int n, int k, std::ptrdiff_t ldw) {
  const kernels::Int8Kernels& kt = kernels::table_for(active_isa()).int8;
  Packed b;
  b.n = n, b.k = k;
  b.packed.resize(kt.gemm_packed_b_size(n, k));
  kt.gemm_pack_b(w, ldw, n, k, b.packed.data());
  b.col_sums.resize(n);
  for (int j = 0; j < n; ++j) {
    int32_t sum = 0;
    for (int kk = 0; kk < k; ++kk) sum += w[j * ldw + kk];
    b.col_sums[j] = sum;
  }
  return b;
}

// C = A B^T (+ bias), int32: the engine's INT8 GEMM kernel (exact on every ISA).
void gemm(const void* a, kernels::ActDtype dtype, int m, std::ptrdiff_t lda, const Packed& b,
          const int32_t* bias, int32_t* c, std::ptrdiff_t ldc) {
  const kernels::Int8Kernels& kt = kernels::table_for(active_isa()).int8;
  kernels::GemmParams p;
  p.m = m, p.n = b.n, p.k = b.k;
  p.a = a, p.lda = lda, p.a_dtype = dtype, p.a_zero_point = 0;
  p.packed_b = b.packed.data(), p.col_sums = b.col_sums.data();
  p.output = kernels::GemmOutput::s32, p.c = c, p.ldc = ldc, p.bias_s32 = bias;
  AlignedBuffer<uint8_t> workspace(kt.gemm_workspace_size(m, b.k));
  kt.gemm(p, 0, m, 0, b.n, workspace.data());
}

// One Linear quantized for an input step s_x, as the integer-only export quantizes it.
struct QLinear {
  layers::QuantizedLinearWeights q;
  Packed packed;
  std::vector<double> acc_scale;  // S_x S_w[c] (IntegerEncoderLayer::prepare_quantized)
  int n = 0, k = 0;

  QLinear(torch::nn::Linear& lin, float s_x) {
    torch::Tensor w = lin->weight.detach().contiguous();
    torch::Tensor b = lin->bias.detach().contiguous();
    n = static_cast<int>(w.size(0)), k = static_cast<int>(w.size(1));
    q = layers::IntegerEncoderLayer::quantize_linear(fspan(w), fspan(b), n, k, s_x);
    packed = pack(q.w.data(), n, k, k);
    acc_scale.resize(n);
    const double sx = s_x;
    for (int c = 0; c < n; ++c) acc_scale[c] = sx * q.scales[c];
  }
  // acc [m, n] = x [m, k] W^T + bias.
  std::vector<int32_t> run(const int8_t* x, int m) const {
    std::vector<int32_t> acc(std::size_t(m) * n);
    gemm(x, kernels::ActDtype::s8, m, k, packed, q.bias.data(), acc.data(), n);
    return acc;
  }
  // The dequantized int8 weight: the surrogate's weight, with the identity gradient to the FP32
  // parameter.
  torch::Tensor weight(torch::nn::Linear& lin) {
    auto codes = view(q.w, {n, k});
    torch::Tensor s = torch::from_blob(q.scales.data(), {n, 1}, torch::kFloat);
    torch::Tensor wq = codes.to(torch::kFloat) * s;
    return EngineFn::apply(lin->weight, [wq] { return wq; });
  }
};

// Per-column residual requantization constants, as IntegerEncoderLayer::prepare_quantized's
// fill_dyadic: ratio from[c] / to (int32 / int8 inputs: shifts <= 63).
ops::ResidualParams residual(const std::vector<double>& from_x, double from_r, double to) {
  ops::ResidualParams p;
  const std::size_t n = from_x.size();
  p.mx.resize(n), p.sx.resize(n);
  for (std::size_t c = 0; c < n; ++c) {
    const ops::Dyadic d = ops::dyadic(from_x[c] / to, 63);
    p.mx[c] = d.multiplier, p.sx[c] = d.shift;
  }
  if (from_r > 0) {
    p.mr.resize(n), p.sr.resize(n);
    for (std::size_t c = 0; c < n; ++c) {
      const ops::Dyadic d = ops::dyadic(from_r / to, 63);
      p.mr[c] = d.multiplier, p.sr[c] = d.shift;
    }
  }
  return p;
}

// int64 -> 8 bits at step `to` (per-column scales `from`), as fill_dyadic with kMaxWideShift.
struct Wide {
  std::vector<int32_t> m, s;
  Wide(const std::vector<double>& from, double to) {
    m.resize(from.size()), s.resize(from.size());
    for (std::size_t c = 0; c < from.size(); ++c) {
      const ops::Dyadic d = ops::dyadic(from[c] / to, kernels::kMaxWideShift);
      m[c] = d.multiplier, s[c] = d.shift;
    }
  }
};

std::vector<float> to_vector(const torch::Tensor& t) {
  torch::Tensor c = t.detach().to(torch::kFloat).contiguous();
  return {c.data_ptr<float>(), c.data_ptr<float>() + c.numel()};
}

torch::Tensor dense(torch::nn::Linear& lin, QLinear& q, const torch::Tensor& x) {
  return F::linear(x, q.weight(lin), lin->bias);
}

}  // namespace

IntegerQatBert::IntegerQatBert(BertForSequenceClassification model, const io::BertConfig& config,
                               double momentum)
    : model_(std::move(model)), config_(config), momentum_(momentum) {
  if (!(momentum > 0.0 && momentum < 1.0))
    throw InvalidArgument(fmt::format(
        "integer-only QAT: the EMA momentum must be in (0, 1), found {} (I-BERT: 0.95)", momentum));
  if (config.hidden_act != io::Activation::gelu)
    throw Unsupported(fmt::format(
        "integer-only QAT: hidden_act \"{}\": the integer-only mode approximates the erf GELU "
        "(i-GELU) only",
        config.hidden_act_name));
  auto add = [&](std::string name, int bits) {
    IntegerQatSite s;
    s.name = std::move(name);
    s.bits = bits;
    s.observer = quant::make_observer({.kind = quant::CalibratorKind::ema, .decay = momentum_});
    sites_.push_back(std::move(s));
  };
  add(quant::kEmbeddingSumTensor, models::kEmbeddingSumBits);
  const int r = models::kResidualSumBits;
  for (std::size_t i = 0; i < model_->bert->encoder->layer->size(); ++i) {
    const std::string p = fmt::format("bert.encoder.layer.{}.", i);
    add(p + "attention.self.query", 8);
    add(p + "attention.self.query:output", 8);
    add(p + "attention.self.key:output", 8);
    add(p + "attention.self.value:output", 8);
    add(p + "attention.output.dense", 8);
    add(p + "attention.output.dense:output", r);
    add(p + "intermediate.dense", 8);
    add(p + "output.dense", 8);
    add(p + "output.dense:output", r);
  }
}

bool IntegerQatBert::ready() const {
  for (const auto& s : sites_)
    if (s.observer->count() == 0) return false;
  return true;
}

float IntegerQatBert::step(std::size_t site, const std::function<torch::Tensor()>& real_value,
                           const torch::Tensor& valid, bool training) {
  IntegerQatSite& s = sites_.at(site);
  if (training) {
    // I-BERT's QuantAct: the batch's min / max update the EMA before the step is read.
    const torch::Tensor real = real_value().detach();
    const torch::Tensor x = real.reshape({-1, real.size(-1)}).index_select(0, valid);
    const std::vector<float> v = to_vector(x);
    s.observer->observe(v);
  } else if (s.observer->count() == 0) {
    throw InvalidArgument(fmt::format(
        "integer-only QAT: the range of '{}' was never observed: run a training step first, or "
        "restore a calibration",
        s.name));
  }
  return quant::integer_activation_step(*s.observer, s.bits);
}

torch::Tensor IntegerQatBert::forward(const torch::Tensor& input_ids, torch::Tensor token_type_ids,
                                      torch::Tensor attention_mask) {
  if (input_ids.dim() != 2 || input_ids.size(0) < 1 || input_ids.size(1) < 1)
    throw InvalidArgument(
        fmt::format("IntegerQatBert: input_ids must be a non-empty [B, T] tensor, found {}",
                    c10::str(input_ids.sizes())));
  if (!token_type_ids.defined()) token_type_ids = torch::zeros_like(input_ids);
  if (!attention_mask.defined()) attention_mask = torch::ones_like(input_ids);
  if (token_type_ids.sizes() != input_ids.sizes() || attention_mask.sizes() != input_ids.sizes())
    throw InvalidArgument(
        "IntegerQatBert: token_type_ids and attention_mask must have the shape of input_ids");
  const bool training = model_->is_training();
  const bool grad = torch::GradMode::is_enabled();
  auto& bert = model_->bert;
  auto& emb = bert->embeddings;
  const int64_t B = input_ids.size(0), T = input_ids.size(1);
  const int h = static_cast<int>(config_.hidden_size);
  const int64_t BT = B * T;
  if (T > config_.max_position_embeddings)
    throw InvalidArgument(fmt::format("IntegerQatBert: {} tokens, more than the {} positions", T,
                                      config_.max_position_embeddings));

  // Sequence lengths: the mask must be 1 on a prefix of each row (padding at the end).
  const std::vector<int64_t> len = padded_lengths(attention_mask, "IntegerQatBert");
  const torch::Tensor mask_l = attention_mask.to(torch::kLong).contiguous();
  const torch::Tensor valid = mask_l.reshape({-1}).nonzero().squeeze(1);
  std::size_t site = 0;
  // The step of the next site; `real` (the activation's real values) is evaluated in training
  // only.
  auto next_step = [&](const std::function<torch::Tensor()>& real) {
    return step(site++, real, valid, training);
  };
  auto shape3 = [&](int64_t c) { return std::vector<int64_t>{B, T, c}; };
  const std::size_t bth = std::size_t(BT) * h;

  // --- Embeddings: int8 tables, 16-bit sums, i-LayerNorm -------------------------------------
  const torch::Tensor ids = input_ids.to(torch::kLong).contiguous();
  const torch::Tensor types = token_type_ids.to(torch::kLong).contiguous();
  const torch::Tensor positions = torch::arange(T, torch::kLong);
  auto table = [](torch::nn::Embedding& e) {
    torch::Tensor w = e->weight.detach().contiguous();
    return layers::quantize_symmetric_int8(fspan(w), w.size(0), w.size(1), /*per_row=*/false);
  };
  const layers::SymmetricInt8 word8 = table(emb->word_embeddings);
  const layers::SymmetricInt8 pos8 = table(emb->position_embeddings);
  const layers::SymmetricInt8 type8 = table(emb->token_type_embeddings);
  const int64_t vocab = emb->word_embeddings->weight.size(0);
  const int64_t type_rows = emb->token_type_embeddings->weight.size(0);
  {
    std::vector<int32_t> ids32, types32;  // checks every id and type against the tables
    engine_ids(ids, types, vocab, type_rows, "IntegerQatBert", ids32, types32);
  }
  torch::Tensor emb_f = emb->word_embeddings(ids) + emb->token_type_embeddings(types) +
                        emb->position_embeddings(positions).unsqueeze(0);
  const float s_sum =
      next_step([&] { return emb_f; });  // FP32 sum of the rows, as the calibration collector
  std::vector<int32_t> a(bth);
  std::vector<int8_t> r(bth);
  std::vector<int16_t> sum16(bth);
  {
    const int64_t* ip = ids.data_ptr<int64_t>();
    const int64_t* tp = types.data_ptr<int64_t>();
    for (int64_t i = 0; i < BT; ++i) {
      for (int c = 0; c < h; ++c) {
        a[std::size_t(i) * h + c] = word8.q[std::size_t(ip[i]) * h + c];
        r[std::size_t(i) * h + c] = type8.q[std::size_t(tp[i]) * h + c];
      }
    }
  }
  const float sw[] = {word8.scales[0]}, st[] = {type8.scales[0]}, sp[] = {pos8.scales[0]},
              ss[] = {s_sum};
  ops::residual_add(a.data(), h, r.data(), h, static_cast<int>(BT), h,
                    ops::prepare_residual(sw, st, s_sum, h), models::kEmbeddingSumBits,
                    sum16.data(), h);
  for (std::size_t j = 0; j < bth; ++j) a[j] = sum16[j];
  for (int64_t i = 0; i < BT; ++i)
    std::copy_n(pos8.q.data() + (i % T) * h, h, r.data() + std::size_t(i) * h);
  ops::residual_add(a.data(), h, r.data(), h, static_cast<int>(BT), h,
                    ops::prepare_residual(ss, sp, s_sum, h), models::kEmbeddingSumBits,
                    sum16.data(), h);
  for (std::size_t j = 0; j < bth; ++j) a[j] = sum16[j];
  torch::Tensor sum_v = attach(
      grad, [&] { return emb_f; }, [&] { return dequantize(sum16, shape3(h), s_sum); });
  ops::ILayerNormParams norm =
      ops::prepare_ilayernorm(fspan(emb->LayerNorm->weight.detach().contiguous()),
                              fspan(emb->LayerNorm->bias.detach().contiguous()), 0);
  std::vector<int64_t> ln(bth);
  ops::ilayernorm(a.data(), static_cast<int>(BT), h, h, norm, ln.data(), h);
  // The LayerNorm output in FP32 (surrogate) and its int64 values at norm.out_scale.
  torch::Tensor ln_f = grad ? emb->LayerNorm(sum_v) : torch::Tensor();
  std::vector<double> ln_scale = norm.out_scale;

  // --- Encoder layers -------------------------------------------------------------------------
  const int64_t L = static_cast<int64_t>(bert->encoder->layer->size());
  torch::Tensor hidden_v;
  for (int64_t li = 0; li < L; ++li) {
    auto layer = bert->encoder->layer[li]->as<BertLayer>();
    auto& self = layer->attention->self;
    const int heads = static_cast<int>(self->heads), d = static_cast<int>(self->head_dim);
    const int inter = static_cast<int>(layer->intermediate->dense->weight.size(0));
    const int m = static_cast<int>(BT);

    // Layer input: the previous LayerNorm to 8 bits.
    const float s_in = next_step([&] { return dequantize(ln, shape3(h), ln_scale); });
    std::vector<int8_t> x8(bth);
    {
      const Wide w(ln_scale, s_in);
      ops::requantize_wide(ln.data(), m, h, h, w.m, w.s, 8, x8.data(), h);
    }
    torch::Tensor x_v = attach(
        grad, [&] { return ln_f; }, [&] { return dequantize(x8, shape3(h), s_in); });

    // Q, K, V: int8 GEMMs requantized to 8 bits each.
    QLinear lq(self->query, s_in), lk(self->key, s_in), lv(self->value, s_in);
    std::vector<int32_t> acc_q = lq.run(x8.data(), m), acc_k = lk.run(x8.data(), m),
                         acc_v = lv.run(x8.data(), m);
    const float s_q = next_step([&] { return dequantize(acc_q, shape3(h), lq.acc_scale); });
    const float s_k = next_step([&] { return dequantize(acc_k, shape3(h), lk.acc_scale); });
    const float s_v = next_step([&] { return dequantize(acc_v, shape3(h), lv.acc_scale); });
    std::vector<int8_t> q8(bth), k8(bth), v8(bth);
    ops::residual_add(acc_q.data(), h, nullptr, 0, m, h, residual(lq.acc_scale, 0, s_q), 8,
                      q8.data(), h);
    ops::residual_add(acc_k.data(), h, nullptr, 0, m, h, residual(lk.acc_scale, 0, s_k), 8,
                      k8.data(), h);
    ops::residual_add(acc_v.data(), h, nullptr, 0, m, h, residual(lv.acc_scale, 0, s_v), 8,
                      v8.data(), h);

    // Attention per sequence and head, unpadded: integer scores, i-softmax to uint8, P V.
    const kernels::IexpParams softmax =
        ops::prepare_iexp(static_cast<float>(double{s_q} * s_k / std::sqrt(double(d))));
    std::vector<uint8_t> probs(std::size_t(B) * heads * T * T, 0);
    std::vector<int32_t> ctx32(bth, 0);
    for (int64_t b = 0; b < B; ++b) {
      const int t = static_cast<int>(len[b]);
      std::vector<int32_t> scores(std::size_t(t) * t);
      std::vector<int8_t> vt(std::size_t(d) * t);
      std::vector<uint8_t> p(std::size_t(t) * t);
      for (int hd = 0; hd < heads; ++hd) {
        const std::size_t base = std::size_t(b) * T * h + hd * d;
        gemm(q8.data() + base, kernels::ActDtype::s8, t, h, pack(k8.data() + base, t, d, h),
             nullptr, scores.data(), t);
        ops::isoftmax(scores.data(), t, t, t, t, softmax, p.data(), t);
        for (int i = 0; i < t; ++i)
          for (int c = 0; c < d; ++c)
            vt[std::size_t(c) * t + i] = v8[base + std::size_t(i) * h + c];
        gemm(p.data(), kernels::ActDtype::u8, t, t, pack(vt.data(), d, t, t), nullptr,
             ctx32.data() + base, h);
        uint8_t* dst = probs.data() + (std::size_t(b) * heads + hd) * T * T;
        for (int i = 0; i < t; ++i) std::copy_n(p.data() + std::size_t(i) * t, t, dst + i * T);
      }
    }
    const std::vector<double> ctx_scale(h, ops::kIsoftmaxOutScale * s_v);
    const float s_ctx = next_step([&] { return dequantize(ctx32, shape3(h), ctx_scale); });
    std::vector<int8_t> ctx8(bth);
    ops::residual_add(ctx32.data(), h, nullptr, 0, m, h, residual(ctx_scale, 0, s_ctx), 8,
                      ctx8.data(), h);
    torch::Tensor ctx_v;
    if (grad) {
      auto split = [&](const torch::Tensor& y) {
        return y.view({B, T, heads, d}).permute({0, 2, 1, 3});
      };
      torch::Tensor qv = attach(
          grad, [&] { return dense(self->query, lq, x_v); },
          [&] { return dequantize(q8, shape3(h), s_q); });
      torch::Tensor kv = attach(
          grad, [&] { return dense(self->key, lk, x_v); },
          [&] { return dequantize(k8, shape3(h), s_k); });
      torch::Tensor vv = attach(
          grad, [&] { return dense(self->value, lv, x_v); },
          [&] { return dequantize(v8, shape3(h), s_v); });
      torch::Tensor additive = (1.0 - attention_mask.to(torch::kFloat))
                                   .mul(std::numeric_limits<float>::lowest())
                                   .unsqueeze(1)
                                   .unsqueeze(2);
      torch::Tensor pv = attach(
          grad,
          [&] {
            torch::Tensor sc =
                torch::matmul(split(qv), split(kv).transpose(-1, -2)) / std::sqrt(double(d));
            return torch::softmax(sc + additive, -1);
          },
          [&] {
            return dequantize(probs, {B, heads, T, T}, ops::kIsoftmaxOutScale);
          });
      ctx_v = attach(
          grad,
          [&] {
            return torch::matmul(pv, split(vv)).permute({0, 2, 1, 3}).contiguous().view({B, T, h});
          },
          [&] { return dequantize(ctx8, shape3(h), s_ctx); });
    }

    // Attention output + residual -> 22 bits -> i-LayerNorm -> 8 bits.
    auto& ao = layer->attention->output;
    QLinear lo(ao->dense, s_ctx);
    std::vector<int32_t> acc_o = lo.run(ctx8.data(), m);
    const float s_as = next_step([&] {
      return (dequantize(acc_o, shape3(h), lo.acc_scale).to(torch::kDouble) +
              dequantize(x8, shape3(h), double{s_in}).to(torch::kDouble))
          .to(torch::kFloat);
    });
    std::vector<int32_t> sum22(bth);
    ops::residual_add(acc_o.data(), h, x8.data(), h, m, h, residual(lo.acc_scale, s_in, s_as),
                      models::kResidualSumBits, sum22.data(), h);
    torch::Tensor as_v = attach(
        grad, [&] { return dense(ao->dense, lo, ctx_v) + x_v; },
        [&] { return dequantize(sum22, shape3(h), s_as); });
    const ops::ILayerNormParams ln1 =
        ops::prepare_ilayernorm(fspan(ao->LayerNorm->weight.detach().contiguous()),
                                fspan(ao->LayerNorm->bias.detach().contiguous()), 0);
    ops::ilayernorm(sum22.data(), m, h, h, ln1, ln.data(), h);
    const float s_ln1 = next_step([&] { return dequantize(ln, shape3(h), ln1.out_scale); });
    std::vector<int8_t> h8(bth);
    {
      const Wide w(ln1.out_scale, s_ln1);
      ops::requantize_wide(ln.data(), m, h, h, w.m, w.s, 8, h8.data(), h);
    }
    torch::Tensor h_v = attach(
        grad, [&] { return ao->LayerNorm(as_v); },
        [&] { return dequantize(h8, shape3(h), s_ln1); });

    // FFN: FC1 -> i-GELU -> 8 bits -> FC2 -> + h -> 22 bits -> i-LayerNorm.
    QLinear l1(layer->intermediate->dense, s_ln1);
    std::vector<int32_t> acc1 = l1.run(h8.data(), m);
    const ops::IGeluParams gp =
        ops::prepare_igelu(std::vector<float>(l1.acc_scale.begin(), l1.acc_scale.end()));
    const std::size_t bti = std::size_t(BT) * inter;
    std::vector<int64_t> g64(bti);
    ops::igelu(acc1.data(), m, inter, inter, gp, g64.data(), inter);
    const float s_g = next_step([&] { return dequantize(g64, shape3(inter), gp.out_scale); });
    std::vector<int8_t> g8(bti);
    {
      const Wide w(gp.out_scale, s_g);
      ops::requantize_wide(g64.data(), m, inter, inter, w.m, w.s, 8, g8.data(), inter);
    }
    torch::Tensor g_v = attach(
        grad, [&] { return torch::gelu(dense(layer->intermediate->dense, l1, h_v)); },
        [&] { return dequantize(g8, shape3(inter), s_g); });
    auto& out = layer->output;
    QLinear l2(out->dense, s_g);
    std::vector<int32_t> acc2 = l2.run(g8.data(), m);
    const float s_fs = next_step([&] {
      return (dequantize(acc2, shape3(h), l2.acc_scale).to(torch::kDouble) +
              dequantize(h8, shape3(h), double{s_ln1}).to(torch::kDouble))
          .to(torch::kFloat);
    });
    ops::residual_add(acc2.data(), h, h8.data(), h, m, h, residual(l2.acc_scale, s_ln1, s_fs),
                      models::kResidualSumBits, sum22.data(), h);
    torch::Tensor fs_v = attach(
        grad, [&] { return dense(out->dense, l2, g_v) + h_v; },
        [&] { return dequantize(sum22, shape3(h), s_fs); });
    const ops::ILayerNormParams ln2 =
        ops::prepare_ilayernorm(fspan(out->LayerNorm->weight.detach().contiguous()),
                                fspan(out->LayerNorm->bias.detach().contiguous()), 0);
    ops::ilayernorm(sum22.data(), m, h, h, ln2, ln.data(), h);
    ln_scale = ln2.out_scale;
    if (grad) ln_f = out->LayerNorm(fs_v);
  }

  // The last LayerNorm dequantized once, as IntegerBertEncoder::forward_dequantized, then the
  // FP32 head.
  hidden_v = attach(
      grad, [&] { return ln_f; },
      [&] {
        torch::Tensor v = torch::empty({B, T, h}, torch::kFloat);
        float* dst = v.data_ptr<float>();
        for (std::size_t i = 0; i < bth; ++i)
          dst[i] = static_cast<float>(static_cast<double>(ln[i]) * ln_scale[i % h]);
        return v;
      });
  if (training) ++batches_;
  torch::Tensor pooled = torch::tanh(bert->pooler->dense(hidden_v.select(1, 0)));
  return model_->classifier(model_->dropout(pooled));
}

nlohmann::json IntegerQatBert::calibration(const fs::path& weights_file) const {
  nlohmann::json tensors = nlohmann::json::object();
  for (const auto& s : sites_) {
    if (s.observer->count() == 0)
      throw InvalidArgument(fmt::format(
          "integer-only QAT export: the range of '{}' was never observed: train at least one step",
          s.name));
    tensors[s.name] = {{"ema", s.observer->to_json()}};
  }
  return {{"format", quant::kCalibrationFormat},
          {"version", quant::kCalibrationVersion},
          {"model", weights_file.parent_path().string()},
          {"model_weights", quant::file_fingerprint(weights_file)},
          {"source", "integer-only-aware training (octet finetune --qat --qat-mode integer-only)"},
          {"batches", batches_},
          {"calibrator", "ema-minmax"},
          {"statistics",
           {{"max", false}, {"ema", true}, {"histogram", false}, {"ema_decay", momentum_}}},
          {"tensors", tensors}};
}

void IntegerQatBert::restore(const nlohmann::json& calibration) {
  quant::validate_calibration(calibration, "integer-only QAT calibration");
  const nlohmann::json& tensors = calibration["tensors"];
  for (auto& s : sites_) {
    if (!tensors.contains(s.name) || !tensors[s.name].contains("ema"))
      throw ModelFormatError(fmt::format(
          "integer-only QAT calibration: no \"ema\" statistics for '{}': expected a file written "
          "by octet finetune --qat --qat-mode integer-only or octet calibrate --calibrator "
          "ema-minmax",
          s.name));
    std::unique_ptr<quant::Observer> o = quant::observer_from_json(
        tensors[s.name]["ema"], fmt::format("calibration: tensors.\"{}\".ema", s.name));
    if (o->spec().kind != quant::CalibratorKind::ema)
      throw InvalidArgument(
          fmt::format("integer-only QAT calibration of '{}': expected EMA statistics, found \"{}\"",
                      s.name, quant::to_string(o->spec().kind)));
    s.observer = std::move(o);
  }
}

void export_integer_qat(IntegerQatBert& qat, const io::BertConfig& config, const fs::path& vocab,
                        const fs::path& out_dir, const std::optional<fs::path>& tokenizer_config) {
  const nlohmann::json calib = write_qat_fp32_and_calibration(
      qat.model(), config, vocab, out_dir, tokenizer_config,
      [&](const fs::path& weights) { return qat.calibration(weights); },
      "integer-only QAT calibration");
  const quant::QuantizedBert q = quant::quantize_bert_integer(out_dir / "fp32", calib);
  quant::write_quantized_dir(q, out_dir);
}

}  // namespace octet::train
