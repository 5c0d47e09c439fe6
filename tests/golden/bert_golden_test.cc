// Octet's FP32 BERT against the independent PyTorch reference (scripts/make_golden.py), on
// every model variant it writes and under every ISA this machine runs.
//
// Tolerances (the reference is float64 on the stored weights; Octet computes in float32):
//   logits, pooled   max |octet - ref| <= 1e-4 (absolute)
//   last_hidden      per sequence b: max_{t,c} |octet - ref| / max_{t,c} |ref| <= 1e-3
//   mean_pooled      per sequence b: max_c |octet - ref| / max_c |ref| <= 1e-3
// The first values and the largest difference of each output are printed (llm.c style).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/test_support.h"
#include "golden/golden_fixture.h"
#include "io/bert_config.h"
#include "octet/cpu.h"
#include "octet/model.h"

namespace octet {
namespace {

using test::Golden;
using test::load_golden;

void print_head(const char* what, const float* got, const float* want, std::size_t n) {
  std::printf("  %-12s octet", what);
  for (std::size_t i = 0; i < std::min<std::size_t>(n, 4); ++i) std::printf(" %+.6f", got[i]);
  std::printf("   ref");
  for (std::size_t i = 0; i < std::min<std::size_t>(n, 4); ++i) std::printf(" %+.6f", want[i]);
  std::printf("\n");
}

// Max absolute difference, printed with where it is.
void expect_abs(const char* what, const std::vector<float>& got, const std::vector<float>& want,
                double tol) {
  ASSERT_EQ(got.size(), want.size()) << what;
  print_head(what, got.data(), want.data(), got.size());
  double worst = 0.0;
  std::size_t at = 0;
  for (std::size_t i = 0; i < got.size(); ++i) {
    const double d = std::fabs(double(got[i]) - want[i]);
    if (!(d <= worst)) worst = d, at = i;
  }
  std::printf("  %-12s max |diff| %.3g at %zu (tolerance %.0e)\n", what, worst, at, tol);
  EXPECT_LE(worst, tol) << what << " at index " << at << ": octet " << got[at] << " ref "
                        << want[at];
}

// max |diff| / max |ref| over one block (a sequence).
double block_rel(const float* got, const float* want, std::size_t n, std::size_t* at) {
  double worst = 0.0, scale = 0.0;
  for (std::size_t i = 0; i < n; ++i) {
    const double d = std::fabs(double(got[i]) - want[i]);
    if (!(d <= worst)) worst = d, *at = i;
    scale = std::max(scale, std::fabs(double(want[i])));
  }
  return worst / std::max(scale, 1e-30);
}

void check_model(const std::string& name) {
  const Golden g = load_golden(name);
  BertModel model = BertModel::load(g.dir, {.threads = 2});
  const int64_t h = g.meta["hidden_size"].get<int64_t>();
  const int64_t labels = g.meta["num_labels"].get<int64_t>();
  ASSERT_EQ(model.config().hidden_size, h);
  EXPECT_EQ(model.has_classifier(), labels > 0);

  std::vector<BertSequence> batch;
  for (std::size_t b = 0; b < g.ids.size(); ++b) batch.push_back({g.ids[b], g.types[b]});
  BertOutputKind what =
      BertOutputKind::last_hidden | BertOutputKind::mean_pooled | BertOutputKind::pooled;
  if (labels > 0) what = what | BertOutputKind::logits;

  const std::vector<float> want_hidden = g.read("last_hidden");
  const std::vector<float> want_mean = g.read("mean_pooled");
  for (Isa isa : runnable_isas()) {
    set_max_isa(isa);
    SCOPED_TRACE(std::string(name) + " on " + isa_name(isa));
    std::printf("[%s, %s, %s weights]\n", name.c_str(), isa_name(isa),
                g.meta["weights_dtype"].get<std::string>().c_str());
    const BertOutputs out = model.forward(batch, what);
    ASSERT_EQ(out.batch, static_cast<int64_t>(g.ids.size()));
    if (labels > 0) expect_abs("logits", out.logits, g.read("logits"), 1e-4);
    expect_abs("pooled", out.pooled, g.read("pooled"), 1e-4);

    // last_hidden and mean_pooled: relative per sequence.
    std::size_t row = 0;
    double worst_hidden = 0.0, worst_mean = 0.0;
    for (std::size_t b = 0; b < g.ids.size(); ++b) {
      const std::size_t n = g.ids[b].size() * h;
      ASSERT_EQ(out.last_hidden[b].size(), n);
      const float* want = want_hidden.data() + row * h;
      if (b == g.ids.size() - 1) print_head("last_hidden", out.last_hidden[b].data(), want, n);
      std::size_t at = 0;
      const double rel = block_rel(out.last_hidden[b].data(), want, n, &at);
      worst_hidden = std::max(worst_hidden, rel);
      EXPECT_LE(rel, 1e-3) << "last_hidden of sequence " << b << " (length " << g.ids[b].size()
                           << "), token " << at / h << " channel " << at % h << ": octet "
                           << out.last_hidden[b][at] << " ref " << want[at];
      const double rel_mean =
          block_rel(out.mean_pooled.data() + b * h, want_mean.data() + b * h, h, &at);
      worst_mean = std::max(worst_mean, rel_mean);
      EXPECT_LE(rel_mean, 1e-3) << "mean_pooled of sequence " << b << ", channel " << at;
      row += g.ids[b].size();
    }
    std::printf("  %-12s max |diff| / max |ref| per sequence: %.3g (tolerance 1e-3)\n",
                "last_hidden", worst_hidden);
    std::printf("  %-12s max |diff| / max |ref| per sequence: %.3g (tolerance 1e-3)\n",
                "mean_pooled", worst_mean);
  }
  set_max_isa(runnable_isas().back());
}

TEST(BertGolden, TinyF32MatchesPyTorch) { check_model("tiny"); }
TEST(BertGolden, TinyF16WeightsMatchPyTorch) { check_model("tiny_f16"); }
TEST(BertGolden, TinyBf16WeightsMatchPyTorch) { check_model("tiny_bf16"); }
TEST(BertGolden, UnprefixedNamesWithGammaBetaMatchPyTorch) { check_model("tiny_noprefix_encoder"); }
TEST(BertGolden, RegressionHeadMatchesPyTorch) { check_model("tiny_regression"); }
TEST(BertGolden, GeluTanhActivationMatchesPyTorch) { check_model("tiny_gelu_new"); }
TEST(BertGolden, ReluActivationMatchesPyTorch) { check_model("tiny_relu"); }
TEST(BertGolden, BertBaseShapeMatchesPyTorch) { check_model("base"); }

// The batch must not influence a sequence's result: each sequence alone equals its row in the
// mixed-length batch (to float tolerance, since GEMM blocking depends on the token count).
TEST(BertGolden, SequenceAloneEqualsSequenceInBatch) {
  const Golden g = load_golden("tiny");
  BertModel model = BertModel::load(g.dir, {.threads = 2});
  std::vector<BertSequence> batch;
  for (std::size_t b = 0; b < g.ids.size(); ++b) batch.push_back({g.ids[b], g.types[b]});
  const BertOutputs all = model.forward(batch, BertOutputKind::logits);
  for (std::size_t b = 0; b < g.ids.size(); ++b) {
    const BertOutputs one = model.forward(std::span(batch).subspan(b, 1), BertOutputKind::logits);
    for (int64_t j = 0; j < all.num_labels; ++j) {
      EXPECT_NEAR(one.logits[j], all.logits[b * all.num_labels + j], 1e-5)
          << "sequence " << b << " label " << j;
    }
  }
}

}  // namespace
}  // namespace octet
