// One BERT encoder layer in I-BERT's integer-only arithmetic (QUANT_SPEC B.10; issue 7, item 2 at
// the layer level): int8 in, int8 out, and between them only integer kernels. All float scales
// are folded into integer constants once, by prepare(); forward() takes and returns integer
// tensors and calls integer kernels only (INT8 GEMMs with int32 outputs, i-softmax, i-GELU,
// i-LayerNorm, dyadic requantization, requantizing residual additions).
//
//   auto layer = octet::layers::IntegerEncoderLayer::prepare(weights, scales, ln1_shift,
//   ln2_shift); std::vector<int8_t> y(tokens * hidden); layer.forward(x_q, tokens, y); // x_q: int8
//   at scales.input; y: int8 at scales.output
//
// Dataflow (fairseq `ibert` layer order; widths from B.10):
//   x (8) -> Q, K, V GEMMs -> requantized to 8 bits (scales.q / k / v)
//   per head: S = Q K^T (int32, scale S_q S_k / sqrt(d)) -> i-softmax -> P (uint8, 2^-8)
//             P V (u8 x s8 GEMM) -> requantized to 8 bits (scales.context)
//   out GEMM -> + x (identity) -> 22 bits (scales.attn_sum) -> i-LayerNorm (int64)
//            -> 8 bits (scales.ln1) = h
//   FC1 GEMM (int32) -> i-GELU (int64) -> 8 bits (scales.gelu) -> FC2 GEMM -> + h -> 22 bits
//            (scales.ffn_sum) -> i-LayerNorm -> 8 bits (scales.output)
// Weights: int8 per output channel, symmetric [-127, 127]; biases int32 at S_x S_w[c]. The
// LayerNorm overflow shifts are calibrated (ops::ilayernorm_calibrate_shift on 22-bit calibration
// sums).
//
// One sequence per call (no padding, no mask). Errors: prepare() throws InvalidArgument for
// inconsistent shapes, non-positive scales or constants the integer kernels cannot hold;
// forward() for a bad size. The layer is immutable after prepare(); forward() is const and
// reentrant (it allocates its scratch per call), single-threaded. Kernels of the ISA given to
// prepare(). forward() and every function it calls contain no floating-point instruction
// (docs/integer_only.md gives the disassembly check).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "common/aligned_buffer.h"
#include "kernels/int8.h"
#include "kernels/integer.h"
#include "octet/cpu.h"
#include "ops/integer_ops.h"

namespace octet::layers {

// FP32 weights of one layer, PyTorch Linear layout ([out, in] row-major).
struct FloatEncoderWeights {
  int hidden = 0, heads = 0, intermediate = 0;
  std::vector<float> wq, bq, wk, bk, wv, bv, wo, bo;  // [H, H], [H]
  std::vector<float> ln1_gamma, ln1_beta;             // [H]
  std::vector<float> w1, b1;                          // [I, H], [I]
  std::vector<float> w2, b2;                          // [H, I], [H]
  std::vector<float> ln2_gamma, ln2_beta;             // [H]
};

// The static scale (dequantization step) of every quantized activation of the layer.
struct IntegerLayerScales {
  float input = 0;  // 8-bit layer input (also the attention residual)
  float q = 0, k = 0, v = 0;
  float context = 0;   // 8-bit attention context (P V)
  float attn_sum = 0;  // 22-bit LayerNorm input after the attention residual
  float ln1 = 0;       // 8-bit (FFN input and FFN residual)
  float gelu = 0;      // 8-bit (FC2 input)
  float ffn_sum = 0;   // 22-bit
  float output = 0;    // 8-bit layer output
};

// One Linear already quantized: int8 weights [n, k] symmetric per output channel ([-127, 127]),
// their scales (n entries) and the int32 bias at input_scale * scales[c].
struct QuantizedLinearWeights {
  std::vector<int8_t> w;
  std::vector<float> scales;
  std::vector<int32_t> bias;
};

// The int8 weights of one layer (what a quantized model directory stores); LayerNorm stays FP32
// until prepare folds it into integer constants.
struct QuantizedEncoderWeights {
  int hidden = 0, heads = 0, intermediate = 0;
  QuantizedLinearWeights q, k, v, o, fc1, fc2;
  std::vector<float> ln1_gamma, ln1_beta, ln2_gamma, ln2_beta;
};

class IntegerEncoderLayer {
 public:
  static IntegerEncoderLayer prepare(const FloatEncoderWeights& w, const IntegerLayerScales& s,
                                     int ln1_shift, int ln2_shift, Isa isa = active_isa());
  // The same from int8 weights (biases at scales.input / context / ln1 / gelu times the weight
  // scales); throws InvalidArgument for inconsistent sizes or non-positive scales.
  static IntegerEncoderLayer prepare_quantized(const QuantizedEncoderWeights& w,
                                               const IntegerLayerScales& s, int ln1_shift,
                                               int ln2_shift, Isa isa = active_isa());
  // The weight quantization prepare() applies: per output channel, int32 biases at the
  // activation scales of `s`.
  static QuantizedEncoderWeights quantize_weights(const FloatEncoderWeights& w,
                                                  const IntegerLayerScales& s);
  // One Linear as quantize_weights quantizes it: w [n, k] int8 symmetric per output channel,
  // b (n values) as int32 at input_scale * scales[c], rounded to nearest (even) and saturated.
  // Exposed for integer-only-aware training (train/integer_qat.h), which quantizes each Linear
  // when its input scale becomes known. Throws InvalidArgument for a size mismatch.
  static QuantizedLinearWeights quantize_linear(std::span<const float> w, std::span<const float> b,
                                                int n, int k, double input_scale);

