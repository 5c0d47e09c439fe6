// INT8 GEMM operator: C = A x W^T with int32 accumulation and one fused epilogue, on the kernels
// of one ISA (kernels/int8.h has the exact arithmetic).
//
//   // Once, at model load: per-channel (n scales) or per-tensor (1 scale) int8 weights, n x k.
//   auto w = octet::ops::PackedWeightsInt8::pack(weights, n, k, /*ldw=*/k, scales);
//   // Per call: s8 activations (m x k, symmetric, scale sa) -> FP32 with bias and GELU.
//   octet::ops::ActivationsInt8 a{x_q, octet::kernels::ActDtype::s8, m, k, /*ld=*/k, 0, sa};
//   octet::ops::DequantizeEpilogue e{bias, octet::kernels::Activation::gelu};
//   octet::ops::gemm_int8_f32(a, w, e, y, /*ldc=*/n);
//
// Operands and shapes:
//   A  m x k, s8 (symmetric, zero point 0) or u8 (asymmetric, zero point in [0, 255]), row stride
//      lda >= k elements; its scale is used by the f32 epilogue only.
//   W  n x k int8, row-major, packed for one ISA at load time (PackedWeightsInt8), together with
//      its column sums (for the +128 / zero-point compensation) and its per-channel scales.
//   C  m x n, row stride ldc >= n: int32, float, int8 or uint8 by epilogue.
// Epilogues:
//   gemm_int8_s32:      C = acc (+ bias_s32)
//   gemm_int8_f32:      C = act(acc * (a.scale * w_scale[j]) + bias[j]) (+ residual[i][j]),
//                       optionally max |C| in the same pass (DequantizeEpilogue::abs_max)
//   gemm_int8_requant:  C = sat(round_half_even((acc + bias[j]) * m[j] / 2^s[j]) + zero point)
//                       with (m, s) from kernels::quantize_multiplier(S_a * S_w[j] / S_out).
// Errors: shape, stride, dtype, zero-point and K-range violations throw octet::InvalidArgument
// naming the operand and the expected vs found values; nothing is read before the checks.
//
// Ownership and threading: PackedWeightsInt8 owns its buffers and is immutable after pack(), so
// any number of threads may share it. Operands are borrowed for the call. Each call splits C into
// blocks over OpenMP threads (`threads` = 0: omp_get_max_threads(); small problems run on the
// calling thread); concurrent calls from different threads are safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "common/aligned_buffer.h"
#include "kernels/int8.h"
#include "octet/cpu.h"

namespace octet::ops {

class PackedWeightsInt8 {
 public:
  // Packs n x k int8 weights (row stride ldw) for `isa`'s kernels. `scales` holds 1 (per-tensor)
  // or n (per output channel) positive finite values; they may be empty when only the s32 and
  // requantizing epilogues are used. Throws InvalidArgument / Unsupported.
  static PackedWeightsInt8 pack(const int8_t* w, int n, int k, std::ptrdiff_t ldw,
                                std::span<const float> scales, Isa isa = active_isa());

  int n() const { return n_; }
  int k() const { return k_; }
  Isa isa() const { return isa_; }
  bool has_scales() const { return !scales_.empty(); }
  const void* packed() const { return packed_.data(); }
  const int32_t* col_sums() const { return col_sums_.data(); }  // n entries: sum_k W[j][k]
  const float* scales() const { return scales_.data(); }        // n entries (per-tensor expanded)

