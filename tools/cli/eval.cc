// `octet eval --model DIR --task T --data FILE [--json FILE]`: GLUE metrics of a model on a
// labelled file, as a table and optionally as JSON
// {"task", "examples", "metrics": {name: value}, "seconds", ...}.
#include <fmt/format.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>

#include "classify.h"
#include "cli.h"
#include "eval/metrics.h"
#include "io/atomic_file.h"
#include "io/bert_config.h"
#include "octet/cpu.h"
#include "octet/error.h"

namespace octet::cli {

Runner register_eval(CLI::App& app) {
  struct Options {
    std::string task, data, json;
    ClassifyOptions classify;
  };
  auto opts = std::make_shared<Options>();
  CLI::App* sub = app.add_subcommand("eval", "Evaluate a model on a labelled GLUE file");
  add_classify_flags(sub, opts->classify);
  sub->add_option("--task", opts->task, "sst2 | mrpc | cola | stsb | rte | qnli | mnli")
      ->required();
  sub->add_option("--data", opts->data, "Labelled data file (GLUE TSV or jsonl)")->required();
  sub->add_option("--json", opts->json, "Also write the results to this JSON file");
  return [opts]() -> int {
    check_flags(opts->classify);
    const data::Task task = data::parse_task(opts->task);
    const data::TaskSpec& spec = data::task_spec(task);
    data::Dataset dataset = data::read_glue(task, opts->data);
    if (!dataset.labeled()) {
      throw DataError(
          fmt::format("{} has no labels (a test split?): eval needs labelled data", opts->data));
    }
    Classifier classifier = load_classifier(opts->classify);
    const io::BertConfig& cfg = classifier.model.config();
    const bool model_regression = cfg.problem_type == io::ProblemType::regression;
    if (model_regression != spec.regression ||
        (!spec.regression && cfg.num_labels != spec.num_labels)) {
      throw InvalidArgument(fmt::format(
          "model {} has a {} head with {} label(s), but task {} expects {}", opts->classify.model,
          io::problem_type_name(cfg.problem_type), cfg.num_labels, spec.name,
          spec.regression ? std::string("a regression head (num_labels 1)")
                          : fmt::format("{} labels", spec.num_labels)));
    }

    const auto t0 = std::chrono::steady_clock::now();
    std::vector<float> logits = classify(classifier, dataset.examples, opts->classify);
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

    const std::size_t n = dataset.examples.size();
    const auto num_labels = static_cast<std::size_t>(cfg.num_labels);
    std::vector<int> pred_labels;
    std::vector<double> pred_scores;
    for (std::size_t i = 0; i < n; ++i) {
      const float* row = logits.data() + i * num_labels;
      if (spec.regression) {
        pred_scores.push_back(row[0]);
      } else {
        int best = 0;
        for (std::size_t k = 1; k < num_labels; ++k) {
          if (row[k] > row[best]) best = static_cast<int>(k);
        }
        pred_labels.push_back(best);
      }
    }
    eval::MetricResult metrics = eval::glue_metrics(task, pred_labels, pred_scores, dataset);

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
    std::fputs(table.c_str(), stdout);

    if (!opts->json.empty()) {
      nlohmann::json j;
      j["task"] = spec.name;
      j["model"] = opts->classify.model;
      j["data"] = opts->data;
      j["examples"] = n;
      j["skipped"] = dataset.skipped;
      nlohmann::json m = nlohmann::json::object();
      for (const auto& [name, value] : metrics.values) {
        m[name] = std::isfinite(value) ? nlohmann::json(value) : nlohmann::json(nullptr);
      }
      j["metrics"] = m;
      j["main_metric"] = metrics.main;
      j["seconds"] = seconds;
      j["isa"] = isa_name(active_isa());
      io::write_file_atomic(opts->json, j.dump(2) + "\n");
    }
    return kExitOk;
  };
}

}  // namespace octet::cli
