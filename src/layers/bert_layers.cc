#include "layers/bert_layers.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "common/check.h"
#include "octet/error.h"
#include "ops/fp32_ops.h"
#include "ops/gemm_int8.h"

namespace octet::layers {

namespace {

bool is_dynamic(const LinearInt8& l) { return l.n() > 0 && l.activation_quant().dynamic; }

// `where` = prefix + site (the layer's name and the op), joined only when there is an error: the
// forward pass builds no strings.
[[noreturn]] void non_finite(std::string_view prefix, std::string_view site, int64_t row,
                             int64_t rows, int64_t cols) {
  throw InvalidArgument(fmt::format(
      "{}{}: row {} of the {} x {} activations holds a NaN or an infinity; expected finite values",
      prefix, site, row, rows, cols));
}

}  // namespace

float LayerNorm::forward_abs_max(float* x, int64_t rows, int threads, std::string_view prefix,
                                 std::string_view site) const {
  int64_t bad = -1;
  const auto cols = static_cast<int64_t>(gamma.size());
  const float m =
      ops::layer_norm_abs_max(x, x, rows, cols, gamma.data(), beta.data(), eps, threads, &bad);
  if (bad >= 0) non_finite(prefix, site, bad, rows, cols);
  return m;
}

void LayerNorm::forward(float* x, int64_t rows, int threads) const {
  ops::layer_norm(x, x, rows, static_cast<int64_t>(gamma.size()), gamma.data(), beta.data(), eps,
                  threads);
}

void Embeddings::forward(std::span<const int32_t> ids, std::span<const int32_t> types,
                         std::span<const int64_t> offsets, float* out, int threads,
                         float* abs_max) const {
  const int64_t tokens = offsets.back();
  const int64_t h = hidden;
  const bool word8 = !word_q.empty(), pos8 = !position_q.empty();
  auto token = [&](int64_t i) {
    const int64_t b = std::upper_bound(offsets.begin(), offsets.end(), i) - offsets.begin() - 1;
    const int64_t wrow = static_cast<int64_t>(ids[i]) * h, prow = (i - offsets[b]) * h;
    const float* t = token_type.data() + static_cast<int64_t>(types[i]) * h;
    float* o = out + i * h;
    if (word8 || pos8) {
      for (int64_t c = 0; c < h; ++c) {
        const float w = word8 ? static_cast<float>(word_q[wrow + c]) * word_scale : word[wrow + c];
        const float p =
            pos8 ? static_cast<float>(position_q[prow + c]) * position_scale : position[prow + c];
        o[c] = (w + t[c]) + p;
      }
      return;
    }
    const float* w = word.data() + wrow;
    const float* p = position.data() + prow;
    // The same association as PyTorch: (word + type) + position.
    for (int64_t c = 0; c < h; ++c) o[c] = (w[c] + t[c]) + p[c];
  };
  // Token by token (not sequence by sequence), so that a single sequence uses every thread. One
  // thread runs without a parallel region: libgomp allocates a team for every one-thread region.
  if (threads <= 1) {
    for (int64_t i = 0; i < tokens; ++i) token(i);
  } else {
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t i = 0; i < tokens; ++i) token(i);
  }
  if (abs_max != nullptr) {
    *abs_max = norm.forward_abs_max(out, tokens, threads, "", "embeddings");
  } else {
    norm.forward(out, tokens, threads);
  }
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

  // max |x| of the input when the LayerNorm that wrote it computed it (dynamic INT8 only).
  const float* x_max = s.x_abs_max != nullptr && *s.x_abs_max >= 0.0f ? s.x_abs_max : nullptr;
  // The prefix of error messages; no string is built unless one is thrown.
  const std::string_view where = name.empty() ? std::string_view("encoder layer ") : name;

  show("attention.self.query", TapPoint::input, x, h, h);
  if (qkv_q.n() > 0) {
    qkv_q.gemm(qkv_q.quantize_input(x, tokens, h, s.q8, threads, x_max), s.qkv, 3 * h, {}, threads);
  } else {
    qkv.run(x, tokens, s.qkv, /*accumulate=*/false, *s.gemm);
  }
  show("attention.self.query", TapPoint::output, s.qkv, h, 3 * h);
  show("attention.self.key", TapPoint::output, s.qkv + h, h, 3 * h);
  show("attention.self.value", TapPoint::output, s.qkv + 2 * h, h, 3 * h);
  if (quantize_qk) {
    OCTET_CHECK(s.q8 != nullptr);
    for (const auto& [col, a] : {std::pair{int64_t{0}, &q_out}, std::pair{h, &k_out}}) {
      ops::fake_quantize_static(s.qkv + col, static_cast<int>(tokens), static_cast<int>(h), 3 * h,
                                a->dtype, 1.0f / a->scale, a->scale, a->zero_point, s.q8, threads);
    }
  }
  // A dynamic INT8 attention output takes max |ctx| from the attention pass (hot per head).
  float ctx_max = -1.0f;
  ops::self_attention(s.qkv, 3 * h, offsets, heads, head_dim, s.ctx, h, s.attention,
                      s.attention_per_thread, threads, is_dynamic(attn_out_q) ? &ctx_max : nullptr,
                      s.valid, int8_attention);
  // NaN: leave it to the range pass of quantize_input, which names the row.
  const float* ctx_max_known = ctx_max >= 0.0f ? &ctx_max : nullptr;

