#include "classify.h"

#include <fmt/format.h>

#include "cli.h"
#include "io/bert_config.h"
#include "octet/error.h"

namespace octet::cli {

void add_classify_flags(CLI::App* sub, ClassifyOptions& options) {
  sub->add_option("--model", options.model,
                  "Model directory (config.json, model.safetensors, vocab.txt)")
      ->required();
  sub->add_option("--precision", options.precision,
                  "fp32, or int8-dynamic (int8 weights, activations quantized on the fly)")
      ->capture_default_str();
  sub->add_flag("--per-tensor", options.per_tensor,
                "With int8-dynamic: one weight scale per matrix instead of per output channel");
  sub->add_option("--attention", options.attention,
                  "INT8 models: fp32 (Q8BERT, default) or int8 (Q K^T and P V on int8 with int32 "
                  "accumulation, Bhandare et al.)")
      ->capture_default_str();
  sub->add_option("--max-seq-len", options.max_seq_len,
                  "Maximum tokens per example, specials included [default: 128, or the model's "
                  "max_position_embeddings if smaller]");
  sub->add_option("--batch-size", options.batch_size, "Examples per batch")->capture_default_str();
  sub->add_option("--threads", options.threads, "Threads (0 = all cores)")->capture_default_str();
}

namespace {

Precision parse_precision(const std::string& name) {
  if (name == "fp32") return Precision::fp32;
  if (name == "int8-dynamic" || name == "int8_dynamic") return Precision::int8_dynamic;
  throw InvalidArgument(fmt::format("--precision must be fp32 or int8-dynamic, found '{}'", name));
}

void validate(ClassifyOptions& options, const BertModel& model) {
  const auto max_pos = static_cast<std::size_t>(model.config().max_position_embeddings);
  if (options.max_seq_len == 0) options.max_seq_len = std::min<std::size_t>(128, max_pos);
  if (options.max_seq_len < 3 || options.max_seq_len > max_pos) {
    throw InvalidArgument(fmt::format(
        "--max-seq-len must be in [3, {}] (the model's max_position_embeddings), found {}", max_pos,
        options.max_seq_len));
  }
  if (!model.has_classifier()) {
    throw InvalidArgument(fmt::format(
        "the model has no classification head (classifier.weight / classifier.bias are absent "
        "from its model.safetensors): predict and eval need a fine-tuned classifier"));
  }
}

}  // namespace

void check_flags(const ClassifyOptions& options) {
  const Precision precision = parse_precision(options.precision);
  if (options.per_tensor && precision == Precision::fp32) {
    throw InvalidArgument("--per-tensor applies to --precision int8-dynamic only");
  }
  if (options.attention != "fp32" && options.attention != "int8") {
    throw InvalidArgument(
        fmt::format("--attention must be fp32 or int8, found '{}'", options.attention));
  }
  if (options.batch_size < 1 || options.batch_size > 65536) {
    throw InvalidArgument(
        fmt::format("--batch-size must be in [1, 65536], found {}", options.batch_size));
  }
  set_threads(options.threads);
}

Classifier load_classifier(ClassifyOptions& options) {
  check_flags(options);
  const Precision precision = parse_precision(options.precision);
  BertModel model = BertModel::load(options.model, {.threads = options.threads,
                                                    .precision = precision,
                                                    .per_channel = !options.per_tensor,
                                                    .int8_attention = options.attention == "int8"});
  validate(options, model);
  return {std::move(model), text::WordPieceTokenizer::from_model_dir(options.model)};
}

std::vector<float> classify(const Classifier& classifier, std::span<const data::Example> examples,
                            const ClassifyOptions& options) {
  const BertModel& model = classifier.model;
  const text::WordPieceTokenizer& tokenizer = classifier.tokenizer;
  const auto num_labels = static_cast<std::size_t>(model.config().num_labels);
  std::vector<float> logits(examples.size() * num_labels);
  Progress progress("inference", examples.size());
  std::vector<text::Encoding> encodings;
  std::vector<BertSequence> batch;
  for (std::size_t start = 0; start < examples.size(); start += options.batch_size) {
    const std::size_t n = std::min(options.batch_size, examples.size() - start);
    encodings.clear();
    batch.clear();
    for (std::size_t i = 0; i < n; ++i) {
      const data::Example& ex = examples[start + i];
      encodings.push_back(ex.text_b.empty()
                              ? tokenizer.encode(ex.text_a, options.max_seq_len)
                              : tokenizer.encode_pair(ex.text_a, ex.text_b, options.max_seq_len));
    }
    for (const text::Encoding& e : encodings) batch.push_back({e.input_ids, e.token_type_ids});
    BertOutputs out = model.forward(batch, BertOutputKind::logits);
    std::copy(out.logits.begin(), out.logits.end(), logits.begin() + start * num_labels);
    progress.advance(n);
  }
  progress.finish();
  return logits;
}

}  // namespace octet::cli
