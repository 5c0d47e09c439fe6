#include "eval/metrics.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "octet/error.h"

namespace octet::eval {
namespace {

template <typename T>
void check_sizes(std::span<const T> a, std::span<const T> b, std::string_view what,
                 std::size_t min_size) {
  if (a.size() != b.size()) {
    throw InvalidArgument(
        fmt::format("{}: inputs differ in length: {} predictions vs {} gold "
                    "values (expected one prediction per example)",
                    what, a.size(), b.size()));
  }
  if (a.size() < min_size) {
    throw InvalidArgument(
        fmt::format("{}: expected at least {} values, found {}", what, min_size, a.size()));
  }
}

// scipy.stats.rankdata(method="average"): ranks from 1, tied values share the mean of the ranks
// they span.
std::vector<double> average_ranks(std::span<const double> v) {
  std::vector<std::size_t> order(v.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::stable_sort(order.begin(), order.end(),
                   [&](std::size_t a, std::size_t b) { return v[a] < v[b]; });
  std::vector<double> ranks(v.size());
  for (std::size_t i = 0; i < order.size();) {
    std::size_t j = i + 1;
    while (j < order.size() && v[order[j]] == v[order[i]]) ++j;
    // Ranks i+1 .. j (1-based) averaged.
    const double rank = 0.5 * static_cast<double>(i + 1 + j);
    for (std::size_t k = i; k < j; ++k) ranks[order[k]] = rank;
    i = j;
  }
  return ranks;
}

}  // namespace

double accuracy(std::span<const int> pred, std::span<const int> gold) {
  check_sizes(pred, gold, "accuracy", 1);
  std::size_t correct = 0;
  for (std::size_t i = 0; i < pred.size(); ++i) correct += pred[i] == gold[i];
  return static_cast<double>(correct) / static_cast<double>(pred.size());
}

double f1_binary(std::span<const int> pred, std::span<const int> gold, int positive) {
  check_sizes(pred, gold, "f1_binary", 1);
  // F1 = 2 tp / (2 tp + fp + fn), the harmonic mean of precision and recall without their
  // separate divisions by zero; sklearn's zero_division default makes the undefined case 0.
  double tp = 0, fp = 0, fn = 0;
  for (std::size_t i = 0; i < pred.size(); ++i) {
    const bool p = pred[i] == positive, g = gold[i] == positive;
    tp += p && g;
    fp += p && !g;
    fn += !p && g;
  }
  const double denom = 2 * tp + fp + fn;
  return denom == 0 ? 0.0 : 2 * tp / denom;
}

double matthews_corrcoef(std::span<const int> pred, std::span<const int> gold) {
  check_sizes(pred, gold, "matthews_corrcoef", 1);
  // Gorodkin's multi-class form over the confusion matrix C, as sklearn computes it in float64:
  //   t_k = sum_j C[k][j] (true), p_k = sum_i C[i][k] (predicted), c = trace C, s = n,
  //   MCC = (c s - sum t_k p_k) / sqrt((s^2 - sum p_k^2) (s^2 - sum t_k^2)), 0 if a factor is 0.
  std::vector<int> classes(pred.begin(), pred.end());
  classes.insert(classes.end(), gold.begin(), gold.end());
  std::sort(classes.begin(), classes.end());
  classes.erase(std::unique(classes.begin(), classes.end()), classes.end());
  auto index = [&](int label) {
    return static_cast<std::size_t>(std::lower_bound(classes.begin(), classes.end(), label) -
                                    classes.begin());
  };
  std::vector<double> t(classes.size(), 0.0), p(classes.size(), 0.0);
  double correct = 0;
  for (std::size_t i = 0; i < pred.size(); ++i) {
    t[index(gold[i])] += 1;
    p[index(pred[i])] += 1;
    correct += pred[i] == gold[i];
  }
  const double s = static_cast<double>(pred.size());
  double tp = 0, pp = 0, tt = 0;
  for (std::size_t k = 0; k < classes.size(); ++k) {
    tp += t[k] * p[k];
    pp += p[k] * p[k];
    tt += t[k] * t[k];
  }
  const double cov_ytyp = correct * s - tp;
  const double cov_ypyp = s * s - pp;
  const double cov_ytyt = s * s - tt;
  if (cov_ypyp * cov_ytyt == 0) return 0.0;
  return cov_ytyp / std::sqrt(cov_ytyt * cov_ypyp);
}

double pearson(std::span<const double> x, std::span<const double> y) {
  check_sizes(x, y, "pearson", 2);
  const double nan = std::numeric_limits<double>::quiet_NaN();
  // scipy returns NaN for a constant input (ConstantInputWarning) rather than 0/0 noise.
  auto constant = [](std::span<const double> v) {
    return std::all_of(v.begin(), v.end(), [&](double e) { return e == v[0]; });
  };
  if (constant(x) || constant(y)) return nan;
  const double n = static_cast<double>(x.size());
  const double mx = std::accumulate(x.begin(), x.end(), 0.0) / n;
  const double my = std::accumulate(y.begin(), y.end(), 0.0) / n;
  double sxx = 0, syy = 0, sxy = 0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    const double dx = x[i] - mx, dy = y[i] - my;
    sxx += dx * dx;
    syy += dy * dy;
    sxy += dx * dy;
  }
  if (std::isnan(sxy) || std::isnan(sxx) || std::isnan(syy)) return nan;
  // Clamped like scipy: rounding can push |r| a hair past 1 for (anti)collinear data.
  return std::clamp(sxy / (std::sqrt(sxx) * std::sqrt(syy)), -1.0, 1.0);
}

double spearman(std::span<const double> x, std::span<const double> y) {
  check_sizes(x, y, "spearman", 2);
  // NaN has no rank (and would break the sort's ordering); scipy's default policy propagates it.
  auto has_nan = [](std::span<const double> v) {
    return std::any_of(v.begin(), v.end(), [](double e) { return std::isnan(e); });
  };
  if (has_nan(x) || has_nan(y)) return std::numeric_limits<double>::quiet_NaN();
  const std::vector<double> rx = average_ranks(x), ry = average_ranks(y);
  return pearson(rx, ry);
}

double MetricResult::at(const std::string& key) const {
  for (const auto& [name, value] : values) {
    if (name == key) return value;
  }
  std::string keys;
  for (const auto& [name, value] : values) keys += (keys.empty() ? "" : ", ") + name;
  throw InvalidArgument(fmt::format("no metric '{}' in this result (has: {})", key, keys));
}

double MetricResult::main_value() const { return at(main); }

Predictions predictions_from_logits(data::Task task, std::span<const float> logits,
                                    std::size_t num_labels) {
  const bool regression = data::task_spec(task).regression;
  if (num_labels == 0 || logits.size() % num_labels != 0) {
    throw InvalidArgument(fmt::format("predictions_from_logits: {} logits are not whole rows of {}",
                                      logits.size(), num_labels));
  }
  Predictions p;
  for (std::size_t i = 0; i < logits.size() / num_labels; ++i) {
    const float* row = logits.data() + i * num_labels;
    if (regression) {
      p.scores.push_back(row[0]);
    } else {
      std::size_t best = 0;
      for (std::size_t k = 1; k < num_labels; ++k) {
        if (row[k] > row[best]) best = k;
      }
      p.labels.push_back(static_cast<int>(best));
    }
  }
  return p;
}

MetricResult glue_metrics(data::Task task, std::span<const int> pred_labels,
                          std::span<const double> pred_scores, const data::Dataset& gold) {
  const data::TaskSpec& spec = data::task_spec(task);
  if (gold.task != task) {
    throw InvalidArgument(
        fmt::format("glue_metrics: gold data {} was read for task {}, expected "
                    "{}",
                    gold.source.string(), data::task_spec(gold.task).name, spec.name));
  }
  if (!gold.labeled()) {
    throw InvalidArgument(
        fmt::format("glue_metrics: {} has no gold labels (a test split?); "
                    "expected a labeled dev or train file",
                    gold.source.string()));
  }
  std::vector<double> g(gold.examples.size());
  for (std::size_t i = 0; i < g.size(); ++i) g[i] = gold.examples[i].label;
  return task_metrics(task, pred_labels, pred_scores, g, gold.source.string());
}

MetricResult task_metrics(data::Task task, std::span<const int> pred_labels,
                          std::span<const double> pred_scores, std::span<const double> gold,
                          std::string_view source) {
  const data::TaskSpec& spec = data::task_spec(task);
  const std::size_t n = gold.size();
  MetricResult r;
  r.main = std::string(spec.main_metric);

  if (spec.regression) {
    if (pred_scores.size() != n) {
      throw InvalidArgument(fmt::format("glue_metrics: {} predicted scores for {} examples of {}",
                                        pred_scores.size(), n, source));
    }
    const double pr = pearson(pred_scores, gold), sr = spearman(pred_scores, gold);
    r.values = {{"pearson", pr}, {"spearman", sr}, {"pearson_and_spearman", (pr + sr) / 2}};
    return r;
  }

  if (pred_labels.size() != n) {
    throw InvalidArgument(fmt::format("glue_metrics: {} predicted labels for {} examples of {}",
                                      pred_labels.size(), n, source));
  }
  for (std::size_t i = 0; i < n; ++i) {
    if (pred_labels[i] < 0 || pred_labels[i] >= spec.num_labels) {
      throw InvalidArgument(
          fmt::format("glue_metrics: prediction {} is class {}, expected a {} "
                      "class id in 0..{}",
                      i, pred_labels[i], spec.name, spec.num_labels - 1));
    }
  }
  std::vector<int> g(n);
  for (std::size_t i = 0; i < n; ++i) g[i] = static_cast<int>(gold[i]);
  switch (task) {
    case data::Task::cola:
      r.values = {{"mcc", matthews_corrcoef(pred_labels, g)}};
      break;
    case data::Task::mrpc: {
      const double acc = accuracy(pred_labels, g), f1 = f1_binary(pred_labels, g, 1);
      r.values = {{"accuracy", acc}, {"f1", f1}, {"acc_and_f1", (acc + f1) / 2}};
      break;
    }
    default:
      r.values = {{"accuracy", accuracy(pred_labels, g)}};
      break;
  }
  return r;
}

}  // namespace octet::eval
