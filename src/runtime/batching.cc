#include "runtime/batching.h"

#include <fmt/format.h>

#include <algorithm>
#include <numeric>

#include "octet/error.h"

namespace octet::runtime {

int plan_batches(std::span<const int32_t> lengths, const BatchingOptions& options,
                 std::vector<int64_t>& order, std::vector<Batch>& batches) {
  if (options.max_batch_tokens == 0 || options.max_batch_size == 0) {
    throw InvalidArgument(
        fmt::format("batching: max_batch_tokens and max_batch_size must be >= 1, found {} and {}",
                    options.max_batch_tokens, options.max_batch_size));
  }
  const std::size_t n = lengths.size();
  int growths = grow_to(order, n);
  std::iota(order.begin(), order.end(), int64_t{0});
  for (std::size_t i = 0; i < n; ++i) {
    if (lengths[i] < 0) {
      throw InvalidArgument(fmt::format("batching: input {} has length {}", i, lengths[i]));
    }
  }
  if (options.sort_by_length) {
    // Stable by construction (ties by input index), without std::stable_sort's temporary
    // buffer: the steady state allocates nothing.
    std::sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
      return lengths[a] != lengths[b] ? lengths[a] < lengths[b] : a < b;
    });
  }
  const std::size_t cap_before = batches.capacity();
  batches.clear();
  const auto budget = static_cast<int64_t>(options.max_batch_tokens);
  const auto max_size = static_cast<int64_t>(options.max_batch_size);
  Batch cur;
  for (std::size_t k = 0; k < n; ++k) {
    const int64_t len = lengths[order[k]];
    const int64_t count = cur.end - cur.begin;
    const int64_t longest = std::max(cur.longest, len);
    if (count > 0 && ((count + 1) * longest > budget || count + 1 > max_size)) {
      batches.push_back(cur);
      cur = Batch{static_cast<int64_t>(k), static_cast<int64_t>(k), 0, 0};
    }
    cur.end = static_cast<int64_t>(k) + 1;
    cur.longest = std::max(cur.longest, len);
    cur.tokens += len;
  }
  if (cur.end > cur.begin) batches.push_back(cur);
  if (batches.capacity() > cap_before) ++growths;
  return growths;
}

}  // namespace octet::runtime
