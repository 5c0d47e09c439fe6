// layers::EncoderLayer and layers::Embeddings on a packed batch against a plain double
// reference that processes each sequence on its own (so packing cannot mix sequences).
#include "layers/bert_layers.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "ops/fp32_ops.h"

namespace octet::layers {
namespace {

std::vector<float> randn(std::size_t n, float std, std::mt19937& rng) {
  std::normal_distribution<float> d(0.0f, std);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

using Mat = std::vector<double>;  // row-major

Mat linear(const Mat& x, int64_t rows, const std::vector<float>& w, const std::vector<float>& b,
           int64_t n, int64_t k) {
  Mat y(rows * n);
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < n; ++j) {
      double acc = b[j];
      for (int64_t c = 0; c < k; ++c) acc += x[i * k + c] * w[j * k + c];
      y[i * n + j] = acc;
    }
  return y;
}

void layer_norm(Mat& x, int64_t rows, const LayerNorm& ln) {
  const int64_t h = static_cast<int64_t>(ln.gamma.size());
  for (int64_t i = 0; i < rows; ++i) {
    double mean = 0, var = 0;
    for (int64_t c = 0; c < h; ++c) mean += x[i * h + c];
    mean /= h;
    for (int64_t c = 0; c < h; ++c) var += (x[i * h + c] - mean) * (x[i * h + c] - mean);
    var /= h;
    for (int64_t c = 0; c < h; ++c)
      x[i * h + c] = (x[i * h + c] - mean) / std::sqrt(var + ln.eps) * ln.gamma[c] + ln.beta[c];
  }
}

struct Weights {
  std::vector<float> wq, wk, wv, bq, bk, bv, wo, bo, w1, b1, w2, b2;
};

TEST(EncoderLayer, PackedBatchMatchesPerSequenceReference) {
  const int64_t h = 32, heads = 4, d = 8, inter = 64;
  std::mt19937 rng(11);
  Weights w{randn(h * h, 0.3f, rng), randn(h * h, 0.3f, rng),     randn(h * h, 0.3f, rng),
            randn(h, 0.1f, rng),     randn(h, 0.1f, rng),         randn(h, 0.1f, rng),
            randn(h * h, 0.2f, rng), randn(h, 0.1f, rng),         randn(inter * h, 0.2f, rng),
            randn(inter, 0.1f, rng), randn(h * inter, 0.2f, rng), randn(h, 0.1f, rng)};
  EncoderLayer L;
  L.hidden = h, L.heads = heads, L.head_dim = d, L.intermediate = inter;
  L.act = io::Activation::gelu;
  std::vector<float> wqkv = w.wq, bqkv = w.bq;
  wqkv.insert(wqkv.end(), w.wk.begin(), w.wk.end());
  wqkv.insert(wqkv.end(), w.wv.begin(), w.wv.end());
  bqkv.insert(bqkv.end(), w.bk.begin(), w.bk.end());
  bqkv.insert(bqkv.end(), w.bv.begin(), w.bv.end());
  L.qkv = ops::MatmulF32(wqkv, 3 * h, h, bqkv);
  L.attn_out = ops::MatmulF32(w.wo, h, h, w.bo);
  L.ffn_in = ops::MatmulF32(w.w1, inter, h, w.b1);
  L.ffn_out = ops::MatmulF32(w.w2, h, inter, w.b2);
  for (LayerNorm* ln : {&L.attn_norm, &L.ffn_norm}) {
    ln->gamma = randn(h, 0.1f, rng);
    for (float& g : ln->gamma) g += 1.0f;
    ln->beta = randn(h, 0.1f, rng);
    ln->eps = 1e-12f;
  }

  const std::vector<int64_t> offsets = {0, 1, 6, 23};
  const int64_t tokens = offsets.back();
  std::vector<float> x = randn(tokens * h, 1.0f, rng);
  const std::vector<float> x0 = x;
  std::vector<float> qkv(tokens * 3 * h), ctx(tokens * h), mid(tokens * inter);
  const std::size_t per_thread = ops::attention_scratch_per_thread(17, d);
  std::vector<float> attn_scratch(2 * per_thread + 16);
  AlignedBuffer<std::byte> gemm;
  EncoderScratch s{qkv.data(), ctx.data(), mid.data(), attn_scratch.data(), per_thread, &gemm};
  L.forward(x.data(), offsets, s, /*threads=*/2);

  for (std::size_t b = 0; b + 1 < offsets.size(); ++b) {
    const int64_t t = offsets[b + 1] - offsets[b];
    Mat xs(x0.begin() + offsets[b] * h, x0.begin() + offsets[b + 1] * h);
    const Mat q = linear(xs, t, w.wq, w.bq, h, h), k = linear(xs, t, w.wk, w.bk, h, h),
              v = linear(xs, t, w.wv, w.bv, h, h);
    Mat c(t * h, 0.0);
    for (int64_t hd = 0; hd < heads; ++hd)
      for (int64_t i = 0; i < t; ++i) {
        std::vector<double> p(t);
        double mx = -1e300, sum = 0;
        for (int64_t j = 0; j < t; ++j) {
          double dot = 0;
          for (int64_t e = 0; e < d; ++e) dot += q[i * h + hd * d + e] * k[j * h + hd * d + e];
          p[j] = dot / std::sqrt(double(d));
          mx = std::max(mx, p[j]);
        }
        for (double& pj : p) sum += (pj = std::exp(pj - mx));
        for (int64_t j = 0; j < t; ++j)
          for (int64_t e = 0; e < d; ++e)
            c[i * h + hd * d + e] += p[j] / sum * v[j * h + hd * d + e];
      }
    Mat a = linear(c, t, w.wo, w.bo, h, h);
    for (int64_t i = 0; i < t * h; ++i) a[i] += xs[i];
    layer_norm(a, t, L.attn_norm);
    Mat m = linear(a, t, w.w1, w.b1, inter, h);
    for (double& z : m) z = 0.5 * z * (1 + std::erf(z / std::sqrt(2.0)));
    Mat o = linear(m, t, w.w2, w.b2, h, inter);
    for (int64_t i = 0; i < t * h; ++i) o[i] += a[i];
    layer_norm(o, t, L.ffn_norm);
    for (int64_t i = 0; i < t * h; ++i) {
      ASSERT_NEAR(x[offsets[b] * h + i], o[i], 2e-4)
          << "sequence " << b << " token " << i / h << " channel " << i % h;
    }
  }
}

TEST(Embeddings, SumsWordTypeAndPositionRestartingAtEachSequence) {
  Embeddings e;
  e.hidden = 3;
  e.word = {0, 0, 0, 1, 2, 4};                // 2 words x 3 channels
  e.position = {0, 0, 0, 0, 0, 8, 0, 16, 0};  // 3 positions
  e.token_type = {0, 0, 0, 0, 32, 0};         // 2 types
  e.norm.gamma = {1.0f, 2.0f, 0.5f};
  e.norm.beta = {0.0f, 1.0f, -1.0f};
  e.norm.eps = 1e-6f;
  const std::vector<int32_t> ids = {1, 1, 1}, types = {0, 0, 1};
  const std::vector<int64_t> offsets = {0, 2, 3};  // positions 0, 1 | 0
  std::vector<float> y(9);
  e.forward(ids, types, offsets, y.data(), 1);
  // Before LayerNorm: (1, 2, 4), (1, 2, 12) at position 1, and (1, 34, 4) for sequence 1 at
  // position 0 with token type 1.
  Mat want = {1, 2, 4, 1, 2, 12, 1, 34, 4};
  layer_norm(want, 3, e.norm);
  for (int i = 0; i < 9; ++i)
    EXPECT_NEAR(y[i], want[i], 1e-5) << "row " << i / 3 << " col " << i % 3;
}

}  // namespace
}  // namespace octet::layers