  // x: tokens x hidden int8 codes at scales.input; y: tokens x hidden int8 at scales.output.
  void forward(std::span<const int8_t> x, int tokens, std::span<int8_t> y) const;
  // The same up to the last i-LayerNorm, whose int64 output (tokens x hidden, per-column scale
  // output_ln_scale()) is returned instead of the 8-bit requantization (scales.output unused).
  void forward_ln(std::span<const int8_t> x, int tokens, std::span<int64_t> ln_out) const;
  // gamma[c] * sqrt(hidden) / 2^30: the real value of one unit of forward_ln's column c.
  const std::vector<double>& output_ln_scale() const { return ln2_.out_scale; }

  int hidden() const { return hidden_; }

  // int8 weights packed for the ISA's GEMM kernel, with their column sums (the kernel's +128 /
  // zero-point compensation). Public so that the forward pass's per-thread scratch can hold the
  // per-head K and V^T packings.
  struct PackedB {
    int n = 0, k = 0;
    AlignedBuffer<uint8_t> packed;
    std::vector<int32_t> col_sums;
  };

 private:
  struct Linear {
    PackedB w;
    std::vector<int32_t> bias;  // int32 at S_x S_w[c]
  };
  PackedB pack(const int8_t* w, int n, int k, std::ptrdiff_t ldw) const;
  // The same into b, reusing its buffers when they are large enough.
  void pack_into(PackedB& b, const int8_t* w, int n, int k, std::ptrdiff_t ldw) const;
  // C = A B^T (+ bias) in int32, one kernel call on the calling thread. ops::gemm_int8_s32 is not
  // used here because its thread planning computes in floating point.
  void gemm(const void* a, kernels::ActDtype dtype, int m, std::ptrdiff_t lda, const PackedB& b,
            const int32_t* bias, int32_t* c, std::ptrdiff_t ldc) const;
  // Requantization of an int32 tensor (per column) to `bits`, optionally plus an int8 identity.
  struct Requant {
    ops::ResidualParams p;
    int bits = 8;
  };

  int hidden_ = 0, heads_ = 0, head_dim_ = 0, inter_ = 0;
  Isa isa_ = Isa::ref;
  Linear qkv_, out_, fc1_, fc2_;
  Requant qkv_req_, ctx_req_, attn_sum_req_, ffn_sum_req_;
  kernels::IexpParams softmax_;
  ops::IGeluParams gelu_;
  ops::ILayerNormParams ln1_, ln2_;
  std::vector<int32_t> ln1_m_, ln1_s_, gelu_m_, gelu_s_, ln2_m_, ln2_s_;  // int64 -> 8 bits
};

}  // namespace octet::layers
