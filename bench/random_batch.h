// Random token batches for the end-to-end benchmarks: `batch` sequences of `seq` ids drawn
// uniformly from [5, vocab_size) (past the special tokens), with a fixed seed so that every
// benchmark and every engine sees the same inputs.
#pragma once

#include <cstdint>
#include <random>
#include <vector>

#include "octet/model.h"

namespace octet::bench {

struct RandomBatch {
  std::vector<std::vector<int32_t>> ids;
  std::vector<BertSequence> sequences;  // views into ids
};

inline RandomBatch random_batch(int64_t vocab_size, int64_t batch, int64_t seq,
                                uint32_t seed = 42) {
  RandomBatch b;
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int32_t> id(5, static_cast<int32_t>(vocab_size - 1));
  b.ids.assign(batch, std::vector<int32_t>(seq));
  for (auto& s : b.ids) {
    for (auto& x : s) x = id(rng);
    b.sequences.push_back({s, {}});
  }
  return b;
}

}  // namespace octet::bench
