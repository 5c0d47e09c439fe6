#include "layers/bert_layers.h"

#include <algorithm>

#include "common/check.h"
#include "ops/fp32_ops.h"

namespace octet::layers {

void LayerNorm::forward(float* x, int64_t rows, int threads) const {
  ops::layer_norm(x, x, rows, static_cast<int64_t>(gamma.size()), gamma.data(), beta.data(), eps,
                  threads);
}

void Embeddings::forward(std::span<const int32_t> ids, std::span<const int32_t> types,
                         std::span<const int64_t> offsets, float* out, int threads) const {
  const int64_t batch = static_cast<int64_t>(offsets.size()) - 1;
  const int64_t h = hidden;
  const bool word8 = !word_q.empty(), pos8 = !position_q.empty();
#pragma omp parallel for num_threads(std::max(1, threads)) schedule(dynamic, 1)
  for (int64_t b = 0; b < batch; ++b) {
    for (int64_t i = offsets[b]; i < offsets[b + 1]; ++i) {
      const int64_t wrow = static_cast<int64_t>(ids[i]) * h, prow = (i - offsets[b]) * h;
      const float* t = token_type.data() + static_cast<int64_t>(types[i]) * h;
      float* o = out + i * h;
      if (word8 || pos8) {
        for (int64_t c = 0; c < h; ++c) {
          const float w =
              word8 ? static_cast<float>(word_q[wrow + c]) * word_scale : word[wrow + c];
          const float p =
              pos8 ? static_cast<float>(position_q[prow + c]) * position_scale : position[prow + c];
          o[c] = (w + t[c]) + p;
        }
        continue;
      }
      const float* w = word.data() + wrow;
      const float* p = position.data() + prow;
      // The same association as PyTorch: (word + type) + position.
      for (int64_t c = 0; c < h; ++c) o[c] = (w[c] + t[c]) + p[c];
    }
  }
  norm.forward(out, offsets.back(), threads);
}

void EncoderLayer::forward(float* x, std::span<const int64_t> offsets, const EncoderScratch& s,
                           int threads) const {
  const int64_t tokens = offsets.back();
  OCTET_CHECK(tokens >= 1);
  OCTET_CHECK(!int8 || s.q8 != nullptr);
  const ActivationTap* tap = s.tap;
  auto show = [&](const char* site, TapPoint point, const float* data, int64_t cols,
                  std::ptrdiff_t ld) {
    if (tap != nullptr) (*tap)(name + site, point, data, tokens, cols, ld);
  };
  const int64_t h = hidden;

  show("attention.self.query", TapPoint::input, x, h, h);
  if (qkv_q.n() > 0) {
    qkv_q.forward(x, tokens, h, s.qkv, 3 * h, s.q8, {}, threads);
  } else {
    qkv.run(x, tokens, s.qkv, /*accumulate=*/false, *s.gemm);
  }
  show("attention.self.query", TapPoint::output, s.qkv, h, 3 * h);
  show("attention.self.key", TapPoint::output, s.qkv + h, h, 3 * h);
  show("attention.self.value", TapPoint::output, s.qkv + 2 * h, h, 3 * h);
  ops::self_attention(s.qkv, 3 * h, offsets, heads, head_dim, s.ctx, h, s.attention,
                      s.attention_per_thread, threads);

  // The erf GELU and ReLU are fused into the FFN-in epilogue; the tanh GELU has no fused form.
  const kernels::Activation fused = act == io::Activation::gelu   ? kernels::Activation::gelu
                                    : act == io::Activation::relu ? kernels::Activation::relu
                                                                  : kernels::Activation::none;
  auto is_static = [](const LinearInt8& l) { return l.n() > 0 && !l.activation_quant().dynamic; };
  if (tap == nullptr && is_static(attn_out_q) && is_static(ffn_in_q) && is_static(ffn_out_q) &&
      tokens > kBlockRows) {
    // Static scales make every token row independent after attention, so attention output,
    // LayerNorm, FFN in, FFN out and LayerNorm run on blocks of rows: each block's hidden rows
    // and [rows, I] intermediate are re-read (quantized for the next GEMM, normalised) while
    // still in cache instead of after whole [tokens, ...] tensors went through memory. Results
    // are identical to the unblocked order below (exact integer GEMMs, per-element epilogues,
    // per-row LayerNorm), which a tap still gets.
    for (int64_t r0 = 0; r0 < tokens; r0 += kBlockRows) {
      const int64_t rows = std::min(kBlockRows, tokens - r0);
      float* xb = x + r0 * h;
      float* mb = s.mid + r0 * intermediate;
      attn_out_q.forward(s.ctx + r0 * h, rows, h, xb, h, s.q8, {.residual = xb, .ldr = h}, threads);
      attn_norm.forward(xb, rows, threads);
      ffn_in_q.forward(xb, rows, h, mb, intermediate, s.q8, {.activation = fused}, threads);
      if (fused == kernels::Activation::none) {
        ops::activation(act, mb, rows * intermediate, threads);
      }
      ffn_out_q.forward(mb, rows, intermediate, xb, h, s.q8, {.residual = xb, .ldr = h}, threads);
      ffn_norm.forward(xb, rows, threads);
    }
    return;
  }

  show("attention.output.dense", TapPoint::input, s.ctx, h, h);
  if (attn_out_q.n() > 0) {
    attn_out_q.forward(s.ctx, tokens, h, x, h, s.q8, {.residual = x, .ldr = h}, threads);
  } else {
    attn_out.run(s.ctx, tokens, x, /*accumulate=*/true, *s.gemm);
  }
  show("attention.output.dense", TapPoint::output, x, h, h);
  attn_norm.forward(x, tokens, threads);

  show("intermediate.dense", TapPoint::input, x, h, h);
  if (ffn_in_q.n() > 0) {
    ffn_in_q.forward(x, tokens, h, s.mid, intermediate, s.q8, {.activation = fused}, threads);
    if (fused == kernels::Activation::none) {
      ops::activation(act, s.mid, tokens * intermediate, threads);
    }
  } else {
    ffn_in.run(x, tokens, s.mid, /*accumulate=*/false, *s.gemm);
    ops::activation(act, s.mid, tokens * intermediate, threads);
  }
  show("intermediate.dense", TapPoint::output, s.mid, intermediate, intermediate);

  show("output.dense", TapPoint::input, s.mid, intermediate, intermediate);
  if (ffn_out_q.n() > 0) {
    ffn_out_q.forward(s.mid, tokens, intermediate, x, h, s.q8, {.residual = x, .ldr = h}, threads);
  } else {
    ffn_out.run(s.mid, tokens, x, /*accumulate=*/true, *s.gemm);
  }
  show("output.dense", TapPoint::output, x, h, h);
  ffn_norm.forward(x, tokens, threads);
}

}  // namespace octet::layers
