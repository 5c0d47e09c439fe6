// Octet's integer-only (I-BERT) kernels against an independent float64 restatement of the I-BERT
// reference code (scripts/ibert_reference.py, HF/fairseq IntGELU, IntSoftmax, IntLayerNorm,
// FixedPointMul), on every ISA this machine runs.
//
// Expected agreement (docs/integer_only.md):
//   i-GELU, i-LayerNorm, residual requantization   exact (the inputs keep the float64 reference
//                                                   below 2^53, where it is exact)
//   i-exp (16-bit) and i-softmax                    within 1; the reference's 16-bit QuantAct
//                                                   scale is float32(max / 32767), Octet's the
//                                                   exact dyadic 32767 / c_int: at most 2% of the
//                                                   values may differ (by 1)
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/test_support.h"
#include "octet/cpu.h"
#include "ops/integer_ops.h"

namespace octet {
namespace {

const nlohmann::json& cases() {
  static const nlohmann::json j =
      nlohmann::json::parse(test::read_file(test::golden_dir() / "ibert_golden.json"));
  return j.at("cases");
}

template <typename T>
std::vector<T> vec(const nlohmann::json& j) {
  return j.get<std::vector<T>>();
}

// Counts mismatches (and fails beyond max_diff) between got and want, printing the first values
// and the worst difference.
template <typename A, typename B>
std::size_t compare(const char* what, Isa isa, const std::vector<A>& got,
                    const std::vector<B>& want, int64_t max_diff) {
  EXPECT_EQ(got.size(), want.size()) << what;
  std::size_t mismatches = 0, at = 0;
  int64_t worst = 0;
  for (std::size_t i = 0; i < got.size() && i < want.size(); ++i) {
    const int64_t d = std::llabs(int64_t(got[i]) - int64_t(want[i]));
    mismatches += d != 0;
    if (d > worst) worst = d, at = i;
  }
  std::printf(
      "  %-10s %-12s octet %lld %lld %lld  ref %lld %lld %lld  max |diff| %lld at %zu, %zu of %zu "
      "differ\n",
      isa_name(isa), what, (long long)got[0], (long long)got[1], (long long)got[2],
      (long long)want[0], (long long)want[1], (long long)want[2], (long long)worst, at, mismatches,
      got.size());
  EXPECT_LE(worst, max_diff) << what << " on " << isa_name(isa) << " at index " << at << ": octet "
                             << got[at] << " reference " << want[at];
  return mismatches;
}

TEST(IntegerGolden, MatchesTheFloat64IbertReferenceOnEveryIsa) {
  int seen[4] = {0, 0, 0, 0};
  for (Isa isa : runnable_isas()) {
    if (static_cast<int>(isa) > static_cast<int>(active_isa())) continue;
    for (const auto& c : cases()) {
      const std::string op = c.at("op");
      const int rows = c.at("rows"), cols = c.at("cols");
      const auto x = vec<int32_t>(c.at("x"));
      if (op == "igelu") {
        const ops::IGeluParams p = ops::prepare_igelu(vec<float>(c.at("scale")));
        std::vector<int64_t> y(x.size());
        ops::igelu(x.data(), rows, cols, cols, p, y.data(), cols, isa);
        std::vector<int64_t> want = vec<int64_t>(c.at("q"));
        for (auto& v : want) v = -v;  // Octet folds the reference's negative scale into the sign
        compare("i-GELU", isa, y, want, 0);
        ++seen[0];
      } else if (op == "softmax") {
        const kernels::IexpParams p = ops::prepare_iexp(c.at("scale").get<float>());
        EXPECT_EQ(p.input_shift, 0);
        std::vector<uint8_t> y(x.size());
        ops::isoftmax(x.data(), rows, cols, cols, cols, p, y.data(), cols, isa);
        const auto want = vec<int32_t>(c.at("y"));
        const std::size_t n1 = compare("i-softmax", isa, y, want, 1);
        std::vector<int32_t> d(x.size()), e(x.size());
        for (int i = 0; i < rows; ++i) {
          int32_t mx = x[i * cols];
          for (int j = 0; j < cols; ++j) mx = std::max(mx, x[i * cols + j]);
          for (int j = 0; j < cols; ++j) d[i * cols + j] = x[i * cols + j] - mx;
        }
        ops::iexp(d, p, e, isa);
        const std::size_t n2 = compare("i-exp16", isa, e, vec<int32_t>(c.at("exp16")), 1);
        EXPECT_LE(n1, x.size() / 50) << "i-softmax mismatches on " << isa_name(isa);
        EXPECT_LE(n2, x.size() / 50) << "i-exp mismatches on " << isa_name(isa);
        ++seen[1];
      } else if (op == "layernorm") {
        const int shift = c.at("shift");
        const ops::ILayerNormParams p =
            ops::prepare_ilayernorm(vec<float>(c.at("gamma")), vec<float>(c.at("beta")), shift);
        std::vector<int64_t> y(x.size());
        ops::ilayernorm(x.data(), rows, cols, cols, p, y.data(), cols, isa);
        compare("i-LayerNorm", isa, y, vec<int64_t>(c.at("y")), 0);
        const int calibrated = ops::ilayernorm_calibrate_shift(x.data(), rows, cols, cols);
        std::printf("  %-10s i-LayerNorm shift: reference set_shift %d, exact smallest safe %d\n",
                    isa_name(isa), shift, calibrated);
        ++seen[2];
      } else if (op == "residual") {
        const int bits = c.at("bits");
        const bool with_r = !c.at("r").is_null();
        std::vector<float> sr;
        if (with_r) sr.push_back(c.at("scale_r").get<float>());
        const ops::ResidualParams p = ops::prepare_residual(vec<float>(c.at("scale_x")), sr,
                                                            c.at("scale_out").get<float>(), cols);
        std::vector<int8_t> r;
        if (with_r) r = vec<int8_t>(c.at("r"));
        // Written into the container of `bits` (int8, int16 or int32), clamped to `bits`.
        const int8_t* rp = with_r ? r.data() : nullptr;
        std::vector<int32_t> got(x.size());
        if (bits <= 8) {
          std::vector<int8_t> y(x.size());
          ops::residual_add(x.data(), cols, rp, cols, rows, cols, p, bits, y.data(), cols, isa);
          got.assign(y.begin(), y.end());
        } else if (bits <= 16) {
          std::vector<int16_t> y(x.size());
          ops::residual_add(x.data(), cols, rp, cols, rows, cols, p, bits, y.data(), cols, isa);
          got.assign(y.begin(), y.end());
        } else {
          ops::residual_add(x.data(), cols, rp, cols, rows, cols, p, bits, got.data(), cols, isa);
        }
        compare(with_r ? "residual" : "requantize", isa, got, vec<int32_t>(c.at("y")), 0);
        ++seen[3];
      } else {
        ADD_FAILURE() << "unknown golden op " << op;
      }
    }
  }
  for (int k = 0; k < 4; ++k) EXPECT_GT(seen[k], 0) << "no golden case of kind " << k;
}

}  // namespace
}  // namespace octet
