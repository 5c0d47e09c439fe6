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
#pragma omp parallel for num_threads(std::max(1, threads)) schedule(dynamic, 1)
  for (int64_t b = 0; b < batch; ++b) {
    for (int64_t i = offsets[b]; i < offsets[b + 1]; ++i) {
      if (!word_q.empty()) {
        const int8_t* w = word_q.data() + static_cast<int64_t>(ids[i]) * h;
        const int8_t* p = position_q.data() + (i - offsets[b]) * h;
        const float* t = token_type.data() + static_cast<int64_t>(types[i]) * h;
        float* o = out + i * h;
        for (int64_t c = 0; c < h; ++c) {
          o[c] = (static_cast<float>(w[c]) * word_scale + t[c]) +
                 static_cast<float>(p[c]) * position_scale;
        }
        continue;
      }
      const float* w = word.data() + static_cast<int64_t>(ids[i]) * h;
      const float* p = position.data() + (i - offsets[b]) * h;
      const float* t = token_type.data() + static_cast<int64_t>(types[i]) * h;
      float* o = out + i * h;
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
  if (int8) {
    forward_int8(x, offsets, s, threads);
    return;
  }
  qkv.run(x, tokens, s.qkv, /*accumulate=*/false, *s.gemm);
  ops::self_attention(s.qkv, 3 * hidden, offsets, heads, head_dim, s.ctx, hidden, s.attention,
                      s.attention_per_thread, threads);
  attn_out.run(s.ctx, tokens, x, /*accumulate=*/true, *s.gemm);
  attn_norm.forward(x, tokens, threads);
  ffn_in.run(x, tokens, s.mid, /*accumulate=*/false, *s.gemm);
  ops::activation(act, s.mid, tokens * intermediate, threads);
  ffn_out.run(s.mid, tokens, x, /*accumulate=*/true, *s.gemm);
  ffn_norm.forward(x, tokens, threads);
}

void EncoderLayer::forward_int8(float* x, std::span<const int64_t> offsets, const EncoderScratch& s,
                                int threads) const {
  const int64_t tokens = offsets.back();
  OCTET_CHECK(s.q8 != nullptr);
  // The erf GELU and ReLU are fused into the FFN-in epilogue; the tanh GELU has no fused form.
  const kernels::Activation fused = act == io::Activation::gelu   ? kernels::Activation::gelu
                                    : act == io::Activation::relu ? kernels::Activation::relu
                                                                  : kernels::Activation::none;
  qkv_q.forward(x, tokens, hidden, s.qkv, 3 * hidden, s.q8, {}, threads);
  ops::self_attention(s.qkv, 3 * hidden, offsets, heads, head_dim, s.ctx, hidden, s.attention,
                      s.attention_per_thread, threads);
  attn_out_q.forward(s.ctx, tokens, hidden, x, hidden, s.q8, {.residual = x, .ldr = hidden},
                     threads);
  attn_norm.forward(x, tokens, threads);
  ffn_in_q.forward(x, tokens, hidden, s.mid, intermediate, s.q8, {.activation = fused}, threads);
  if (fused == kernels::Activation::none)
    ops::activation(act, s.mid, tokens * intermediate, threads);
  ffn_out_q.forward(s.mid, tokens, intermediate, x, hidden, s.q8, {.residual = x, .ldr = hidden},
                    threads);
  ffn_norm.forward(x, tokens, threads);
}

}  // namespace octet::layers
