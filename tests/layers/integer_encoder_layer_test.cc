// The integer-only (I-BERT) encoder layer against a float64 BERT layer with the same weights:
// static scales calibrated on other inputs (max |x| per quantized activation), LayerNorm shifts
// calibrated on the 22-bit calibration sums; the integer output (dequantized) must follow the
// float layer (cosine and worst error printed and bounded), be bit-identical on every ISA, and
// forward() must take and return integer tensors only (checked at compile time).
#include "layers/integer_encoder_layer.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <random>
#include <span>
#include <type_traits>
#include <vector>

#include "octet/cpu.h"
#include "octet/error.h"
#include "ops/integer_ops.h"

namespace octet {
namespace {

using layers::FloatEncoderWeights;
using layers::IntegerEncoderLayer;
using layers::IntegerLayerScales;

static_assert(std::is_same_v<decltype(&IntegerEncoderLayer::forward),
                             void (IntegerEncoderLayer::*)(std::span<const int8_t>, int,
                                                           std::span<int8_t>) const>,
              "the integer-only layer's forward pass takes and returns integer tensors only");

constexpr int kH = 64, kHeads = 4, kI = 256, kT = 24;

using Mat = std::vector<double>;

// y[t][o] = sum_i x[t][i] w[o][i] + b[o]
Mat linear(const Mat& x, int t, int in, const std::vector<float>& w, const std::vector<float>& b,
           int out) {
  Mat y(std::size_t(t) * out);
  for (int r = 0; r < t; ++r) {
    for (int o = 0; o < out; ++o) {
      double s = b[o];
      for (int i = 0; i < in; ++i) s += x[r * in + i] * w[std::size_t(o) * in + i];
      y[std::size_t(r) * out + o] = s;
    }
  }
  return y;
}

Mat layer_norm(const Mat& x, int t, const std::vector<float>& g, const std::vector<float>& b) {
  Mat y(x.size());
  for (int r = 0; r < t; ++r) {
    double m = 0, v = 0;
    for (int c = 0; c < kH; ++c) m += x[r * kH + c];
    m /= kH;
    for (int c = 0; c < kH; ++c) v += (x[r * kH + c] - m) * (x[r * kH + c] - m);
    v /= kH;
    for (int c = 0; c < kH; ++c)
      y[r * kH + c] = (x[r * kH + c] - m) / std::sqrt(v + 1e-12) * g[c] + b[c];
  }
  return y;
}

struct Trace {  // every quantized activation of the float layer
  Mat q, k, v, ctx, attn_sum, ln1, gelu, ffn_sum, out;
};

Trace float_layer(const FloatEncoderWeights& w, const Mat& x, int t) {
  Trace r;
  r.q = linear(x, t, kH, w.wq, w.bq, kH);
  r.k = linear(x, t, kH, w.wk, w.bk, kH);
  r.v = linear(x, t, kH, w.wv, w.bv, kH);
  const int d = kH / kHeads;
  r.ctx.assign(std::size_t(t) * kH, 0.0);
  for (int h = 0; h < kHeads; ++h) {
    for (int i = 0; i < t; ++i) {
      std::vector<double> p(t);
      double mx = -1e300, sum = 0;
      for (int j = 0; j < t; ++j) {
        double s = 0;
        for (int c = 0; c < d; ++c) s += r.q[i * kH + h * d + c] * r.k[j * kH + h * d + c];
        p[j] = s / std::sqrt(double(d));
        mx = std::max(mx, p[j]);
      }
      for (auto& e : p) sum += (e = std::exp(e - mx));
      for (int c = 0; c < d; ++c) {
        double s = 0;
        for (int j = 0; j < t; ++j) s += p[j] / sum * r.v[j * kH + h * d + c];
        r.ctx[i * kH + h * d + c] = s;
      }
    }
  }
  r.attn_sum = linear(r.ctx, t, kH, w.wo, w.bo, kH);
  for (std::size_t i = 0; i < x.size(); ++i) r.attn_sum[i] += x[i];
  r.ln1 = layer_norm(r.attn_sum, t, w.ln1_gamma, w.ln1_beta);
  r.gelu = linear(r.ln1, t, kH, w.w1, w.b1, kI);
  for (auto& e : r.gelu) e = 0.5 * e * (1 + std::erf(e / std::sqrt(2.0)));
  r.ffn_sum = linear(r.gelu, t, kI, w.w2, w.b2, kH);
  for (std::size_t i = 0; i < r.ffn_sum.size(); ++i) r.ffn_sum[i] += r.ln1[i];
  r.out = layer_norm(r.ffn_sum, t, w.ln2_gamma, w.ln2_beta);
  return r;
}

double amax(const Mat& m) {
  double a = 0;
  for (double v : m) a = std::max(a, std::fabs(v));
  return a;
}

FloatEncoderWeights random_weights(std::mt19937& rng) {
  std::normal_distribution<float> wd(0.0f, 0.08f), bd(0.0f, 0.02f);
  std::uniform_real_distribution<float> gd(0.8f, 1.2f), betad(-0.1f, 0.1f);
  auto fill = [&](std::vector<float>& v, std::size_t n, auto& dist) {
    v.resize(n);
    for (auto& e : v) e = dist(rng);
  };
  FloatEncoderWeights w;
  w.hidden = kH, w.heads = kHeads, w.intermediate = kI;
  for (auto* m : {&w.wq, &w.wk, &w.wv, &w.wo}) fill(*m, std::size_t(kH) * kH, wd);
  fill(w.w1, std::size_t(kI) * kH, wd);
  fill(w.w2, std::size_t(kH) * kI, wd);
  for (auto* b : {&w.bq, &w.bk, &w.bv, &w.bo, &w.b2}) fill(*b, kH, bd);
  fill(w.b1, kI, bd);
  fill(w.ln1_gamma, kH, gd), fill(w.ln2_gamma, kH, gd);
  fill(w.ln1_beta, kH, betad), fill(w.ln2_beta, kH, betad);
  return w;
}

Mat random_input(std::mt19937& rng, int t) {
  std::normal_distribution<double> nd(0.0, 1.0);
  Mat x(std::size_t(t) * kH);
  for (auto& e : x) e = nd(rng);
  return x;
}

std::vector<int8_t> quantize8(const Mat& x, double s) {
  std::vector<int8_t> q(x.size());
  for (std::size_t i = 0; i < x.size(); ++i) {
    q[i] = static_cast<int8_t>(std::clamp(std::nearbyint(x[i] / s), -128.0, 127.0));
  }
  return q;
}

int calibrate_shift(const Mat& sum, int t, double s22) {
  std::vector<int32_t> q(sum.size());
  for (std::size_t i = 0; i < sum.size(); ++i)
    q[i] = static_cast<int32_t>(std::nearbyint(sum[i] / s22));
  return ops::ilayernorm_calibrate_shift(q.data(), t, kH, kH);
}

TEST(IntegerEncoderLayer, FollowsTheFloatLayerAndIsBitIdenticalOnEveryIsa) {
  std::mt19937 rng(77);
  const FloatEncoderWeights w = random_weights(rng);
  // Calibration: 4 sequences, max |x| of every quantized activation.
  const int kCal = 4;
  Mat cal_x, cal_attn, cal_ffn;
  double m[10] = {};
  for (int n = 0; n < kCal; ++n) {
    const Mat x = random_input(rng, kT);
    const Trace tr = float_layer(w, x, kT);
    const Mat* parts[10] = {&x,           &tr.q,   &tr.k,    &tr.v,       &tr.ctx,
                            &tr.attn_sum, &tr.ln1, &tr.gelu, &tr.ffn_sum, &tr.out};
    for (int i = 0; i < 10; ++i) m[i] = std::max(m[i], amax(*parts[i]));
    cal_attn.insert(cal_attn.end(), tr.attn_sum.begin(), tr.attn_sum.end());
    cal_ffn.insert(cal_ffn.end(), tr.ffn_sum.begin(), tr.ffn_sum.end());
  }
  const double q8 = 127.0, q22 = (1 << 21) - 1;
  IntegerLayerScales s;
  s.input = float(m[0] / q8), s.q = float(m[1] / q8), s.k = float(m[2] / q8);
  s.v = float(m[3] / q8), s.context = float(m[4] / q8), s.attn_sum = float(m[5] / q22);
  s.ln1 = float(m[6] / q8), s.gelu = float(m[7] / q8), s.ffn_sum = float(m[8] / q22);
  s.output = float(m[9] / q8);
  const int shift1 = calibrate_shift(cal_attn, kCal * kT, s.attn_sum);
  const int shift2 = calibrate_shift(cal_ffn, kCal * kT, s.ffn_sum);

  const Mat x = random_input(rng, kT);
  const Trace want = float_layer(w, x, kT);
  const std::vector<int8_t> xq = quantize8(x, s.input);
  std::vector<int8_t> first;
  for (Isa isa : runnable_isas()) {
    if (static_cast<int>(isa) > static_cast<int>(active_isa())) continue;
    const IntegerEncoderLayer layer = IntegerEncoderLayer::prepare(w, s, shift1, shift2, isa);
    std::vector<int8_t> y(xq.size());
    layer.forward(xq, kT, y);
    if (first.empty()) {
      first = y;
      double dot = 0, n1 = 0, n2 = 0, worst = 0;
      for (std::size_t i = 0; i < y.size(); ++i) {
        const double got = y[i] * double{s.output}, ref = want.out[i];
        dot += got * ref, n1 += got * got, n2 += ref * ref;
        worst = std::max(worst, std::fabs(got - ref));
      }
      const double cosine = dot / std::sqrt(n1 * n2);
      std::printf(
          "  integer-only layer vs float64 layer (H %d, %d heads, I %d, %d tokens): "
          "cosine %.5f, max |err| %.4f (output max |y| %.2f, one step %.4f), LN shifts %d, %d\n",
          kH, kHeads, kI, kT, cosine, worst, amax(want.out), double{s.output}, shift1, shift2);
      EXPECT_GE(cosine, 0.999);
      EXPECT_LE(worst, 4.0 * s.output);  // a few output steps
    } else {
      EXPECT_EQ(y, first) << "ISA " << isa_name(isa) << " differs from "
                          << isa_name(runnable_isas()[0]);
    }
  }
}

TEST(IntegerEncoderLayer, RejectsBadShapesAndScales) {
  std::mt19937 rng(78);
  FloatEncoderWeights w = random_weights(rng);
  IntegerLayerScales s{0.02f, 0.02f, 0.02f, 0.02f, 0.02f, 1e-5f, 0.03f, 0.03f, 1e-5f, 0.03f};
  EXPECT_NO_THROW(IntegerEncoderLayer::prepare(w, s, 0, 0));
  IntegerLayerScales bad = s;
  bad.gelu = 0.0f;
  EXPECT_THROW(IntegerEncoderLayer::prepare(w, bad, 0, 0), InvalidArgument);
  FloatEncoderWeights w2 = w;
  w2.heads = 5;  // 64 not divisible by 5
  EXPECT_THROW(IntegerEncoderLayer::prepare(w2, s, 0, 0), InvalidArgument);
  w2 = w;
  w2.b1.pop_back();
  EXPECT_THROW(IntegerEncoderLayer::prepare(w2, s, 0, 0), InvalidArgument);
  const IntegerEncoderLayer layer = IntegerEncoderLayer::prepare(w, s, 0, 0);
  std::vector<int8_t> x(kH * 3), y(kH * 2);
  EXPECT_THROW(layer.forward(x, 3, y), InvalidArgument);
}

}  // namespace
}  // namespace octet