  // The erf GELU and ReLU are fused into the FFN-in epilogue; the tanh GELU has no fused form.
  const kernels::Activation fused = act == io::Activation::gelu   ? kernels::Activation::gelu
                                    : act == io::Activation::relu ? kernels::Activation::relu
                                                                  : kernels::Activation::none;
  auto is_static = [](const LinearInt8& l) { return l.n() > 0 && !l.activation_quant().dynamic; };
  if (s.x_abs_max != nullptr) *s.x_abs_max = -1.0f;  // x changes below
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
    attn_out_q.gemm(attn_out_q.quantize_input(s.ctx, tokens, h, s.q8, threads, ctx_max_known), x, h,
                    {.residual = x, .ldr = h}, threads);
  } else {
    attn_out.run(s.ctx, tokens, x, /*accumulate=*/true, *s.gemm);
  }
  show("attention.output.dense", TapPoint::output, x, h, h);
  // A dynamic INT8 FFN-in needs max |x| of the normalised rows: taken in the LayerNorm pass.
  float attn_max = -1.0f;
  if (is_dynamic(ffn_in_q)) {
    attn_max = attn_norm.forward_abs_max(x, tokens, threads, where, "attention.output.LayerNorm");
  } else {
    attn_norm.forward(x, tokens, threads);
  }

  show("intermediate.dense", TapPoint::input, x, h, h);
  float mid_max = -1.0f;
  if (ffn_in_q.n() > 0) {
    const ops::ActivationsInt8 a = ffn_in_q.quantize_input(x, tokens, h, s.q8, threads,
                                                           attn_max >= 0.0f ? &attn_max : nullptr);
    // max |mid| for FFN-out's dynamic scale, taken by the GEMM epilogue as it stores the
    // [tokens, I] intermediate (not in another pass over it). A tanh GELU is applied after the
    // GEMM: FFN-out's quantize_input then takes the range itself.
    float epilogue_max = 0.0f;
    const bool want_mid_max = is_dynamic(ffn_out_q) && fused != kernels::Activation::none;
    ffn_in_q.gemm(a, s.mid, intermediate,
                  {.activation = fused, .abs_max = want_mid_max ? &epilogue_max : nullptr},
                  threads);
    if (fused == kernels::Activation::none) {
      ops::activation(act, s.mid, tokens * intermediate, threads);
    }
    if (want_mid_max) {
      if (!std::isfinite(epilogue_max)) {
        // Rare: a second pass only to name the first bad row.
        int64_t bad = -1;
        ops::abs_max(s.mid, tokens, intermediate, intermediate, threads, &bad);
        OCTET_CHECK(bad >= 0);
        non_finite(where, "intermediate.dense", bad, tokens, intermediate);
      }
      mid_max = epilogue_max;
    }
  } else {
    ffn_in.run(x, tokens, s.mid, /*accumulate=*/false, *s.gemm);
    ops::activation(act, s.mid, tokens * intermediate, threads);
  }
  show("intermediate.dense", TapPoint::output, s.mid, intermediate, intermediate);

  show("output.dense", TapPoint::input, s.mid, intermediate, intermediate);
  if (s.first_rows_only && tap == nullptr &&
      (ffn_out_q.n() == 0 || (is_dynamic(ffn_out_q) && mid_max >= 0.0f))) {
    // The last layer of a pooled / logits forward (EncoderScratch::first_rows_only): FFN out and
    // LayerNorm on the first row of each sequence only, 1/128 of the rows at 128 tokens. The
    // rows are gathered to the front: mid's in place (offsets[b] >= b, so row b is written only
    // after every row it could overwrite was read), x's into ctx (free after attention output).
    const int64_t batch = static_cast<int64_t>(offsets.size()) - 1;
    for (int64_t b = 0; b < batch; ++b) {
      if (offsets[b] != b) {
        std::memmove(s.mid + b * intermediate, s.mid + offsets[b] * intermediate,
                     sizeof(float) * intermediate);
      }
      std::memcpy(s.ctx + b * h, x + offsets[b] * h, sizeof(float) * h);
    }
    float* xc = s.ctx;
    if (ffn_out_q.n() > 0) {
      // mid_max is max |mid| over every row: the scale, and so these rows' codes, of the whole
      // tensor.
      ffn_out_q.gemm(ffn_out_q.quantize_input(s.mid, batch, intermediate, s.q8, threads, &mid_max),
                     xc, h, {.residual = xc, .ldr = h}, threads);
    } else {
      ffn_out.run(s.mid, batch, xc, /*accumulate=*/true, *s.gemm);
    }
    if (s.x_abs_max != nullptr) {
      // As forward_abs_max (non-finite rows named by their token row); no later layer needs
      // the range, and the other rows are stale: unknown.
      int64_t bad = -1;
      ops::layer_norm_abs_max(xc, xc, batch, h, ffn_norm.gamma.data(), ffn_norm.beta.data(),
                              ffn_norm.eps, threads, &bad);
      if (bad >= 0) non_finite(where, "output.LayerNorm", offsets[bad], tokens, h);
      *s.x_abs_max = -1.0f;
    } else {
      ffn_norm.forward(xc, batch, threads);
    }
    for (int64_t b = 0; b < batch; ++b) {
      std::memcpy(x + offsets[b] * h, xc + b * h, sizeof(float) * h);
    }
    return;
  }
  if (ffn_out_q.n() > 0) {
    ffn_out_q.gemm(ffn_out_q.quantize_input(s.mid, tokens, intermediate, s.q8, threads,
                                            mid_max >= 0.0f ? &mid_max : nullptr),
                   x, h, {.residual = x, .ldr = h}, threads);
  } else {
    ffn_out.run(s.mid, tokens, x, /*accumulate=*/true, *s.gemm);
  }
  show("output.dense", TapPoint::output, x, h, h);
  if (s.x_abs_max != nullptr) {
    // For the next layer's dynamic QKV quantization.
    *s.x_abs_max = ffn_norm.forward_abs_max(x, tokens, threads, where, "output.LayerNorm");
  } else {
    ffn_norm.forward(x, tokens, threads);
  }
}

}  // namespace octet::layers
