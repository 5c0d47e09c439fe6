// INT8 kernels: GEMM with fused epilogues, FP32 <-> int8 quantization, embedding-row gather and
// int32 -> int8 requantization. Signatures and the Int8Kernels section of the kernel table.
//
// GEMM contract (intgemm style). C = A x B^T, int32 accumulation, then one fused epilogue.
//   A  activations, M x K, row-major, row stride lda (elements = bytes), dtype s8 or u8. Asymmetric
//      u8 activations carry a zero point za in [0, 255]; s8 activations are symmetric (za = 0).
//   B  weights, N x K, int8, row-major in the canonical (file) form; kernels only ever see B packed
//      by the same ISA's pack_b (layouts in docs/kernels.md), with its column sums
//      colsum[j] = sum_k B[j][k] computed once at packing time.
//   acc[i][j] = sum_k (A[i][k] - za) * B[j][k]                         exact int32 (see below)
// Epilogues (per output column j; "channel" = column of C = row of B):
//   s32:  C[i][j] = acc + bias_s32[j]              (int32 wrap-around; bias may be null)
//   f32:  y = float(acc) * (a_scale * w_scale[j]) + bias_f32[j]         (bias may be null)
//         y = act(y), act in {none, relu, gelu (erf form)}; then y += residual[i][j] (may be null)
//         abs_max (may be null): the call raises *abs_max to max |y| over the outputs it stores,
//         |y| compared as IEEE bit patterns (unsigned), so Inf exceeds every finite value and any
//         NaN output leaves a NaN (the NaN of largest payload, whatever the order). The maximum
//         is order-independent: bit-exact for a given C whatever the ISA, block split or thread
//         count. Not atomic: one accumulator per concurrent call, initialised by the caller (0).
//   s8/u8 (dyadic requantization, I-BERT / gemmlowp):
//         v = acc + bias_s32[j] (exact, in int64)
//         C = saturate(round_half_even(v * multiplier[j] / 2^shift[j]) + out_zero_point)
//         to [-128, 127] (s8) or [0, 255] (u8); multiplier/shift from quantize_multiplier()
//         (kernels/fixedpoint.h): multiplier in [2^30, 2^31) or 0, shift in [1, 63].
// Overflow budget: |acc| <= 255 * 128 * K, so int32 is exact for K <= kMaxGemmK (65,536); the
// ops layer rejects larger K. Integer outputs are bit-exact across ISAs; f32 outputs agree with the
// reference within a small relative tolerance (vector GELU, FMA contraction); the integer
// accumulator is exact on every ISA, so the float error does not grow with K.
//
// Kernel calls are pure and reentrant: they never allocate, never throw, never start threads.
// The ops layer (ops/gemm_int8.h) checks shapes, packs weights once, provides the per-thread
// workspace and splits C into blocks, one gemm() call per block, over OpenMP threads.
//
// Elementwise contracts (n elements). The range each quantize kernel reports (max |x|, or min and
// max) is found in the same pass and is NaN if any input is NaN or +-Inf: that is how the ops
// layer detects and rejects non-finite input without a second pass. Codes written for
// non-finite inputs are unspecified (never a crash).
//   quantize_s8:  q = clamp(nearbyint(x * inv_scale), -127, 127)   (half to even; Q8BERT)
//   quantize_u8:  q = clamp(nearbyint(x * inv_scale) + zero_point, 0, 255)
//   dequantize:   x = float(q - zero_point) * scale
//   requantize:   the s8/u8 GEMM epilogue above applied to an int32 matrix.
//
// INT8 single-head self-attention (attention_head_s8; Bhandare et al.: the two attention matmuls
// on int8 with int32 accumulation). Same operands as the FP32 attention_head (kernels/fp32.h):
// Q rows x d, K and V t x d, FP32, row stride ld_qkv; O rows x d, stride ld_out. Arithmetic,
// every step defined so that the integer parts are exact on every ISA:
//   1. codes, dynamic and symmetric, each with its own max |x| (a = 0 gives codes 0, step 0):
//        Q per row i:     qq = clamp(nearbyint(q * (127 / a_i)), -127, 127), sq_i = a_i / 127
//        K per key j:     kq likewise,  sk_j = a_j / 127
//        V per channel c: vq likewise over the t keys,  sv_c = a_c / 127
//   2. scores  acc_ij = sum_c qq_ic kq_jc (exact int32),
//              s_ij = (float(acc_ij) * (sq_i * scale)) * sk_j           (two IEEE multiplies)
//   3. probabilities as u8 codes of the unnormalised softmax: with m_i = max_j<t s_ij,
//              p_ij = prob_code(s_ij - m_i) = nearbyint(255 exp(s_ij - m_i)) in [0, 255] with
//              exp as a fixed sequence of float operations (kernels/prob_code.h),
//              n_i = sum_j p_ij (>= 255)
//   4. context acc2_ic = sum_j<t p_ij vq_jc (exact int32),
//              o_ic = (float(acc2_ic) * (1 / float(n_i))) * sv_c
// Returns max |O| over the outputs (0 when rows == 0); when any of Q, K, V is not finite the
// outputs are NaN and so is the return value. Every step is exact or a fixed IEEE operation, so
// the outputs are bit-identical on every ISA. rows may exceed t (a padded sequence, as in
// attention_head).
// `scratch` holds attention_s8_scratch_floats(max(rows, t), d) floats, 64-byte aligned.
// next_q: a prefetch hint, as for attention_head (kernels/fp32.h), never read.
#pragma once

