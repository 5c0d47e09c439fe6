// Text in, model outputs out: the inference loop shared by `octet predict` and `octet eval`.
#pragma once

#include <CLI/CLI.hpp>
#include <cstddef>
#include <span>
#include <string>
#include <vector>

#include "data/glue.h"
#include "octet/model.h"
#include "text/wordpiece.h"

namespace octet::cli {

struct ClassifyOptions {
  std::string model;  // model directory
  // 0: 128, or the model's max_position_embeddings if that is smaller.
  std::size_t max_seq_len = 0;
  std::size_t batch_size = 32;
  int threads = 0;  // 0: all cores
  // "fp32", or "int8-dynamic" (Q8BERT's post-training baseline: int8 weights, per-channel by
  // default, activations quantized per tensor on the fly).
  std::string precision = "fp32";
  bool per_tensor = false;  // int8 weights with one scale per matrix instead of per channel
  // "fp32" (default, Q8BERT) or "int8": the attention matmuls on int8 (INT8 models only).
  std::string attention = "fp32";
};

// Registers --model, --precision, --per-tensor, --attention, --max-seq-len, --batch-size and
// --threads.
void add_classify_flags(CLI::App* sub, ClassifyOptions& options);

// Checks the flags that need no model (--precision, --per-tensor, --attention, --batch-size,
// --threads), so that usage errors are reported before any file is read. Throws InvalidArgument.
void check_flags(const ClassifyOptions& options);

// A classifier ready to run: the model and its tokenizer.
struct Classifier {
  BertModel model;
  text::WordPieceTokenizer tokenizer;
};

// Applies --threads, loads the model and tokenizer from options.model, resolves the default
// --max-seq-len and checks the flags against the model (InvalidArgument naming the flag) and
// that the model has a classification head.
Classifier load_classifier(ClassifyOptions& options);

// Tokenizes each example (a pair when text_b is non-empty), runs the model in batches and
// returns the logits, [examples.size(), num_labels] row-major, in input order.
std::vector<float> classify(const Classifier& classifier, std::span<const data::Example> examples,
                            const ClassifyOptions& options);

}  // namespace octet::cli
