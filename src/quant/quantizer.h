// Quantizer math shared by post-training quantization, quantization-aware training and
// integer-only inference: one definition of each formula (QUANT_SPEC A.1, A.4, B.1, C.2, D.9).
//
//   // Q8BERT activations: threshold T from a calibrator, codes in [-127, 127].
//   float s = octet::quant::symmetric_inv_scale(T);        // 127 / T
//   octet::quant::quantize_symmetric(x, s, q);              // q = clamp(rint(x * s), -127, 127)
//   auto w = octet::quant::quantize_weights(W, n, k, octet::quant::WeightGranularity::per_channel);
//   auto b = octet::quant::quantize_bias(bias, s, w.inv_scales);
//
// Scale conventions (the same as kernels/int8.h):
//   inv_scale  multiplicative scale, code = x * inv_scale (Q8BERT's `s = 127 / threshold`);
//   scale      dequantization step, x = scale * (code - zero_point) (I-BERT's `S`, the GEMM's
//              per-channel weight scales).
// Rounding: every float -> integer conversion here rounds half to even (std::nearbyint under the
// default FE_TONEAREST, the same as torch.round), never half away from zero (std::round). The
// product x * inv_scale (and x / scale for I-BERT) is formed in float32, as the references do,
// so codes match them bit for bit. Saturation is applied after rounding.
//
// Zero thresholds: a threshold (or range) of 0 means the observed tensor was all zeros. It maps to
// inv_scale = scale = 1 (zeros still quantize to 0, dequantization stays finite), never to inf.
// I-BERT instead floors its range at 1e-8 before dividing (B.1), reproduced by ibert_scale().
//
// Errors: non-finite inputs (NaN, +-Inf) and non-finite or negative thresholds are rejected with
// octet::InvalidArgument naming the tensor (`what`) and the first bad index; size mismatches too.
// Outputs are unspecified when a call throws.
//
// Threading: plain functions on borrowed spans; no state, safe to call concurrently.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

