// Text in, model outputs out: the inference loop shared by `octet predict` and `octet eval`.
#pragma once

#include <cstddef>
#include <span>
#include <vector>

#include "data/glue.h"
#include "octet/model.h"
#include "text/wordpiece.h"

namespace octet::cli {

struct ClassifyOptions {
  std::size_t max_seq_len = 128;
  std::size_t batch_size = 32;
  bool show_progress = true;
};

// Checks --max-seq-len and --batch-size against the model; throws InvalidArgument naming the flag.
void validate(const ClassifyOptions& options, const BertModel& model);

// Tokenizes each example (a pair when text_b is non-empty), runs the model in batches and
// returns the logits, [examples.size(), num_labels] row-major, in input order.
std::vector<float> classify(const BertModel& model, const text::WordPieceTokenizer& tokenizer,
                            std::span<const data::Example> examples,
                            const ClassifyOptions& options);

}  // namespace octet::cli
