// `octet predict --model DIR --input FILE|- [--output FILE|-]`: one JSON object per input line.
//   classifiers: {"label": <index>, "logits": [...]}      regression: {"score": <float>}
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>

#include <fmt/format.h>

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
    std::string model, input, output = "-";
    int threads = 0;
    ClassifyOptions classify;
  };
  auto opts = std::make_shared<Options>();
  CLI::App* sub = app.add_subcommand(
      "predict", "Classify text: one example per line, 'text' or 'text_a<TAB>text_b'");
  sub->add_option("--model", opts->model, "Model directory")->required();
  sub->add_option("--input", opts->input, "Input file, or - for standard input")->required();
  sub->add_option("--output", opts->output, "Output file (JSON lines), or - for standard output")
      ->capture_default_str();
  sub->add_option("--max-seq-len", opts->classify.max_seq_len,
                  "Maximum tokens per example, specials included [default: 128, or the model's "
                  "max_position_embeddings if smaller]");
  sub->add_option("--batch-size", opts->classify.batch_size, "Examples per batch")
      ->capture_default_str();
  sub->add_option("--threads", opts->threads, "Threads (0 = all cores)")->capture_default_str();
  return [opts]() -> int {
    set_threads(opts->threads);
    std::vector<data::Example> examples;
    if (opts->input == "-") {
      examples = data::read_text_lines(std::cin, "<stdin>");
    } else {
      std::ifstream in(opts->input, std::ios::binary);
      if (!in) throw IoError(fmt::format("cannot open --input file '{}'", opts->input));
      examples = data::read_text_lines(in, opts->input);
    }
    BertModel model = BertModel::load(opts->model, {.threads = opts->threads});
    validate(opts->classify, model);
    auto tokenizer = text::WordPieceTokenizer::from_model_dir(opts->model);
    std::vector<float> logits = classify(model, tokenizer, examples, opts->classify);
    const auto num_labels = static_cast<std::size_t>(model.config().num_labels);
    const bool regression = model.config().problem_type == io::ProblemType::regression;
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
