// runtime::plan_batches: length sorting (stable), the padded-token budget, the size cap, the
// oversized single sequence, and capacity reuse.
#include "runtime/batching.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <vector>

#include "octet/error.h"

namespace octet::runtime {
namespace {

TEST(PlanBatches, SortsStablyByLengthAndCoversEveryInputOnce) {
  const std::vector<int32_t> lengths = {5, 3, 9, 3, 1, 5};
  std::vector<int64_t> order;
  std::vector<Batch> batches;
  plan_batches(lengths, {.max_batch_tokens = 1000, .max_batch_size = 100}, order, batches);
  EXPECT_EQ(order, (std::vector<int64_t>{4, 1, 3, 0, 5, 2}));
  ASSERT_EQ(batches.size(), 1u);
  EXPECT_EQ(batches[0].begin, 0);
  EXPECT_EQ(batches[0].end, 6);
  EXPECT_EQ(batches[0].longest, 9);
  EXPECT_EQ(batches[0].tokens, 26);
}

TEST(PlanBatches, UnsortedKeepsInputOrder) {
  const std::vector<int32_t> lengths = {5, 3, 9, 3};
  std::vector<int64_t> order;
  std::vector<Batch> batches;
  plan_batches(lengths, {.max_batch_tokens = 1000, .max_batch_size = 100, .sort_by_length = false},
               order, batches);
  EXPECT_EQ(order, (std::vector<int64_t>{0, 1, 2, 3}));
}

TEST(PlanBatches, RespectsThePaddedTokenBudgetAndSizeCap) {
  // Sorted: 2 2 4 4 8 8 8 8; budget 16 padded tokens.
  const std::vector<int32_t> lengths = {8, 2, 4, 8, 2, 8, 4, 8};
  std::vector<int64_t> order;
  std::vector<Batch> batches;
  plan_batches(lengths, {.max_batch_tokens = 16, .max_batch_size = 3}, order, batches);
  // [2 2 4] (3 x 4 = 12; a 4th would break the size cap), [4 8] (2 x 8), [8 8], [8].
  ASSERT_EQ(batches.size(), 4u);
  std::vector<int64_t> sizes;
  for (const Batch& b : batches) {
    sizes.push_back(b.end - b.begin);
    EXPECT_LE(b.padded_tokens(), 16);
    EXPECT_LE(b.end - b.begin, 3);
    for (int64_t k = b.begin; k < b.end; ++k) EXPECT_LE(lengths[order[k]], b.longest);
  }
  EXPECT_EQ(sizes, (std::vector<int64_t>{3, 2, 2, 1}));
  EXPECT_EQ(batches.back().end, 8);
}

TEST(PlanBatches, AnOversizedSequenceFormsABatchOfOne) {
  const std::vector<int32_t> lengths = {3, 50, 3};
  std::vector<int64_t> order;
  std::vector<Batch> batches;
  plan_batches(lengths, {.max_batch_tokens = 10, .max_batch_size = 8}, order, batches);
  ASSERT_EQ(batches.size(), 2u);
  EXPECT_EQ(batches[1].end - batches[1].begin, 1);
  EXPECT_EQ(batches[1].longest, 50);
}

TEST(PlanBatches, EmptyInputGivesNoBatches) {
  std::vector<int64_t> order = {7};
  std::vector<Batch> batches(3);
  plan_batches({}, {}, order, batches);
  EXPECT_TRUE(order.empty());
  EXPECT_TRUE(batches.empty());
}

TEST(PlanBatches, ReusesCapacityInTheSteadyState) {
  std::vector<int32_t> lengths(100);
  for (int i = 0; i < 100; ++i) lengths[i] = 1 + (i * 37) % 60;
  std::vector<int64_t> order;
  std::vector<Batch> batches;
  EXPECT_GT(plan_batches(lengths, {.max_batch_tokens = 128}, order, batches), 0);
  for (int r = 0; r < 3; ++r) {
    EXPECT_EQ(plan_batches(lengths, {.max_batch_tokens = 128}, order, batches), 0);
  }
}

TEST(PlanBatches, RejectsZeroBudget) {
  std::vector<int64_t> order;
  std::vector<Batch> batches;
  const std::vector<int32_t> lengths = {1};
  EXPECT_THROW(plan_batches(lengths, {.max_batch_tokens = 0}, order, batches), InvalidArgument);
  EXPECT_THROW(plan_batches(lengths, {.max_batch_size = 0}, order, batches), InvalidArgument);
}

}  // namespace
}  // namespace octet::runtime
