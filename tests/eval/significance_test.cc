// Paired bootstrap of a metric difference (eval/significance.h): exact whole-set values, the
// interval checked against the normal approximation of a paired mean, determinism in the seed,
// shared draws across comparisons, undefined draws, and argument errors.
#include "eval/significance.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "common/test_support.h"
#include "octet/error.h"

namespace octet::eval {
namespace {

using ::testing::HasSubstr;

data::Dataset make_gold(data::Task task, const std::vector<float>& labels) {
  return test::labelled_dataset(task, labels);
}

// n examples of SST-2 with gold labels alternating 0/1; A right on the first `a_right`, B on the
// first `b_right` (a wrong answer is the other class).
struct Pair {
  data::Dataset gold;
  Predictions a, b;
};
Pair accuracy_pair(int n, int a_right, int b_right) {
  std::vector<float> labels(static_cast<std::size_t>(n));
  Pair p;
  for (int i = 0; i < n; ++i) {
    const int g = i % 2;
    labels[static_cast<std::size_t>(i)] = static_cast<float>(g);
    p.a.labels.push_back(i < a_right ? g : 1 - g);
    p.b.labels.push_back(i < b_right ? g : 1 - g);
  }
  p.gold = make_gold(data::Task::sst2, labels);
  return p;
}

TEST(PairedBootstrap, IdenticalPredictionsDifferByNothing) {
  const Pair p = accuracy_pair(200, 150, 150);
  const PairedComparison c = paired_bootstrap(data::Task::sst2, p.a, p.a, p.gold, 200);
  EXPECT_EQ(c.metric, "accuracy");
  EXPECT_DOUBLE_EQ(c.a, 0.75);
  EXPECT_DOUBLE_EQ(c.b, 0.75);
  EXPECT_EQ(c.diff, 0.0);
  EXPECT_EQ(c.lo, 0.0);
  EXPECT_EQ(c.hi, 0.0);
  EXPECT_EQ(c.disagree, 0u);
  EXPECT_EQ(c.undefined, 0u);
  ASSERT_EQ(c.replicates.size(), 200u);
  for (double d : c.replicates) EXPECT_EQ(d, 0.0);
}

TEST(PairedBootstrap, IntervalMatchesTheNormalApproximationOfAPairedMean) {
  // Accuracy difference = mean of d_i = [B right] - [A right]: here d_i = 1 on 60 of 1000
  // examples (B right where A is wrong), 0 elsewhere. The bootstrap distribution of the mean is
  // close to normal with sd = sqrt(p (1 - p) / n), p = 0.06.
  const int n = 1000;
  const Pair p = accuracy_pair(n, 700, 760);
  const PairedComparison c = paired_bootstrap(data::Task::sst2, p.a, p.b, p.gold, 2000, 7);
  EXPECT_DOUBLE_EQ(c.a, 0.70);
  EXPECT_DOUBLE_EQ(c.b, 0.76);
  EXPECT_NEAR(c.diff, 0.06, 1e-12);
  EXPECT_EQ(c.disagree, 60u);
  const double sd = std::sqrt(0.06 * 0.94 / n);
  EXPECT_LT(c.lo, c.diff);
  EXPECT_GT(c.hi, c.diff);
  EXPECT_NEAR(c.lo, 0.06 - 1.96 * sd, 0.25 * 1.96 * sd);
  EXPECT_NEAR(c.hi, 0.06 + 1.96 * sd, 0.25 * 1.96 * sd);
  // Every replicate is a whole number of examples out of n, and their mean is the difference.
  double mean = 0;
  for (double d : c.replicates) {
    EXPECT_NEAR(d * n, std::round(d * n), 1e-6);
    mean += d / static_cast<double>(c.replicates.size());
  }
  EXPECT_NEAR(mean, 0.06, 4 * sd / std::sqrt(2000.0));
}

TEST(PairedBootstrap, TheDrawsDependOnTheSeedOnly) {
  // Two different comparisons on the same gold set share their draws: for accuracy the replicate
  // difference is additive, so (C - A) = (C - B) + (B - A) on every draw.
  const Pair ab = accuracy_pair(300, 200, 220);
  const Pair bc = accuracy_pair(300, 220, 250);
  const auto c_ab = paired_bootstrap(data::Task::sst2, ab.a, ab.b, ab.gold, 300, 11);
  const auto c_bc = paired_bootstrap(data::Task::sst2, bc.a, bc.b, bc.gold, 300, 11);
  const auto c_ac = paired_bootstrap(data::Task::sst2, ab.a, bc.b, ab.gold, 300, 11);
  for (std::size_t r = 0; r < 300; ++r) {
    EXPECT_NEAR(c_ac.replicates[r], c_ab.replicates[r] + c_bc.replicates[r], 1e-12) << r;
  }
  const auto again = paired_bootstrap(data::Task::sst2, ab.a, ab.b, ab.gold, 300, 11);
  EXPECT_EQ(again.replicates, c_ab.replicates);
  const auto other = paired_bootstrap(data::Task::sst2, ab.a, ab.b, ab.gold, 300, 12);
  EXPECT_NE(other.replicates, c_ab.replicates);
}

TEST(PairedBootstrap, MccOfCola) {
  // B fixes 40 of A's 100 false "acceptable" answers on 500 examples.
  std::vector<float> labels;
  Predictions a, b;
  for (int i = 0; i < 500; ++i) {
    const int g = i < 150 ? 0 : 1;
    labels.push_back(static_cast<float>(g));
    a.labels.push_back(i < 50 ? 0 : 1);
    b.labels.push_back(i < 90 ? 0 : 1);
  }
  const auto gold = make_gold(data::Task::cola, labels);
  const PairedComparison c = paired_bootstrap(data::Task::cola, a, b, gold, 500);
  EXPECT_EQ(c.metric, "mcc");
  EXPECT_EQ(c.disagree, 40u);
  EXPECT_GT(c.b, c.a);
  EXPECT_GT(c.lo, 0.0);  // 40 one-sided changes are far outside the noise
  EXPECT_LT(c.lo, c.diff);
  EXPECT_GT(c.hi, c.diff);
}

TEST(PairedBootstrap, StsbScoresAndUndefinedDraws) {
  std::vector<float> labels;
  Predictions a, b, flat;
  double mean_abs = 0;
  for (int i = 0; i < 400; ++i) {
    const double g = (i * 37 % 51) / 10.0;
    labels.push_back(static_cast<float>(g));
    a.scores.push_back(g + ((i * 13) % 7 - 3) * 0.3);
    // Twice A: a power-of-two scale leaves every correlation bit for bit as it is.
    b.scores.push_back(2.0 * a.scores.back());
    mean_abs += std::fabs(a.scores.back()) / 400.0;
    flat.scores.push_back(2.5);
  }
  const auto gold = make_gold(data::Task::stsb, labels);
  const PairedComparison c = paired_bootstrap(data::Task::stsb, a, b, gold, 200);
  EXPECT_EQ(c.metric, "pearson_and_spearman");
  EXPECT_EQ(c.diff, 0.0);
  EXPECT_EQ(c.lo, 0.0);
  EXPECT_EQ(c.hi, 0.0);
  EXPECT_NEAR(c.mean_abs_diff, mean_abs, 1e-12);
  EXPECT_EQ(c.disagree, 0u);
  // A constant prediction has no correlation: every draw is undefined, and so is the interval.
  const PairedComparison u = paired_bootstrap(data::Task::stsb, a, flat, gold, 100);
  EXPECT_EQ(u.undefined, 100u);
  EXPECT_TRUE(std::isnan(u.lo));
  EXPECT_TRUE(std::isnan(u.hi));
  EXPECT_TRUE(std::isnan(u.replicates[0]));
}

TEST(PairedBootstrap, ArgumentsAreChecked) {
  const Pair p = accuracy_pair(50, 30, 30);
  auto message = [](auto&& f) -> std::string {
    try {
      f();
    } catch (const InvalidArgument& e) {
      return e.what();
    }
    return "no InvalidArgument";
  };
  EXPECT_THAT(message([&] { paired_bootstrap(data::Task::sst2, p.a, p.b, p.gold, 99); }),
              HasSubstr("99 resamples, expected at least 100"));
  EXPECT_THAT(message([&] { paired_bootstrap(data::Task::sst2, p.a, p.b, p.gold, 100, 1, 1.0); }),
              HasSubstr("confidence 1"));
  Predictions shorter = p.b;
  shorter.labels.pop_back();
  EXPECT_THAT(message([&] { paired_bootstrap(data::Task::sst2, p.a, shorter, p.gold); }),
              HasSubstr("49 predicted labels for 50 examples"));
  const data::Dataset empty = make_gold(data::Task::sst2, {});
  EXPECT_THAT(message([&] { paired_bootstrap(data::Task::sst2, {}, {}, empty); }),
              HasSubstr("gold.tsv has no examples to draw from"));
}

}  // namespace
}  // namespace octet::eval
