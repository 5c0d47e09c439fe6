#include "layers/linear_int8.h"

#include <fmt/format.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "kernels/kernels.h"
#include "octet/error.h"
#include "ops/fp32_ops.h"

namespace octet::layers {

SymmetricInt8 quantize_symmetric_int8(std::span<const float> w, int64_t rows, int64_t cols,
                                      bool per_row) {
  if (rows < 1 || cols < 1 || static_cast<int64_t>(w.size()) != rows * cols) {
    throw InvalidArgument(fmt::format(
        "quantize_symmetric_int8: {} values for a {} x {} matrix; expected rows, cols >= 1 and "
        "rows * cols values",
        w.size(), rows, cols));
  }
  SymmetricInt8 out;
  out.q.resize(w.size());
  const int64_t groups = per_row ? rows : 1;
  const int64_t group_size = per_row ? cols : rows * cols;
  out.scales.resize(static_cast<std::size_t>(groups));
  for (int64_t g = 0; g < groups; ++g) {
    const float* src = w.data() + g * group_size;
    float amax = 0.0f;
    for (int64_t i = 0; i < group_size; ++i) {
      if (!std::isfinite(src[i])) {
        throw InvalidArgument(
            fmt::format("quantize_symmetric_int8: value {} at row {}, column {} is not finite",
                        src[i], (g * group_size + i) / cols, (g * group_size + i) % cols));
      }
      amax = std::max(amax, std::fabs(src[i]));
    }
    const float inv_scale = amax > 0.0f ? 127.0f / amax : 1.0f;
    out.scales[g] = amax > 0.0f ? amax / 127.0f : 1.0f;
    int8_t* dst = out.q.data() + g * group_size;
    for (int64_t i = 0; i < group_size; ++i) dst[i] = quantize_symmetric_one(src[i], inv_scale);
  }
  return out;
}

std::vector<float> dequantize_static_bias(std::span<const int32_t> bias_s32, float input_scale,
                                          std::span<const float> w_scales) {
  if (bias_s32.size() != w_scales.size()) {
    throw InvalidArgument(fmt::format("dequantize_static_bias: {} biases for {} weight scales",
                                      bias_s32.size(), w_scales.size()));
  }
  std::vector<float> out(bias_s32.size());
  for (std::size_t j = 0; j < out.size(); ++j) {
    out[j] = static_cast<float>(bias_s32[j]) * (input_scale * w_scales[j]);
  }
  return out;
}

LinearInt8::LinearInt8(std::span<const float> w, int64_t n, int64_t k, std::span<const float> bias,
                       bool per_channel, Isa isa)
    : per_channel_(per_channel) {
  constexpr int64_t kMax = std::numeric_limits<int>::max();
  if (n < 1 || k < 1 || n > kMax || k > kMax) {
    throw InvalidArgument(
        fmt::format("LinearInt8: weight shape [{}, {}]; expected positive sizes below 2^31", n, k));
  }
  if (!bias.empty() && static_cast<int64_t>(bias.size()) != n) {
    throw InvalidArgument(fmt::format(
        "LinearInt8: {} bias values for n = {} outputs; expected n or none", bias.size(), n));
  }
  const SymmetricInt8 q = quantize_symmetric_int8(w, n, k, per_channel);
  weights_ = ops::PackedWeightsInt8::pack(q.q.data(), static_cast<int>(n), static_cast<int>(k), k,
                                          q.scales, isa);
  bias_.assign(bias.begin(), bias.end());
}

LinearInt8 LinearInt8::from_quantized(std::span<const int8_t> wq, int64_t n, int64_t k,
                                      std::span<const float> w_scales, std::span<const float> bias,
                                      const ActivationQuant& act, Isa isa) {
  constexpr int64_t kMax = std::numeric_limits<int>::max();
  if (n < 1 || k < 1 || n > kMax || k > kMax || static_cast<int64_t>(wq.size()) != n * k) {
    throw InvalidArgument(fmt::format(
        "LinearInt8::from_quantized: {} weight codes for shape [{}, {}]; expected n * k > 0",
        wq.size(), n, k));
  }
  if (!bias.empty() && static_cast<int64_t>(bias.size()) != n) {
    throw InvalidArgument(fmt::format(
        "LinearInt8::from_quantized: {} bias values for n = {} outputs; expected n or none",
        bias.size(), n));
  }
  if (!act.dynamic) {
    const bool s8 = act.dtype == kernels::ActDtype::s8;
    if (!(std::isfinite(act.scale) && act.scale > 0.0f) ||
        (s8 ? act.zero_point != 0 : (act.zero_point < 0 || act.zero_point > 255))) {
      throw InvalidArgument(fmt::format(
          "LinearInt8::from_quantized: activation scale {} / zero point {} ({}): expected a "
          "finite scale > 0 and a zero point {}",
          act.scale, act.zero_point, s8 ? "s8" : "u8", s8 ? "of 0" : "in [0, 255]"));
    }
  }
  LinearInt8 out;
  out.per_channel_ = w_scales.size() != 1;
  out.weights_ = ops::PackedWeightsInt8::pack(wq.data(), static_cast<int>(n), static_cast<int>(k),
                                              k, w_scales, isa);
  out.bias_.assign(bias.begin(), bias.end());
  out.act_ = act;
  return out;
}

void LinearInt8::forward(const float* x, int64_t m, std::ptrdiff_t ldx, float* y,
                         std::ptrdiff_t ldy, int8_t* q_scratch, const LinearInt8Epilogue& epilogue,
                         int threads) const {
  if (m < 0 || m > std::numeric_limits<int>::max()) {
    throw InvalidArgument(fmt::format("LinearInt8::forward: m = {} rows; expected [0, 2^31)", m));
  }
  if (m == 0) {
    if (epilogue.abs_max != nullptr) *epilogue.abs_max = 0.0f;
    return;
  }
  gemm(quantize_input(x, m, ldx, q_scratch, threads), y, ldy, epilogue, threads);
}

ops::ActivationsInt8 LinearInt8::quantize_input(const float* x, int64_t m, std::ptrdiff_t ldx,
                                                int8_t* q_scratch, int threads,
                                                const float* known_abs_max) const {
  if (m < 0 || m > std::numeric_limits<int>::max()) {
    throw InvalidArgument(
        fmt::format("LinearInt8::quantize_input: m = {} rows; expected [0, 2^31)", m));
  }
  const int rows = static_cast<int>(m), cols = weights_.k();
  if (!act_.dynamic) {
    return ops::quantize_activations_static(x, rows, cols, ldx, act_.dtype, 1.0f / act_.scale,
                                            act_.scale, act_.zero_point, q_scratch, k(), threads);
  }
  if (ldx < cols) {
    throw InvalidArgument(
        fmt::format("LinearInt8::quantize_input: row stride {} is smaller than k = {}", ldx, cols));
  }
  const int nthreads = threads > 0 ? threads : omp_get_max_threads();
  // Below ~64 K values the fork-join costs more than the pass.
  const int par = static_cast<double>(rows) * cols < 64.0 * 1024.0 ? 1 : nthreads;
  float amax = 0.0f;
  if (known_abs_max != nullptr) {
    amax = *known_abs_max;
    if (!(std::isfinite(amax) && amax >= 0.0f)) {
      throw InvalidArgument(fmt::format(
          "LinearInt8::quantize_input: known max |x| is {}; expected a finite value >= 0", amax));
    }
  } else if (rows > 0) {
    int64_t bad_row = -1;
    amax = ops::abs_max(x, rows, cols, ldx, par, &bad_row);
    if (bad_row >= 0) {
      throw InvalidArgument(
          fmt::format("LinearInt8: row {} of the {} x {} input holds a NaN or an infinity; "
                      "expected finite activations",
                      bad_row, rows, cols));
    }
  }
  // Q8BERT's dynamic scale, exactly as ops::quantize_activations_s8 computes it.
  const float inv_scale = amax > 0.0f ? 127.0f / amax : 1.0f;
  const kernels::Int8Kernels& kt = kernels::table().int8;
  const float scale = amax > 0.0f ? amax / 127.0f : 1.0f;
  // On VNNI (u8 x s8 products) the codes are written as u8 with zero point 128: code + 128 is
  // what the GEMM would otherwise make in a packing pass of its own, and the accumulator
  // sum (code + 128 - 128) w is the same integer. Since |x| <= max |x|, nearbyint(x * 127 / max)
  // is within [-127, 127] and the u8 clamp [0, 255] never binds: the same codes as quantize_s8.
  if (weights_.isa() == Isa::avx512_vnni) {
    // max |x| is known and finite here, so every x is: no range pass (null min / max).
    auto* q = reinterpret_cast<uint8_t*>(q_scratch);
    const auto row = [&](int r) {
      kt.quantize_u8(x + r * ldx, cols, inv_scale, 128, q + r * k(), nullptr, nullptr);
    };
    if (par <= 1 && ldx == cols) {
      kt.quantize_u8(x, static_cast<std::size_t>(rows) * static_cast<std::size_t>(cols), inv_scale,
                     128, q, nullptr, nullptr);
    } else if (par <= 1) {
      for (int r = 0; r < rows; ++r) row(r);
    } else {
#pragma omp parallel for num_threads(par) schedule(static)
      for (int r = 0; r < rows; ++r) row(r);
    }
    return ops::ActivationsInt8{q, kernels::ActDtype::u8, rows, cols, k(), 128, scale};
  }
  if (par <= 1 && ldx == cols) {
    // Contiguous rows: one kernel call, no per-row tails.
    kt.quantize_s8(x, static_cast<std::size_t>(rows) * static_cast<std::size_t>(cols), inv_scale,
                   q_scratch);
  } else if (par <= 1) {
    for (int r = 0; r < rows; ++r)
      kt.quantize_s8(x + r * ldx, cols, inv_scale, q_scratch + r * k());
  } else {
#pragma omp parallel for num_threads(par) schedule(static)
    for (int r = 0; r < rows; ++r)
      kt.quantize_s8(x + r * ldx, cols, inv_scale, q_scratch + r * k());
  }
  return ops::ActivationsInt8{q_scratch, kernels::ActDtype::s8, rows, cols, k(), 0, scale};
}

void LinearInt8::gemm(const ops::ActivationsInt8& a, float* y, std::ptrdiff_t ldy,
                      const LinearInt8Epilogue& epilogue, int threads) const {
  if (epilogue.abs_max != nullptr) *epilogue.abs_max = 0.0f;
  if (a.m == 0) return;
  const ops::DequantizeEpilogue e{bias_.empty() ? nullptr : bias_.data(), epilogue.activation,
                                  epilogue.residual, epilogue.ldr, epilogue.abs_max};
  ops::gemm_int8_f32(a, weights_, e, y, ldy, threads);
}

}  // namespace octet::layers