namespace octet::quant {

inline constexpr int kSymmetricMax = 127;  // Q8BERT restricted range [-127, 127]
inline constexpr int kIbertMin = -127;     // I-BERT SymmetricQuantFunction [-127, 126]
inline constexpr int kIbertMax = 126;
inline constexpr float kIbertRangeFloor = 1e-8f;  // I-BERT floors max(|min|, |max|) here
inline constexpr int32_t kBiasMax = 2147483647;   // int32 bias range [-(2^31 - 1), 2^31 - 1]

// Throws InvalidArgument "<what>: element <i> is <value>: expected a finite value" for the first
// non-finite element.
void check_finite(std::span<const float> x, std::string_view what);

// max |x| over x (0 for an empty span); throws like check_finite.
float abs_max(std::span<const float> x, std::string_view what = "tensor");

// --- Symmetric, restricted range [-127, 127] (Q8BERT, A.1) ----------------------------------

// 127 / threshold; 1 for threshold 0. Throws InvalidArgument for a negative or non-finite
// threshold.
float symmetric_inv_scale(float threshold);

// q[i] = clamp(nearbyint(x[i] * inv_scale), -127, 127). x and q have the same size; inv_scale
// positive and finite. Throws InvalidArgument for a non-finite x[i].
void quantize_symmetric(std::span<const float> x, float inv_scale, std::span<int8_t> q,
                        std::string_view what = "tensor");

// out[i] = q[i] / inv_scale, as Q8BERT dequantizes (a division, not a multiply by the inverse).
void dequantize_symmetric(std::span<const int8_t> q, float inv_scale, std::span<float> out);

// Fake quantization (A.5): out[i] = clamp(nearbyint(x[i] * inv_scale), -127, 127) / inv_scale.
// out may alias x.
void fake_quantize_symmetric(std::span<const float> x, float inv_scale, std::span<float> out,
                             std::string_view what = "tensor");

// --- I-BERT symmetric, [-127, 126] (B.1) -------------------------------------------------------

// S = max(max(|min|, |max|), 1e-8) / 127. Throws InvalidArgument for non-finite bounds.
float ibert_scale(float min, float max);

// q[i] = clamp(nearbyint(x[i] / scale), -127, 126): the code range of I-BERT's
// SymmetricQuantFunction, whose positive side loses one code.
void quantize_ibert(std::span<const float> x, float scale, std::span<int8_t> q,
                    std::string_view what = "tensor");

// --- Asymmetric uint8 with zero point (Bhandare, C.2) ------------------------------------------

struct AsymmetricParams {
  float inv_scale = 1.0f;  // 255 / (max' - min')
  float scale = 1.0f;      // 1 / inv_scale: the dequantization step
  int32_t zero_point = 0;  // in [0, 255]; the code of 0.0
};

// The range is first widened to contain 0 (min' = min(min, 0), max' = max(max, 0)), then
// inv_scale = 255 / (max' - min') and zero_point = nearbyint(-min' * inv_scale) clamped to
// [0, 255]. Rounding the zero point to an integer is the nudge: 0.0 quantizes exactly to
// zero_point, so zero padding and ReLU zeros carry no error; the representable range shifts by at
// most half a step. A zero-width range gives {1, 1, 0}. Throws InvalidArgument for non-finite
// bounds or min > max.
AsymmetricParams asymmetric_params(float min, float max);

// q[i] = clamp(nearbyint(x[i] * inv_scale) + zero_point, 0, 255).
void quantize_asymmetric(std::span<const float> x, const AsymmetricParams& p, std::span<uint8_t> q,
                         std::string_view what = "tensor");

// out[i] = (q[i] - zero_point) * scale.
void dequantize_asymmetric(std::span<const uint8_t> q, const AsymmetricParams& p,
                           std::span<float> out);

// out[i] = (clamp(nearbyint(x[i] * inv_scale) + zero_point, 0, 255) - zero_point) * scale.
void fake_quantize_asymmetric(std::span<const float> x, const AsymmetricParams& p,
                              std::span<float> out, std::string_view what = "tensor");

// --- Weights and biases (A.2, A.4, B.3) ----------------------------------------------------------

enum class WeightGranularity { per_tensor, per_channel };

// Row-major n x k int8 weights and their scales: 1 entry per tensor, or n (one per output row).
// scales[c] = threshold_c / 127 is what ops::PackedWeightsInt8 takes; inv_scales[c] = 127 /
// threshold_c is Q8BERT's s_W. An all-zero row (or tensor) gets scale 1.
struct QuantizedWeights {
  int n = 0;
  int k = 0;
  std::vector<int8_t> q;
  std::vector<float> scales;
  std::vector<float> inv_scales;
};

// Symmetric [-127, 127] with threshold max |W| over the tensor or over each row.
// Throws InvalidArgument (naming `what` and the index) for non-finite weights or bad sizes.
QuantizedWeights quantize_weights(std::span<const float> w, int n, int k, WeightGranularity g,
                                  std::string_view what = "weight");

// b_q[c] = clamp(nearbyint(b[c] * (inv_scale_x * inv_scale_w[c])), -(2^31 - 1), 2^31 - 1), the
// product formed in float32 as Q8BERT does (A.4); inv_scale_w has 1 (per tensor) or b.size()
// entries. Throws InvalidArgument for non-finite biases or a size mismatch.
std::vector<int32_t> quantize_bias(std::span<const float> b, float inv_scale_x,
                                   std::span<const float> inv_scale_w,
                                   std::string_view what = "bias");

// --- Dyadic requantization (B.4, D.9) ---------------------------------------------------------

// int32 accumulator with scale scale_x * scale_w[c] -> int8 with scale scale_out:
// r = scale_x * scale_w[c] / scale_out (in double) = multiplier / 2^shift via
// kernels::quantize_multiplier (mantissa rounded half away from zero, the 2^31 fix, flush of
// ratios < 2^-33 to 0). Applied by the kernels as round_half_even(v * multiplier / 2^shift).
struct RequantParams {
  std::vector<int32_t> multiplier;
  std::vector<int> shift;
};

// One entry per element of scale_w (1 for per-tensor). Scales are dequantization steps and must
// be positive and finite; throws InvalidArgument otherwise or if a ratio is >= 2^29.
RequantParams requant_params(float scale_x, std::span<const float> scale_w, float scale_out);

}  // namespace octet::quant