#include <cstddef>
#include <cstdint>

namespace octet::kernels {

// Largest K for which the int32 accumulator cannot overflow: 255 * 128 * 65536 < 2^31.
inline constexpr int kMaxGemmK = 65536;
// Packed B is padded to a multiple of this many columns (one 16-lane int32 vector).
inline constexpr int kPackedColumnBlock = 16;

enum class ActDtype : int { s8 = 0, u8 = 1 };
enum class GemmOutput : int { s32 = 0, f32 = 1, s8 = 2, u8 = 3 };
enum class Activation : int { none = 0, relu = 1, gelu = 2 };

// Everything one GEMM needs. Pointers are borrowed; per-column arrays have at least n entries.
struct GemmParams {
  int m = 0, n = 0, k = 0;

  // A: m x k, row stride lda elements.
  const void* a = nullptr;
  std::ptrdiff_t lda = 0;
  ActDtype a_dtype = ActDtype::s8;
  int32_t a_zero_point = 0;  // u8 only; 0 for s8

  // B: packed by the same ISA's pack_b; colsum[j] = sum_k B[j][k].
  const void* packed_b = nullptr;
  const int32_t* col_sums = nullptr;

  // C: m x n, row stride ldc elements of the output dtype.
  GemmOutput output = GemmOutput::s32;
  void* c = nullptr;
  std::ptrdiff_t ldc = 0;

  const int32_t* bias_s32 = nullptr;  // s32, s8, u8 outputs; may be null

  // f32 output
  float a_scale = 1.0f;
  const float* w_scales = nullptr;  // per column (ops expand a per-tensor scale)
  const float* bias_f32 = nullptr;  // may be null
  Activation activation = Activation::none;
  const float* residual = nullptr;  // m x n, row stride ldr; may be null
  std::ptrdiff_t ldr = 0;
  float* abs_max = nullptr;  // raised to max |y| of the stored outputs; may be null

