// Integer-only (I-BERT) operators: prepare steps (float64 constant folding) and checked wrappers.
#include "ops/integer_ops.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <string_view>

#include "kernels/integer_scalar.h"
#include "kernels/kernels.h"
#include "octet/error.h"

namespace octet::ops {
namespace {

// Constants of the reference code (HF/fairseq quant_modules.py; QUANT_SPEC B.7, B.8).
constexpr double kSqrt2 = 1.4142;             // IntGELU.k (sqrt 2 truncated)
constexpr double kErfA = -0.2888;             // IntGELU.coeff[0]
constexpr double kErfB = -1.769;              // IntGELU.coeff[1]
constexpr double kErfC = 1.0 / kErfA;         // IntGELU.coeff[2] / coeff[0]
constexpr double kLn2 = -0.6931;              // IntSoftmax.x0
constexpr double kExpA = 0.35815147;          // IntSoftmax.coef[0]
constexpr double kExpB = 0.96963238 / kExpA;  // coef[1] / coef[0]
constexpr double kExpC = 1.0 / kExpA;         // coef[2] / coef[0]
constexpr double kTwo31 = 2147483648.0;

void check_scale(double s, std::string_view what) {
  if (!(s > 0.0) || !std::isfinite(s)) {
    throw InvalidArgument(fmt::format("{} is {}: expected a positive finite scale", what, s));
  }
}

void check_matrix(std::string_view op, std::string_view operand, int rows, int cols,
                  std::ptrdiff_t ld, const void* data) {
  if (rows < 0 || cols < 0) {
    throw InvalidArgument(
        fmt::format("{}: {} shape {} x {}: expected non-negative sizes", op, operand, rows, cols));
  }
  if (ld < cols) {
    throw InvalidArgument(
        fmt::format("{}: {} row stride {} is smaller than its {} columns", op, operand, ld, cols));
  }
  if (data == nullptr && rows > 0 && cols > 0) {
    throw InvalidArgument(
        fmt::format("{}: {} is null for a {} x {} matrix", op, operand, rows, cols));
  }
}

template <typename T>
void check_size(std::string_view op, std::string_view what, const std::vector<T>& v, int cols) {
  if (v.size() != static_cast<std::size_t>(cols)) {
    throw InvalidArgument(fmt::format("{}: {} has {} entries: expected one per column ({})", op,
                                      what, v.size(), cols));
  }
}

void check_out_bits(std::string_view op, int out_bits) {
  if (out_bits < 2 || out_bits > 32) {
    throw InvalidArgument(fmt::format("{}: out_bits {}: expected 2 to 32", op, out_bits));
  }
}

const kernels::IntegerKernels& table(Isa isa) { return kernels::table_for(isa).integer; }

// The ranges the kernels rely on (kernels/integer.h), for parameters that did not come from the
// prepare functions.
void check_iexp_params(std::string_view op, const kernels::IexpParams& p) {
  const int64_t x0 = p.x0, b = p.b, c = p.c;
  const bool ok = x0 < 0 && p.input_shift >= 0 && p.input_shift <= 30 &&
                  32 * -x0 * (int64_t{1} << p.input_shift) < (int64_t{1} << 31) && b >= -x0 &&
                  b * -x0 < c && c < (int64_t{1} << 31) && p.multiplier >= (1 << 30) &&
                  p.shift >= 1 && p.shift <= 63;
  if (!ok) {
    throw InvalidArgument(fmt::format(
        "{}: i-exp parameters (input_shift {}, x0 {}, b {}, c {}, multiplier {}, shift {}) out of "
        "range: expected x0 < 0, 32 |x0| 2^input_shift < 2^31, |x0| <= b, b |x0| < c < 2^31, "
        "multiplier in [2^30, 2^31), shift in [1, 63] (use ops::prepare_iexp)",
        op, p.input_shift, p.x0, p.b, p.c, p.multiplier, p.shift));
  }
}

void check_shifts(std::string_view op, std::string_view what, const std::vector<int32_t>& m,
                  const std::vector<int32_t>& s) {
  for (std::size_t j = 0; j < s.size(); ++j) {
    const int64_t a = std::abs(int64_t{m[j]});
    if (s[j] < 1 || s[j] > 63 || (a != 0 && a < (int64_t{1} << 30))) {
      throw InvalidArgument(fmt::format(
          "{}: {} column {} has multiplier {} and shift {}: expected |multiplier| in [2^30, 2^31) "
          "or 0 and shift in [1, 63] (use ops::prepare_residual)",
          op, what, j, m[j], s[j]));
    }
  }
}

}  // namespace

Dyadic dyadic(double ratio, int max_shift) {
  if (!std::isfinite(ratio) || std::fabs(ratio) >= 536870912.0) {
    throw InvalidArgument(fmt::format(
        "dyadic multiplier: ratio {} out of range: expected a finite value with |r| < 2^29",
        ratio));
  }
  Dyadic d;
  if (ratio == 0.0) return d;
  int exponent = 0;
  const double fraction = std::frexp(std::fabs(ratio), &exponent);
  int64_t m = static_cast<int64_t>(std::floor(std::ldexp(fraction, 31) + 0.5));  // half up
  int s = 31 - exponent;
  if (m == (int64_t{1} << 31)) {
    m >>= 1;
    --s;
  }
  if (s > max_shift) return d;  // |r * x| < 1/2 for every admissible x: rounds to 0
  d.multiplier = static_cast<int32_t>(ratio < 0 ? -m : m);
  d.shift = s;
  return d;
}

IGeluParams prepare_igelu(std::span<const float> in_scale) {
  IGeluParams p;
  const std::size_t n = in_scale.size();
  p.b.resize(n);
  p.c.resize(n);
  p.one.resize(n);
  p.out_scale.resize(n);
  for (std::size_t j = 0; j < n; ++j) {
    const double s = in_scale[j];
    check_scale(s, fmt::format("i-GELU input scale[{}]", j));
    const double sp = s / kSqrt2;
    const double b = std::floor(kErfB / sp);
    const double c = std::floor(kErfC / (sp * sp));
    const double s_erf = sp * sp * kErfA * (1 << kernels::kIgeluOverflowShift);
    const double one = -std::floor(1.0 / s_erf);
    // |one - e| <= one + |c| / 2^14 + 1 must stay below 2^32 so that |x * (one - e)| < 2^63.
    const double bound = one + std::fabs(c) / (1 << kernels::kIgeluOverflowShift) + 1.0;
    if (!(bound < 4294967296.0) || !(-b < kTwo31)) {
      throw InvalidArgument(fmt::format(
          "i-GELU input scale[{}] = {} is too small: the integer product x * (one - erf) could "
          "exceed int64; expected a scale >= 4.5e-7",
          j, s));
    }
    p.b[j] = static_cast<int32_t>(b);
    p.c[j] = static_cast<int64_t>(c);
    p.one[j] = static_cast<int64_t>(one);
    p.out_scale[j] = s * std::fabs(s_erf) / 2.0;
  }
  return p;
}

kernels::IexpParams prepare_iexp(float in_scale) {
  check_scale(in_scale, "i-softmax input scale");
  for (int sh = 0; sh <= 40; ++sh) {
    const double s = std::ldexp(static_cast<double>(in_scale), sh);
    const double c = std::floor(kExpC / (s * s));
    if (c >= kTwo31) continue;
    if (c < 1.0) {
      throw InvalidArgument(fmt::format(
          "i-softmax input scale {} is too large: the exp polynomial would have no integer "
          "resolution (c = 0); expected a scale <= 1.6",
          in_scale));
    }
    const double x0 = std::floor(kLn2 / s);
    if (std::fabs(kernels::kIexpMaxZ * x0 * std::ldexp(1.0, sh)) >= kTwo31) {
      throw InvalidArgument(fmt::format(
          "i-softmax input scale {} is too small: 30 ln 2 spans more than 2^31 input units; "
          "expected a scale >= 1e-8",
          in_scale));
    }
    kernels::IexpParams p;
    p.input_shift = sh;
    p.x0 = static_cast<int32_t>(x0);
    p.b = static_cast<int32_t>(std::floor(kExpB / s));
    p.c = static_cast<int32_t>(c);
    const Dyadic d = dyadic(static_cast<double>(kernels::kIexpOutMax) / c, 63);
    p.multiplier = d.multiplier;
    p.shift = d.shift;
    return p;
  }
  throw InvalidArgument(
      fmt::format("i-softmax input scale {}: expected a scale >= 1e-8", in_scale));
}

ILayerNormParams prepare_ilayernorm(std::span<const float> gamma, std::span<const float> beta,
                                    int shift) {
  if (gamma.size() != beta.size() || gamma.empty()) {
    throw InvalidArgument(fmt::format(
        "i-LayerNorm: gamma has {} entries and beta {}: expected the same non-zero count",
        gamma.size(), beta.size()));
  }
  if (shift < 0 || shift > 24) {
    throw InvalidArgument(fmt::format("i-LayerNorm: shift {}: expected 0 to 24", shift));
  }
  ILayerNormParams p;
  p.shift = shift;
  const double unit = std::sqrt(static_cast<double>(gamma.size())) / kTwo31 * 2.0;  // sqrt(C)/2^30
  p.bias.resize(gamma.size());
  p.out_scale.resize(gamma.size());
  for (std::size_t j = 0; j < gamma.size(); ++j) {
    const double g = gamma[j], b = beta[j];
    if (g == 0.0 || !std::isfinite(g) || !std::isfinite(b)) {
      throw InvalidArgument(fmt::format(
          "i-LayerNorm: gamma[{}] = {}, beta[{}] = {}: expected finite values and gamma != 0 "
          "(the integer bias is beta / gamma)",
          j, g, j, b));
    }
    const double bias = std::floor(b / g / unit);
    if (!(std::fabs(bias) < std::ldexp(1.0, 62))) {
      throw InvalidArgument(fmt::format(
          "i-LayerNorm: beta[{}] / gamma[{}] = {} is too large for an int64 bias at the output "
          "scale sqrt(C) / 2^30; expected |beta / gamma| < {}",
          j, j, b / g, std::ldexp(unit, 62)));
    }
    p.bias[j] = static_cast<int64_t>(bias);
    p.out_scale[j] = g * unit;
  }
  return p;
}

int ilayernorm_calibrate_shift(const int32_t* x, int rows, int cols, std::ptrdiff_t ldx) {
  check_matrix("i-LayerNorm shift calibration", "x", rows, cols, ldx, x);
  namespace is = kernels::integer_scalar;
  int shift = 0;
  for (int i = 0; i < rows && cols > 0; ++i) {
    const int32_t* xi = x + i * ldx;
    auto in = [&](int j) {
      return int64_t{std::clamp(xi[j], -kernels::kIlnInputMax, kernels::kIlnInputMax)};
    };
    int64_t sum = 0;
    for (int j = 0; j < cols; ++j) sum += in(j);
    const int64_t mean = is::rounded_mean(sum, cols);
    for (;;) {
      uint64_t var = 0;
      for (int j = 0; j < cols; ++j) {
        const int64_t ds = (in(j)-mean) >> shift;
        var += static_cast<uint64_t>(ds * ds);
      }
      if (var < (uint64_t{1} << 32)) break;
      ++shift;
    }
  }
  return shift;
}

ResidualParams prepare_residual(std::span<const float> scale_x, std::span<const float> scale_r,
                                float scale_out, int cols) {
  check_scale(scale_out, "residual add: output scale");
  auto expand = [&](std::span<const float> s, std::string_view what, std::vector<int32_t>& m,
                    std::vector<int32_t>& sh) {
    if (s.size() != 1 && s.size() != static_cast<std::size_t>(cols)) {
      throw InvalidArgument(
          fmt::format("residual add: {} has {} entries: expected 1 (per tensor) or {} (per column)",
                      what, s.size(), cols));
    }
    m.resize(cols);
    sh.resize(cols);
    for (int j = 0; j < cols; ++j) {
      const double sj = s[s.size() == 1 ? 0 : j];
      check_scale(sj, fmt::format("residual add: {}[{}]", what, j));
      const Dyadic d = dyadic(sj / scale_out, 63);
      m[j] = d.multiplier;
      sh[j] = d.shift;
    }
  };
  ResidualParams p;
  expand(scale_x, "scale_x", p.mx, p.sx);
  if (!scale_r.empty()) expand(scale_r, "scale_r", p.mr, p.sr);
  return p;
}

void igelu(const int32_t* x, int rows, int cols, std::ptrdiff_t ldx, const IGeluParams& p,
           int64_t* y, std::ptrdiff_t ldy, Isa isa) {
  check_matrix("i-GELU", "x", rows, cols, ldx, x);
  check_matrix("i-GELU", "y", rows, cols, ldy, y);
  check_size("i-GELU", "b", p.b, cols);
  check_size("i-GELU", "c", p.c, cols);
  check_size("i-GELU", "one", p.one, cols);
  for (int j = 0; j < cols; ++j) {
    const int64_t b = p.b[j], c = p.c[j], one = p.one[j];
    // b^2 <= 2 |c| keeps |a^2 + c| <= |c|, so |one - e| <= one + |c| / 2^14 + 1 < 2^32 and
    // |x * (one - e)| < 2^63.
    const bool ok = b < 0 && std::abs(c) < (int64_t{1} << 50) && b * b <= 2 * std::abs(c) &&
                    one > 0 &&
                    one + (std::abs(c) >> kernels::kIgeluOverflowShift) + 1 < (int64_t{1} << 32);
    if (!ok) {
      throw InvalidArgument(fmt::format(
          "i-GELU: column {} has b {}, c {}, one {}: expected b < 0, b^2 <= 2 |c| < 2^51 and "
          "0 < one, one + |c| / 2^14 + 1 < 2^32 (use ops::prepare_igelu)",
          j, b, c, one));
    }
  }
  table(isa).igelu(x, ldx, rows, cols, p.b.data(), p.c.data(), p.one.data(), y, ldy);
}

void iexp(std::span<const int32_t> x, const kernels::IexpParams& p, std::span<int32_t> y, Isa isa) {
  if (x.size() != y.size()) {
    throw InvalidArgument(
        fmt::format("i-exp: x has {} elements and y {}: expected the same", x.size(), y.size()));
  }
  check_iexp_params("i-exp", p);
  table(isa).iexp(x.data(), x.size(), p, y.data());
}

void isoftmax(const int32_t* x, int rows, int cols, std::ptrdiff_t ldx, int valid,
              const kernels::IexpParams& p, uint8_t* y, std::ptrdiff_t ldy, Isa isa) {
  check_matrix("i-softmax", "x", rows, cols, ldx, x);
  check_matrix("i-softmax", "y", rows, cols, ldy, y);
  if (cols > 65536) {
    throw InvalidArgument(fmt::format(
        "i-softmax: {} columns: expected at most 65536 (the int32 sum of 16-bit exps)", cols));
  }
  if (valid < 0 || valid > cols) {
    throw InvalidArgument(fmt::format("i-softmax: valid = {}: expected 0 to {}", valid, cols));
  }
  check_iexp_params("i-softmax", p);
  table(isa).isoftmax(x, ldx, rows, cols, valid, p, y, ldy);
}

void ilayernorm(const int32_t* x, int rows, int cols, std::ptrdiff_t ldx, const ILayerNormParams& p,
                int64_t* y, std::ptrdiff_t ldy, Isa isa) {
  check_matrix("i-LayerNorm", "x", rows, cols, ldx, x);
  check_matrix("i-LayerNorm", "y", rows, cols, ldy, y);
  if (cols < 1 || cols > 32768) {
    throw InvalidArgument(fmt::format(
        "i-LayerNorm: {} columns: expected 1 to 32768 (the int64 sum of squares)", cols));
  }
  check_size("i-LayerNorm", "bias", p.bias, cols);
  if (p.shift < 0 || p.shift > 24) {
    throw InvalidArgument(fmt::format("i-LayerNorm: shift {}: expected 0 to 24", p.shift));
  }
  for (int j = 0; j < cols; ++j) {
    if (std::abs(p.bias[j]) >= (int64_t{1} << 62)) {
      throw InvalidArgument(
          fmt::format("i-LayerNorm: bias[{}] = {}: expected |bias| < 2^62", j, p.bias[j]));
    }
  }
  table(isa).ilayernorm(x, ldx, rows, cols, p.shift, p.bias.data(), y, ldy);
}

void requantize_wide(const int64_t* x, int rows, int cols, std::ptrdiff_t ldx,
                     std::span<const int32_t> multiplier, std::span<const int32_t> shift,
                     int out_bits, void* y, std::ptrdiff_t ldy, Isa isa) {
  check_matrix("requantize_wide", "x", rows, cols, ldx, x);
  check_matrix("requantize_wide", "y", rows, cols, ldy, y);
  check_out_bits("requantize_wide", out_bits);
  if (multiplier.size() != static_cast<std::size_t>(cols) || shift.size() != multiplier.size()) {
    throw InvalidArgument(fmt::format(
        "requantize_wide: {} multipliers and {} shifts: expected one of each per column ({})",
        multiplier.size(), shift.size(), cols));
  }
  for (int j = 0; j < cols; ++j) {
    const int64_t m = std::abs(int64_t{multiplier[j]});
    if ((m != 0 && m < (int64_t{1} << 30)) || shift[j] < 1 || shift[j] > kernels::kMaxWideShift) {
      throw InvalidArgument(fmt::format(
          "requantize_wide: column {} has multiplier {} and shift {}: expected |multiplier| in "
          "[2^30, 2^31) or 0 and shift in [1, {}] (from ops::dyadic)",
          j, multiplier[j], shift[j], kernels::kMaxWideShift));
    }
  }
  table(isa).requantize_wide(x, ldx, rows, cols, multiplier.data(), shift.data(), out_bits, y, ldy);
}

void residual_add(const int32_t* x, std::ptrdiff_t ldx, const int8_t* r, std::ptrdiff_t ldr,
                  int rows, int cols, const ResidualParams& p, int out_bits, void* y,
                  std::ptrdiff_t ldy, Isa isa) {
  check_matrix("residual add", "x", rows, cols, ldx, x);
  check_matrix("residual add", "y", rows, cols, ldy, y);
  check_out_bits("residual add", out_bits);
  check_size("residual add", "mx", p.mx, cols);
  check_size("residual add", "sx", p.sx, cols);
  check_shifts("residual add", "x", p.mx, p.sx);
  if (r) {
    check_matrix("residual add", "r", rows, cols, ldr, r);
    check_size("residual add", "mr", p.mr, cols);
    check_size("residual add", "sr", p.sr, cols);
    check_shifts("residual add", "residual", p.mr, p.sr);
  }
  table(isa).residual_add(x, ldx, p.mx.data(), p.sx.data(), r, ldr, r ? p.mr.data() : nullptr,
                          r ? p.sr.data() : nullptr, rows, cols, out_bits, y, ldy);
}

}  // namespace octet::ops
