// The steady state allocates nothing (issue 8: "no memory allocation in the steady state"):
// this executable counts every heap allocation of the process (the C allocator interposed, below)
// and checks that, once warm, a call through Octet's INT8 path (dynamic INT8: Octet's kernels end
// to end) makes none at all, on any thread: Encoder::encode from text and encode_tokens with a
// reused EncoderOutputs, and BertModel::forward into a reused BertOutputs, packed and padded, in
// input order and sorted, on one worker with one or two OpenMP threads. Not asserted (measured,
// docs/runtime.md): the FP32 path, whose GEMMs are oneDNN's (it allocates per call). Its own
// executable: the interposed allocator serves the whole process; not built with the sanitizers,
// whose allocator owns these functions.
#include <gtest/gtest.h>

#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdlib>
#include <string>
#include <vector>

#include "common/test_support.h"
#include "common/tiny_bert.h"
#include "octet/encoder.h"

// Every heap allocation of the process goes through these: the C allocator's entry points,
// interposed (the executable's definitions take precedence over the C library's) and forwarded to
// glibc's own implementations. operator new, oneDNN, libgomp and utf8proc all allocate through
// them, so nothing is missed.
extern "C" {
void* __libc_malloc(std::size_t);
void* __libc_calloc(std::size_t, std::size_t);
void* __libc_realloc(void*, std::size_t);
void* __libc_memalign(std::size_t, std::size_t);
}

namespace {
std::atomic<bool> g_counting{false};
std::atomic<long> g_allocations{0};
inline void count() {
  if (g_counting.load(std::memory_order_relaxed)) g_allocations.fetch_add(1);
}
}  // namespace

extern "C" {
void* malloc(std::size_t n) {
  count();
  return __libc_malloc(n);
}
void* calloc(std::size_t n, std::size_t size) {
  count();
  return __libc_calloc(n, size);
}
void* realloc(void* p, std::size_t n) {
  count();
  return __libc_realloc(p, n);
}
void* aligned_alloc(std::size_t alignment, std::size_t n) {
  count();
  return __libc_memalign(alignment, n);
}
void* memalign(std::size_t alignment, std::size_t n) {
  count();
  return __libc_memalign(alignment, n);
}
int posix_memalign(void** out, std::size_t alignment, std::size_t n) {
  count();
  void* p = __libc_memalign(alignment, n);
  if (p == nullptr) return ENOMEM;
  *out = p;
  return 0;
}
}

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
  // The control: the test can fail. Through a volatile pointer and an opaque container, so that
  // the compiler cannot elide the allocations.
  void* (*volatile allocate)(std::size_t) = std::malloc;
  EXPECT_EQ(allocations_during([&] { std::free(allocate(64)); }), 1);
  std::vector<std::string> grown;
  EXPECT_GE(allocations_during([&] { grown.emplace_back(100, 'x'); }), 2);
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
       {Split{1, 1, 1, Padding::none, true}, Split{2, 1, 2, Padding::none, true},
        Split{2, 1, 2, Padding::longest, true}, Split{1, 1, 1, Padding::none, false},
        Split{2, 1, 2, Padding::longest, false}}) {
    Encoder enc = Encoder::load(dir_.path() / "m", {.precision = Precision::int8_dynamic},
                                {.max_batch_tokens = 64,
                                 .sort_by_length = c.sort,
                                 .padding = c.padding,
                                 .threads = c.threads,
                                 .workers = c.workers,
                                 .intra_threads = c.intra,
                                 .outputs = what});
    EncoderOutputs out;
    // Warm-up. One worker (with one or two OpenMP threads inside the model) is deterministic:
    // everything has grown after the first call. Several workers are not asserted: the model
    // keeps a pool of workspaces and the GEMMs a scratch per thread, each grown to the largest
    // batch it has met, and which worker runs which batch (and whether a worker runs at all in a
    // call) is up to the scheduler, so their warm-up takes an unknown number of calls
    // (docs/runtime.md).
    for (int r = 0; r < 2; ++r) enc.encode_tokens(seqs_, out);
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

TEST_F(SteadyStateAlloc, Int8EncodeFromTextAllocatesNothingOnceWarm) {
  // Single texts and pairs, accents and non-ASCII punctuation (the Unicode normalisation path),
  // unknown words, one text over max_seq_len (truncation).
  const std::vector<std::string> texts = {
      "a good movie",
      "the film was not very good , but the acting was great",
      "Café crème — NOT bad!",
      "boring",
      "i love this film ! it is a terrible , terrible , terrible movie and i hate it",
      std::string(400, 'a') + " good good good good good good good good good good good good good" +
          " not bad not bad not bad not bad not bad not bad not bad not bad not bad not bad",
      "unbelievable zyx qqq",
      "good acting"};
  const std::vector<TextInput> in = test::text_inputs(texts);  // every third one a pair
  for (const int threads : {1, 2}) {
    Encoder enc = Encoder::load(dir_.path() / "m", {.precision = Precision::int8_dynamic},
                                {.max_seq_len = 24,
                                 .max_batch_tokens = 64,
                                 .threads = threads,
                                 .workers = 1,
                                 .intra_threads = threads,
                                 .outputs = BertOutputKind::logits | BertOutputKind::last_hidden});
    EncoderOutputs out;
    for (int r = 0; r < 2; ++r) enc.encode(in, out);
    EXPECT_GT(enc.stats().truncated, 0);
    EXPECT_EQ(allocations_during([&] { enc.encode(in, out); }), 0) << threads << " thread(s)";
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
