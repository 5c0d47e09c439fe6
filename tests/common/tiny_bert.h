// Writes a tiny, randomly initialised BERT model directory (config.json, model.safetensors,
// vocab.txt) for tests that need a real model on disk without the Python golden fixtures.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

namespace octet::test {

struct TinyBertOptions {
  int64_t hidden = 8, intermediate = 16, layers = 2, heads = 2, max_positions = 64;
  int64_t num_labels = 2;  // 1 writes a regression head (problem_type "regression")
  bool classifier = true;  // false: encoder + pooler only
  uint32_t seed = 5;
};

// The vocabulary written: the special tokens, then a few dozen English words and pieces, so that
// ordinary sentences tokenize into known ids. Returns the number of entries (the vocab_size).
int64_t write_tiny_vocab(const std::filesystem::path& vocab_txt);

void write_tiny_bert(const std::filesystem::path& dir, const TinyBertOptions& options = {});

}  // namespace octet::test
