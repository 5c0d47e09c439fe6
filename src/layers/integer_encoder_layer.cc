// One BERT encoder layer in I-BERT integer-only arithmetic: prepare (float -> integer constants)
// and the integer forward pass. Contract in layers/integer_encoder_layer.h.
#include "layers/integer_encoder_layer.h"

#include <fmt/format.h>

#include <cmath>
#include <limits>
#include <string_view>

#include "kernels/kernels.h"
#include "layers/linear_int8.h"
#include "octet/error.h"

namespace octet::layers {
namespace {

void check_size(std::string_view what, const std::vector<float>& v, std::size_t n) {
  if (v.size() != n) {
    throw InvalidArgument(
        fmt::format("integer encoder layer: {} has {} values: expected {}", what, v.size(), n));
  }
}

void check_scale(std::string_view what, float s) {
  if (!(s > 0.0f) || !std::isfinite(s)) {
    throw InvalidArgument(fmt::format(
        "integer encoder layer: scale {} is {}: expected a positive finite value", what, s));
  }
}

// Per-column requantization constants ratio[c] = from[c] / to (int32 inputs: shifts <= 63).
void fill_dyadic(const std::vector<double>& from, double to, std::vector<int32_t>& m,
                 std::vector<int32_t>& s, int max_shift) {
  m.resize(from.size());
  s.resize(from.size());
  for (std::size_t c = 0; c < from.size(); ++c) {
    const ops::Dyadic d = ops::dyadic(from[c] / to, max_shift);
    m[c] = d.multiplier;
    s[c] = d.shift;
  }
}

void check_sizes(int h, int in, int heads) {
  if (h <= 0 || in <= 0 || heads <= 0 || h % heads != 0) {
    throw InvalidArgument(fmt::format(
        "integer encoder layer: hidden {}, heads {}, intermediate {}: expected positive sizes "
        "with hidden divisible by heads",
        h, heads, in));
  }
}

void check_scales(const IntegerLayerScales& s) {
  const float all[] = {s.input,    s.q,   s.k,    s.v,       s.context,
                       s.attn_sum, s.ln1, s.gelu, s.ffn_sum, s.output};
  const char* names[] = {"input",    "q",   "k",    "v",       "context",
                         "attn_sum", "ln1", "gelu", "ffn_sum", "output"};
  for (int i = 0; i < 10; ++i) check_scale(names[i], all[i]);
}

QuantizedLinearWeights quantize_linear(std::span<const float> wt, std::span<const float> b, int n,
                                       int k, double s_x) {
  if (b.size() != std::size_t(n)) {
    throw InvalidArgument(fmt::format(
        "integer encoder layer: a bias has {} values for {} outputs: expected equal", b.size(), n));
  }
  SymmetricInt8 q = quantize_symmetric_int8(wt, n, k, /*per_row=*/true);
  QuantizedLinearWeights out;
  out.w = std::move(q.q);
  out.scales = std::move(q.scales);
  out.bias.resize(n);
  for (int c = 0; c < n; ++c) {
    const double v = std::nearbyint(b[c] / (s_x * out.scales[c]));
    const double lim = std::numeric_limits<int32_t>::max();
    out.bias[c] = static_cast<int32_t>(std::fmax(-lim, std::fmin(lim, v)));
  }
  return out;
}

void check_linear(std::string_view what, const QuantizedLinearWeights& l, int n, int k) {
  if (l.w.size() != std::size_t(n) * k || l.scales.size() != std::size_t(n) ||
      l.bias.size() != std::size_t(n)) {
    throw InvalidArgument(fmt::format(
        "integer encoder layer: {} has {} weights, {} scales, {} biases: expected {} x {}, {}, {}",
        what, l.w.size(), l.scales.size(), l.bias.size(), n, k, n, n));
  }
  for (int c = 0; c < n; ++c) {
    if (!(l.scales[c] > 0.0f) || !std::isfinite(l.scales[c])) {
      throw InvalidArgument(
          fmt::format("integer encoder layer: {} weight scale [{}] is {}: expected a positive "
                      "finite value",
                      what, c, l.scales[c]));
    }
  }
}

}  // namespace

QuantizedLinearWeights IntegerEncoderLayer::quantize_linear(std::span<const float> w,
                                                            std::span<const float> b, int n, int k,
                                                            double input_scale) {
  return layers::quantize_linear(w, b, n, k, input_scale);
}

QuantizedEncoderWeights IntegerEncoderLayer::quantize_weights(const FloatEncoderWeights& w,
                                                              const IntegerLayerScales& s) {
  const int h = w.hidden, in = w.intermediate;
  check_sizes(h, in, w.heads);
  const std::size_t hh = std::size_t(h) * h, hi = std::size_t(h) * in;
  check_size("wq", w.wq, hh), check_size("wk", w.wk, hh), check_size("wv", w.wv, hh);
  check_size("wo", w.wo, hh), check_size("w1", w.w1, hi), check_size("w2", w.w2, hi);
  for (const auto* v : {&w.bq, &w.bk, &w.bv, &w.bo, &w.b2}) check_size("a bias", *v, h);
  check_size("b1", w.b1, in);
  check_scales(s);
  QuantizedEncoderWeights q;
  q.hidden = h, q.heads = w.heads, q.intermediate = in;
  q.q = quantize_linear(w.wq, w.bq, h, h, s.input);
  q.k = quantize_linear(w.wk, w.bk, h, h, s.input);
  q.v = quantize_linear(w.wv, w.bv, h, h, s.input);
  q.o = quantize_linear(w.wo, w.bo, h, h, s.context);
  q.fc1 = quantize_linear(w.w1, w.b1, in, h, s.ln1);
  q.fc2 = quantize_linear(w.w2, w.b2, h, in, s.gelu);
  q.ln1_gamma = w.ln1_gamma, q.ln1_beta = w.ln1_beta;
  q.ln2_gamma = w.ln2_gamma, q.ln2_beta = w.ln2_beta;
  return q;
}

IntegerEncoderLayer IntegerEncoderLayer::prepare(const FloatEncoderWeights& w,
                                                 const IntegerLayerScales& s, int ln1_shift,
                                                 int ln2_shift, Isa isa) {
  return prepare_quantized(quantize_weights(w, s), s, ln1_shift, ln2_shift, isa);
}

IntegerEncoderLayer IntegerEncoderLayer::prepare_quantized(const QuantizedEncoderWeights& w,
                                                           const IntegerLayerScales& s,
                                                           int ln1_shift, int ln2_shift, Isa isa) {
  const int h = w.hidden, in = w.intermediate;
  check_sizes(h, in, w.heads);
  check_linear("query", w.q, h, h), check_linear("key", w.k, h, h);
  check_linear("value", w.v, h, h), check_linear("attention output", w.o, h, h);
  check_linear("FC1", w.fc1, in, h), check_linear("FC2", w.fc2, h, in);
  for (const auto* v : {&w.ln1_gamma, &w.ln1_beta, &w.ln2_gamma, &w.ln2_beta}) {
    check_size("a LayerNorm vector", *v, h);
  }
  check_scales(s);

  IntegerEncoderLayer l;
  l.hidden_ = h, l.heads_ = w.heads, l.head_dim_ = h / w.heads, l.inter_ = in, l.isa_ = isa;

  // Linear: packed int8 weights and int32 bias; returns the accumulator scales S_x S_w[c].
  auto linear = [&](Linear& lin, const QuantizedLinearWeights& q, int n, int k, double s_x) {
    lin.w = l.pack(q.w.data(), n, k, k);
    lin.bias = q.bias;
    std::vector<double> acc(n);
    for (int c = 0; c < n; ++c) acc[c] = s_x * q.scales[c];
    return acc;
  };

  QuantizedLinearWeights qkv;
  for (const auto* m : {&w.q, &w.k, &w.v}) {
    qkv.w.insert(qkv.w.end(), m->w.begin(), m->w.end());
    qkv.scales.insert(qkv.scales.end(), m->scales.begin(), m->scales.end());
    qkv.bias.insert(qkv.bias.end(), m->bias.begin(), m->bias.end());
  }
  const std::vector<double> acc_qkv = linear(l.qkv_, qkv, 3 * h, h, s.input);
  {
    auto& p = l.qkv_req_.p;
    p.mx.resize(3 * h), p.sx.resize(3 * h);
    for (int c = 0; c < 3 * h; ++c) {
      const double to = c < h ? s.q : (c < 2 * h ? s.k : s.v);
      const ops::Dyadic d = ops::dyadic(acc_qkv[c] / to, 63);
      p.mx[c] = d.multiplier, p.sx[c] = d.shift;
    }
  }
  l.softmax_ = ops::prepare_iexp(
      static_cast<float>(double{s.q} * s.k / std::sqrt(static_cast<double>(l.head_dim_))));
  // P V accumulates at 2^-8 * S_v.
  fill_dyadic(std::vector<double>(h, ops::kIsoftmaxOutScale * s.v), s.context, l.ctx_req_.p.mx,
              l.ctx_req_.p.sx, 63);

  const std::vector<double> acc_out = linear(l.out_, w.o, h, h, s.context);
  fill_dyadic(acc_out, s.attn_sum, l.attn_sum_req_.p.mx, l.attn_sum_req_.p.sx, 63);
  fill_dyadic(std::vector<double>(h, s.input), s.attn_sum, l.attn_sum_req_.p.mr,
              l.attn_sum_req_.p.sr, 63);
  l.attn_sum_req_.bits = 22;

  l.ln1_ = ops::prepare_ilayernorm(w.ln1_gamma, w.ln1_beta, ln1_shift);
  fill_dyadic(l.ln1_.out_scale, s.ln1, l.ln1_m_, l.ln1_s_, kernels::kMaxWideShift);

  const std::vector<double> acc1 = linear(l.fc1_, w.fc1, in, h, s.ln1);
  l.gelu_ = ops::prepare_igelu(std::vector<float>(acc1.begin(), acc1.end()));
  fill_dyadic(l.gelu_.out_scale, s.gelu, l.gelu_m_, l.gelu_s_, kernels::kMaxWideShift);

  const std::vector<double> acc2 = linear(l.fc2_, w.fc2, h, in, s.gelu);
  fill_dyadic(acc2, s.ffn_sum, l.ffn_sum_req_.p.mx, l.ffn_sum_req_.p.sx, 63);
  fill_dyadic(std::vector<double>(h, s.ln1), s.ffn_sum, l.ffn_sum_req_.p.mr, l.ffn_sum_req_.p.sr,
              63);
  l.ffn_sum_req_.bits = 22;

  l.ln2_ = ops::prepare_ilayernorm(w.ln2_gamma, w.ln2_beta, ln2_shift);
  fill_dyadic(l.ln2_.out_scale, s.output, l.ln2_m_, l.ln2_s_, kernels::kMaxWideShift);
  return l;
}

IntegerEncoderLayer::PackedB IntegerEncoderLayer::pack(const int8_t* w, int n, int k,
                                                       std::ptrdiff_t ldw) const {
  PackedB b;
  pack_into(b, w, n, k, ldw);
  return b;
}

void IntegerEncoderLayer::pack_into(PackedB& b, const int8_t* w, int n, int k,
                                    std::ptrdiff_t ldw) const {
  const kernels::Int8Kernels& kt = kernels::table_for(isa_).int8;
  b.n = n, b.k = k;
  b.packed.ensure(kt.gemm_packed_b_size(n, k));
  kt.gemm_pack_b(w, ldw, n, k, b.packed.data());
  if (b.col_sums.size() < std::size_t(n)) b.col_sums.resize(n);
  for (int j = 0; j < n; ++j) {
    int32_t sum = 0;
    for (int kk = 0; kk < k; ++kk) sum += w[j * ldw + kk];
    b.col_sums[j] = sum;
  }
}

namespace {

// Scratch of one thread's forward pass, grown on demand and reused by every later call on that
// thread (sequences run on OpenMP threads, which persist), so that the steady state allocates
// nothing: a fresh zero-filled std::vector per tensor cost ~30% of a BERT-base batch in page
// faults, zeroing and unmapping. Contents never carry over: every buffer is written before read.
struct Scratch {
  AlignedBuffer<uint8_t> gemm;
  IntegerEncoderLayer::PackedB k_packed, v_packed;
  AlignedBuffer<int32_t> acc, scores, ctx32, acc_h, sum22, acc_i;
  AlignedBuffer<int8_t> qkv, vt, ctx, hid, g8;
  AlignedBuffer<uint8_t> probs;
  AlignedBuffer<int64_t> ln, g, layer_out_ln;
};

Scratch& scratch() {
  thread_local Scratch s;
  return s;
}

}  // namespace

void IntegerEncoderLayer::gemm(const void* a, kernels::ActDtype dtype, int m, std::ptrdiff_t lda,
                               const PackedB& b, const int32_t* bias, int32_t* c,
                               std::ptrdiff_t ldc) const {
  const kernels::Int8Kernels& kt = kernels::table_for(isa_).int8;
  kernels::GemmParams p;
  p.m = m, p.n = b.n, p.k = b.k;
  p.a = a, p.lda = lda, p.a_dtype = dtype, p.a_zero_point = 0;
  p.packed_b = b.packed.data(), p.col_sums = b.col_sums.data();
  p.output = kernels::GemmOutput::s32, p.c = c, p.ldc = ldc, p.bias_s32 = bias;
  kt.gemm(p, 0, m, 0, b.n, scratch().gemm.ensure_data(kt.gemm_workspace_size(m, b.k)));
}

void IntegerEncoderLayer::forward(std::span<const int8_t> x, int tokens,
                                  std::span<int8_t> y) const {
  const std::size_t th = std::size_t(tokens > 0 ? tokens : 0) * hidden_;
  if (tokens <= 0 || y.size() != th) {
    throw InvalidArgument(
        fmt::format("integer encoder layer: {} tokens with output {} values: expected {} x {}",
                    tokens, y.size(), tokens, hidden_));
  }
  int64_t* ln = scratch().layer_out_ln.ensure_data(th);
  forward_ln(x, tokens, {ln, th});
  ops::requantize_wide(ln, tokens, hidden_, hidden_, ln2_m_, ln2_s_, 8, y.data(), hidden_, isa_);
}

void IntegerEncoderLayer::forward_ln(std::span<const int8_t> x, int tokens,
                                     std::span<int64_t> y) const {
  const int h = hidden_, d = head_dim_, t = tokens;
  const std::size_t th = std::size_t(t > 0 ? t : 0) * h;
  if (t <= 0 || x.size() != th || y.size() != th) {
    throw InvalidArgument(fmt::format(
        "integer encoder layer: {} tokens with input {} and output {} values: expected {} x {}", t,
        x.size(), y.size(), t, h));
  }
  const auto s8 = kernels::ActDtype::s8, u8 = kernels::ActDtype::u8;

  Scratch& sc = scratch();
  const std::size_t t3h = std::size_t(t) * 3 * h, tt = std::size_t(t) * t;
  const std::size_t ti = std::size_t(t) * inter_;

  // Q, K, V: one GEMM, requantized to 8 bits each.
  int32_t* acc = sc.acc.ensure_data(t3h);
  gemm(x.data(), s8, t, h, qkv_.w, qkv_.bias.data(), acc, 3 * h);
  int8_t* qkv = sc.qkv.ensure_data(t3h);
  ops::residual_add(acc, 3 * h, nullptr, 0, t, 3 * h, qkv_req_.p, 8, qkv, 3 * h, isa_);

  // Attention per head: integer scores, i-softmax to uint8, P V as a u8 x s8 GEMM. The head's K
  // (t x d) and V^T (d x t) are the "weights" of the two products, packed per head into reused
  // buffers.
  int32_t* scores = sc.scores.ensure_data(tt);
  int32_t* ctx32 = sc.ctx32.ensure_data(th);
  uint8_t* probs = sc.probs.ensure_data(tt);
  int8_t* vt = sc.vt.ensure_data(std::size_t(d) * t);
  for (int head = 0; head < heads_; ++head) {
    const int8_t* qh = qkv + head * d;
    const int8_t* kh = qkv + h + head * d;
    const int8_t* vh = qkv + 2 * h + head * d;
    pack_into(sc.k_packed, kh, t, d, 3 * h);
    gemm(qh, s8, t, 3 * h, sc.k_packed, nullptr, scores, t);
    ops::isoftmax(scores, t, t, t, t, softmax_, probs, t, isa_);
    for (int r = 0; r < t; ++r) {
      for (int c = 0; c < d; ++c) vt[std::size_t(c) * t + r] = vh[std::size_t(r) * 3 * h + c];
    }
    pack_into(sc.v_packed, vt, d, t, t);
    gemm(probs, u8, t, t, sc.v_packed, nullptr, ctx32 + head * d, h);
  }
  int8_t* ctx = sc.ctx.ensure_data(th);
  ops::residual_add(ctx32, h, nullptr, 0, t, h, ctx_req_.p, 8, ctx, h, isa_);

  // Output projection + residual (22 bits), i-LayerNorm, back to 8 bits.
  int32_t* acc_h = sc.acc_h.ensure_data(th);
  int32_t* sum22 = sc.sum22.ensure_data(th);
  gemm(ctx, s8, t, h, out_.w, out_.bias.data(), acc_h, h);
  ops::residual_add(acc_h, h, x.data(), h, t, h, attn_sum_req_.p, attn_sum_req_.bits, sum22, h,
                    isa_);
  int64_t* ln = sc.ln.ensure_data(th);
  ops::ilayernorm(sum22, t, h, h, ln1_, ln, h, isa_);
  int8_t* hid = sc.hid.ensure_data(th);
  ops::requantize_wide(ln, t, h, h, ln1_m_, ln1_s_, 8, hid, h, isa_);

  // FFN: FC1 (int32) -> i-GELU (int64) -> 8 bits -> FC2 -> + hid (22 bits) -> i-LayerNorm -> 8
  // bits.
  int32_t* acc_i = sc.acc_i.ensure_data(ti);
  gemm(hid, s8, t, h, fc1_.w, fc1_.bias.data(), acc_i, inter_);
  int64_t* g = sc.g.ensure_data(ti);
  ops::igelu(acc_i, t, inter_, inter_, gelu_, g, inter_, isa_);
  int8_t* g8 = sc.g8.ensure_data(ti);
  ops::requantize_wide(g, t, inter_, inter_, gelu_m_, gelu_s_, 8, g8, inter_, isa_);
  gemm(g8, s8, t, inter_, fc2_.w, fc2_.bias.data(), acc_h, h);
  ops::residual_add(acc_h, h, hid, h, t, h, ffn_sum_req_.p, ffn_sum_req_.bits, sum22, h, isa_);
  ops::ilayernorm(sum22, t, h, h, ln2_, y.data(), h, isa_);
}

}  // namespace octet::layers
