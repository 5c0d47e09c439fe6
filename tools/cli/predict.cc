// `octet predict --model DIR --input FILE|- [--output FILE|-]`: one JSON object per input line.
//   classifiers: {"label": <index>, "logits": [...]}      regression: {"score": <float>}
#include <fmt/format.h>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>

#include "classify.h"
#include "cli.h"
#include "io/atomic_file.h"
#include "io/bert_config.h"
#include "octet/error.h"

namespace octet::cli {
namespace {

void write_predictions(std::ostream& out, std::span<const float> logits, std::size_t num_labels,
                       bool regression) {
  const std::size_t n = num_labels == 0 ? 0 : logits.size() / num_labels;
  std::string line;
  for (std::size_t i = 0; i < n; ++i) {
    std::span<const float> row = logits.subspan(i * num_labels, num_labels);
    line.clear();
    if (regression) {
      line = fmt::format("{{\"score\": {}}}\n", row[0]);
    } else {
      std::size_t best = 0;
      for (std::size_t k = 1; k < row.size(); ++k) {
        if (row[k] > row[best]) best = k;
      }
      line = fmt::format("{{\"label\": {}, \"logits\": [{}]}}\n", best, fmt::join(row, ", "));
    }
    out << line;
  }
}

}  // namespace

Runner register_predict(CLI::App& app) {
  struct Options {
    std::string input, output = "-";
    ClassifyOptions classify;
  };
  auto opts = std::make_shared<Options>();
  CLI::App* sub = app.add_subcommand(
      "predict", "Classify text: one example per line, 'text' or 'text_a<TAB>text_b'");
  add_classify_flags(sub, opts->classify);
  sub->add_option("--input", opts->input, "Input file, or - for standard input")->required();
  sub->add_option("--output", opts->output, "Output file (JSON lines), or - for standard output")
      ->capture_default_str();
  return [opts]() -> int {
    check_flags(opts->classify);
    std::vector<data::Example> examples;
    if (opts->input == "-") {
      examples = data::read_text_lines(std::cin, "<stdin>");
    } else {
      std::ifstream in(opts->input, std::ios::binary);
      if (!in) throw IoError(fmt::format("cannot open --input file '{}'", opts->input));
      examples = data::read_text_lines(in, opts->input);
    }
    Classifier classifier = load_classifier(opts->classify);
    std::vector<float> logits = classify(classifier, examples, opts->classify);
    const io::BertConfig& cfg = classifier.model.config();
    const auto num_labels = static_cast<std::size_t>(cfg.num_labels);
    const bool regression = cfg.problem_type == io::ProblemType::regression;
    if (opts->output == "-") {
      write_predictions(std::cout, logits, num_labels, regression);
      std::cout.flush();
      if (!std::cout) throw IoError("writing predictions to standard output failed");
    } else {
      io::AtomicFileWriter writer(opts->output);
      write_predictions(writer.stream(), logits, num_labels, regression);
      writer.commit();
    }
    return kExitOk;
  };
}

}  // namespace octet::cli
