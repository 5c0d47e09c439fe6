// The layers of a BERT encoder in FP32 over packed batches (see ops/fp32_ops.h for the packed
// layout: the valid tokens of all sequences back to back, `offsets` marking each sequence).
//
//   Embeddings    ids, type ids  ->  LayerNorm(word[id] + position[p] + type[tt])   (tokens, H)
//   EncoderLayer  (tokens, H)  ->  (tokens, H), in place:
//       qkv  = x Wqkv^T + bqkv                (tokens, 3H)   one GEMM for Q, K and V
//       ctx  = attention per sequence, head   (tokens, H)    softmax(Q K^T / sqrt(d)) V
//       x    = LayerNorm(x + ctx Wo^T + bo)                  residual fused as a GEMM sum post-op
//       mid  = act(x W1^T + b1)               (tokens, I)
//       x    = LayerNorm(x + mid W2^T + b2)
// INT8 (Q8BERT dynamic quantization, or static calibrated scales from a quantized model
// directory): each of the four Linears that has an INT8 version runs through layers::LinearInt8
// (int8 weights, int8 / uint8 activations, bias / GELU / residual fused into the dequantizing
// epilogue); the word and position tables may be int8 weight-only with one scale each. Softmax,
// LayerNorm, attention and GELU-tanh stay FP32.
// Layers own their weights (immutable after construction) and take caller-owned scratch, so a
// layer may be shared by concurrent forward passes that use distinct scratch.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/aligned_buffer.h"
#include "io/bert_config.h"
#include "layers/linear_int8.h"
#include "octet/model.h"
#include "ops/matmul_f32.h"

namespace octet::layers {

struct LayerNorm {
  std::vector<float> gamma, beta;
  float eps = 1e-12f;
  // In place over `rows` rows of gamma.size() values.
  void forward(float* x, int64_t rows, int threads) const;
  // The same, returning max |x| of the normalised rows (ops::layer_norm_abs_max); throws
  // InvalidArgument naming `where` and the row if a row holds a NaN or an infinity.
  // Errors name prefix + site (e.g. "bert.encoder.layer.3." + "output.LayerNorm").
  float forward_abs_max(float* x, int64_t rows, int threads, std::string_view prefix,
                        std::string_view site) const;
};

struct Embeddings {
  int64_t hidden = 0;
  std::vector<float> word;        // [vocab, H]
  std::vector<float> position;    // [max_positions, H]
  std::vector<float> token_type;  // [type_vocab, H]
  // Weight-only int8 (when word_q is not empty; word and position are then empty): a row is
  // word_q[id] * word_scale, position_q[p] * position_scale. The type table stays FP32 (Q8BERT).
  std::vector<int8_t> word_q, position_q;
  float word_scale = 1.0f, position_scale = 1.0f;
  LayerNorm norm;
  // ids / types: packed, already validated; positions restart at 0 at each offsets[b].
  // abs_max: if not null, receives max |out| (taken in the LayerNorm pass).
  void forward(std::span<const int32_t> ids, std::span<const int32_t> types,
               std::span<const int64_t> offsets, float* out, int threads,
               float* abs_max = nullptr) const;
};

// Scratch for one EncoderLayer::forward, sized by EncoderLayer::scratch_floats.
struct EncoderScratch {
  float* qkv = nullptr;        // tokens x 3H
  float* ctx = nullptr;        // tokens x H
  float* mid = nullptr;        // tokens x I
  float* attention = nullptr;  // threads x attention_per_thread
  std::size_t attention_per_thread = 0;
  AlignedBuffer<std::byte>* gemm = nullptr;  // oneDNN scratchpad (ops::MatmulF32::run)
  int8_t* q8 = nullptr;                // INT8 layers only: tokens x max(H, I) quantized activations
  const ActivationTap* tap = nullptr;  // calibration / per-layer comparison (octet/model.h)
  // Dynamic INT8: if not null, *x_abs_max >= 0 on entry is max |x| of the layer's input (the
  // LayerNorm that wrote it took it in the same pass; < 0: unknown), and on return max |x| of
  // its output, so that the dynamic QKV quantization needs no range pass of its own.
  float* x_abs_max = nullptr;
  // Empty for a packed batch; for a batch padded to its longest sequence, each sequence's count
  // of valid tokens (its first rows): attention reads those keys only (ops::self_attention).
  std::span<const int64_t> valid = {};
  // Only each sequence's first row (offsets[b], what the pooler reads) is needed after this
  // layer: the encoder's last layer when the caller asked for pooled outputs or logits only. FFN
  // out and the last LayerNorm then run on those rows alone (FP32, or dynamic INT8 with FFN
  // out's input range known from the FFN-in epilogue: the range and so the codes of those rows
  // are those of the whole tensor), and the other rows of x are left stale. Bit for bit the
  // same pooled outputs and logits; ignored with a tap and by the static row-blocked path.
  bool first_rows_only = false;
};

struct EncoderLayer {
  // Token rows per block of the static INT8 layer after attention (attention output, LayerNorm,
  // FFN in, activation, FFN out, LayerNorm on one block at a time).
  static constexpr int64_t kBlockRows = 128;
  int64_t hidden = 0, heads = 0, head_dim = 0, intermediate = 0;
  io::Activation act = io::Activation::gelu;
  ops::MatmulF32 qkv;       // [3H, H]: query, key, value rows stacked
  ops::MatmulF32 attn_out;  // [H, H]
  LayerNorm attn_norm;
  ops::MatmulF32 ffn_in;   // [I, H]
  ops::MatmulF32 ffn_out;  // [H, I]
  LayerNorm ffn_norm;
  // INT8: each of these, when set (n() > 0), replaces its FP32 twin (then left empty), so a
  // quantized model can keep any of the four GEMMs in FP32 (keep_fp32).
  bool int8 = false;  // at least one INT8 GEMM
  // Q K^T and P V on int8 (ops::self_attention int8; BertLoadOptions::int8_attention).
  bool int8_attention = false;
  LinearInt8 qkv_q, attn_out_q, ffn_in_q, ffn_out_q;
  // Q8BERT's 8-bit Q and K (quantize.attention_scores, static activations; QUANT_SPEC A.3, A.6
  // step 4): after the QKV GEMM the query and key columns are fake-quantized in place with their
  // calibrated output scales (ops::fake_quantize_static), so the score matmul Q K^T reads 8-bit
  // values; V stays FP32. Needs EncoderScratch::q8.
  bool quantize_qk = false;
  ActivationQuant q_out, k_out;  // static (dynamic == false) when quantize_qk
  std::string name;              // "bert.encoder.layer.<i>." (tap names)

  void forward(float* x, std::span<const int64_t> offsets, const EncoderScratch& s,
               int threads) const;
};

}  // namespace octet::layers
