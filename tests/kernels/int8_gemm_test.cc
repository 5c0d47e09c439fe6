// INT8 GEMM: every runnable ISA against the reference kernel (bit-exact for int32, int8 and uint8
// outputs; f32 within a tolerance), over a shape sweep, the BERT shapes and extreme inputs; the
// reference against an independent int64 sum and hand-computed values; a guard that every ISA
// this CPU supports and the cap allows really ran.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "kernels/fixedpoint.h"
#include "kernels/int8_test_util.h"
#include "ops/gemm_int8.h"

namespace octet {
namespace {

using kernels::ActDtype;
using kernels::Activation;
using kernels::GemmOutput;
using ops::PackedWeightsInt8;
using test::Int8IsaTest;

struct Case {
  int m, n, k;
  ActDtype dtype = ActDtype::s8;
  int32_t za = 0;   // u8 zero point
  int lda_pad = 0;  // extra elements per row of A
  int ldc_pad = 0;  // extra elements per row of C
  uint32_t seed = 1;
  int threads = 1;
};

std::string describe(const Case& c) {
  return fmt::format("M={} N={} K={} dtype={} za={} lda=K+{} ldc=N+{} threads={} seed={}", c.m, c.n,
                     c.k, c.dtype == ActDtype::s8 ? "s8" : "u8", c.za, c.lda_pad, c.ldc_pad,
                     c.threads, c.seed);
}

// Inputs of one case; A and W may be overwritten by a test for extreme values.
struct Data {
  Case c;
  std::vector<uint8_t> a;  // bytes of A (s8 or u8), m x (k + lda_pad)
  std::vector<int8_t> w;   // n x k
  std::vector<float> w_scales, bias_f32, residual;
  std::vector<int32_t> bias_s32, multiplier, shift;
  int32_t out_zp_s8 = 0, out_zp_u8 = 0;
  float a_scale = 0.0f;

