// INT8 Linear layer (Q8BERT dynamic quantization, "DQ" in QUANT_SPEC.md A.7): y = x W^T + b with
// int8 weights quantized once at construction and int8 activations quantized per call.
//
//   layers::LinearInt8 fc(w, /*n=*/768, /*k=*/3072, bias);        // per output channel
//   std::vector<int8_t> q(layers::LinearInt8::scratch_bytes(m, 3072));
//   fc.forward(x, m, /*ldx=*/3072, y, /*ldy=*/768, q.data(),
//              {.residual = y, .ldr = 768});                       // y += x W^T + b, in place
//
// Arithmetic (symmetric, zero point 0, codes in [-127, 127], ties to even):
//   weights      s_w = max|W_j| / 127 per output channel j (per_channel) or max|W| / 127 for the
//                whole matrix; W_q = clamp(nearbyint(W * (1 / s_w)), -127, 127). An all-zero row or
//                matrix gets s_w = 1 (its codes are 0 anyway).
//   activations  s_x = max|x| / 127 over the m x k input of this call (quantize_activations_s8)
//   output       y[i][j] = act(float(sum_k x_q[i][k] W_q[j][k]) * (s_x s_w[j]) + b[j])
//                          (+ residual[i][j])
//   The int32 accumulation is exact; dequantization, the FP32 bias, the activation and the
//   residual add are one fused GEMM epilogue (no separate dequantize pass). Unlike Q8BERT's
//   reference code the bias stays FP32 instead of being rounded to int32 at scale s_x s_w (a
//   difference below one accumulator unit).
// Shapes: W [n, k] row-major FP32 (PyTorch Linear layout), b [n] (may be empty), x [m, k] with row
// stride ldx >= k, y [m, n] with row stride ldy >= n. `residual` may alias y with ldr == ldy (each
// element is read before it is written), which is how BERT adds its residual connections.
//
// Errors: the constructor throws InvalidArgument for empty or mismatched shapes and non-finite
// weights; forward() throws InvalidArgument for bad strides or a NaN / Inf in x (naming the row).
// Ownership and threading: the layer owns its packed weights (for the ISA active at
// construction) and is immutable afterwards; forward() is const and reentrant as long as each
// concurrent call has its own scratch. It splits the GEMM over `threads` OpenMP threads
// (0: omp_get_max_threads()). It never allocates.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "kernels/int8.h"
#include "octet/cpu.h"
#include "ops/gemm_int8.h"

namespace octet::layers {

// Symmetric int8 weights with their scales (1 per row, or 1 for the whole matrix). The single
// place where Octet's dynamic-quantization baseline turns FP32 weights into int8; calibrated
// schemes live in src/quant/.
// One weight to int8 at 127 / a: multiply, round half to even (the default FP environment, as
// the activation kernels kernels::quantize_s8 do), clamp to [-127, 127].
inline int8_t quantize_symmetric_one(float w, float inv_scale) {
  const float r = std::nearbyint(w * inv_scale);
  return static_cast<int8_t>(std::clamp(r, -127.0f, 127.0f));
}

// Rows [r0, r0 + rows) of quantized activations (same scale and zero point).
inline ops::ActivationsInt8 row_slice(const ops::ActivationsInt8& a, int64_t r0, int64_t rows) {
  ops::ActivationsInt8 s = a;
  s.data = static_cast<const uint8_t*>(a.data) + r0 * a.ld;  // s8 and u8 codes: 1 byte each
  s.m = static_cast<int>(rows);
  return s;
}

struct SymmetricInt8 {
  std::vector<int8_t> q;      // rows x cols
  std::vector<float> scales;  // rows entries (per row) or 1 entry (per tensor)
};

// q = clamp(nearbyint(w * 127 / a), -127, 127) with a = max |w| over each row (per_row) or over the
// whole matrix; scale = a / 127 (1 when a == 0). Throws InvalidArgument for non-finite values or
// w.size() != rows * cols.
SymmetricInt8 quantize_symmetric_int8(std::span<const float> w, int64_t rows, int64_t cols,
                                      bool per_row);

// How a LinearInt8 quantizes its input. Dynamic: scale max|x| / 127 per call (Q8BERT DQ).
// Static: a calibrated scale (and, for u8, zero point) fixed at load, no range pass per call;
// s8 symmetric (zero point 0, [-127, 127]) or u8 asymmetric ([0, 255], Bhandare et al.).
struct ActivationQuant {
  bool dynamic = true;
  kernels::ActDtype dtype = kernels::ActDtype::s8;
  float scale = 1.0f;      // dequantization step; inv_scale = 1 / scale
  int32_t zero_point = 0;  // u8 only
};

struct LinearInt8Epilogue {
  kernels::Activation activation = kernels::Activation::none;  // none, relu, gelu (erf form)
  const float* residual = nullptr;  // m x n, row stride ldr, added after the activation
  std::ptrdiff_t ldr = 0;
  // If not null, receives max |y| over the m x n outputs, taken by the GEMM epilogue as it stores
  // them (ops::DequantizeEpilogue::abs_max): NaN if any output is NaN, Inf if any is infinite.
  // Exactly what ops::abs_max over y returns for finite y, for any thread count.
  float* abs_max = nullptr;
};

// The FP32 bias a static layer adds for the int32 bias a quantized model stores at scale
// input_scale * w_scales[j]: float(bias_s32[j]) * (input_scale * w_scales[j]). w_scales has one
// entry per output (a per-tensor scale repeated).
std::vector<float> dequantize_static_bias(std::span<const int32_t> bias_s32, float input_scale,
                                          std::span<const float> w_scales);

class LinearInt8 {
 public:
  LinearInt8() = default;
  // w: n x k FP32 (row-major, PyTorch layout); bias: n values or empty.
  LinearInt8(std::span<const float> w, int64_t n, int64_t k, std::span<const float> bias,
             bool per_channel = true, Isa isa = active_isa());

