// FP32 row kernels of the Transformer forward pass (everything but the dense GEMMs, which go
// through oneDNN in ops/matmul_f32.h): elementwise activations, LayerNorm, masked softmax and
// single-head self-attention. Signatures and the Fp32Kernels section of the kernel table.
//
// Layouts: row-major float matrices addressed by a base pointer and a row stride `ld` in
// elements (ld >= cols). Kernels never allocate, throw or start threads; callers (ops/) check
// shapes and split work over threads. Implementations: kernels/ref/fp32_*.cc (the
// specification), kernels/avx2/fp32_*.cc, kernels/avx512/fp32_*.cc.
//
// Contracts (n, rows, cols, t, d are element counts):
//   exp / erf / tanh / gelu_erf / gelu_tanh / relu:  y[i] = f(x[i]) for i < n; y may equal x.
//        gelu_erf(x)  = 0.5 x (1 + erf(x / sqrt 2))                         (HF "gelu")
//        gelu_tanh(x) = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))    (HF "gelu_new")
//   layer_norm:  per row, mean m and biased variance v over `cols` values,
//        y = (x - m) / sqrt(v + eps) * gamma + beta. m and v are computed from x - x[0] (shifted
//        data), so a constant row gives exactly x - m = 0 and y = beta. y may equal x.
//   softmax:  per row, p[j] = exp(scale x[j] - max) / sum over j < valid; p[j] = 0 exactly for
//        valid <= j < cols (padded keys get zero probability, like a -inf mask); a row with
//        valid == 0 is all zeros. In place.
//   attention_head:  one head of one sequence: Q is rows x d, K and V are t x d, all with row
//        stride ld_qkv (slices of the fused QKV projection); S = scale Q K^T (rows x t),
//        P = softmax(S) row-wise, O = P V written rows x d with stride ld_out. rows == t for a
//        packed sequence; rows > t for one padded to the batch's longest (the pad queries
//        attend to the t valid keys, which is what a key mask does; padded keys are never
//        read). `scratch` holds attention_scratch_floats(t, d) floats, 64-byte aligned.
//        Returns max |O| over the rows x d values written (0 when rows == 0), NaN when any of
//        them is NaN: the input scale of a dynamically quantized attention-output GEMM.
//        next_q: null, or the Q of the head the caller runs next on this thread, with the same
//        rows, t, d and ld_qkv and its K and V at the same offsets from it as k and v from q; a
//        hint (the AVX-512 kernel prefetches those rows into L2 while it computes), never read.
// Float results match the reference within a tolerance that grows with the reduction length
// (vector math within a few ulp, FMA contraction, summation order).
#pragma once

#include <cstddef>
#include <cstdint>

namespace octet::kernels {

// Most rows of scores an attention_head implementation processes at once (register blocking).
inline constexpr std::size_t kAttentionRowBlock = 8;

// Scratch floats attention_head needs: K^T padded to a multiple of 16 keys, a contiguous copy
// of V padded to 16 channels, plus one row block of scores.
inline constexpr std::size_t attention_scratch_floats(std::size_t t, std::size_t d) {
  const std::size_t tp = (t + 15) / 16 * 16, dp = (d + 15) / 16 * 16;
  return d * tp + tp * dp + kAttentionRowBlock * tp;
}

using UnaryF32Fn = void (*)(const float* x, float* y, std::size_t n);

struct Fp32Kernels {
  UnaryF32Fn exp = nullptr;
  UnaryF32Fn erf = nullptr;
  UnaryF32Fn tanh = nullptr;
  UnaryF32Fn gelu_erf = nullptr;
  UnaryF32Fn gelu_tanh = nullptr;
  UnaryF32Fn relu = nullptr;

  void (*layer_norm)(const float* x, std::size_t ld_x, float* y, std::size_t ld_y, std::size_t rows,
                     std::size_t cols, const float* gamma, const float* beta, float eps) = nullptr;

  void (*softmax)(float* x, std::size_t ld, std::size_t rows, std::size_t cols, std::size_t valid,
                  float scale) = nullptr;

  float (*attention_head)(const float* q, const float* k, const float* v, std::size_t ld_qkv,
                          std::size_t rows, std::size_t t, std::size_t d, float scale, float* out,
                          std::size_t ld_out, float* scratch, const float* next_q) = nullptr;
};

}  // namespace octet::kernels
