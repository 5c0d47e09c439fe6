// Calibrators (QUANT_SPEC A.2, B.2, C.4, C.5, C.9): hand-computable cases and a Gaussian with
// outliers whose optimal threshold bands are derived in the comments.
#include "quant/observer.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <numeric>
#include <random>
#include <vector>

#include "octet/error.h"

namespace octet::quant {
namespace {

using nlohmann::json;

std::unique_ptr<Observer> make(CalibratorKind kind, int bins = 2048) {
  CalibratorSpec s;
  s.kind = kind;
  s.bins = bins;
  return make_observer(s);
}

TEST(MaxObserver, TracksRunningMinMaxAcrossBatches) {
  auto obs = make(CalibratorKind::max);
  obs->observe(std::vector<float>{1.0f, -3.0f});
  obs->observe(std::vector<float>{2.0f, 0.5f});
  Range r = obs->range(ThresholdMode::symmetric);
  EXPECT_EQ(r.min, -3.0f);
  EXPECT_EQ(r.max, 3.0f);
  r = obs->range(ThresholdMode::independent);
  EXPECT_EQ(r.min, -3.0f);
  EXPECT_EQ(r.max, 2.0f);
  r = obs->range(ThresholdMode::conjugate);
  EXPECT_EQ(r.min, -3.0f);
  EXPECT_EQ(r.max, 3.0f);
  EXPECT_EQ(obs->count(), 4);
}

TEST(MaxObserver, IndependentRangeAlwaysContainsZero) {
  auto obs = make(CalibratorKind::max);
  obs->observe(std::vector<float>{1.0f, 2.0f});
  const Range r = obs->range(ThresholdMode::independent);
  EXPECT_EQ(r.min, 0.0f);
  EXPECT_EQ(r.max, 2.0f);
}

TEST(Observer, RangeBeforeAnyDataIsAnError) {
  for (auto kind : {CalibratorKind::max, CalibratorKind::ema, CalibratorKind::kl}) {
    auto obs = make(kind);
    obs->observe(std::vector<float>{});  // an empty batch is not an observation
    EXPECT_THROW(obs->range(ThresholdMode::symmetric), InvalidArgument) << to_string(kind);
  }
}

TEST(Observer, RejectsNonFiniteActivations) {
  for (auto kind : {CalibratorKind::max, CalibratorKind::ema, CalibratorKind::percentile}) {
    auto obs = make(kind);
    EXPECT_THROW(obs->observe(std::vector<float>{1.0f, std::numeric_limits<float>::quiet_NaN()}),
                 InvalidArgument);
    EXPECT_THROW(obs->observe(std::vector<float>{-std::numeric_limits<float>::infinity()}),
                 InvalidArgument);
  }
}

TEST(Observer, RejectsBadCalibratorParameters) {
  CalibratorSpec s;
  s.kind = CalibratorKind::ema;
  s.decay = 1.0;
  EXPECT_THROW(make_observer(s), InvalidArgument);
  s.decay = 0.9;
  s.kind = CalibratorKind::percentile;
  s.percentile = 100.5;
  EXPECT_THROW(make_observer(s), InvalidArgument);
  s.percentile = 99.9;
  s.bins = 64;
  EXPECT_THROW(make_observer(s), InvalidArgument);
}

TEST(EmaObserver, FirstBatchInitialisesThenDecays) {
  // Q8BERT A.2 with decay 0.9: thr = 10; thr = 10 - 0.1 * (10 - 20) = 11;
  // thr = 11 - 0.1 * (11 - 0.5) = 9.95.
  CalibratorSpec s;
  s.kind = CalibratorKind::ema;
  s.decay = 0.9;
  auto obs = make_observer(s);
  obs->observe(std::vector<float>{-10.0f, 1.0f});
  EXPECT_FLOAT_EQ(obs->range(ThresholdMode::symmetric).max, 10.0f);
  obs->observe(std::vector<float>{20.0f, -5.0f});
  EXPECT_FLOAT_EQ(obs->range(ThresholdMode::symmetric).max, 11.0f);
  obs->observe(std::vector<float>{0.5f, -0.5f});
  EXPECT_FLOAT_EQ(obs->range(ThresholdMode::symmetric).max, 9.95f);
}

TEST(EmaObserver, Q8bertDefaultDecayMovesOneTenThousandth) {
  auto obs = make(CalibratorKind::ema);  // decay 0.9999
  obs->observe(std::vector<float>{1.0f});
  obs->observe(std::vector<float>{2.0f});
  EXPECT_DOUBLE_EQ(obs->to_json()["abs_max"].get<double>(), 1.0001);
}

TEST(EmaObserver, IbertMinMaxMomentum) {
  // I-BERT B.2, momentum 0.95: min = 0.95 * -2 + 0.05 * -4 = -2.1; max = 0.95 * 1 + 0.05 * 3 = 1.1.
  CalibratorSpec s;
  s.kind = CalibratorKind::ema;
  s.decay = 0.95;
  auto obs = make_observer(s);
  obs->observe(std::vector<float>{-2.0f, 1.0f});
  obs->observe(std::vector<float>{-4.0f, 3.0f});
  const Range r = obs->range(ThresholdMode::independent);
  EXPECT_FLOAT_EQ(r.min, -2.1f);
  EXPECT_FLOAT_EQ(r.max, 1.1f);
  // Conjugate: max(|min|, max) of the EMAs; symmetric: the EMA of max|x| (2, 4 -> 2.1).
  EXPECT_FLOAT_EQ(obs->range(ThresholdMode::conjugate).max, 2.1f);
  EXPECT_FLOAT_EQ(obs->range(ThresholdMode::symmetric).max, 2.1f);
}

TEST(EmaObserver, RefusesToMerge) {
  auto a = make(CalibratorKind::ema), b = make(CalibratorKind::ema);
  a->observe(std::vector<float>{1.0f});
  b->observe(std::vector<float>{2.0f});
  EXPECT_THROW(a->merge(*b), Unsupported);
}

TEST(PercentileThreshold, InterpolatesInsideTheCrossingBin) {
  const std::vector<double> h = {1, 1, 1, 1};
  EXPECT_DOUBLE_EQ(percentile_threshold(h, 1.0, 50.0), 2.0);   // target 2: end of bin 1
  EXPECT_DOUBLE_EQ(percentile_threshold(h, 1.0, 62.5), 2.5);   // target 2.5: half of bin 2
  EXPECT_DOUBLE_EQ(percentile_threshold(h, 0.5, 100.0), 2.0);  // everything: the last edge
  const std::vector<double> gap = {2, 0, 0, 2};
  EXPECT_DOUBLE_EQ(percentile_threshold(gap, 1.0, 75.0), 3.5);  // skips the empty bins
}

TEST(SmoothedKl, MatchesHandComputedValue) {
  // p = {1, 0} smoothed -> {1 - 1e-4, 1e-4}; q = {1, 1} has no zeros -> {0.5, 0.5}.
  const double kl = smoothed_kl(std::vector<double>{1, 0}, std::vector<double>{1, 1});
  const double a = 1 - 1e-4, b = 1e-4;
  EXPECT_NEAR(kl, a * std::log(a / 0.5) + b * std::log(b / 0.5), 1e-12);
  EXPECT_EQ(smoothed_kl(std::vector<double>{3, 1}, std::vector<double>{3, 1}), 0.0);
  EXPECT_TRUE(std::isinf(smoothed_kl(std::vector<double>{0, 0}, std::vector<double>{1, 1})));
}

TEST(KlThresholdAbs, ClipsAnIsolatedOutlierOfADenseRamp) {
  // hist[j] = j + 1 for j < 128 (8256 counts), one outlier in bin 1023 of 1024.
  // i = 128: Q is the unclipped ramp itself (one bin per level) and P differs only by the outlier
  // moved into bin 127: KL = sum p ln(p/q) ~ 1e-4. Every i >= 256 merges ramp bins in pairs or
  // more, and 128 < i < 256 leaves the outlier alone in bin i-1 sharing the last level with
  // bin 127 (Q spreads 128 counts over 2 bins): both cost more, so i* = 128.
  std::vector<double> h(1024, 0.0);
  for (int j = 0; j < 128; ++j) h[j] = j + 1;
  h[1023] = 1;
  EXPECT_DOUBLE_EQ(kl_threshold_abs(h, 0.5, 128), 128 * 0.5);
}

TEST(KlThresholdAbs, TiesGoToTheLargerThreshold) {
  // Flat mass in bins 0..127 and one count in bin 255 of 256: at i = 256 the levels are bin pairs,
  // every pair is flat or holds the lone outlier, so Q == P and KL = 0; 128 < i < 256 also give
  // Q == P (the outlier shares the last level with bin 127, same count). All those tie at 0; the
  // rule keeps the largest, i = 256, so the outlier stays representable.
  std::vector<double> h(256, 0.0);
  for (int j = 0; j < 128; ++j) h[j] = 1;
  h[255] = 1;
  EXPECT_DOUBLE_EQ(kl_threshold_abs(h, 1.0, 128), 256.0);
}

TEST(KlThresholdSigned, ClipsSymmetricOutliers) {
  // The signed mirror of the ramp case: ramp on both sides of 0, an outlier at each end.
  const int half = 1024;
  std::vector<double> h(2 * half, 0.0);
  for (int j = 0; j < 128; ++j) h[half + j] = h[half - 1 - j] = 128 - j;
  h.front() = h.back() = 1;
  const double t = kl_threshold_signed(h, 1.0, 255);
  EXPECT_GE(t, 128.0);
  EXPECT_LE(t, 160.0);
}

TEST(MseThreshold, CoversUniformMassWithoutClipping) {
  // Mass in [0, 10): any t < 10 clips bin 9 (centre 9.5) by at least 0.5^2 / 10 per count, far
  // above the rounding noise (t / 127)^2 / 12 ~ 5e-4 of t ~ 10; growing t past 10 only adds
  // rounding noise. So t* is the first edge that covers 9.5 without clipping: 10 (or 11 when
  // rounding luck favours it).
  std::vector<double> h(2048, 0.0);
  for (int j = 0; j < 10; ++j) h[j] = 100;
  const double t = mse_threshold(h, 1.0, 127);
  EXPECT_GE(t, 10.0);
  EXPECT_LE(t, 11.0);
}

TEST(HistogramObserver, GrowsRangeByDoublingAndKeepsCounts) {
  auto obs = make(CalibratorKind::percentile, 128);
  obs->observe(std::vector<float>{1.0f, -1.0f});  // range 1, bin width 1/128: both in bin 127
  obs->observe(std::vector<float>{3.0f});         // range 1 -> 2 -> 4, width 1/32
  const json j = obs->to_json();
  EXPECT_EQ(j["range"].get<double>(), 4.0);
  const auto pos = j["positive"].get<std::vector<double>>();
  const auto neg = j["negative"].get<std::vector<double>>();
  EXPECT_EQ(pos[31], 1.0);  // bin 127 -> 63 -> 31
  EXPECT_EQ(neg[31], 1.0);
  EXPECT_EQ(pos[96], 1.0);  // 3 * 32
  EXPECT_EQ(
      std::accumulate(pos.begin(), pos.end(), 0.0) + std::accumulate(neg.begin(), neg.end(), 0.0),
      3.0);
}

TEST(HistogramObserver, AllZeroTensorGivesZeroRange) {
  auto obs = make(CalibratorKind::kl);
  obs->observe(std::vector<float>(100, 0.0f));
  const Range r = obs->range(ThresholdMode::symmetric);
  EXPECT_EQ(r.min, 0.0f);
  EXPECT_EQ(r.max, 0.0f);
}

TEST(HistogramObserver, IndependentPercentileCutsEachTail) {
  // 1000 values uniform in (-1, 0) and 1000 in (0, 3): 99% cuts 0.5% of all mass from each tail,
  // i.e. 1% of each side: about -0.99 and 2.97.
  CalibratorSpec s;
  s.kind = CalibratorKind::percentile;
  s.percentile = 99.0;
  auto obs = make_observer(s);
  std::vector<float> x;
  for (int i = 0; i < 1000; ++i) {
    x.push_back(-(i + 0.5f) / 1000.0f);
    x.push_back(3.0f * (i + 0.5f) / 1000.0f);
  }
  obs->observe(x);
  const Range r = obs->range(ThresholdMode::independent);
  EXPECT_NEAR(r.min, -0.99f, 0.01f);
  EXPECT_NEAR(r.max, 2.97f, 0.01f);
  const Range c = obs->range(ThresholdMode::conjugate);
  EXPECT_EQ(c.max, -c.min);
  EXPECT_NEAR(c.max, 2.97f, 0.01f);
}

// N(0, 1), 200000 samples (seed 42), plus 4 samples at +50 and 4 at -50.
std::vector<float> gaussian_with_outliers(int n, int outliers_per_side) {
  std::mt19937 rng(42);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> x(n);
  for (float& v : x) v = normal(rng);
  for (int i = 0; i < outliers_per_side; ++i) {
    x.push_back(50.0f);
    x.push_back(-50.0f);
  }
  return x;
}

float threshold_of(const CalibratorSpec& spec, const std::vector<float>& x) {
  auto obs = make_observer(spec);
  // Two batches: the histogram range is set by the first and must grow for the outliers.
  obs->observe(std::span<const float>(x).first(x.size() / 2));
  obs->observe(std::span<const float>(x).subspan(x.size() / 2));
  const Range r = obs->range(ThresholdMode::symmetric);
  EXPECT_EQ(r.min, -r.max);
  return r.max;
}

TEST(GaussianWithOutliers, EachCalibratorPicksItsJustifiedBand) {
  const std::vector<float> x = gaussian_with_outliers(200000, 4);
  CalibratorSpec s;

  // max: the outliers themselves.
  s.kind = CalibratorKind::max;
  EXPECT_EQ(threshold_of(s, x), 50.0f);

  // percentile 99.99 of |x|: 0.01% of 200008 = 20 samples lie above T; 8 are outliers, so 12
  // Gaussian ones: P(|Z| > T) = 6e-5, T = 4.01 sigma. Poisson noise on 12 (+-3.5) moves T by
  // under +-0.15; the 2048-bin grid (width <= 50 / 2048 = 0.024) adds less.
  s.kind = CalibratorKind::percentile;
  s.percentile = 99.99;
  const float p = threshold_of(s, x);
  EXPECT_GE(p, 3.7f);
  EXPECT_LE(p, 4.4f);

  // KL (both forms): the candidates start at 128 bins (128 * 50 / 2048 = 3.1 sigma, where 0.2% of
  // the mass piles into the clip bin); at 8 sigma the Gaussian's bulk (|x| < 3) would get only
  // 128 * 3 / 8 = 48 levels and the tail beyond 4.5 sigma holds ~1 sample, so merging costs more
  // than clipping 8 outliers of 200008. Band: [3, 8] sigma.
  s.kind = CalibratorKind::kl;
  s.kl_form = KlForm::abs;
  const float kl_abs = threshold_of(s, x);
  EXPECT_GE(kl_abs, 3.0f);
  EXPECT_LE(kl_abs, 8.0f);
  s.kl_form = KlForm::signed_;
  const float kl_signed = threshold_of(s, x);
  EXPECT_GE(kl_signed, 3.0f);
  EXPECT_LE(kl_signed, 8.0f);

  // MSE is not robust to outliers, and this test pins that down: the expected error is
  //   E(T) = 2 * int_T^inf (z - T)^2 phi(z) dz + T^2 / (12 * 127^2) + (8 / 200008) * (50 - T)^2
  // (clipping of the Gaussian, uniform rounding noise, clipping of the outliers). Its minimum,
  // found numerically, is at T = 44.3 (E = 0.0114, against 0.085 at T = 4 and 0.0129 at T = 50).
  s.kind = CalibratorKind::mse;
  const float mse = threshold_of(s, x);
  EXPECT_GE(mse, 41.0f);
  EXPECT_LE(mse, 47.0f);
}

TEST(GaussianWithoutOutliers, MseFindsTheAnalyticOptimum) {
  // Without outliers E(T) above (first two terms) is minimal at T = 3.92 sigma (ACIQ's 8-bit
  // Gaussian value); sampling (200000 draws) and the bin grid keep the search within +-0.3.
  const std::vector<float> x = gaussian_with_outliers(200000, 0);
  CalibratorSpec s;
  s.kind = CalibratorKind::mse;
  const float t = threshold_of(s, x);
  EXPECT_GE(t, 3.6f);
  EXPECT_LE(t, 4.25f);
}

TEST(ObserverJson, RoundTripPreservesStatisticsAndRange) {
  const std::vector<float> x = gaussian_with_outliers(5000, 1);
  for (auto kind : {CalibratorKind::max, CalibratorKind::ema, CalibratorKind::percentile,
                    CalibratorKind::kl, CalibratorKind::mse}) {
    auto obs = make(kind);
    obs->observe(x);
    const json j = obs->to_json();
    auto back = observer_from_json(json::parse(j.dump()));
    EXPECT_EQ(back->to_json(), j) << to_string(kind);
    EXPECT_EQ(back->range(ThresholdMode::symmetric).max, obs->range(ThresholdMode::symmetric).max)
        << to_string(kind);
  }
}

TEST(ObserverJson, RejectsMalformedStatisticsNamingTheKey) {
  auto obs = make(CalibratorKind::kl, 128);
  obs->observe(std::vector<float>{1.0f, -2.0f});
  const json good = obs->to_json();
  auto expect_error = [](json j, const std::string& needle) {
    try {
      observer_from_json(j, "calib.json: layer0.query");
      ADD_FAILURE() << "accepted " << j.dump().substr(0, 120);
    } catch (const ModelFormatError& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  json j = good;
  j["extra"] = 1;
  expect_error(j, "unknown key \"extra\"");
  j = good;
  j["kind"] = "histogram";
  expect_error(j, "\"kind\"");
  j = good;
  j.erase("positive");
  expect_error(j, "missing key \"positive\"");
  j = good;
  j["positive"].push_back(1.0);
  expect_error(j, "\"positive\"");
  j = good;
  j["negative"][3] = -1.0;
  expect_error(j, "\"negative\"[3]");
  j = good;
  j["count"] = -5;
  expect_error(j, "\"count\"");
  j = good;
  j["kl_form"] = "both";
  expect_error(j, "\"kl_form\"");
  j = good;
  j["percentile"] = 99.0;  // a parameter of another calibrator kind
  expect_error(j, "unknown key \"percentile\"");
  j = good;
  j["bins"] = 16;
  expect_error(j, "bins");
  expect_error(json::array(), "expected an object");
}

TEST(ObserverMerge, SameRangeMergeEqualsOneObserverOnAllData) {
  const std::vector<float> a = {5.0f, -1.0f, 0.3f}, b = {-5.0f, 2.0f, 0.7f};
  auto x = make(CalibratorKind::kl), y = make(CalibratorKind::kl), all = make(CalibratorKind::kl);
  x->observe(a);
  y->observe(b);
  all->observe(a);
  all->observe(b);
  x->merge(*y);
  EXPECT_EQ(x->to_json(), all->to_json());
}

TEST(ObserverMerge, DifferentRangesRebinKeepingMass) {
  auto x = make(CalibratorKind::percentile, 128), y = make(CalibratorKind::percentile, 128);
  x->observe(std::vector<float>{0.5f, -0.25f});
  y->observe(std::vector<float>{3.0f, 1.0f, -2.0f});
  x->merge(*y);
  const json j = x->to_json();
  EXPECT_EQ(j["range"].get<double>(), 3.0);
  EXPECT_EQ(j["count"].get<int64_t>(), 5);
  const auto pos = j["positive"].get<std::vector<double>>();
  const auto neg = j["negative"].get<std::vector<double>>();
  EXPECT_NEAR(std::accumulate(pos.begin(), pos.end(), 0.0), 3.0, 1e-9);
  EXPECT_NEAR(std::accumulate(neg.begin(), neg.end(), 0.0), 2.0, 1e-9);
  EXPECT_EQ(x->range(ThresholdMode::independent).min, -2.0f);
}

TEST(ObserverMerge, RejectsDifferentCalibrators) {
  auto x = make(CalibratorKind::kl), y = make(CalibratorKind::mse);
  EXPECT_THROW(x->merge(*y), InvalidArgument);
}

}  // namespace
}  // namespace octet::quant
