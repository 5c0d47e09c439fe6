// `octet eval --model DIR --task T --data FILE [--json FILE] [--baseline DIR]`: GLUE metrics of a
// model on a labelled file, as a table and optionally as JSON
// {"task", "examples", "metrics": {name: value}, "seconds", ...}. With --baseline, a second model
// is evaluated on the same file (FP32 precision unless it is a quantized directory) and the two
// are compared: the difference of the main metric with its paired-bootstrap interval
// (eval/significance.h) and the number of examples predicted differently, under "comparison".
#include <fmt/format.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "classify.h"
#include "cli.h"
#include "eval/metrics.h"
#include "eval/significance.h"
#include "io/atomic_file.h"
#include "io/bert_config.h"
#include "json_out.h"
#include "octet/cpu.h"
#include "octet/error.h"
#include "quant_common.h"

namespace octet::cli {
namespace {

struct Evaluated {
  eval::Predictions predictions;
  eval::MetricResult metrics;
  double seconds = 0;
};

// Loads options.model, checks that its head fits the task and evaluates it on the dataset.
Evaluated evaluate(ClassifyOptions& options, data::Task task, const data::Dataset& dataset) {
  Classifier classifier = load_classifier(options);
  check_head(classifier.model, data::task_spec(task), options.model);
  const io::BertConfig& cfg = classifier.model.config();

  Evaluated e;
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<float> logits = classify(classifier, dataset.examples, options);
  e.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  e.predictions =
      eval::predictions_from_logits(task, logits, static_cast<std::size_t>(cfg.num_labels));
  e.metrics = eval::glue_metrics(task, e.predictions.labels, e.predictions.scores, dataset);
  return e;
}

}  // namespace

Runner register_eval(CLI::App& app) {
  struct Options {
    std::string task, data, json, baseline;
    int resamples = 1000;
    uint64_t bootstrap_seed = 42;
    ClassifyOptions classify;
  };
  auto opts = std::make_shared<Options>();
  CLI::App* sub = app.add_subcommand("eval", "Evaluate a model on a labelled GLUE file");
  add_classify_flags(sub, opts->classify);
  sub->add_option("--task", opts->task, "sst2 | mrpc | cola | stsb | rte | qnli | mnli")
      ->required();
  sub->add_option("--data", opts->data, "Labelled data file (GLUE TSV or jsonl)")->required();
  sub->add_option("--json", opts->json, "Also write the results to this JSON file");
  sub->add_option("--baseline", opts->baseline,
                  "Also evaluate this model (FP32 unless quantized) and compare: the metric's "
                  "difference with its paired-bootstrap interval, and how many predictions differ");
  sub->add_option("--resamples", opts->resamples, "Bootstrap draws for --baseline")
      ->capture_default_str();
  sub->add_option("--bootstrap-seed", opts->bootstrap_seed, "Seed of the bootstrap draws")
      ->capture_default_str();
  return [opts]() -> int {
    check_flags(opts->classify);
    if (opts->resamples < 100) {
      throw InvalidArgument(
          fmt::format("--resamples must be at least 100, found {}", opts->resamples));
    }
    const data::Task task = data::parse_task(opts->task);
    const data::TaskSpec& spec = data::task_spec(task);
    data::Dataset dataset = data::read_glue(task, opts->data);
    if (!dataset.labeled()) {
      throw DataError(
          fmt::format("{} has no labels (a test split?): eval needs labelled data", opts->data));
    }
    const Evaluated result = evaluate(opts->classify, task, dataset);
    const eval::MetricResult& metrics = result.metrics;
    const double seconds = result.seconds;
    const std::size_t n = dataset.examples.size();

    std::string table;
    table += fmt::format("task       {}\n", spec.name);
    table += fmt::format("model      {}\n", opts->classify.model);
    table += fmt::format("data       {} ({} examples{})\n", opts->data, n,
                         dataset.skipped ? fmt::format(", {} skipped", dataset.skipped) : "");
    for (const auto& [name, value] : metrics.values) {
      table +=
          fmt::format("{:<10} {:.4f}{}\n", name, value, name == metrics.main ? "  (main)" : "");
    }
    table += fmt::format("seconds    {:.2f} ({:.1f} examples/s, {})\n", seconds, n / seconds,
                         isa_name(active_isa()));

    // --baseline: the same data through a second model, compared example by example.
    nlohmann::json baseline_json, comparison_json;
    if (!opts->baseline.empty()) {
      ClassifyOptions bopts = opts->classify;
      bopts.model = opts->baseline;
      bopts.precision = "fp32";
      bopts.per_tensor = false;
      bopts.attention = "fp32";
      const Evaluated base = evaluate(bopts, task, dataset);
      const eval::PairedComparison c =
          eval::paired_bootstrap(task, base.predictions, result.predictions, dataset,
                                 opts->resamples, opts->bootstrap_seed);
      const double pct = 100.0 * c.confidence;
      table += fmt::format("baseline   {}: {} {:.4f}\n", opts->baseline, c.metric, c.a);
      table += fmt::format(
          "difference {:+.4f} (model - baseline), {:.0f}% interval [{:+.4f}, {:+.4f}] over {} "
          "paired bootstrap draws{}\n",
          c.diff, pct, c.lo, c.hi, c.resamples,
          c.undefined ? fmt::format(" ({} undefined, left out)", c.undefined) : "");
      table += fmt::format("           relative to the baseline {:+.2f}% [{:+.2f}%, {:+.2f}%]\n",
                           100.0 * c.diff / c.a, 100.0 * c.lo / c.a, 100.0 * c.hi / c.a);
      table += spec.regression
                   ? fmt::format("           mean |score difference| {:.4f}\n", c.mean_abs_diff)
                   : fmt::format("           {} of {} examples predicted differently\n", c.disagree,
                                 c.examples);
      baseline_json = {{"model", opts->baseline},
                       {"metrics", metrics_json(base.metrics)},
                       {"main_metric", base.metrics.main},
                       {"seconds", base.seconds}};
      comparison_json = octet::cli::comparison_json(c, spec.regression, opts->bootstrap_seed,
                                                    /*with_replicates=*/true);
    }
    std::fputs(table.c_str(), stdout);

    if (!opts->json.empty()) {
      nlohmann::json j;
      j["task"] = spec.name;
      j["model"] = opts->classify.model;
      j["data"] = opts->data;
      j["examples"] = n;
      j["skipped"] = dataset.skipped;
      j["metrics"] = metrics_json(metrics);
      j["main_metric"] = metrics.main;
      j["seconds"] = seconds;
      j["isa"] = isa_name(active_isa());
      if (!baseline_json.is_null()) {
        j["baseline"] = baseline_json;
        j["comparison"] = comparison_json;
      }
      io::write_file_atomic(opts->json, j.dump(2) + "\n");
    }
    return kExitOk;
  };
}

}  // namespace octet::cli
