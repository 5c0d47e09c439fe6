// Is model B's score on a dev set different from model A's, or within what the dev set can
// resolve? A paired bootstrap over the dev examples (Efron & Tibshirani; Koehn 2004 for NLP):
// draw the examples with replacement R times, score both models' predictions on each draw with
// the task's main GLUE metric, and take the percentile interval of the difference B - A.
// Paired: both models are scored on the same draw, so what they share (the hard and easy
// examples) cancels.
//
// Usage:
//   const auto gold = octet::data::read_glue(Task::cola, "glue/CoLA/dev.tsv");
//   Predictions fp32{labels_a, {}}, int8{labels_b, {}};
//   const PairedComparison c = paired_bootstrap(Task::cola, fp32, int8, gold);
//   // c.diff = B - A on the whole set, [c.lo, c.hi] its 95% interval, c.disagree examples
//   // predicted differently (stsb: c.mean_abs_diff, the mean |score difference|)
//
// The draws depend only on (seed, number of examples, resamples): two comparisons on the same dev
// set with the same seed use the same draws, so their replicate differences (`replicates`) can be
// averaged draw by draw, e.g. over training seeds. std::mt19937_64, fully specified by the C++
// standard: identical on every platform. A replicate whose metric is undefined (a correlation of
// a constant draw: NaN) is left out and counted in `undefined`.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "data/glue.h"
#include "eval/metrics.h"

namespace octet::eval {

struct PairedComparison {
  std::string metric;     // the task's main metric
  double a = 0, b = 0;    // its value for A and for B on the whole dataset
  double diff = 0;        // b - a
  double lo = 0, hi = 0;  // percentile interval of b - a over the replicates at `confidence`
  double confidence = 0.95;
  std::size_t examples = 0;
  std::size_t disagree = 0;  // classification: examples whose predicted class differs
  double mean_abs_diff = 0;  // regression (stsb): mean |score of B - score of A|
  int resamples = 0;
  std::size_t undefined = 0;       // replicates left out (metric undefined on the draw)
  std::vector<double> replicates;  // b - a on each draw (draw order), the undefined ones as NaN
};

// InvalidArgument when the predictions do not match gold (see glue_metrics), resamples < 100 or
// confidence is not in (0, 1).
PairedComparison paired_bootstrap(data::Task task, const Predictions& a, const Predictions& b,
                                  const data::Dataset& gold, int resamples = 1000,
                                  uint64_t seed = 42, double confidence = 0.95);

}  // namespace octet::eval
