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
  // 0: 128, or the model's max_position_embeddings if that is smaller.
  std::size_t max_seq_len = 0;
  std::size_t batch_size = 32;
  bool show_progress = true;
};

// Resolves the default --max-seq-len and checks --max-seq-len and --batch-size against the
// model; throws InvalidArgument naming the flag.
void validate(ClassifyOptions& options, const BertModel& model);

// Tokenizes each example (a pair when text_b is non-empty), runs the model in batches and
// returns the logits, [examples.size(), num_labels] row-major, in input order.
std::vector<float> classify(const BertModel& model, const text::WordPieceTokenizer& tokenizer,
                            std::span<const data::Example> examples,
                            const ClassifyOptions& options);

}  // namespace octet::cli
