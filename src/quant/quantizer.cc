#include "quant/quantizer.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "kernels/fixedpoint.h"
#include "kernels/kernels.h"
#include "octet/error.h"

namespace octet::quant {
namespace {

constexpr std::size_t kFakeQuantChunk = 4096;  // codes buffered on the stack per kernel call

void check_same_size(std::size_t in, std::size_t out, std::string_view what) {
  if (in != out) {
    throw InvalidArgument(
        fmt::format("{}: output has {} elements: expected {} (the input size)", what, out, in));
  }
}

void check_inv_scale(float inv_scale, std::string_view what) {
  if (!(inv_scale > 0.0f) || !std::isfinite(inv_scale)) {
    throw InvalidArgument(fmt::format(
        "{}: inv_scale {} is invalid: expected a positive finite value", what, inv_scale));
  }
}

int32_t clamp_round(float v, int32_t lo, int32_t hi) {
  const float r = std::nearbyint(v);
  if (r <= static_cast<float>(lo)) return lo;
  if (r >= static_cast<float>(hi)) return hi;
  return static_cast<int32_t>(r);
}

}  // namespace

void check_finite(std::span<const float> x, std::string_view what) {
  for (std::size_t i = 0; i < x.size(); ++i) {
    if (!std::isfinite(x[i])) {
      throw InvalidArgument(
          fmt::format("{}: element {} is {}: expected a finite value", what, i, x[i]));
    }
  }
}

float abs_max(std::span<const float> x, std::string_view what) {
  const float m = kernels::table().int8.abs_max(x.data(), x.size());
  if (std::isnan(m)) check_finite(x, what);  // names the first bad element
  return m;
}

float symmetric_inv_scale(float threshold) {
  if (!(threshold >= 0.0f) || !std::isfinite(threshold)) {
    throw InvalidArgument(fmt::format(
        "symmetric_inv_scale: threshold {} is invalid: expected a finite value >= 0", threshold));
  }
  if (threshold == 0.0f) return 1.0f;
  return static_cast<float>(kSymmetricMax) / threshold;
}

void quantize_symmetric(std::span<const float> x, float inv_scale, std::span<int8_t> q,
                        std::string_view what) {
  check_same_size(x.size(), q.size(), what);
  check_inv_scale(inv_scale, what);
  // The kernel reports NaN as its abs-max when any input is not finite: one pass in the common
  // case, a second only to name the bad element.
  const float m = kernels::table().int8.quantize_s8(x.data(), x.size(), inv_scale, q.data());
  if (std::isnan(m)) check_finite(x, what);
}

void dequantize_symmetric(std::span<const int8_t> q, float inv_scale, std::span<float> out) {
  check_same_size(q.size(), out.size(), "dequantize_symmetric");
  check_inv_scale(inv_scale, "dequantize_symmetric");
  for (std::size_t i = 0; i < q.size(); ++i) out[i] = static_cast<float>(q[i]) / inv_scale;
}

void fake_quantize_symmetric(std::span<const float> x, float inv_scale, std::span<float> out,
                             std::string_view what) {
  check_same_size(x.size(), out.size(), what);
  check_inv_scale(inv_scale, what);
  // The engine's quantize kernel on chunks (its codes, and its one-pass finiteness check), then
  // dequantize_symmetric (each code divided by inv_scale). A chunk is read in full before its
  // outputs are written, so x and out may be the same buffer.
  const auto& k = kernels::table().int8;
  int8_t codes[kFakeQuantChunk];
  for (std::size_t i = 0; i < x.size(); i += kFakeQuantChunk) {
    const std::size_t n = std::min(kFakeQuantChunk, x.size() - i);
    if (std::isnan(k.quantize_s8(x.data() + i, n, inv_scale, codes))) check_finite(x, what);
    dequantize_symmetric(std::span<const int8_t>(codes, n), inv_scale, out.subspan(i, n));
  }
}

float ibert_scale(float min, float max) {
  if (!std::isfinite(min) || !std::isfinite(max)) {
    throw InvalidArgument(
        fmt::format("ibert_scale: range [{}, {}] is invalid: expected finite bounds", min, max));
  }
  const float range = std::max(std::max(std::fabs(min), std::fabs(max)), kIbertRangeFloor);
  return range / static_cast<float>(kSymmetricMax);
}

void quantize_ibert(std::span<const float> x, float scale, std::span<int8_t> q,
                    std::string_view what) {
  check_same_size(x.size(), q.size(), what);
  check_inv_scale(scale, what);
  check_finite(x, what);
  for (std::size_t i = 0; i < x.size(); ++i) {
    q[i] = static_cast<int8_t>(clamp_round(x[i] / scale, kIbertMin, kIbertMax));
  }
}

AsymmetricParams asymmetric_params(float min, float max) {
  if (!std::isfinite(min) || !std::isfinite(max) || min > max) {
    throw InvalidArgument(fmt::format(
        "asymmetric_params: range [{}, {}] is invalid: expected finite bounds with min <= max", min,
        max));
  }
  const float lo = std::min(min, 0.0f);
  const float hi = std::max(max, 0.0f);
  AsymmetricParams p;
  if (hi - lo == 0.0f) return p;
  p.inv_scale = 255.0f / (hi - lo);
  p.scale = 1.0f / p.inv_scale;
  p.zero_point = clamp_round(-lo * p.inv_scale, 0, 255);
  return p;
}

void quantize_asymmetric(std::span<const float> x, const AsymmetricParams& p, std::span<uint8_t> q,
                         std::string_view what) {
  check_same_size(x.size(), q.size(), what);
  check_inv_scale(p.inv_scale, what);
  if (p.zero_point < 0 || p.zero_point > 255) {
    throw InvalidArgument(
        fmt::format("{}: zero point {} out of range: expected [0, 255]", what, p.zero_point));
  }
  float lo = 0.0f, hi = 0.0f;
  kernels::table().int8.quantize_u8(x.data(), x.size(), p.inv_scale, p.zero_point, q.data(), &lo,
                                    &hi);
  if (std::isnan(lo) || std::isnan(hi)) check_finite(x, what);
}

void dequantize_asymmetric(std::span<const uint8_t> q, const AsymmetricParams& p,
                           std::span<float> out) {
  check_same_size(q.size(), out.size(), "dequantize_asymmetric");
  for (std::size_t i = 0; i < q.size(); ++i) {
    out[i] = static_cast<float>(static_cast<int32_t>(q[i]) - p.zero_point) * p.scale;
  }
}

void fake_quantize_asymmetric(std::span<const float> x, const AsymmetricParams& p,
                              std::span<float> out, std::string_view what) {
  check_same_size(x.size(), out.size(), what);
  check_inv_scale(p.inv_scale, what);
  if (p.zero_point < 0 || p.zero_point > 255) {
    throw InvalidArgument(
        fmt::format("{}: zero point {} out of range: expected [0, 255]", what, p.zero_point));
  }
  // quantize_u8 then dequantize_u8, the engine's kernels, on chunks (as the symmetric case).
  const auto& k = kernels::table().int8;
  uint8_t codes[kFakeQuantChunk];
  for (std::size_t i = 0; i < x.size(); i += kFakeQuantChunk) {
    const std::size_t n = std::min(kFakeQuantChunk, x.size() - i);
    float lo = 0.0f, hi = 0.0f;
    k.quantize_u8(x.data() + i, n, p.inv_scale, p.zero_point, codes, &lo, &hi);
    if (std::isnan(lo) || std::isnan(hi)) check_finite(x, what);
    k.dequantize_u8(codes, n, p.scale, p.zero_point, out.data() + i);
  }
}

QuantizedWeights quantize_weights(std::span<const float> w, int n, int k, WeightGranularity g,
                                  std::string_view what) {
  if (n <= 0 || k <= 0 || static_cast<uint64_t>(n) * static_cast<uint64_t>(k) != w.size()) {
    throw InvalidArgument(
        fmt::format("{}: shape {} x {} does not match {} elements", what, n, k, w.size()));
  }
  QuantizedWeights out;
  out.n = n;
  out.k = k;
  out.q.resize(w.size());
  const int groups = g == WeightGranularity::per_channel ? n : 1;
  const std::size_t group_size = w.size() / groups;
  out.scales.resize(groups);
  out.inv_scales.resize(groups);
  for (int c = 0; c < groups; ++c) {
    const auto slice = w.subspan(c * group_size, group_size);
    // The kernel's max |x| is NaN when the slice holds a non-finite value; the whole tensor is
    // then scanned so that the error names the element's index in w.
    const float t = kernels::table().int8.abs_max(slice.data(), slice.size());
    if (std::isnan(t)) check_finite(w, what);
    out.inv_scales[c] = symmetric_inv_scale(t);
    out.scales[c] = t == 0.0f ? 1.0f : t / static_cast<float>(kSymmetricMax);
    quantize_symmetric(slice, out.inv_scales[c],
                       std::span<int8_t>(out.q).subspan(c * group_size, group_size), what);
  }
  return out;
}

std::vector<int32_t> quantize_bias(std::span<const float> b, float inv_scale_x,
                                   std::span<const float> inv_scale_w, std::string_view what) {
  if (inv_scale_w.size() != 1 && inv_scale_w.size() != b.size()) {
    throw InvalidArgument(fmt::format("{}: {} weight scales for {} biases: expected 1 or {}", what,
                                      inv_scale_w.size(), b.size(), b.size()));
  }
  check_inv_scale(inv_scale_x, what);
  for (float s : inv_scale_w) check_inv_scale(s, what);
  check_finite(b, what);
  std::vector<int32_t> out(b.size());
  for (std::size_t c = 0; c < b.size(); ++c) {
    const float s_b = inv_scale_x * inv_scale_w[inv_scale_w.size() == 1 ? 0 : c];
    // float32 product (A.4), then round and clamp in double: the float may exceed int32.
    const double r = std::nearbyint(static_cast<double>(b[c] * s_b));
    out[c] = static_cast<int32_t>(
        std::clamp(r, -static_cast<double>(kBiasMax), static_cast<double>(kBiasMax)));
  }
  return out;
}

RequantParams requant_params(float scale_x, std::span<const float> scale_w, float scale_out) {
  check_inv_scale(scale_x, "requant_params: scale_x");
  check_inv_scale(scale_out, "requant_params: scale_out");
  RequantParams p;
  p.multiplier.resize(scale_w.size());
  p.shift.resize(scale_w.size());
  for (std::size_t c = 0; c < scale_w.size(); ++c) {
    check_inv_scale(scale_w[c], fmt::format("requant_params: scale_w[{}]", c));
    const double r = static_cast<double>(scale_x) * scale_w[c] / scale_out;
    kernels::quantize_multiplier(r, &p.multiplier[c], &p.shift[c]);
  }
  return p;
}

}  // namespace octet::quant
