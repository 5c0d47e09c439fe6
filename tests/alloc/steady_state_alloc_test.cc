// The steady state allocates nothing (issue 8: "no memory allocation in the steady state"):
// this executable replaces the global operator new with a counting one and checks that, once
// warm, a call through Octet's own INT8 path (dynamic INT8: Octet's kernels end to end) makes no
// heap allocation at all, on any thread: Encoder::encode_tokens with a reused EncoderOutputs, and
// BertModel::forward into a reused BertOutputs, packed and padded, for several thread splits.
// Not asserted (measured, docs/runtime.md): the FP32 path, whose GEMMs are oneDNN's (it
// allocates per call), and Encoder::encode from text (the tokenizer returns fresh Encodings).
// Its own executable: replacing operator new changes every allocation of the process; not built
// with the sanitizers, whose allocator owns operator new.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <new>
#include <string>
#include <vector>

#include "common/test_support.h"
#include "common/tiny_bert.h"
#include "octet/encoder.h"

namespace {
std::atomic<bool> g_counting{false};
std::atomic<long> g_allocations{0};

void* counted_alloc(std::size_t n) {
  if (g_counting.load(std::memory_order_relaxed)) g_allocations.fetch_add(1);
  return std::malloc(n == 0 ? 1 : n);
}
}  // namespace

void* operator new(std::size_t n) {
  void* p = counted_alloc(n);
  if (p == nullptr) throw std::bad_alloc();
  return p;
}
void* operator new[](std::size_t n) { return operator new(n); }
void* operator new(std::size_t n, const std::nothrow_t&) noexcept { return counted_alloc(n); }
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept { return counted_alloc(n); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { std::free(p); }

namespace octet {
namespace {

// Heap allocations (all threads) made while fn runs.
template <class Fn>
long allocations_during(Fn&& fn) {
  g_allocations = 0;
  g_counting = true;
  fn();
  g_counting = false;
  return g_allocations.load();
}

class SteadyStateAlloc : public ::testing::Test {
 protected:
  void SetUp() override {
    test::write_tiny_bert(dir_.path() / "m",
                          {.hidden = 32, .intermediate = 64, .layers = 2, .heads = 2});
    // Sequences of different lengths (so that padding and sorting matter), ids in the vocabulary.
    for (int s = 0; s < 9; ++s) {
      std::vector<int32_t> v(static_cast<std::size_t>(3 + 5 * s), 0);
      v.front() = 2;  // [CLS]
      v.back() = 3;   // [SEP]
      for (std::size_t i = 1; i + 1 < v.size(); ++i)
        v[i] = 5 + static_cast<int32_t>((i * 7 + s) % 30);
      ids_.push_back(std::move(v));
    }
    for (const auto& v : ids_) seqs_.push_back({v, {}});
  }
  test::TempDir dir_;
  std::vector<std::vector<int32_t>> ids_;
  std::vector<BertSequence> seqs_;
};

TEST_F(SteadyStateAlloc, TheCounterSeesAllocations) {
  // The control: the test can fail.
  EXPECT_GE(allocations_during([] {
              std::vector<int>* v = new std::vector<int>(100);
              delete v;
            }),
            2);
}

TEST_F(SteadyStateAlloc, Int8EncodeTokensAllocatesNothingOnceWarm) {
  const BertOutputKind what = BertOutputKind::logits | BertOutputKind::pooled |
                              BertOutputKind::mean_pooled | BertOutputKind::last_hidden;
  struct Split {
    int threads, workers, intra;
    Padding padding;
    bool sort;
  };
  for (const Split& c :
       {Split{1, 1, 1, Padding::none, true}, Split{2, 2, 1, Padding::none, true},
        Split{2, 1, 2, Padding::none, true}, Split{2, 0, 0, Padding::longest, true},
        Split{2, 0, 0, Padding::none, false}}) {
    Encoder enc = Encoder::load(dir_.path() / "m", {.precision = Precision::int8_dynamic},
                                {.max_batch_tokens = 64,
                                 .sort_by_length = c.sort,
                                 .padding = c.padding,
                                 .threads = c.threads,
                                 .workers = c.workers,
                                 .intra_threads = c.intra,
                                 .outputs = what});
    EncoderOutputs out;
    // Warm-up: the runtime's arenas grow on the first call; the model's workspaces, taken from a
    // pool by whichever worker runs a batch, each grow to the largest batch they meet, which
    // with several workers can take a few calls.
    for (int r = 0; r < 5; ++r) enc.encode_tokens(seqs_, out);
    const std::string config = "threads " + std::to_string(c.threads) + ", workers " +
                               std::to_string(c.workers) + " x " + std::to_string(c.intra) +
                               (c.padding == Padding::longest ? ", padded" : ", packed") +
                               (c.sort ? ", sorted" : ", input order");
    EXPECT_GT(enc.stats().batches, 1) << config;
    EXPECT_EQ(allocations_during([&] { enc.encode_tokens(seqs_, out); }), 0) << config;
    // A smaller call fits in the same memory.
    EXPECT_EQ(allocations_during(
                  [&] { enc.encode_tokens(std::span<const BertSequence>(seqs_).first(4), out); }),
              0)
        << config;
    EXPECT_EQ(out.count, 4);
  }
}

TEST_F(SteadyStateAlloc, Int8ForwardIntoReusedOutputsAllocatesNothingOnceWarm) {
  const BertModel model =
      BertModel::load(dir_.path() / "m", {.threads = 2, .precision = Precision::int8_dynamic});
  for (const Padding padding : {Padding::none, Padding::longest}) {
    BertOutputs out;
    const BertOutputKind what = BertOutputKind::logits | BertOutputKind::last_hidden;
    model.forward(seqs_, what, padding, out);  // warm-up
    EXPECT_EQ(allocations_during([&] { model.forward(seqs_, what, padding, out); }), 0);
    EXPECT_EQ(out.batch, static_cast<int64_t>(seqs_.size()));
    EXPECT_EQ(out.logits.size(), seqs_.size() * 2);
  }
}

}  // namespace
}  // namespace octet