 private:
  int n_ = 0, k_ = 0;
  Isa isa_ = Isa::ref;
  AlignedBuffer<uint8_t> packed_;
  AlignedBuffer<int32_t> col_sums_;
  AlignedBuffer<float> scales_;
};

// A borrowed view of quantized activations.
struct ActivationsInt8 {
  const void* data = nullptr;
  kernels::ActDtype dtype = kernels::ActDtype::s8;
  int m = 0;
  int k = 0;
  std::ptrdiff_t ld = 0;   // row stride in elements, >= k
  int32_t zero_point = 0;  // u8: [0, 255]; s8: must be 0
  float scale = 1.0f;      // used by gemm_int8_f32
};

struct DequantizeEpilogue {
  const float* bias = nullptr;  // n entries or null
  kernels::Activation activation = kernels::Activation::none;
  const float* residual = nullptr;  // m x n with row stride ldr, or null
  std::ptrdiff_t ldr = 0;
  // If not null, receives max |C| over the m x n outputs (after activation and residual; 0 for
  // m == 0), taken by the epilogue as it stores them, not in another pass: NaN if any output is
  // NaN, else Inf if any is infinite. Bit-exact for a given C: the same for any thread count.
  float* abs_max = nullptr;
};

struct RequantizeEpilogue {
  const int32_t* bias = nullptr;                         // n entries or null
  std::span<const int32_t> multiplier;                   // 1 or n entries, [2^30, 2^31) or 0
  std::span<const int32_t> shift;                        // same count as multiplier, [1, 63]
  int32_t zero_point = 0;                                // s8: [-128, 127]; u8: [0, 255]
  kernels::GemmOutput output = kernels::GemmOutput::s8;  // s8 or u8
};

void gemm_int8_s32(const ActivationsInt8& a, const PackedWeightsInt8& w, const int32_t* bias,
                   int32_t* c, std::ptrdiff_t ldc, int threads = 0);
void gemm_int8_f32(const ActivationsInt8& a, const PackedWeightsInt8& w,
                   const DequantizeEpilogue& epilogue, float* c, std::ptrdiff_t ldc,
                   int threads = 0);
void gemm_int8_requant(const ActivationsInt8& a, const PackedWeightsInt8& w,
                       const RequantizeEpilogue& epilogue, void* c, std::ptrdiff_t ldc,
                       int threads = 0);

// Dynamic per-tensor symmetric quantization of FP32 activations for the GEMM (Q8BERT's scheme):
// with a = max |x| over the tensor, q = clamp(nearbyint(x * (127 / a)), -127, 127) and the
// returned view carries scale a / 127 (1 when x is all zeros). x: rows x cols, row stride ldx;
// q: caller-owned, row stride ldq. Throws InvalidArgument naming the first row that holds a NaN
// or an infinity (found while the range is computed, not in an extra pass).
ActivationsInt8 quantize_activations_s8(const float* x, int rows, int cols, std::ptrdiff_t ldx,
                                        int8_t* q, std::ptrdiff_t ldq);

// Static quantization of FP32 activations with a calibrated scale (no range pass): s8 codes
// q = clamp(nearbyint(x * inv_scale), -127, 127) with zero point 0, or u8 codes
// q = clamp(nearbyint(x * inv_scale) + zero_point, 0, 255) (asymmetric, Bhandare et al.). The
// returned view carries `scale` (the dequantization step, normally 1 / inv_scale) and the zero
// point. Values beyond the calibrated range saturate. Rows are split over `threads` OpenMP threads
// (0: omp_get_max_threads(); small inputs run on the calling thread). Throws InvalidArgument for
// bad shapes, a non-positive or non-finite scale, a zero point outside [0, 255] (u8) or != 0
// (s8), and names the first row holding a NaN or an infinity (detected by the quantize kernel's
// own range output, not an extra pass).
ActivationsInt8 quantize_activations_static(const float* x, int rows, int cols, std::ptrdiff_t ldx,
                                            kernels::ActDtype dtype, float inv_scale, float scale,
                                            int32_t zero_point, void* q, std::ptrdiff_t ldq,
                                            int threads = 0);

// Static fake quantization in place (Q8BERT's requantize_output, QUANT_SPEC A.6 step 4): each
// value becomes the dequantized code quantize_activations_static gives it, x = float(q) * scale
// (s8) or float(q - zero_point) * scale (u8). q: rows * cols bytes of caller-owned scratch.
// Same arguments and errors as quantize_activations_static.
void fake_quantize_static(float* x, int rows, int cols, std::ptrdiff_t ldx, kernels::ActDtype dtype,
                          float inv_scale, float scale, int32_t zero_point, void* q,
                          int threads = 0);

// How a call splits C: blocks of block_m rows x block_n columns (block_n a multiple of 16) over
// `threads` threads. Exposed for tests and benchmarks.
struct GemmPartition {
  int threads = 1;
  int block_m = 0;
  int block_n = 0;
};
GemmPartition plan_gemm_int8(int m, int n, int k, int threads);

}  // namespace octet::ops
