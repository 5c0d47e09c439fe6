// Reference elementwise INT8 kernels: quantize, dequantize, gather, requantize.
//
// Rounding: quantization rounds half to even (std::nearbyint under the default FE_TONEAREST,
// as torch.round and PyTorch's fake-quantize do), computing x * inv_scale in float first, then
// clamping; requantization is the dyadic single rounding of kernels/fixedpoint.h.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "kernels/ref/gemm_int8_epilogue_ref.h"
#include "kernels/ref/int8_ref.h"

namespace octet::kernels::ref {

namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

// Float -> integer code through a clamp that also maps NaN to lo (the cast of NaN is undefined).
inline float clamp_code(float t, float lo, float hi) { return t >= lo ? (t <= hi ? t : hi) : lo; }

}  // namespace

float quantize_s8(const float* x, std::size_t n, float inv_scale, int8_t* q) {
  float amax = 0.0f;
  bool finite = true;
  for (std::size_t i = 0; i < n; ++i) {
    finite &= std::isfinite(x[i]);
    amax = std::max(amax, std::fabs(x[i]));
    const float t = std::nearbyint(x[i] * inv_scale);
    q[i] = static_cast<int8_t>(clamp_code(t, -127.0f, 127.0f));
  }
  return finite ? amax : kNaN;
}

void quantize_u8(const float* x, std::size_t n, float inv_scale, int32_t zero_point, uint8_t* q,
                 float* min_out, float* max_out) {
  float lo = n ? x[0] : 0.0f, hi = n ? x[0] : 0.0f;
  bool finite = true;
  const float zp = static_cast<float>(zero_point);
  for (std::size_t i = 0; i < n; ++i) {
    finite &= std::isfinite(x[i]);
    lo = std::min(lo, x[i]);
    hi = std::max(hi, x[i]);
    const float t = std::nearbyint(x[i] * inv_scale) + zp;
    q[i] = static_cast<uint8_t>(clamp_code(t, 0.0f, 255.0f));
  }
  if (min_out != nullptr) *min_out = finite ? lo : kNaN;
  if (max_out != nullptr) *max_out = finite ? hi : kNaN;
}

float abs_max(const float* x, std::size_t n) {
  float amax = 0.0f;
  bool finite = true;
  for (std::size_t i = 0; i < n; ++i) {
    finite &= std::isfinite(x[i]);
    amax = std::max(amax, std::fabs(x[i]));
  }
  return finite ? amax : kNaN;
}

void min_max(const float* x, std::size_t n, float* min_out, float* max_out) {
  float lo = n ? x[0] : 0.0f, hi = n ? x[0] : 0.0f;
  bool finite = true;
  for (std::size_t i = 0; i < n; ++i) {
    finite &= std::isfinite(x[i]);
    lo = std::min(lo, x[i]);
    hi = std::max(hi, x[i]);
  }
  *min_out = finite ? lo : kNaN;
  *max_out = finite ? hi : kNaN;
}

void dequantize_s8(const int8_t* q, std::size_t n, float scale, float* x) {
  for (std::size_t i = 0; i < n; ++i) x[i] = static_cast<float>(q[i]) * scale;
}

void dequantize_u8(const uint8_t* q, std::size_t n, float scale, int32_t zero_point, float* x) {
  for (std::size_t i = 0; i < n; ++i) x[i] = static_cast<float>(int32_t{q[i]} - zero_point) * scale;
}

void gather_rows_s8(const int8_t* table, std::ptrdiff_t ld_table, const int32_t* ids,
                    std::size_t count, std::size_t cols, int8_t* out, std::ptrdiff_t ld_out) {
  for (std::size_t r = 0; r < count; ++r) {
    std::memcpy(out + static_cast<std::ptrdiff_t>(r) * ld_out, table + ids[r] * ld_table, cols);
  }
}

void requantize(const int32_t* x, int rows, int cols, std::ptrdiff_t ldx, const int32_t* bias,
                const int32_t* multiplier, const int32_t* shift, int32_t out_zero_point,
                GemmOutput output, void* y, std::ptrdiff_t ldy) {
  GemmParams p;
  p.output = output;
  p.c = y;
  p.ldc = ldy;
  p.bias_s32 = bias;
  p.multiplier = multiplier;
  p.shift = shift;
  p.out_zero_point = out_zero_point;
  for (int i = 0; i < rows; ++i) {
    for (int j = 0; j < cols; ++j) store_epilogue(p, i, j, x[i * ldx + j]);
  }
}

}  // namespace octet::kernels::ref