  explicit Data(const Case& cs) : c(cs) {
    std::mt19937 rng(c.seed);
    const int lda = c.k + c.lda_pad;
    a = c.dtype == ActDtype::s8 ? test::random_ints<uint8_t>(rng, size_t(c.m) * lda, 0, 255)
                                : test::random_ints<uint8_t>(rng, size_t(c.m) * lda, 0, 255);
    w = test::random_ints<int8_t>(rng, size_t(c.n) * c.k, -128, 127);
    w_scales = test::random_floats(rng, c.n, 1e-3f, 1e-2f);
    bias_f32 = test::random_floats(rng, c.n, -2.0f, 2.0f);
    residual = test::random_floats(rng, size_t(c.m) * c.n, -1.0f, 1.0f);
    bias_s32 = test::random_ints<int32_t>(rng, c.n, -20000, 20000);
    a_scale = std::uniform_real_distribution<float>(0.005f, 0.05f)(rng);
    // Ratios that put typical outputs across the 8-bit range and saturate the tails.
    const double typical = 128.0 * 74.0 * std::sqrt(static_cast<double>(c.k)) + 1.0;
    std::uniform_real_distribution<double> log_ratio(std::log(4.0), std::log(400.0));
    multiplier.resize(c.n);
    shift.resize(c.n);
    for (int j = 0; j < c.n; ++j) {
      int s;
      kernels::quantize_multiplier(std::exp(log_ratio(rng)) / typical, &multiplier[j], &s);
      shift[j] = s;
    }
    out_zp_s8 = std::uniform_int_distribution<int>(-20, 20)(rng);
    out_zp_u8 = std::uniform_int_distribution<int>(100, 150)(rng);
  }
};

struct Outputs {
  std::vector<int32_t> s32;
  std::vector<float> f32_none, f32_relu_res, f32_gelu;
  float max_none = -1.0f, max_relu_res = -1.0f, max_gelu = -1.0f;  // the epilogue's max |C|
  std::vector<int8_t> s8;
  std::vector<uint8_t> u8;
};

Outputs run(const Data& d, Isa isa) {
  const Case& c = d.c;
  const int ldc = c.n + c.ldc_pad;
  const auto w = PackedWeightsInt8::pack(d.w.data(), c.n, c.k, c.k, d.w_scales, isa);
  const ops::ActivationsInt8 a{d.a.data(), c.dtype, c.m, c.k, c.k + c.lda_pad, c.za, d.a_scale};
  Outputs o;
  const size_t size = static_cast<size_t>(c.m) * ldc;
  o.s32.assign(size, -7);
  ops::gemm_int8_s32(a, w, d.bias_s32.data(), o.s32.data(), ldc, c.threads);
  // Padding columns hold -7: larger than most outputs, so an epilogue max that read them shows.
  o.f32_none.assign(size, -7.0f);
  ops::gemm_int8_f32(a, w, {nullptr, Activation::none, nullptr, 0, &o.max_none}, o.f32_none.data(),
                     ldc, c.threads);
  o.f32_relu_res.assign(size, -7.0f);
  ops::gemm_int8_f32(a, w,
                     {d.bias_f32.data(), Activation::relu, d.residual.data(), c.n, &o.max_relu_res},
                     o.f32_relu_res.data(), ldc, c.threads);
  o.f32_gelu.assign(size, -7.0f);
  ops::gemm_int8_f32(a, w, {d.bias_f32.data(), Activation::gelu, nullptr, 0, &o.max_gelu},
                     o.f32_gelu.data(), ldc, c.threads);
  o.s8.assign(size, 99);
  ops::gemm_int8_requant(a, w,
                         {d.bias_s32.data(), d.multiplier, d.shift, d.out_zp_s8, GemmOutput::s8},
                         o.s8.data(), ldc, c.threads);
  o.u8.assign(size, 99);
  ops::gemm_int8_requant(a, w,
                         {d.bias_s32.data(), d.multiplier, d.shift, d.out_zp_u8, GemmOutput::u8},
                         o.u8.data(), ldc, c.threads);
  return o;
}

// Bit-exact comparison (padding columns included: they must stay untouched).
template <typename T>
::testing::AssertionResult same(const char* what, const std::vector<T>& got,
                                const std::vector<T>& want, const Case& c) {
  const int ldc = c.n + c.ldc_pad;
  for (size_t i = 0; i < got.size(); ++i) {
    if (got[i] != want[i]) {
      return ::testing::AssertionFailure()
             << what << " differs at row " << i / ldc << " col " << i % ldc << ": got " << +got[i]
             << ", reference " << +want[i] << " (" << describe(c) << ")";
    }
  }
  return ::testing::AssertionSuccess();
}

// Float outputs: the int32 accumulator is exact on every ISA; the differences come from FMA
// contraction, the vector erf and (for |acc| > 2^24) nothing else, so the tolerance is relative to
// the magnitude of the terms, not to K.
::testing::AssertionResult close(const char* what, const std::vector<float>& got,
                                 const std::vector<float>& want, const Case& c) {
  const int ldc = c.n + c.ldc_pad;
  for (size_t i = 0; i < got.size(); ++i) {
    const float tol = 2e-6f * (4.0f + std::fabs(want[i]));
    if (!(std::fabs(got[i] - want[i]) <= tol)) {
      return ::testing::AssertionFailure()
             << what << " differs at row " << i / ldc << " col " << i % ldc << ": got " << got[i]
             << ", reference " << want[i] << " (tolerance " << tol << "; " << describe(c) << ")";
    }
  }
  return ::testing::AssertionSuccess();
}

// max |C| over the m x n outputs (not the padding), |y| ordered as unsigned bit patterns as
// GemmParams::abs_max specifies, computed here independently of every kernel.
float abs_max_of(const std::vector<float>& c, int m, int n, std::ptrdiff_t ldc) {
  uint32_t best = 0;
  for (int i = 0; i < m; ++i) {
    for (int j = 0; j < n; ++j) {
      uint32_t b;
      std::memcpy(&b, &c[static_cast<size_t>(i) * ldc + j], 4);
      best = std::max(best, b & 0x7FFFFFFFu);
    }
  }
  float out;
  std::memcpy(&out, &best, 4);
  return out;
}

// The epilogue's max |C| is bit for bit the maximum of what the same run stored (so the dynamic
// scale derived from it equals the one a separate pass would find, on every ISA and thread
// count), and agrees with the reference's like the outputs do.
::testing::AssertionResult same_abs_max(const char* what, float got_max,
                                        const std::vector<float>& got, float want_max,
                                        const Case& c) {
  const float exact = abs_max_of(got, c.m, c.n, c.n + c.ldc_pad);
  if (std::memcmp(&got_max, &exact, 4) != 0) {
    return ::testing::AssertionFailure()
           << what << ": epilogue max |C| " << got_max << " but the stored outputs' max is "
           << exact << " (" << describe(c) << ")";
  }
  if (!(std::fabs(got_max - want_max) <= 2e-6f * (4.0f + want_max))) {
    return ::testing::AssertionFailure() << what << ": max |C| " << got_max << ", reference "
                                         << want_max << " (" << describe(c) << ")";
  }
  return ::testing::AssertionSuccess();
}

// `cache`: the data is exactly Data(d.c) (unmodified), so the reference outputs can be shared
// by the runs of every ISA (the reference dominates the time of the large shapes).
::testing::AssertionResult matches_reference(const Data& d, Isa isa, bool cache = false) {
  static std::map<std::string, Outputs> reference_cache;
  const Outputs got = run(d, isa);
  Outputs computed;
  const Outputs* ref = &computed;
  if (cache) {
    auto it = reference_cache.find(describe(d.c));
    if (it == reference_cache.end())
      it = reference_cache.emplace(describe(d.c), run(d, Isa::ref)).first;
    ref = &it->second;
  } else {
    computed = run(d, Isa::ref);
  }
  const Outputs& want = *ref;
  const Case& c = d.c;
  if (auto r = same("s32", got.s32, want.s32, c); !r) return r;
  if (auto r = same("s8", got.s8, want.s8, c); !r) return r;
  if (auto r = same("u8", got.u8, want.u8, c); !r) return r;
  if (auto r = close("f32", got.f32_none, want.f32_none, c); !r) return r;
  if (auto r = close("f32+bias+relu+residual", got.f32_relu_res, want.f32_relu_res, c); !r) {
    return r;
  }
  if (auto r = close("f32+bias+gelu", got.f32_gelu, want.f32_gelu, c); !r) return r;
  if (auto r = same_abs_max("f32 max", got.max_none, got.f32_none, want.max_none, c); !r) return r;
  if (auto r = same_abs_max("f32+bias+relu+residual max", got.max_relu_res, got.f32_relu_res,
                            want.max_relu_res, c);
      !r) {
    return r;
  }
  if (auto r = same_abs_max("f32+bias+gelu max", got.max_gelu, got.f32_gelu, want.max_gelu, c);
      !r) {
    return r;
  }
  // The reference's own max, against its own outputs.
  return same_abs_max("reference f32+bias+gelu max", want.max_gelu, want.f32_gelu, want.max_gelu,
                      c);
}

class Int8GemmTest : public Int8IsaTest {};

TEST_P(Int8GemmTest, MatchesReferenceOnShapeSweep) {
  const int ms[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 15, 16, 17, 31, 32, 33, 63, 64, 65};
  const int ns[] = {1, 2, 3, 5, 8, 10, 15, 16, 17, 31, 32, 33, 47, 48, 49, 63, 64, 65, 129};
  const int ks[] = {1, 2, 3, 4, 5, 7, 8, 9, 10, 15, 16, 17, 31, 32, 33, 63, 64, 65};
  uint32_t seed = 100;
  for (int m : ms) {
    for (int n : ns) {
      // Every K for a few M; a rotating subset otherwise, so the sweep stays fast.
      for (size_t ki = 0; ki < std::size(ks); ++ki) {
        if (m > 3 && (ki + m + n) % 4 != 0) continue;
        Case c{m, n, ks[ki]};
        c.seed = ++seed;
        c.dtype = seed % 2 ? ActDtype::s8 : ActDtype::u8;
        c.za = c.dtype == ActDtype::u8 ? static_cast<int32_t>(seed * 37 % 256) : 0;
        c.lda_pad = seed % 3 == 0 ? 5 : 0;
        c.ldc_pad = seed % 5 == 0 ? 3 : 0;
        ASSERT_TRUE(matches_reference(Data(c), isa()));
      }
    }
  }
}

TEST_P(Int8GemmTest, MatchesReferenceOnDeepK) {
  uint32_t seed = 5000;
  for (int k : {127, 128, 129, 255, 256, 257, 1000, 1023, 4096}) {
    for (int m : {1, 5, 17}) {
      for (int n : {33, 64}) {
        Case c{m, n, k};
        c.seed = ++seed;
        c.dtype = seed % 2 ? ActDtype::s8 : ActDtype::u8;
        c.za = c.dtype == ActDtype::u8 ? 77 : 0;
        ASSERT_TRUE(matches_reference(Data(c), isa()));
      }
    }
  }
}

TEST_P(Int8GemmTest, MatchesReferenceOnBertShapesWithTwoThreads) {
  uint32_t seed = 9000;
  const std::pair<int, int> shapes[] = {{768, 768}, {768, 3072}, {3072, 768}, {1024, 4096}};
  for (auto [k, n] : shapes) {
    for (int m : {1, 9}) {
      Case c{m, n, k};
      c.seed = ++seed;
      c.dtype = m == 1 ? ActDtype::u8 : ActDtype::s8;
      c.za = m == 1 ? 128 : 0;
      c.threads = 2;
      ASSERT_TRUE(matches_reference(Data(c), isa(), /*cache=*/true));
    }
  }
}

// C larger than one core's L2 (here 200 x 2700 f32 and s32: 2.16 MB > 2 MiB) takes the tiles that
// prefetch their output rows inside the k loop (kLargeOutputBytes in
// kernels/avx512/gemm_int8_avx512_impl.h): K = 40 issues them after the loop (2 iterations of 4
// groups), K = 136 inside it; N = 2700 ends in a partial panel, M = 200 in a partial row tile.
TEST_P(Int8GemmTest, MatchesReferenceWhenTheOutputOutgrowsL2) {
  uint32_t seed = 9500;
  for (int k : {40, 136}) {
    Case c{200, 2700, k};
    c.seed = ++seed;
    c.dtype = k == 40 ? ActDtype::u8 : ActDtype::s8;
    c.za = c.dtype == ActDtype::u8 ? 3 : 0;
    ASSERT_TRUE(matches_reference(Data(c), isa(), /*cache=*/true));
  }
}

// The largest magnitudes the accumulator sees: every product at its extreme, K = 4096. The
// expected int32 values are closed forms, independent of the reference kernel; on AVX2 and
// AVX-512 without VNNI they are the vpmaddubsw saturation cases (255 * 127 * 2 > 32767).
TEST_P(Int8GemmTest, ExtremeInputsGiveExactClosedFormSums) {
  const int m = 3, n = 35, k = 4096;
  struct Extreme {
    ActDtype dtype;
    int a;  // every activation
    int32_t za;
    int w;  // every weight
  };
  const Extreme cases[] = {
      {ActDtype::u8, 255, 0, 127},  {ActDtype::u8, 255, 0, -128},  {ActDtype::s8, 127, 0, 127},
      {ActDtype::s8, 127, 0, -128}, {ActDtype::s8, -128, 0, -128}, {ActDtype::s8, -128, 0, 127},
      {ActDtype::u8, 0, 255, -128}, {ActDtype::u8, 255, 128, 127}, {ActDtype::u8, 0, 0, 127},
  };
  for (const Extreme& e : cases) {
    Case c{m, n, k};
    c.dtype = e.dtype;
    c.za = e.za;
    Data d(c);
    std::fill(d.a.begin(), d.a.end(), static_cast<uint8_t>(e.a));
    std::fill(d.w.begin(), d.w.end(), static_cast<int8_t>(e.w));
    const auto w = PackedWeightsInt8::pack(d.w.data(), n, k, k, {}, isa());
    const ops::ActivationsInt8 a{d.a.data(), e.dtype, m, k, k, e.za, 1.0f};
    std::vector<int32_t> out(size_t(m) * n);
    ops::gemm_int8_s32(a, w, nullptr, out.data(), n, 1);
    const int64_t expect = int64_t{e.a - e.za} * e.w * k;
    for (size_t i = 0; i < out.size(); ++i) {
      ASSERT_EQ(out[i], expect) << "a=" << e.a << " za=" << e.za << " w=" << e.w << " at row "
                                << i / n << " col " << i % n;
    }
    ASSERT_TRUE(matches_reference(d, isa())) << "a=" << e.a << " w=" << e.w;
  }
}

// Constant rows and alternating extremes within a row (pairs of +-max that would cancel inside a
// saturating int16 pair sum).
TEST_P(Int8GemmTest, MatchesReferenceOnConstantAndAlternatingRows) {
  Case c{6, 40, 301};
  c.dtype = ActDtype::s8;
  Data d(c);
  for (int i = 0; i < c.m; ++i) {
    for (int kk = 0; kk < c.k; ++kk) {
      uint8_t v = 0;
      if (i == 0) v = 0x80;  // -128
      if (i == 1) v = 127;
      if (i == 2) v = kk % 2 ? 127 : 0x80;
      if (i == 3) v = 0;
      if (i >= 4) v = static_cast<uint8_t>(i * 11);
      d.a[size_t(i) * c.k + kk] = v;
    }
  }
  for (int j = 0; j < c.n; ++j) {
    for (int kk = 0; kk < c.k; ++kk) {
      d.w[size_t(j) * c.k + kk] = static_cast<int8_t>(j % 3 == 0   ? 127
                                                      : j % 3 == 1 ? -128
                                                                   : (kk % 2 ? 127 : -128));
    }
  }
  EXPECT_TRUE(matches_reference(d, isa()));
  c.dtype = ActDtype::u8;
  c.za = 255;
  Data du(c);
  std::fill(du.a.begin(), du.a.end(), 255);
  EXPECT_TRUE(matches_reference(du, isa()));
}

// The kernel entry itself on a block that is not the whole matrix (the ops layer's split).
TEST_P(Int8GemmTest, ComputesOnlyTheRequestedBlock) {
  Case c{20, 70, 45};
  Data d(c);
  const auto& kt = kernels();
  std::vector<uint8_t> packed(kt.gemm_packed_b_size(c.n, c.k) + 64);
  void* aligned = packed.data() + (64 - reinterpret_cast<uintptr_t>(packed.data()) % 64) % 64;
  kt.gemm_pack_b(d.w.data(), c.k, c.n, c.k, aligned);
  std::vector<int32_t> sums(c.n, 0);
  for (int j = 0; j < c.n; ++j) {
    for (int kk = 0; kk < c.k; ++kk) sums[j] += d.w[size_t(j) * c.k + kk];
  }
  std::vector<int32_t> out(size_t(c.m) * c.n, 12345);
  kernels::GemmParams p;
  p.m = c.m, p.n = c.n, p.k = c.k;
  p.a = d.a.data(), p.lda = c.k, p.a_dtype = ActDtype::s8;
  p.packed_b = aligned, p.col_sums = sums.data();
  p.output = GemmOutput::s32, p.c = out.data(), p.ldc = c.n;
  std::vector<uint8_t> ws(kt.gemm_workspace_size(c.m, c.k) + 64);
  kt.gemm(p, 3, 11, 16, 50, ws.data());
  for (int i = 0; i < c.m; ++i) {
    for (int j = 0; j < c.n; ++j) {
      const bool inside = i >= 3 && i < 11 && j >= 16 && j < 50;
      int32_t want = 12345;
      if (inside) {
        want = 0;
        for (int kk = 0; kk < c.k; ++kk) {
          want +=
              int32_t{static_cast<int8_t>(d.a[size_t(i) * c.k + kk])} * d.w[size_t(j) * c.k + kk];
        }
      }
      ASSERT_EQ(out[size_t(i) * c.n + j], want) << "row " << i << " col " << j;
    }
  }
}

// A NaN or an infinity in the stored outputs (through the residual, the only float input that
// can carry one) reaches the epilogue's max |C| from any position: first element, the masked tail
// of the last column panel, the last row of an M tail, a block of the second thread; NaN wins
// over Inf in either order. Shapes cover the small-M tile, the main tile and the AMX blocks.
TEST_P(Int8GemmTest, EpilogueMaxPropagatesNaNAndInfinity) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  uint32_t seed = 7000;
  for (auto [m, n, k] : {std::array{1, 17, 33}, std::array{3, 115, 64}, std::array{13, 49, 100},
                         std::array{37, 70, 128}, std::array{130, 96, 64}}) {
    for (int threads : {1, 2}) {
      Case c{m, n, k};
      c.seed = ++seed;
      c.threads = threads;
      c.ldc_pad = 3;
      const Data clean(c);
      const auto w = PackedWeightsInt8::pack(clean.w.data(), n, k, k, clean.w_scales, isa());
      const ops::ActivationsInt8 a{clean.a.data(), ActDtype::s8, m, k, k, 0, clean.a_scale};
      const int positions[][2] = {{0, 0}, {m - 1, n - 1}, {m / 2, n / 2}, {m - 1, 0}};
      for (auto [pi, pj] : positions) {
        for (const std::vector<float>& bad : {std::vector<float>{nan},
                                              std::vector<float>{inf},
                                              std::vector<float>{-inf},
                                              {-inf, nan},
                                              {nan, inf}}) {
          std::vector<float> residual = clean.residual;
          // The first value at (pi, pj), the second (if any) at the mirrored position.
          residual[static_cast<size_t>(pi) * n + pj] = bad[0];
          if (bad.size() > 1) residual[static_cast<size_t>(m - 1 - pi) * n + (n - 1 - pj)] = bad[1];
          const bool has_nan =
              std::any_of(residual.begin(), residual.end(), [](float v) { return std::isnan(v); });
          for (Activation act : {Activation::none, Activation::relu, Activation::gelu}) {
            const int ldc = n + c.ldc_pad;
            std::vector<float> out(static_cast<size_t>(m) * ldc, -7.0f);
            float amax = -1.0f;
            ops::gemm_int8_f32(a, w, {clean.bias_f32.data(), act, residual.data(), n, &amax},
                               out.data(), ldc, threads);
            const std::string where =
                fmt::format("{} at ({}, {}), act {}, {}", std::isnan(bad[0]) ? "NaN" : "Inf", pi,
                            pj, static_cast<int>(act), describe(c));
            const float exact = abs_max_of(out, m, n, ldc);
            ASSERT_EQ(std::memcmp(&amax, &exact, 4), 0)
                << "epilogue max " << amax << " vs stored max " << exact << ": " << where;
            if (has_nan) {
              ASSERT_TRUE(std::isnan(amax)) << amax << ": " << where;
            } else {
              ASSERT_EQ(amax, inf) << where;
            }
          }
        }
      }
    }
  }
}

OCTET_INSTANTIATE_ISA_TESTS(Int8GemmTest);

// ---- The reference itself ----

TEST(Int8GemmReference, MatchesHandComputedValues) {
  // A (2 x 3, s8) = [[1, -2, 3], [-128, 127, 0]], W (2 x 3) = [[4, 5, -6], [-128, -128, 127]].
  const int8_t a[] = {1, -2, 3, -128, 127, 0};
  const int8_t w[] = {4, 5, -6, -128, -128, 127};
  const auto pw = PackedWeightsInt8::pack(w, 2, 3, 3, std::vector<float>{0.5f, 0.25f}, Isa::ref);
  const ops::ActivationsInt8 act{a, ActDtype::s8, 2, 3, 3, 0, 2.0f};
  int32_t c[4];
  const int32_t bias[] = {10, -10};
  ops::gemm_int8_s32(act, pw, bias, c, 2, 1);
  // 4 - 10 - 18 = -24; -128 + 256 + 381 = 509; -512 + 635 = 123; 16384 - 16256 = 128.
  EXPECT_EQ(c[0], -24 + 10);
  EXPECT_EQ(c[1], 509 - 10);
  EXPECT_EQ(c[2], 123 + 10);
  EXPECT_EQ(c[3], 128 - 10);
  float f[4];
  const float fbias[] = {1.0f, -1.0f};
  ops::gemm_int8_f32(act, pw, {fbias, Activation::relu}, f, 2, 1);
  EXPECT_FLOAT_EQ(f[0], 0.0f);  // relu(-24 * 1.0 + 1)
  EXPECT_FLOAT_EQ(f[1], 509 * 0.5f - 1.0f);
  EXPECT_FLOAT_EQ(f[2], 123 * 1.0f + 1.0f);
  EXPECT_FLOAT_EQ(f[3], 128 * 0.5f - 1.0f);
  // Requantize by 1/16 (m = 2^30, s = 34): -24/16 = -1.5 -> -2 (half to even), 509/16 = 31.8 -> 32,
  // 123/16 = 7.69 -> 8, 128/16 = 8; output zero point 3.
  const int32_t mult[] = {1 << 30}, shift[] = {34};
  int8_t q[4];
  ops::gemm_int8_requant(act, pw, {nullptr, mult, shift, 3, GemmOutput::s8}, q, 2, 1);
  EXPECT_EQ(q[0], -2 + 3);
  EXPECT_EQ(q[1], 32 + 3);
  EXPECT_EQ(q[2], 8 + 3);
  EXPECT_EQ(q[3], 8 + 3);
}

TEST(Int8GemmReference, MatchesIndependentInt64Sum) {
  std::mt19937 rng(42);
  for (int trial = 0; trial < 20; ++trial) {
    const int m = 1 + trial % 7, n = 1 + (trial * 5) % 19, k = 1 + (trial * 13) % 97;
    const bool u8 = trial % 2;
    const int32_t za = u8 ? trial * 11 % 256 : 0;
    auto a = test::random_ints<uint8_t>(rng, size_t(m) * k, 0, 255);
    auto w = test::random_ints<int8_t>(rng, size_t(n) * k, -128, 127);
    const auto pw = PackedWeightsInt8::pack(w.data(), n, k, k, {}, Isa::ref);
    const ops::ActivationsInt8 act{a.data(), u8 ? ActDtype::u8 : ActDtype::s8, m, k, k, za, 1.0f};
    std::vector<int32_t> c(size_t(m) * n);
    ops::gemm_int8_s32(act, pw, nullptr, c.data(), n, 1);
    for (int i = 0; i < m; ++i) {
      for (int j = 0; j < n; ++j) {
        int64_t s = 0;
        for (int kk = 0; kk < k; ++kk) {
          const int64_t av =
              u8 ? a[size_t(i) * k + kk] : static_cast<int8_t>(a[size_t(i) * k + kk]);
          s += (av - za) * w[size_t(j) * k + kk];
        }
        ASSERT_EQ(c[size_t(i) * n + j], s) << "trial " << trial << " row " << i << " col " << j;
      }
    }
  }
}

// ---- Guard: every ISA this CPU supports (up to the cap) was exercised by this run ----

class ExercisedIsaGuard : public ::testing::Environment {
 public:
  void TearDown() override {
    // Only meaningful for a full run: a filtered run legitimately skips ISA tests.
    const std::string filter = ::testing::GTEST_FLAG(filter);
    if (filter != "*" && filter != "") return;
    for (Isa isa : runnable_isas()) {
      if (static_cast<int>(isa) > static_cast<int>(active_isa())) continue;
      EXPECT_TRUE(test::exercised_int8_isas().count(isa))
          << "ISA " << isa_name(isa) << " is built and supported by this CPU (cap "
          << isa_name(active_isa()) << ") but no INT8 kernel test ran on it";
    }
  }
};

const auto* const kGuard = ::testing::AddGlobalTestEnvironment(new ExercisedIsaGuard);

}  // namespace
}  // namespace octet
