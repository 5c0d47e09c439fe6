// Length-sorted batching under a token budget: the planning half of the runtime scheduler
// (octet/encoder.h), kept free of models and threads so that tests can check it directly.
//
//   std::vector<int64_t> order;
//   std::vector<runtime::Batch> batches;
//   runtime::plan_batches(lengths, {.max_batch_tokens = 4096, .max_batch_size = 64}, order,
//                         batches);
//   // batches[k] covers order[batches[k].begin .. batches[k].end)
//
// order: the input indices, stably sorted by length (ascending) when sort_by_length, else
// 0 .. n-1. Batches are cut greedily along `order`: a batch takes the next sequence while
// (count + 1) x max(longest, its length) <= max_batch_tokens and count + 1 <= max_batch_size;
// a sequence that alone exceeds the budget forms a batch of one. The cost is the padded-
// equivalent size (sequences x longest), what an engine that pads to the longest pays.
// Outputs are cleared and refilled (capacity reused); returns how many of the two vectors had
// to grow their capacity (0 in a steady state).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace octet::runtime {

struct Batch {
  int64_t begin = 0, end = 0;  // range in the order array
  int64_t longest = 0;         // tokens of the longest sequence
  int64_t tokens = 0;          // valid tokens (sum of lengths)
  int64_t padded_tokens() const { return (end - begin) * longest; }
};

struct BatchingOptions {
  std::size_t max_batch_tokens = 4096;
  std::size_t max_batch_size = 64;
  bool sort_by_length = true;
};

// Throws InvalidArgument if max_batch_tokens or max_batch_size is 0 or a length is negative.
int plan_batches(std::span<const int32_t> lengths, const BatchingOptions& options,
                 std::vector<int64_t>& order, std::vector<Batch>& batches);

// std::vector::resize that counts a capacity growth (for the runtime's allocation accounting).
template <typename V>
int grow_to(V& v, std::size_t n) {
  const bool grows = n > v.capacity();
  v.resize(n);
  return grows ? 1 : 0;
}

}  // namespace octet::runtime