  // s8 / u8 output
  const int32_t* multiplier = nullptr;  // per column, in [2^30, 2^31) or 0
  const int32_t* shift = nullptr;       // per column, in [1, 63]
  int32_t out_zero_point = 0;
};

// Bytes of packed B for n x k weights (n padded to kPackedColumnBlock, k to the ISA's group).
using GemmPackedBSizeFn = std::size_t (*)(int n, int k);
// Packs canonical B (n x k, row stride ldb) into `packed` (64-byte aligned, packed_b_size bytes).
using GemmPackBFn = void (*)(const int8_t* b, std::ptrdiff_t ldb, int n, int k, void* packed);
// Bytes of scratch one gemm() call over `rows` rows of A needs (64-byte aligned by the caller).
using GemmWorkspaceSizeFn = std::size_t (*)(int rows, int k);
// Computes the block C[m0:m1, n0:n1] with its epilogue. n0 must be a multiple of
// kPackedColumnBlock. `workspace` holds gemm_workspace_size(m1 - m0, k) bytes, private to the call.
using GemmFn = void (*)(const GemmParams& p, int m0, int m1, int n0, int n1, void* workspace);

// Returns max |x| over the n inputs (0 for n == 0; NaN if any input is not finite).
using QuantizeS8Fn = float (*)(const float* x, std::size_t n, float inv_scale, int8_t* q);
// Writes min and max of x over the n inputs (0, 0 for n == 0; NaN, NaN if any is not finite).
// min_out and max_out may both be null: no range is computed (a caller that knows x is finite
// and within its range, e.g. from max |x|, saves those passes); the codes are the same.
using QuantizeU8Fn = void (*)(const float* x, std::size_t n, float inv_scale, int32_t zero_point,
                              uint8_t* q, float* min_out, float* max_out);
using AbsMaxFn = float (*)(const float* x, std::size_t n);
using MinMaxFn = void (*)(const float* x, std::size_t n, float* min_out, float* max_out);
using DequantizeS8Fn = void (*)(const int8_t* q, std::size_t n, float scale, float* x);
using DequantizeU8Fn = void (*)(const uint8_t* q, std::size_t n, float scale, int32_t zero_point,
                                float* x);
// out[r][:] = table[ids[r]][:] for r < count; ids already validated by the caller.
using GatherRowsS8Fn = void (*)(const int8_t* table, std::ptrdiff_t ld_table, const int32_t* ids,
                                std::size_t count, std::size_t cols, int8_t* out,
                                std::ptrdiff_t ld_out);
// The s8/u8 GEMM epilogue on an int32 matrix x (rows x cols, row stride ldx): per column bias
// (may be null), multiplier, shift; `output` is GemmOutput::s8 or ::u8; y has row stride ldy.
using RequantizeFn = void (*)(const int32_t* x, int rows, int cols, std::ptrdiff_t ldx,
                              const int32_t* bias, const int32_t* multiplier, const int32_t* shift,
                              int32_t out_zero_point, GemmOutput output, void* y,
                              std::ptrdiff_t ldy);

// Scratch floats attention_head_s8 needs for n = max(rows, t): Q and K codes padded to 64
// channels, V codes in 4-key groups, per-row / per-key / per-channel steps, one block of 8 rows
// of scores and probability codes, each section 64-byte aligned.
inline constexpr std::size_t attention_s8_scratch_floats(std::size_t n, std::size_t d) {
  const std::size_t tp = (n + 15) / 16 * 16, d64 = (d + 63) / 64 * 64, dp = (d + 15) / 16 * 16;
  const std::size_t bytes = 2 * tp * d64 + tp * dp + 4 * (3 * tp + dp) + 8 * tp * 5 + 8 * 64;
  return (bytes + 3) / 4;
}

using AttentionHeadS8Fn = float (*)(const float* q, const float* k, const float* v,
                                    std::size_t ld_qkv, std::size_t rows, std::size_t t,
                                    std::size_t d, float scale, float* out, std::size_t ld_out,
                                    float* scratch, const float* next_q);

struct Int8Kernels {
  GemmPackedBSizeFn gemm_packed_b_size = nullptr;
  GemmPackBFn gemm_pack_b = nullptr;
  GemmWorkspaceSizeFn gemm_workspace_size = nullptr;
  GemmFn gemm = nullptr;

  QuantizeS8Fn quantize_s8 = nullptr;
  QuantizeU8Fn quantize_u8 = nullptr;
  AbsMaxFn abs_max = nullptr;
  MinMaxFn min_max = nullptr;
  DequantizeS8Fn dequantize_s8 = nullptr;
  DequantizeU8Fn dequantize_u8 = nullptr;
  GatherRowsS8Fn gather_rows_s8 = nullptr;
  RequantizeFn requantize = nullptr;
  AttentionHeadS8Fn attention_head_s8 = nullptr;
};

}  // namespace octet::kernels
