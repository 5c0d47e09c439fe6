// Metrics against values worked out by hand and cross-checked with numpy re-statements of the
// scikit-learn / SciPy definitions: tests/fixtures/eval/metrics_reference.py and
// glue_dev_reference.py print every non-trivial constant below (run with /usr/bin/python3).
#include "eval/metrics.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <vector>

#include "common/test_support.h"
#include "octet/error.h"

namespace octet::eval {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;

constexpr double kTol = 1e-13;

template <typename Fn>
std::string invalid_argument_of(Fn fn) {
  try {
    fn();
  } catch (const InvalidArgument& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected InvalidArgument";
  return {};
}

// pred/gold with tp = 2 (rows 0, 2), fn = 1 (row 1), fp = 1 (row 3), tn = 1 (row 4).
const std::vector<int> kPred = {1, 0, 1, 1, 0};
const std::vector<int> kGold = {1, 1, 1, 0, 0};

TEST(AccuracyTest, CountsExactMatches) {
  EXPECT_DOUBLE_EQ(accuracy(kPred, kGold), 0.6);
  EXPECT_DOUBLE_EQ(accuracy(kGold, kGold), 1.0);
}

TEST(F1Test, IsHarmonicMeanOfPrecisionAndRecall) {
  // precision 2/3, recall 2/3.
  EXPECT_NEAR(f1_binary(kPred, kGold), 2.0 / 3.0, kTol);
  // Class 0 as positive: tp = 1, fp = 1 (row 1), fn = 1 (row 3) -> 2 / 4.
  EXPECT_NEAR(f1_binary(kPred, kGold, 0), 0.5, kTol);
  // precision 1, recall 1/3 -> 2 * (1/3) / (4/3) = 0.5.
  EXPECT_NEAR(f1_binary(std::vector<int>{1, 0, 0, 0}, std::vector<int>{1, 1, 1, 0}), 0.5, kTol);
}

TEST(F1Test, IsZeroWithoutPositives) {
  const std::vector<int> zeros = {0, 0, 0, 0};
  EXPECT_EQ(f1_binary(zeros, zeros), 0.0);  // tp + fp + fn == 0: sklearn's zero_division = 0
  EXPECT_EQ(f1_binary(std::vector<int>{1, 1, 0, 0}, zeros), 0.0);
  EXPECT_EQ(f1_binary(zeros, std::vector<int>{0, 1, 0, 1}), 0.0);
}

TEST(MatthewsTest, MatchesBinaryFormula) {
  // (tp tn - fp fn) / sqrt((tp+fp)(tp+fn)(tn+fp)(tn+fn)) = (2 - 1) / sqrt(3 * 3 * 2 * 2) = 1/6.
  EXPECT_NEAR(matthews_corrcoef(kPred, kGold), 1.0 / 6.0, kTol);
  EXPECT_NEAR(matthews_corrcoef(kGold, kGold), 1.0, kTol);
  const std::vector<int> inverse = {0, 0, 0, 1, 1};
  EXPECT_NEAR(matthews_corrcoef(inverse, kGold), -1.0, kTol);
}

TEST(MatthewsTest, MatchesMultiClassFormula) {
  // c = 6, s = 10, t = (3, 3, 4), p = (4, 3, 3): (60 - 33) / sqrt(66 * 66) = 9/22.
  const std::vector<int> pred = {0, 2, 1, 0, 0, 2, 0, 1, 2, 1};
  const std::vector<int> gold = {0, 1, 2, 0, 1, 2, 0, 1, 2, 2};
  EXPECT_NEAR(matthews_corrcoef(pred, gold), 9.0 / 22.0, kTol);
  EXPECT_NEAR(matthews_corrcoef(pred, gold), 0.40909090909090912, kTol);
  // Labels need not be 0-based or contiguous.
  std::vector<int> p2, g2;
  for (int v : pred) p2.push_back(v * 10 - 7);
  for (int v : gold) g2.push_back(v * 10 - 7);
  EXPECT_NEAR(matthews_corrcoef(p2, g2), 9.0 / 22.0, kTol);
}

TEST(MatthewsTest, IsZeroWhenUndefined) {
  const std::vector<int> ones = {1, 1, 1, 1};
  const std::vector<int> mixed = {1, 0, 1, 0};
  EXPECT_EQ(matthews_corrcoef(mixed, ones), 0.0);  // gold all one class
  EXPECT_EQ(matthews_corrcoef(ones, mixed), 0.0);  // constant predictions
  EXPECT_EQ(matthews_corrcoef(ones, ones), 0.0);   // both constant, even though all correct
}

TEST(PearsonTest, MatchesHandComputedValue) {
  // dx = (-2,-1,0,1,2), dy = (-2,0,1,0,1): 6 / sqrt(10 * 6).
  const std::vector<double> x = {1, 2, 3, 4, 5}, y = {2, 4, 5, 4, 5};
  EXPECT_NEAR(pearson(x, y), 6.0 / std::sqrt(60.0), kTol);
  EXPECT_NEAR(pearson(x, y), 0.77459666924148352, kTol);
  EXPECT_NEAR(pearson(x, x), 1.0, kTol);
  const std::vector<double> neg = {10, 8, 6, 4, 2};
  EXPECT_NEAR(pearson(x, neg), -1.0, kTol);
  EXPECT_GE(pearson(x, neg), -1.0);  // clamped: rounding never yields |r| > 1
}

TEST(PearsonTest, IsNanWhenAVarianceIsZero) {
  const std::vector<double> x = {1, 2, 3}, c = {2.5, 2.5, 2.5};
  EXPECT_TRUE(std::isnan(pearson(x, c)));
  EXPECT_TRUE(std::isnan(pearson(c, x)));
  const std::vector<double> with_nan = {1, NAN, 3};
  EXPECT_TRUE(std::isnan(pearson(x, with_nan)));
}

TEST(SpearmanTest, UsesAverageRanksForTies) {
  // ranks (1, 2.5, 2.5, 4, 5) and (1, 4, 2.5, 2.5, 5): 7.25 / 9.5 = 29/38.
  const std::vector<double> x = {1, 2, 2, 3, 4}, y = {1, 3, 2, 2, 5};
  EXPECT_NEAR(spearman(x, y), 29.0 / 38.0, kTol);
  EXPECT_NEAR(spearman(x, y), 0.76315789473684215, kTol);
  // Any strictly increasing transform has rank correlation 1.
  const std::vector<double> a = {0.1, 3, -2, 7},
                            b = {std::exp(0.1), std::exp(3.0), std::exp(-2.0), std::exp(7.0)};
  EXPECT_NEAR(spearman(a, b), 1.0, kTol);
}

TEST(SpearmanTest, IsNanForConstantOrNanInput) {
  const std::vector<double> x = {1, 2, 3}, c = {4, 4, 4}, n = {1, NAN, 2};
  EXPECT_TRUE(std::isnan(spearman(x, c)));
  EXPECT_TRUE(std::isnan(spearman(x, n)));
}

// The sequences of metrics_reference.py's series(): 1000 points with many ties.
TEST(MetricsSweepTest, MatchesNumpyReference) {
  const int n = 1000;
  std::vector<double> x(n), y(n);
  std::vector<int> p(n), g(n);
  for (int i = 0; i < n; ++i) {
    x[i] = ((i * 37) % 101) / 7.0;
    y[i] = ((i * i * 13 + 5) % 97) / 3.0 + 0.5 * x[i];
    p[i] = (i * 7 + i / 3) % 3;
    g[i] = (i * 5 + i / 4) % 3;
  }
  EXPECT_NEAR(pearson(x, y), 0.2546751929104582, 1e-12);
  EXPECT_NEAR(spearman(x, y), 0.24392578999588305, 1e-12);
  EXPECT_NEAR(matthews_corrcoef(p, g), -0.0023237911696203256, 1e-12);
  EXPECT_NEAR(accuracy(p, g), 0.332, 1e-15);
  EXPECT_NEAR(f1_binary(p, g, 2), 0.28130360205831906, 1e-12);
}

TEST(MetricsArgumentTest, RejectsMismatchedSizes) {
  const std::vector<int> three = {0, 1, 0};
  EXPECT_THAT(invalid_argument_of([&] { accuracy(kPred, three); }),
              AllOf(HasSubstr("accuracy"), HasSubstr("5 predictions vs 3")));
  EXPECT_THAT(invalid_argument_of([&] { f1_binary(three, kGold); }), HasSubstr("f1_binary"));
  EXPECT_THAT(invalid_argument_of([&] { matthews_corrcoef(three, kGold); }),
              HasSubstr("matthews_corrcoef"));
  const std::vector<double> a = {1, 2, 3}, b = {1, 2};
  EXPECT_THAT(invalid_argument_of([&] { pearson(a, b); }), HasSubstr("3 predictions vs 2"));
  EXPECT_THAT(invalid_argument_of([&] { spearman(a, b); }), HasSubstr("spearman"));
}

TEST(MetricsArgumentTest, RejectsEmptyAndSinglePointInputs) {
  const std::vector<int> none;
  EXPECT_THAT(invalid_argument_of([&] { accuracy(none, none); }), HasSubstr("at least 1"));
  const std::vector<double> one = {1.0};
  EXPECT_THAT(invalid_argument_of([&] { pearson(one, one); }), HasSubstr("at least 2"));
}

// ---- glue_metrics ----

data::Dataset make_gold(data::Task task, const std::vector<float>& labels) {
  return test::labelled_dataset(task, labels);
}

TEST(GlueMetricsTest, ReportsMccForCola) {
  const auto gold = make_gold(data::Task::cola, {1, 1, 1, 0, 0});
  const auto r = glue_metrics(data::Task::cola, kPred, {}, gold);
  EXPECT_EQ(r.main, "mcc");
  EXPECT_NEAR(r.main_value(), 1.0 / 6.0, kTol);
  ASSERT_EQ(r.values.size(), 1u);
}

TEST(GlueMetricsTest, ReportsAccuracyF1AndTheirMeanForMrpc) {
  const auto gold = make_gold(data::Task::mrpc, {1, 1, 1, 0, 0});
  const auto r = glue_metrics(data::Task::mrpc, kPred, {}, gold);
  EXPECT_EQ(r.main, "acc_and_f1");
  EXPECT_DOUBLE_EQ(r.at("accuracy"), 0.6);
  EXPECT_NEAR(r.at("f1"), 2.0 / 3.0, kTol);
  EXPECT_NEAR(r.main_value(), (0.6 + 2.0 / 3.0) / 2, kTol);
}

TEST(GlueMetricsTest, ReportsAccuracyForNliAndSentiment) {
  for (data::Task t : {data::Task::sst2, data::Task::rte, data::Task::qnli}) {
    const auto r = glue_metrics(t, kPred, {}, make_gold(t, {1, 1, 1, 0, 0}));
    EXPECT_EQ(r.main, "accuracy");
    EXPECT_DOUBLE_EQ(r.main_value(), 0.6);
  }
  const std::vector<int> pred = {0, 1, 2, 2};
  const auto gold = make_gold(data::Task::mnli, {0, 1, 1, 2});
  const auto r = glue_metrics(data::Task::mnli, pred, {}, gold);
  EXPECT_DOUBLE_EQ(r.main_value(), 0.75);
}

TEST(GlueMetricsTest, ReportsPearsonSpearmanAndTheirMeanForStsb) {
  const auto gold = make_gold(data::Task::stsb, {5.0f, 0.5f, 3.8f, 2.0f});
  const std::vector<double> scores = {4.5, 1.0, 3.0, 2.5};
  const auto r = glue_metrics(data::Task::stsb, {}, scores, gold);
  EXPECT_EQ(r.main, "pearson_and_spearman");
  // Gold labels are floats: 3.8f is not 3.8, so allow float rounding in the reference value.
  EXPECT_NEAR(r.at("pearson"), 0.97073822217150962, 1e-7);
  EXPECT_NEAR(r.at("spearman"), 1.0, kTol);
  EXPECT_NEAR(r.main_value(), (r.at("pearson") + 1.0) / 2, kTol);
}

TEST(GlueMetricsTest, RejectsMismatchedPredictionCount) {
  const auto gold = make_gold(data::Task::sst2, {1, 0, 1});
  EXPECT_THAT(invalid_argument_of([&] { glue_metrics(data::Task::sst2, kPred, {}, gold); }),
              AllOf(HasSubstr("5 predicted labels for 3 examples"), HasSubstr("gold.tsv")));
  const auto sts = make_gold(data::Task::stsb, {1, 2, 3});
  const std::vector<double> two = {1, 2};
  EXPECT_THAT(invalid_argument_of([&] { glue_metrics(data::Task::stsb, {}, two, sts); }),
              HasSubstr("2 predicted scores for 3 examples"));
}

TEST(GlueMetricsTest, RejectsClassIdOutsideTheTask) {
  const auto gold = make_gold(data::Task::rte, {1, 0, 1});
  const std::vector<int> pred = {1, 2, 0};
  EXPECT_THAT(invalid_argument_of([&] { glue_metrics(data::Task::rte, pred, {}, gold); }),
              AllOf(HasSubstr("prediction 1 is class 2"), HasSubstr("0..1")));
}

TEST(GlueMetricsTest, RejectsUnlabeledOrOtherTaskGold) {
  auto gold = make_gold(data::Task::sst2, {1, 0});
  gold.examples[1].has_label = false;
  const std::vector<int> pred = {1, 0};
  EXPECT_THAT(invalid_argument_of([&] { glue_metrics(data::Task::sst2, pred, {}, gold); }),
              HasSubstr("no gold labels"));
  const auto rte = make_gold(data::Task::rte, {1, 0});
  EXPECT_THAT(invalid_argument_of([&] { glue_metrics(data::Task::sst2, pred, {}, rte); }),
              AllOf(HasSubstr("task rte"), HasSubstr("expected sst2")));
}

// Reader and metrics end to end on the real dev sets, with toy predictors that depend only on
// byte lengths; tests/fixtures/eval/glue_dev_reference.py computes the same with numpy.
TEST(GlueMetricsOnSharedDevTest, MatchesNumpyOnCola) {
  const auto gold = data::read_glue(data::Task::cola, test::require_data("glue/CoLA/dev.tsv"));
  std::vector<int> pred;
  for (const auto& ex : gold.examples) pred.push_back(ex.text_a.size() % 3 != 0 ? 1 : 0);
  EXPECT_NEAR(glue_metrics(data::Task::cola, pred, {}, gold).main_value(), 0.01742376182718617,
              1e-12);
}

TEST(GlueMetricsOnSharedDevTest, MatchesNumpyOnMrpc) {
  const auto gold = data::read_glue(data::Task::mrpc, test::require_data("glue/MRPC/dev.tsv"));
  std::vector<int> pred;
  for (const auto& ex : gold.examples) {
    const auto a = static_cast<long>(ex.text_a.size()), b = static_cast<long>(ex.text_b.size());
    pred.push_back(std::abs(a - b) < 20 ? 1 : 0);
  }
  const auto r = glue_metrics(data::Task::mrpc, pred, {}, gold);
  EXPECT_NEAR(r.at("accuracy"), 0.59068627450980393, 1e-12);
  EXPECT_NEAR(r.at("f1"), 0.67572815533980579, 1e-12);
}

TEST(GlueMetricsOnSharedDevTest, MatchesNumpyOnStsb) {
  const auto gold = data::read_glue(data::Task::stsb, test::require_data("glue/STS-B/dev.tsv"));
  std::vector<double> pred;
  for (const auto& ex : gold.examples) {
    const double diff =
        std::abs(static_cast<double>(ex.text_a.size()) - static_cast<double>(ex.text_b.size()));
    pred.push_back(5.0 - std::min(5.0, diff / 10.0));
  }
  const auto r = glue_metrics(data::Task::stsb, {}, pred, gold);
  EXPECT_NEAR(r.at("pearson"), 0.034999145721744049, 1e-12);
  EXPECT_NEAR(r.at("spearman"), 0.027139228279269807, 1e-12);
}

TEST(MetricResultTest, RejectsUnknownKey) {
  MetricResult r{{{"accuracy", 0.5}}, "accuracy"};
  EXPECT_THAT(invalid_argument_of([&] { r.at("f1"); }),
              AllOf(HasSubstr("'f1'"), HasSubstr("accuracy")));
}

}  // namespace
}  // namespace octet::eval
