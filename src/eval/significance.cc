#include "eval/significance.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>

#include "eval/metrics.h"
#include "octet/error.h"

namespace octet::eval {

PairedComparison paired_bootstrap(data::Task task, const Predictions& a, const Predictions& b,
                                  const data::Dataset& gold, int resamples, uint64_t seed,
                                  double confidence) {
  if (resamples < 100) {
    throw InvalidArgument(
        fmt::format("paired_bootstrap: {} resamples, expected at least 100", resamples));
  }
  if (!(confidence > 0.0 && confidence < 1.0)) {
    throw InvalidArgument(
        fmt::format("paired_bootstrap: confidence {}, expected a value in (0, 1)", confidence));
  }
  if (gold.examples.empty()) {
    throw InvalidArgument(
        fmt::format("paired_bootstrap: {} has no examples to draw from", gold.source.string()));
  }
  // Whole-set metrics first: they check sizes, labels and the dataset.
  const MetricResult ma = glue_metrics(task, a.labels, a.scores, gold);
  const MetricResult mb = glue_metrics(task, b.labels, b.scores, gold);
  const bool regression = data::task_spec(task).regression;
  const std::size_t n = gold.examples.size();

  PairedComparison c;
  c.metric = ma.main;
  c.a = ma.main_value();
  c.b = mb.main_value();
  c.diff = c.b - c.a;
  c.confidence = confidence;
  c.examples = n;
  c.resamples = resamples;
  for (std::size_t i = 0; i < n; ++i) {
    if (regression) {
      c.mean_abs_diff += std::fabs(b.scores[i] - a.scores[i]) / static_cast<double>(n);
    } else {
      c.disagree += a.labels[i] != b.labels[i];
    }
  }

  std::vector<double> gold_values(n), gd(n);
  for (std::size_t i = 0; i < n; ++i) gold_values[i] = gold.examples[i].label;
  // One draw: the gold values and both models' predictions of the drawn examples.
  Predictions da, db;
  if (regression) {
    da.scores.resize(n);
    db.scores.resize(n);
  } else {
    da.labels.resize(n);
    db.labels.resize(n);
  }
  std::mt19937_64 rng(seed);
  c.replicates.reserve(static_cast<std::size_t>(resamples));
  std::vector<double> defined;
  defined.reserve(static_cast<std::size_t>(resamples));
  for (int r = 0; r < resamples; ++r) {
    for (std::size_t i = 0; i < n; ++i) {
      const std::size_t k = static_cast<std::size_t>(rng() % n);
      gd[i] = gold_values[k];
      if (regression) {
        da.scores[i] = a.scores[k];
        db.scores[i] = b.scores[k];
      } else {
        da.labels[i] = a.labels[k];
        db.labels[i] = b.labels[k];
      }
    }
    const double d = task_metrics(task, db.labels, db.scores, gd).main_value() -
                     task_metrics(task, da.labels, da.scores, gd).main_value();
    c.replicates.push_back(std::isfinite(d) ? d : std::numeric_limits<double>::quiet_NaN());
    if (std::isfinite(d)) defined.push_back(d);
  }
  c.undefined = static_cast<std::size_t>(resamples) - defined.size();
  if (defined.empty()) {
    c.lo = c.hi = std::numeric_limits<double>::quiet_NaN();
    return c;
  }
  std::sort(defined.begin(), defined.end());
  // Percentile interval: the floor((1 - confidence) / 2 * m)-th and the mirrored order
  // statistic of the m defined replicates.
  const auto m = defined.size();
  const auto tail = static_cast<std::size_t>(std::floor((1.0 - confidence) / 2.0 * m));
  c.lo = defined[tail];
  c.hi = defined[m - 1 - tail];
  return c;
}

}  // namespace octet::eval