  // Already quantized weights (n x k int8, row-major) with 1 or n scales, as a quantized model
  // directory stores them; `act` chooses dynamic or static activations. Throws InvalidArgument for
  // bad shapes, scales (non-positive, non-finite) or activation parameters.
  static LinearInt8 from_quantized(std::span<const int8_t> wq, int64_t n, int64_t k,
                                   std::span<const float> w_scales, std::span<const float> bias,
                                   const ActivationQuant& act, Isa isa = active_isa());

  int64_t n() const { return weights_.n(); }
  const ActivationQuant& activation_quant() const { return act_; }
  int64_t k() const { return weights_.k(); }
  bool per_channel() const { return per_channel_; }
  const ops::PackedWeightsInt8& weights() const { return weights_; }

  // Bytes of int8 scratch forward() needs for m rows (the quantized activations).
  static std::size_t scratch_bytes(int64_t m, int64_t k) {
    return static_cast<std::size_t>(m) * static_cast<std::size_t>(k);
  }

  // y = act(x W^T + b) (+ residual); q_scratch holds scratch_bytes(m, k()) bytes (int8 or uint8
  // codes). Static layers quantize with their fixed scale, splitting rows over `threads`.
  void forward(const float* x, int64_t m, std::ptrdiff_t ldx, float* y, std::ptrdiff_t ldy,
               int8_t* q_scratch, const LinearInt8Epilogue& epilogue = {}, int threads = 0) const;

  // The two halves of forward(), for callers that fuse work around them (layers::EncoderLayer).
  // quantize_input: x (m x k, row stride ldx) to codes in q_scratch (row stride k), rows split
  // over `threads`. A dynamic layer takes max |x| from `known_abs_max` when it is not null (the
  // pass that wrote x computed it, e.g. ops::layer_norm_abs_max; it must be exactly max |x|, and
  // finite), else computes it (ops::abs_max): the codes and scale are bit for bit those of
  // ops::quantize_activations_s8 either way. The rows may also be some rows of a larger tensor
  // with known_abs_max that tensor's max |x|: their codes are then those of the whole tensor.
  // Throws InvalidArgument naming the first row that holds a NaN or an infinity.
  ops::ActivationsInt8 quantize_input(const float* x, int64_t m, std::ptrdiff_t ldx,
                                      int8_t* q_scratch, int threads = 0,
                                      const float* known_abs_max = nullptr) const;
  // y = act(a W^T + b) (+ residual) for quantized rows `a` (quantize_input's result, or
  // row_slice of it: the GEMM's outputs do not depend on how the rows are cut).
  void gemm(const ops::ActivationsInt8& a, float* y, std::ptrdiff_t ldy,
            const LinearInt8Epilogue& epilogue = {}, int threads = 0) const;

 private:
  ops::PackedWeightsInt8 weights_;
  std::vector<float> bias_;
  bool per_channel_ = true;
  ActivationQuant act_;
};

}  // namespace octet::layers
