// Integer-only (I-BERT) kernels: hand-checked reference cases, the integer square root over its
// whole domain (exhaustive below 2^24, every perfect-square boundary of the uint32 range, random
// boundaries and values up to 2^63), the prepare step's constants and errors, and every runnable
// ISA bit-exact against the reference on shape sweeps with extreme values.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <type_traits>
#include <vector>

#include "kernels/int8_test_util.h"
#include "kernels/integer_scalar.h"
#include "octet/error.h"
#include "ops/integer_ops.h"

namespace octet {
namespace {

namespace is = kernels::integer_scalar;
using kernels::IexpParams;

const kernels::IntegerKernels& ref() { return kernels::table_for(Isa::ref).integer; }

// ---- Compile-time proof that the kernels take and return integers only (issue 7, item 2) ----

template <typename T>
constexpr bool int_only_arg() {
  using U = std::remove_cvref_t<std::remove_pointer_t<std::remove_cvref_t<T>>>;
  return std::is_integral_v<U> || std::is_same_v<U, void> || std::is_same_v<U, IexpParams>;
}
template <typename F>
struct IntOnly;
template <typename R, typename... A>
struct IntOnly<R (*)(A...)> {
  static constexpr bool value = std::is_void_v<R> && (int_only_arg<A>() && ...);
};
static_assert(IntOnly<kernels::IGeluFn>::value);
static_assert(IntOnly<kernels::IExpFn>::value);
static_assert(IntOnly<kernels::ISoftmaxFn>::value);
static_assert(IntOnly<kernels::ILayerNormFn>::value);
static_assert(IntOnly<kernels::RequantizeWideFn>::value);
static_assert(IntOnly<kernels::ResidualAddFn>::value);
static_assert(std::is_integral_v<decltype(IexpParams::x0)> &&
              std::is_integral_v<decltype(IexpParams::c)> &&
              std::is_integral_v<decltype(IexpParams::multiplier)> &&
              sizeof(IexpParams) == 6 * sizeof(int32_t));  // no float member can hide in it

// ---- Integer square root ----

#if defined(__SANITIZE_ADDRESS__)
constexpr uint64_t kExhaustiveIsqrt = uint64_t{1} << 20;
#else
constexpr uint64_t kExhaustiveIsqrt = uint64_t{1} << 24;
#endif

TEST(IntegerSqrt, ExactBelowExhaustiveLimit) {
  uint64_t k = 0;
  for (uint64_t n = 0; n < kExhaustiveIsqrt; ++n) {
    if ((k + 1) * (k + 1) == n) ++k;
    ASSERT_EQ(is::isqrt_u64(n), k) << "n=" << n;
  }
}

TEST(IntegerSqrt, ExactOnEveryPerfectSquareBoundaryOfUint32) {
  // Every n < 2^32 lies in some [k^2, (k+1)^2) with k < 2^16; both ends and the midpoint of each.
  for (uint64_t k = 1; k <= 65536; ++k) {
    const uint64_t sq = k * k;
    ASSERT_EQ(is::isqrt_u64(sq), k) << "n=k^2, k=" << k;
    ASSERT_EQ(is::isqrt_u64(sq - 1), k - 1) << "n=k^2-1, k=" << k;
    ASSERT_EQ(is::isqrt_u64(sq + k), k) << "n=k^2+k, k=" << k;
  }
  EXPECT_EQ(is::isqrt_u64(0xFFFFFFFFull), 65535u);
  EXPECT_EQ(is::isqrt_u64(0x7FFFFFFFull), 46340u);
}

TEST(IntegerSqrt, ExactOnRandomValuesAndBoundariesUpTo2To64) {
  std::mt19937_64 rng(11);
  for (int i = 0; i < 1000000; ++i) {
    const int bits = 1 + static_cast<int>(rng() % 64);
    const uint64_t n = bits == 64 ? rng() : rng() & ((uint64_t{1} << bits) - 1);
    const uint64_t r = is::isqrt_u64(n);
    ASSERT_LE(r * r, n) << "n=" << n;
    const unsigned __int128 r1 = static_cast<unsigned __int128>(r + 1) * (r + 1);
    ASSERT_GT(r1, static_cast<unsigned __int128>(n)) << "n=" << n;
  }
  for (int i = 0; i < 200000; ++i) {
    const uint64_t k = 1 + rng() % 0xFFFFFFFFull;  // k^2 < 2^64
    ASSERT_EQ(is::isqrt_u64(k * k), k);
    ASSERT_EQ(is::isqrt_u64(k * k - 1), k - 1);
  }
  EXPECT_EQ(is::isqrt_u64(std::numeric_limits<uint64_t>::max()), 0xFFFFFFFFull);
}

// ---- Prepare step ----

TEST(IntegerPrepare, DyadicRoundsMantissaHalfUpAndKeepsSign) {
  ops::Dyadic d = ops::dyadic(0.75, 63);
  EXPECT_EQ(d.multiplier, 1610612736);  // 0.75 * 2^31
  EXPECT_EQ(d.shift, 31);
  d = ops::dyadic(-3.0, 63);
  EXPECT_EQ(d.multiplier, -1610612736);  // 3 = 0.75 * 2^2
  EXPECT_EQ(d.shift, 29);
  d = ops::dyadic(1.0 - std::ldexp(1.0, -40), 63);  // mantissa rounds to 2^31: halved
  EXPECT_EQ(d.multiplier, 1 << 30);
  EXPECT_EQ(d.shift, 30);
  EXPECT_EQ(ops::dyadic(std::ldexp(1.0, -40), 63).multiplier, 0);  // flushed
  d = ops::dyadic(std::ldexp(1.0, -40), kernels::kMaxWideShift);
  EXPECT_EQ(d.multiplier, 1 << 30);
  EXPECT_EQ(d.shift, 70);
  EXPECT_THROW(ops::dyadic(1e9, 63), InvalidArgument);
  EXPECT_THROW(ops::dyadic(std::nan(""), 63), InvalidArgument);
}

TEST(IntegerPrepare, IGeluConstantsFollowTheReferenceFormulas) {
  const float s = 0.001f;
  const ops::IGeluParams p = ops::prepare_igelu(std::vector<float>{s});
  const double sp = double{s} / 1.4142;
  EXPECT_EQ(p.b[0], static_cast<int32_t>(std::floor(-1.769 / sp)));
  EXPECT_EQ(p.c[0], static_cast<int64_t>(std::floor((1 / -0.2888) / (sp * sp))));
  EXPECT_EQ(p.one[0], -static_cast<int64_t>(std::floor(1 / (sp * sp * -0.2888 * 16384))));
  EXPECT_LT(p.b[0], 0);
  EXPECT_GT(p.one[0], 0);
  EXPECT_THROW(ops::prepare_igelu(std::vector<float>{1e-8f}), InvalidArgument);
  EXPECT_THROW(ops::prepare_igelu(std::vector<float>{0.0f}), InvalidArgument);
  EXPECT_THROW(ops::prepare_igelu(std::vector<float>{-1.0f}), InvalidArgument);
}

TEST(IntegerPrepare, IexpKeepsReferenceArithmeticForUsualScalesAndShiftsTinyOnes) {
  IexpParams p = ops::prepare_iexp(0.001f);
  EXPECT_EQ(p.input_shift, 0);
  EXPECT_EQ(p.x0, static_cast<int32_t>(std::floor(-0.6931 / double{0.001f})));
  EXPECT_EQ(p.c, static_cast<int32_t>(std::floor((1 / 0.35815147) / (double{0.001f} * 0.001f))));
  p = ops::prepare_iexp(1e-6f);  // c would be 2.8e12
  EXPECT_GT(p.input_shift, 0);
  EXPECT_LT(int64_t{p.c}, int64_t{1} << 31);
  EXPECT_GE(int64_t{p.c}, int64_t{1} << 29);
  EXPECT_THROW(ops::prepare_iexp(2.0f), InvalidArgument);
  EXPECT_THROW(ops::prepare_iexp(1e-9f), InvalidArgument);
  EXPECT_THROW(ops::prepare_iexp(std::numeric_limits<float>::infinity()), InvalidArgument);
}

TEST(IntegerPrepare, LayerNormBiasAndErrors) {
  const ops::ILayerNormParams p =
      ops::prepare_ilayernorm(std::vector<float>{2.0f, -0.5f}, std::vector<float>{1.0f, 0.25f}, 1);
  const double unit = std::sqrt(2.0) / (1 << 30);
  EXPECT_EQ(p.bias[0], static_cast<int32_t>(std::floor(0.5 / unit)));
  EXPECT_EQ(p.bias[1], static_cast<int32_t>(std::floor(-0.5 / unit)));
  EXPECT_DOUBLE_EQ(p.out_scale[1], -0.5 * unit);
  EXPECT_THROW(ops::prepare_ilayernorm(std::vector<float>{0.0f}, std::vector<float>{1.0f}, 0),
               InvalidArgument);
  EXPECT_THROW(ops::prepare_ilayernorm(std::vector<float>{1.0f}, std::vector<float>{}, 0),
               InvalidArgument);
  EXPECT_THROW(ops::prepare_ilayernorm(std::vector<float>{1.0f}, std::vector<float>{1.0f}, 30),
               InvalidArgument);
}

TEST(IntegerPrepare, LayerNormShiftCalibrationIsTheSmallestSafeShift) {
  std::vector<int32_t> x(768);
  for (int j = 0; j < 768; ++j) x[j] = (j % 2 ? 1 : -1) * (1 << 20);  // var = 768 * 2^40
  const int s = ops::ilayernorm_calibrate_shift(x.data(), 1, 768, 768);
  auto var = [&](int sh) {
    uint64_t v = 0;
    for (int32_t t : x) v += uint64_t(int64_t{t >> sh} * (t >> sh));
    return v;
  };
  EXPECT_LT(var(s), uint64_t{1} << 32);
  EXPECT_GE(var(s - 1), uint64_t{1} << 32);
}

TEST(IntegerOps, WrappersRejectBadShapesAndParameters) {
  const ops::IGeluParams g = ops::prepare_igelu(std::vector<float>{0.01f, 0.01f});
  std::vector<int32_t> x(6);
  std::vector<int64_t> y(6);
  EXPECT_THROW(ops::igelu(x.data(), 2, 3, 3, g, y.data(), 3), InvalidArgument);  // 3 cols, 2 params
  EXPECT_THROW(ops::igelu(x.data(), 3, 2, 1, g, y.data(), 2), InvalidArgument);  // ld < cols
  const IexpParams p = ops::prepare_iexp(0.01f);
  std::vector<uint8_t> u(6);
  EXPECT_THROW(ops::isoftmax(x.data(), 2, 3, 3, 4, p, u.data(), 3), InvalidArgument);
  const ops::ILayerNormParams ln =
      ops::prepare_ilayernorm(std::vector<float>{1, 1}, std::vector<float>{0, 0}, 0);
  std::vector<int64_t> z(6);
  EXPECT_THROW(ops::ilayernorm(x.data(), 2, 3, 3, ln, z.data(), 3), InvalidArgument);
  const std::vector<int32_t> m{1 << 29, 1 << 30}, s{40, 40};
  EXPECT_THROW(ops::requantize_wide(y.data(), 3, 2, 2, m, s, 8, u.data(), 2), InvalidArgument);
  IexpParams bad = p;
  bad.x0 = 0;  // would divide by zero
  EXPECT_THROW(ops::isoftmax(x.data(), 2, 3, 3, 3, bad, u.data(), 3), InvalidArgument);
  std::vector<int32_t> e(6);
  bad = p;
  bad.shift = 64;
  EXPECT_THROW(ops::iexp(x, bad, e), InvalidArgument);
  ops::IGeluParams g3 = ops::prepare_igelu(std::vector<float>{0.01f, 0.01f, 0.01f});
  g3.one[1] = int64_t{1} << 40;  // |one - erf| beyond 2^32: x * (one - erf) could overflow
  EXPECT_THROW(ops::igelu(x.data(), 2, 3, 3, g3, y.data(), 3), InvalidArgument);
  ops::ResidualParams rp = ops::prepare_residual(std::vector<float>{0.5f}, {}, 1.0f, 3);
  rp.sx[2] = 0;
  EXPECT_THROW(ops::residual_add(x.data(), 3, nullptr, 0, 2, 3, rp, 8, u.data(), 3),
               InvalidArgument);
  const std::vector<int32_t> m2{1 << 30, 1 << 30};
  EXPECT_THROW(ops::requantize_wide(y.data(), 3, 2, 2, m2, s, 33, u.data(), 2), InvalidArgument);
}

// ---- Hand-checked reference cases ----

TEST(IntegerReference, IGeluIsZeroAtZeroIdentityForLargeXAndZeroForVeryNegativeX) {
  const float s = 1.0f / 1024;
  const ops::IGeluParams p = ops::prepare_igelu(std::vector<float>{s});
  const std::vector<int32_t> x{0, 4096, -4096, 1024, -1024};  // 0, 4, -4, 1, -1
  std::vector<int64_t> y(x.size());
  ops::igelu(x.data(), static_cast<int>(x.size()), 1, 1, p, y.data(), 1, Isa::ref);
  EXPECT_EQ(y[0], 0);
  // At this coarse input scale the erf output after I-BERT's >> 14 has a step of 1/443, so the
  // integer result carries up to ~2 x 4 / 443 of quantization error on top of the polynomial's.
  EXPECT_NEAR(y[1] * p.out_scale[0], 4.0, 1e-2);     // erf clipped at 1: GELU(4) ~= 4
  EXPECT_NEAR(y[2] * p.out_scale[0], 0.0, 1e-2);     // GELU(-4) ~= 0
  EXPECT_NEAR(y[3] * p.out_scale[0], 0.8413, 2e-2);  // GELU(1)
  EXPECT_NEAR(y[4] * p.out_scale[0], -0.1587, 2e-2);
}

TEST(IntegerReference, SoftmaxUniformRowFloorsAndOneHotSaturatesAt255) {
  const IexpParams p = ops::prepare_iexp(0.01f);
  const std::vector<int32_t> x{5, 5, 5, 5, 900, -900000, -900000, -900000};
  std::vector<uint8_t> y(8, 7);
  ops::isoftmax(x.data(), 2, 4, 4, 4, p, y.data(), 4, Isa::ref);
  // exp16 = 32767 each, factor = floor(2^32 / 131068) = 32769, floor(32767 * 32769 / 2^24) = 63.
  EXPECT_EQ(y[0], 63);
  EXPECT_EQ(y[3], 63);
  EXPECT_EQ(y[4], 255);  // 256 in the reference; saturated for the uint8 GEMM operand
  EXPECT_EQ(y[5], 0);
  std::vector<int32_t> e(2);
  ops::iexp(std::vector<int32_t>{0, 1000}, p, e, Isa::ref);
  EXPECT_EQ(e[0], 32767);
  EXPECT_EQ(e[1], 32767);                                         // positive inputs read as 0
  ops::isoftmax(x.data(), 1, 4, 4, 2, p, y.data(), 4, Isa::ref);  // 2 valid columns
  EXPECT_EQ(std::vector<uint8_t>(y.begin(), y.begin() + 4), (std::vector<uint8_t>{127, 127, 0, 0}));
}

TEST(IntegerReference, IexpHalvesPerLn2) {
  const float s = 1.0f / 4096;
  const IexpParams p = ops::prepare_iexp(s);
  for (double xr : {-0.5, -1.0, -2.0, -5.0}) {
    std::vector<int32_t> e(1);
    ops::iexp(std::vector<int32_t>{static_cast<int32_t>(std::lround(xr / s))}, p, e, Isa::ref);
    EXPECT_NEAR(e[0] / 32767.0, std::exp(xr), 2.5e-3) << "x=" << xr;
  }
}

TEST(IntegerReference, LayerNormHandCases) {
  const ops::ILayerNormParams p =
      ops::prepare_ilayernorm(std::vector<float>{1, 1}, std::vector<float>{0, 0}, 0);
  std::vector<int64_t> y(2);
  ops::ilayernorm(std::vector<int32_t>{-1, 1}.data(), 1, 2, 2, p, y.data(), 2, Isa::ref);
  // mean 0, var 2, isqrt 1, factor 2^31: y = floor(+-2^31 / 2).
  EXPECT_EQ(y, (std::vector<int64_t>{-(1 << 30), 1 << 30}));
  ops::ilayernorm(std::vector<int32_t>{7, 7}.data(), 1, 2, 2, p, y.data(), 2, Isa::ref);
  EXPECT_EQ(y, (std::vector<int64_t>{0, 0}));  // constant row: std guarded to 1, y = bias
  ops::ilayernorm(std::vector<int32_t>{0, 3}.data(), 1, 2, 2, p, y.data(), 2, Isa::ref);
  // mean round(1.5) = 2 (half to even), d = -2, 1, var 5, isqrt 2, factor 2^30: -2^30, 2^29.
  EXPECT_EQ(y, (std::vector<int64_t>{-(1 << 30), 1 << 29}));
}

TEST(IntegerReference, WideRequantizeRoundsHalfToEvenAndSaturates) {
  const int64_t t = int64_t{1} << 41;
  const std::vector<int64_t> x{t, 3 * t, -t, -3 * t, 5 * t, std::numeric_limits<int64_t>::max()};
  const std::vector<int32_t> m(1, 1 << 30), s(1, 72);  // ratio 2^-42: t -> 0.5
  std::vector<int8_t> y(x.size());
  ops::requantize_wide(x.data(), static_cast<int>(x.size()), 1, 1, m, s, 8, y.data(), 1, Isa::ref);
  EXPECT_EQ(y, (std::vector<int8_t>{0, 2, 0, -2, 2, 127}));
  std::vector<int32_t> y22(1);
  const std::vector<int32_t> s1(1, 31);  // ratio 1/2
  const int64_t big = int64_t{1} << 40;
  ops::requantize_wide(&big, 1, 1, 1, m, s1, 22, y22.data(), 1, Isa::ref);
  EXPECT_EQ(y22[0], (1 << 21) - 1);
}

TEST(IntegerReference, ResidualAddRequantizesEachBranchThenAdds) {
  const ops::ResidualParams p =
      ops::prepare_residual(std::vector<float>{0.5f}, std::vector<float>{0.25f}, 1.0f, 2);
  const std::vector<int32_t> x{3, -3, 1000, 1};
  const std::vector<int8_t> r{2, 2, 127, -128};
  std::vector<int8_t> y(4);
  ops::residual_add(x.data(), 2, r.data(), 2, 2, 2, p, 8, y.data(), 2, Isa::ref);
  // 1.5 -> 2, 0.5 -> 0: 2; -1.5 -> -2 plus 0: -2; 500 + 32 saturates; 0.5 -> 0 plus -32.
  EXPECT_EQ(y, (std::vector<int8_t>{2, -2, 127, -32}));
}

// ---- Every ISA against the reference ----

class IntegerIsaTest : public test::Int8IsaTest {
 protected:
  const kernels::IntegerKernels& ik() const { return kernels::table_for(GetParam()).integer; }
};

const std::vector<int>& col_sweep() {
  static const std::vector<int> c{1, 2, 3, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 768};
  return c;
}

std::vector<int32_t> extreme_int32(std::mt19937& rng, std::size_t n, int32_t lo, int32_t hi) {
  std::vector<int32_t> v = test::random_ints<int32_t>(rng, n, lo, hi);
  const int32_t special[] = {
      0, 1, -1, lo, hi, std::numeric_limits<int32_t>::max(), std::numeric_limits<int32_t>::min()};
  for (std::size_t i = 0; i < n; i += 5) v[i] = special[(i / 5) % 7];
  return v;
}

TEST_P(IntegerIsaTest, IGeluMatchesReferenceBitExact) {
  std::mt19937 rng(21);
  std::uniform_real_distribution<double> ls(std::log(4.5e-7), std::log(1e-1));
  for (int cols : col_sweep()) {
    const int rows = 3, ldx = cols + 3, ldy = cols + 1;
    std::vector<float> scales(cols);
    for (auto& s : scales) s = static_cast<float>(std::exp(ls(rng)));
    ops::IGeluParams p = ops::prepare_igelu(scales);
    if (cols > 2) p.one[2] = 1;  // one - erf < 0 for x < 0 (never with prepared constants)
    std::vector<int32_t> x = extreme_int32(rng, size_t(rows) * ldx, -3000000, 3000000);
    for (int j = 0; j < cols && j < ldx; ++j) x[j] = -p.b[j] + (j % 3) - 1;  // clip boundary
    std::vector<int64_t> y(size_t(rows) * ldy, 5), yr(size_t(rows) * ldy, 5);
    ik().igelu(x.data(), ldx, rows, cols, p.b.data(), p.c.data(), p.one.data(), y.data(), ldy);
    ref().igelu(x.data(), ldx, rows, cols, p.b.data(), p.c.data(), p.one.data(), yr.data(), ldy);
    for (std::size_t i = 0; i < y.size(); ++i) {
      ASSERT_EQ(y[i], yr[i]) << "cols=" << cols << " row " << i / ldy << " col " << i % ldy
                             << " x=" << x[(i / ldy) * ldx + i % ldy];
    }
  }
}

TEST_P(IntegerIsaTest, RequantizeWideMatchesReferenceBitExact) {
  std::mt19937 rng(22);
  std::mt19937_64 rng64(23);
  std::uniform_real_distribution<double> lr(std::log(1e-19), std::log(1e6));
  for (int cols : col_sweep()) {
    const int rows = 4, ldx = cols + 2, ldy = cols + 5;
    std::vector<int32_t> m(cols), s(cols);
    for (int j = 0; j < cols; ++j) {
      const double r = std::exp(lr(rng)) * (j % 3 == 2 ? -1 : 1);
      const ops::Dyadic d = ops::dyadic(r, kernels::kMaxWideShift);
      m[j] = d.multiplier;
      s[j] = d.shift;
    }
    if (cols > 3) {  // planted exact ties: x * 2^30 / 2^s = odd / 2
      m[3] = 1 << 30;
      s[3] = 50;
    }
    for (int j = 8; j < 16 && j < cols; ++j) {  // a whole 8-lane group of shifts >= 32 (the
      const ops::Dyadic d = ops::dyadic(1e-9 * (j - 6), kernels::kMaxWideShift);  // fast path)
      m[j] = d.multiplier;
      s[j] = d.shift;
    }
    std::vector<int64_t> x(size_t(rows) * ldx);
    for (std::size_t i = 0; i < x.size(); ++i) {
      const int bits = 1 + static_cast<int>(rng64() % 63);
      x[i] = static_cast<int64_t>(rng64() >> (64 - bits)) * (rng64() & 1 ? -1 : 1);
    }
    x[0] = std::numeric_limits<int64_t>::min();
    x[1 % x.size()] = std::numeric_limits<int64_t>::max();
    for (int i = 0; cols > 3 && i < rows; ++i) x[i * ldx + 3] = (2 * i + 1) * (int64_t{1} << 19);
    for (int bits : {8, 16, 22, 32}) {
      std::vector<int32_t> y(size_t(rows) * ldy, 9), yr(size_t(rows) * ldy, 9);
      ik().requantize_wide(x.data(), ldx, rows, cols, m.data(), s.data(), bits, y.data(), ldy);
      ref().requantize_wide(x.data(), ldx, rows, cols, m.data(), s.data(), bits, yr.data(), ldy);
      // Compare the bytes each container width writes (the rest must stay untouched).
      const auto* a = reinterpret_cast<const uint8_t*>(y.data());
      const auto* b = reinterpret_cast<const uint8_t*>(yr.data());
      for (std::size_t i = 0; i < y.size() * 4; ++i) {
        const int w = bits <= 8 ? 1 : bits <= 16 ? 2 : 4;
        ASSERT_EQ(a[i], b[i]) << "cols=" << cols << " bits=" << bits << " element " << i / w
                              << " (row " << (i / w) / ldy << " col " << (i / w) % ldy << ")";
      }
    }
  }
}

TEST_P(IntegerIsaTest, ResidualAddMatchesReferenceBitExact) {
  std::mt19937 rng(24);
  std::uniform_real_distribution<double> lr(std::log(1e-9), std::log(1e4));
  for (int cols : col_sweep()) {
    const int rows = 3, ldx = cols + 1, ldr = cols + 7, ldy = cols + 2;
    std::vector<float> sx(cols), sr(cols);
    for (auto& v : sx) v = static_cast<float>(std::exp(lr(rng)));
    for (auto& v : sr) v = static_cast<float>(std::exp(lr(rng)));
    ops::ResidualParams p = ops::prepare_residual(sx, sr, 1.0f, cols);
    if (cols > 1) p.mx[1] = -p.mx[1];  // negative ratio (gamma < 0 folded into the multiplier)
    const std::vector<int32_t> x = extreme_int32(rng, size_t(rows) * ldx, -100000, 100000);
    const auto r = test::random_ints<int8_t>(rng, size_t(rows) * ldr, -128, 127);
    for (bool with_r : {false, true}) {
      for (int bits : {8, 16, 22, 32}) {
        std::vector<int32_t> y(size_t(rows) * ldy, 3), yr(size_t(rows) * ldy, 3);
        const int8_t* rp = with_r ? r.data() : nullptr;
        ik().residual_add(x.data(), ldx, p.mx.data(), p.sx.data(), rp, ldr, p.mr.data(),
                          p.sr.data(), rows, cols, bits, y.data(), ldy);
        ref().residual_add(x.data(), ldx, p.mx.data(), p.sx.data(), rp, ldr, p.mr.data(),
                           p.sr.data(), rows, cols, bits, yr.data(), ldy);
        ASSERT_EQ(y, yr) << "cols=" << cols << " bits=" << bits << " residual=" << with_r;
      }
    }
  }
}

TEST_P(IntegerIsaTest, IexpAndSoftmaxMatchReferenceBitExact) {
  std::mt19937 rng(25);
  std::uniform_real_distribution<double> ls(std::log(2e-8), std::log(1.5));
  for (int trial = 0; trial < 40; ++trial) {
    const float s = static_cast<float>(std::exp(ls(rng)));
    const IexpParams p = ops::prepare_iexp(s);
    // i-exp over the whole clamped range and beyond.
    const int32_t span = static_cast<int32_t>(std::min<int64_t>(
        int64_t{-35} * p.x0 * (int64_t{1} << p.input_shift), std::numeric_limits<int32_t>::max()));
    std::vector<int32_t> x = test::random_ints<int32_t>(rng, 1037, -span, 0);
    x[0] = std::numeric_limits<int32_t>::min();
    x[1] = 5;
    std::vector<int32_t> e(x.size()), er(x.size());
    ik().iexp(x.data(), x.size(), p, e.data());
    ref().iexp(x.data(), x.size(), p, er.data());
    for (std::size_t i = 0; i < e.size(); ++i) {
      ASSERT_EQ(e[i], er[i]) << "scale " << s << " x=" << x[i] << " index " << i;
    }
    std::vector<int> sweep = col_sweep();
    if (trial < 4) sweep.push_back(2100);  // beyond the vector kernels' 2048-value row cache
    for (int cols : sweep) {
      const int rows = 3, ldx = cols + 2, ldy = cols + 3;
      const int32_t range = trial % 4 == 0 ? std::numeric_limits<int32_t>::max() : span / 2;
      std::vector<int32_t> sx = extreme_int32(rng, size_t(rows) * ldx, -range, range);
      if (trial % 5 == 1) std::fill(sx.begin(), sx.end(), 77);  // constant rows
      for (int valid : {cols, cols / 2, 0}) {
        std::vector<uint8_t> y(size_t(rows) * ldy, 9), yr(size_t(rows) * ldy, 9);
        ik().isoftmax(sx.data(), ldx, rows, cols, valid, p, y.data(), ldy);
        ref().isoftmax(sx.data(), ldx, rows, cols, valid, p, yr.data(), ldy);
        for (std::size_t i = 0; i < y.size(); ++i) {
          ASSERT_EQ(int{y[i]}, int{yr[i]})
              << "scale " << s << " cols=" << cols << " valid=" << valid << " row " << i / ldy
              << " col " << i % ldy;
        }
      }
    }
  }
}

TEST_P(IntegerIsaTest, LayerNormMatchesReferenceBitExact) {
  std::mt19937 rng(26);
  for (int cols : col_sweep()) {
    for (int shift : {0, 1, 3, 8}) {
      const int rows = 4, ldx = cols + 5, ldy = cols + 1;
      std::vector<float> gamma = test::random_floats(rng, cols, 0.2f, 2.0f);
      std::vector<float> beta = test::random_floats(rng, cols, -10.0f, 10.0f);
      const ops::ILayerNormParams p = ops::prepare_ilayernorm(gamma, beta, shift);
      std::vector<int32_t> x = extreme_int32(rng, size_t(rows) * ldx, -(1 << 21), 1 << 21);
      std::fill(x.begin() + ldx, x.begin() + ldx + cols, -12345);  // a constant row
      std::vector<int64_t> y(size_t(rows) * ldy, 4), yr(size_t(rows) * ldy, 4);
      ik().ilayernorm(x.data(), ldx, rows, cols, shift, p.bias.data(), y.data(), ldy);
      ref().ilayernorm(x.data(), ldx, rows, cols, shift, p.bias.data(), yr.data(), ldy);
      for (std::size_t i = 0; i < y.size(); ++i) {
        ASSERT_EQ(y[i], yr[i]) << "cols=" << cols << " shift=" << shift << " row " << i / ldy
                               << " col " << i % ldy;
      }
    }
  }
}

OCTET_INSTANTIATE_ISA_TESTS(IntegerIsaTest);

}  // namespace
}  // namespace octet
