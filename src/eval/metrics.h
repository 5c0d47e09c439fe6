// Evaluation metrics of the GLUE benchmark, computed as scikit-learn and SciPy compute them, and
// the per-task bundle GLUE reports.
//
// Usage:
//   const auto gold = octet::data::read_glue(Task::cola, "glue/CoLA/dev.tsv");
//   std::vector<int> pred = ...;                      // one class id per gold example
//   const auto r = octet::eval::glue_metrics(Task::cola, pred, {}, gold);
//   fmt::print("{} = {:.4f}\n", r.main, r.main_value());   // "mcc = 0.5712"
//
// Definitions (docs/data.md has them in full):
//   accuracy            sklearn.metrics.accuracy_score
//   f1_binary           sklearn.metrics.f1_score(average="binary"); 0 when tp + fp + fn == 0
//   matthews_corrcoef   sklearn.metrics.matthews_corrcoef, multi-class form; 0 when undefined
//   pearson             scipy.stats.pearsonr statistic; NaN when a variance is zero
//   spearman            scipy.stats.spearmanr: Pearson of average ranks; NaN when a variance is
//                       zero or an input is NaN
// Two spans of different sizes, empty inputs (fewer than two points for the correlations) raise
// octet::InvalidArgument. All functions are pure and thread-safe.
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "data/glue.h"

namespace octet::eval {

double accuracy(std::span<const int> pred, std::span<const int> gold);
double f1_binary(std::span<const int> pred, std::span<const int> gold, int positive = 1);
double matthews_corrcoef(std::span<const int> pred, std::span<const int> gold);
double pearson(std::span<const double> x, std::span<const double> y);
double spearman(std::span<const double> x, std::span<const double> y);

// One model's predictions on a dataset: class ids (classification) or scores (stsb).
struct Predictions {
  std::vector<int> labels;
  std::vector<double> scores;
};

// Predictions from logits [examples, num_labels] row-major: each row's argmax (the first
// maximum, as torch.argmax) for classification tasks, the single logit for stsb.
Predictions predictions_from_logits(data::Task task, std::span<const float> logits,
                                    std::size_t num_labels);

struct MetricResult {
  std::vector<std::pair<std::string, double>> values;  // in reporting order
  std::string main;                                    // one of the keys in `values`
  double main_value() const;
  double at(const std::string& key) const;  // InvalidArgument for an unknown key
};

// The metrics GLUE reports for `task` against the labels of `gold`:
//   cola: mcc                      sst2, rte, qnli, mnli: accuracy
//   mrpc: accuracy, f1, and main acc_and_f1 = (accuracy + f1) / 2
//   stsb: pearson, spearman, and main pearson_and_spearman = (pearson + spearman) / 2
// (the GLUE score averages a task's metrics when it has two). Classification tasks pass one
// predicted class id per example in pred_labels (pred_scores is ignored); stsb passes one score
// per example in pred_scores (pred_labels is ignored). InvalidArgument when the sizes do not
// match gold, gold is unlabeled or of another task, or a class id is outside [0, num_labels).
MetricResult glue_metrics(data::Task task, std::span<const int> pred_labels,
                          std::span<const double> pred_scores, const data::Dataset& gold);

// The same metrics against gold values given directly, one per example (class ids as doubles, or
// stsb scores); `source` names the data in error messages. glue_metrics checks the dataset and
// calls this.
MetricResult task_metrics(data::Task task, std::span<const int> pred_labels,
                          std::span<const double> pred_scores, std::span<const double> gold,
                          std::string_view source = "the gold values");

}  // namespace octet::eval
