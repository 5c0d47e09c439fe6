// JSON pieces shared by the commands that write results (`octet eval --json`, `octet compare
// --json`): non-finite numbers as null, a metric bundle, a paired comparison.
#pragma once

#include <cmath>
#include <cstdint>
#include <nlohmann/json.hpp>

#include "eval/metrics.h"
#include "eval/significance.h"

namespace octet::cli {

inline nlohmann::json finite_or_null(double v) {
  return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr);
}

// {name: value} in the result's order of insertion, NaN (an undefined correlation) as null.
inline nlohmann::json metrics_json(const eval::MetricResult& metrics) {
  nlohmann::json m = nlohmann::json::object();
  for (const auto& [name, value] : metrics.values) m[name] = finite_or_null(value);
  return m;
}

// A paired comparison of B (model) against A (baseline); replicates only when asked (they are
// `resamples` numbers).
inline nlohmann::json comparison_json(const eval::PairedComparison& c, bool regression,
                                      uint64_t bootstrap_seed, bool with_replicates) {
  nlohmann::json j = {{"metric", c.metric},
                      {"baseline", finite_or_null(c.a)},
                      {"model", finite_or_null(c.b)},
                      {"difference", finite_or_null(c.diff)},
                      {"interval", {finite_or_null(c.lo), finite_or_null(c.hi)}},
                      {"confidence", c.confidence},
                      {"resamples", c.resamples},
                      {"bootstrap_seed", bootstrap_seed},
                      {"undefined", c.undefined},
                      {"examples", c.examples},
                      {"examples_predicted_differently",
                       regression ? nlohmann::json(nullptr) : nlohmann::json(c.disagree)},
                      {"mean_abs_score_difference",
                       regression ? nlohmann::json(c.mean_abs_diff) : nlohmann::json(nullptr)}};
  if (with_replicates) {
    nlohmann::json r = nlohmann::json::array();
    for (double d : c.replicates) r.push_back(finite_or_null(d));
    j["replicates"] = r;
  }
  return j;
}

}  // namespace octet::cli
