// octet::Encoder (include/octet/encoder.h) on a tiny random BERT written to disk: outputs come
// back in input order and equal a direct BertModel::forward of each input alone; sorting,
// batching and thread configurations do not change the results; empty and over-long inputs;
// arena reuse (no capacity growth after warm-up); errors name the input.
#include "octet/encoder.h"

#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "common/test_support.h"
#include "common/tiny_bert.h"
#include "models/bert.h"
#include "octet/error.h"
#include "text/wordpiece.h"

namespace octet {
namespace {

const std::vector<std::string>& sentences() {
  static const std::vector<std::string> s = {
      "a good movie",
      "the film was not very good , but the acting was great and the story was fun",
      "boring",
      "i love this film !",
      "it is a terrible , terrible , terrible movie and i hate it",
      "unbelievable",
      "the story",
      "that was fun and good and great",
      "not bad",
      "this movie is boring but the film is good . i love it ! the acting ? great",
      "a",
      "good acting"};
  return s;
}

std::vector<TextInput> inputs_of(const std::vector<std::string>& texts) {
  return test::text_inputs(texts);  // every third example is a pair
}

class EncoderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    test::write_tiny_bert(dir_.path() / "m", {.hidden = 16, .intermediate = 32, .heads = 2});
  }
  std::filesystem::path model() const { return dir_.path() / "m"; }
  Encoder load(EncoderOptions o, Precision p = Precision::fp32) {
    return Encoder::load(model(), {.precision = p}, o);
  }
  test::TempDir dir_;
};

void expect_near(const std::vector<float>& a, const std::vector<float>& b, float tol,
                 const std::string& what) {
  ASSERT_EQ(a.size(), b.size()) << what;
  for (std::size_t i = 0; i < a.size(); ++i) {
    ASSERT_NEAR(a[i], b[i], tol * (1 + std::fabs(b[i]))) << what << " at " << i;
  }
}

double cosine(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  double dot = 0, na = 0, nb = 0;
  for (std::size_t i = 0; i < std::min(a.size(), b.size()); ++i) {
    dot += double{a[i]} * b[i];
    na += double{a[i]} * a[i];
    nb += double{b[i]} * b[i];
  }
  return dot / std::sqrt(na * nb);
}

TEST_F(EncoderTest, ReturnsOutputsInInputOrderEqualToSingleSequenceForward) {
  Encoder enc = load({.max_batch_tokens = 40, .threads = 2});
  const std::vector<TextInput> in = inputs_of(sentences());
  const EncoderOutputs out = enc.encode(in);
  ASSERT_EQ(out.count, static_cast<int64_t>(in.size()));
  ASSERT_EQ(out.num_labels, 2);
  EXPECT_GT(enc.stats().batches, 2);  // the budget really split the call
  const text::WordPieceTokenizer& tok = enc.tokenizer();
  for (std::size_t i = 0; i < in.size(); ++i) {
    const text::Encoding e = in[i].text_b.empty() ? tok.encode(in[i].text_a, 128)
                                                  : tok.encode_pair(in[i].text_a, in[i].text_b, 64);
    EXPECT_EQ(out.lengths[i], static_cast<int32_t>(e.size())) << "input " << i;
    const BertSequence s{e.input_ids, e.token_type_ids};
    const BertOutputs ref = enc.model().forward({&s, 1}, BertOutputKind::logits);
    for (int64_t l = 0; l < 2; ++l) {
      EXPECT_NEAR(out.logits[i * 2 + l], ref.logits[l], 1e-5) << "input " << i << " label " << l;
    }
  }
}

TEST_F(EncoderTest, SortedAndUnsortedGiveTheSameResults) {
  const std::vector<TextInput> in = inputs_of(sentences());
  const BertOutputKind what = BertOutputKind::logits | BertOutputKind::mean_pooled;
  Encoder sorted = load({.max_batch_tokens = 48, .threads = 1, .outputs = what});
  Encoder unsorted =
      load({.max_batch_tokens = 48, .sort_by_length = false, .threads = 1, .outputs = what});
  const EncoderOutputs a = sorted.encode(in);
  const EncoderOutputs b = unsorted.encode(in);
  expect_near(a.logits, b.logits, 1e-5f, "logits");
  expect_near(a.mean_pooled, b.mean_pooled, 1e-5f, "mean_pooled");
  // Sorting groups similar lengths: never more padding than input order.
  EXPECT_LE(sorted.stats().padded_tokens, unsorted.stats().padded_tokens);
  EXPECT_EQ(sorted.stats().tokens, unsorted.stats().tokens);
}

// Padding::longest runs the padded layout (pad rows through every layer, masked out of
// attention): the outputs of the valid tokens are those of the packed layout, in both orders,
// and the engine ran the padded-equivalent rows.
TEST_F(EncoderTest, PaddedLayoutGivesThePackedResults) {
  const std::vector<TextInput> in = inputs_of(sentences());
  const BertOutputKind what = BertOutputKind::logits | BertOutputKind::mean_pooled |
                              BertOutputKind::last_hidden | BertOutputKind::pooled;
  for (const bool sort : {true, false}) {
    const EncoderOptions o{
        .max_batch_tokens = 64, .sort_by_length = sort, .threads = 2, .outputs = what};
    EncoderOptions po = o;
    po.padding = Padding::longest;
    Encoder packed = load(o), padded = load(po);
    const EncoderOutputs a = packed.encode(in);
    const EncoderOutputs b = padded.encode(in);
    const std::string order = sort ? "sorted" : "unsorted";
    expect_near(b.logits, a.logits, 1e-5f, order + " logits");
    expect_near(b.pooled, a.pooled, 1e-5f, order + " pooled");
    expect_near(b.mean_pooled, a.mean_pooled, 1e-5f, order + " mean_pooled");
    ASSERT_EQ(b.last_hidden.size(), a.last_hidden.size());
    for (std::size_t i = 0; i < a.last_hidden.size(); ++i) {
      EXPECT_EQ(b.last_hidden[i].size(), static_cast<std::size_t>(a.lengths[i]) * 16) << i;
      expect_near(b.last_hidden[i], a.last_hidden[i], 1e-5f,
                  order + " last_hidden of input " + std::to_string(i));
    }
    EXPECT_EQ(packed.stats().run_tokens, packed.stats().tokens);
    EXPECT_EQ(padded.stats().run_tokens, padded.stats().padded_tokens);
    EXPECT_GT(padded.stats().padded_tokens, padded.stats().tokens) << order;
  }
  // Dynamic INT8: the pad rows enter the per-batch activation scales, so the results may move a
  // little, never far.
  Encoder int8 = load({.max_batch_tokens = 64, .threads = 1}, Precision::int8_dynamic);
  Encoder int8_padded = load({.max_batch_tokens = 64, .padding = Padding::longest, .threads = 1},
                             Precision::int8_dynamic);
  const EncoderOutputs a = int8.encode(in), b = int8_padded.encode(in);
  EXPECT_GT(cosine(a.logits, b.logits), 0.99);
}

TEST_F(EncoderTest, ThreadConfigurationsGiveTheSameResults) {
  std::vector<std::string> texts;
  for (int r = 0; r < 2; ++r) texts.insert(texts.end(), sentences().begin(), sentences().end());
  const std::vector<TextInput> in = inputs_of(texts);
  const BertOutputKind what = BertOutputKind::logits | BertOutputKind::last_hidden;
  Encoder base = load({.max_batch_tokens = 64, .threads = 1, .outputs = what});
  const EncoderOutputs ref = base.encode(in);
  EXPECT_EQ(base.options().workers, 1);
  EXPECT_EQ(base.options().intra_threads, 1);
  for (auto [workers, intra] : {std::pair{2, 1}, {1, 2}, {2, 2}, {3, 1}}) {
    Encoder enc = load({.max_batch_tokens = 64,
                        .threads = workers * intra,
                        .workers = workers,
                        .intra_threads = intra,
                        .outputs = what});
    const std::string cfg =
        "workers " + std::to_string(workers) + " intra " + std::to_string(intra);
    const EncoderOutputs out = enc.encode(in);
    expect_near(out.logits, ref.logits, 1e-5f, cfg);
    ASSERT_EQ(out.last_hidden.size(), in.size());
    for (std::size_t i = 0; i < in.size(); ++i) {
      expect_near(out.last_hidden[i], ref.last_hidden[i], 1e-5f, cfg + " last_hidden");
    }
  }
}

TEST_F(EncoderTest, EmptyInputGivesEmptyOutputs) {
  Encoder enc = load({.threads = 2});
  const EncoderOutputs out = enc.encode(std::span<const TextInput>{});
  EXPECT_EQ(out.count, 0);
  EXPECT_TRUE(out.logits.empty());
  EXPECT_EQ(enc.stats().batches, 0);
  // Still usable afterwards.
  const std::vector<TextInput> one = {{"good"}};
  EXPECT_EQ(enc.encode(one).count, 1);
}

TEST_F(EncoderTest, OverlongInputIsTruncated) {
  Encoder enc = load({.max_seq_len = 16, .threads = 1});
  std::string long_text;
  for (int i = 0; i < 100; ++i) long_text += "good movie ";
  const std::vector<TextInput> in = {{long_text}, {"good"}, {long_text, long_text}};
  const EncoderOutputs out = enc.encode(in);
  EXPECT_EQ(out.lengths, (std::vector<int32_t>{16, 3, 16}));
  EXPECT_EQ(enc.stats().truncated, 2);
  const text::Encoding e = enc.tokenizer().encode(long_text, 16);
  const BertSequence s{e.input_ids, e.token_type_ids};
  const BertOutputs ref = enc.model().forward({&s, 1}, BertOutputKind::logits);
  EXPECT_NEAR(out.logits[0], ref.logits[0], 1e-5);

  // Token input: the first 15 tokens and the final [SEP].
  std::vector<int32_t> ids(40, 20);
  ids.front() = 2;
  ids.back() = 3;
  std::vector<int32_t> cut(ids.begin(), ids.begin() + 15);
  cut.push_back(3);
  const std::vector<BertSequence> tin = {{ids, {}}};
  EncoderOutputs tout;
  enc.encode_tokens(tin, tout);
  EXPECT_EQ(tout.lengths[0], 16);
  const BertSequence cs{cut, {}};
  const BertOutputs cref = enc.model().forward({&cs, 1}, BertOutputKind::logits);
  EXPECT_NEAR(tout.logits[0], cref.logits[0], 1e-5);
  EXPECT_NEAR(tout.logits[1], cref.logits[1], 1e-5);
}

TEST_F(EncoderTest, ArenasStopGrowingAfterWarmUp) {
  std::vector<std::string> texts;
  for (int r = 0; r < 5; ++r) texts.insert(texts.end(), sentences().begin(), sentences().end());
  const std::vector<TextInput> in = inputs_of(texts);
  Encoder enc = load({.max_batch_tokens = 64,
                      .threads = 2,
                      .outputs = BertOutputKind::logits | BertOutputKind::last_hidden});
  EncoderOutputs out;
  enc.encode(in, out);
  const int64_t after_warmup = enc.stats().arena_growths;
  EXPECT_GT(after_warmup, 0);
  for (int r = 0; r < 3; ++r) {
    enc.encode(in, out);
    EXPECT_EQ(enc.stats().arena_growths, after_warmup) << "call " << r + 2;
  }
  // A smaller call fits in the runtime's arenas; its different batch plan may resize the
  // per-batch output buffers once, after which repeating it grows nothing.
  enc.encode(std::span<const TextInput>(in).first(7), out);
  const int64_t after_small = enc.stats().arena_growths;
  enc.encode(std::span<const TextInput>(in).first(7), out);
  EXPECT_EQ(enc.stats().arena_growths, after_small);
  EXPECT_EQ(out.count, 7);
}

TEST_F(EncoderTest, SmallCallsAreSplitAcrossWorkers) {
  Encoder enc = load({.threads = 2, .workers = 2, .intra_threads = 1});
  std::vector<int32_t> ids(20, 11);
  std::vector<BertSequence> in(8, BertSequence{ids, {}});
  EncoderOutputs out;
  enc.encode_tokens(in, out);
  EXPECT_EQ(enc.stats().batches, 2);  // 160 tokens, 80 per worker: 4 sequences per batch
  EXPECT_EQ(enc.stats().padded_tokens, 160);
  for (std::size_t i = 1; i < 8; ++i) EXPECT_EQ(out.logits[i * 2], out.logits[0]);
}

// Issue 8: with the automatic split, a call with fewer batches than workers gives the idle
// workers' threads to the running batch as intra-op threads; the outputs do not change by a bit.
// The model is large enough (H = 128, I = 512, 96 tokens) for the GEMMs, LayerNorm and attention
// to really split over 2 OpenMP threads.
TEST(EncoderThreads, OneBatchOnTwoThreadsUsesTwoIntraOpThreadsWithIdenticalResults) {
  test::TempDir dir;
  test::write_tiny_bert(
      dir.path() / "m",
      {.hidden = 128, .intermediate = 512, .layers = 2, .heads = 4, .max_positions = 128});
  std::vector<std::vector<int32_t>> ids(2, std::vector<int32_t>(96));
  for (std::size_t s = 0; s < ids.size(); ++s) {
    for (std::size_t i = 0; i < ids[s].size(); ++i)
      ids[s][i] = static_cast<int32_t>(5 + (i * 7 + s * 3) % 30);
  }
  const std::vector<BertSequence> one = {{ids[0], {}}};
  const std::vector<BertSequence> two = {{ids[0], {}}, {ids[1], {}}};
  const BertOutputKind what = BertOutputKind::logits | BertOutputKind::last_hidden;
  for (Precision p : {Precision::fp32, Precision::int8_dynamic}) {
    const std::string name = p == Precision::fp32 ? "fp32" : "int8";
    Encoder t1 = Encoder::load(dir.path() / "m", {.precision = p}, {.threads = 1, .outputs = what});
    Encoder t2 = Encoder::load(dir.path() / "m", {.precision = p}, {.threads = 2, .outputs = what});
    EXPECT_EQ(t2.options().workers, 2) << name;
    EncoderOutputs r1, r2;
    t1.encode_tokens(one, r1);
    t2.encode_tokens(one, r2);
    EXPECT_EQ(t1.stats().workers_used, 1) << name;
    EXPECT_EQ(t1.stats().intra_threads_used, 1) << name;
    EXPECT_EQ(t2.stats().batches, 1) << name;
    EXPECT_EQ(t2.stats().workers_used, 1) << name;
    EXPECT_EQ(t2.stats().intra_threads_used, 2) << name;
    EXPECT_EQ(r2.logits, r1.logits) << name << ": 1 worker x 2 threads vs 1 thread";
    ASSERT_EQ(r2.last_hidden.size(), 1u);
    EXPECT_EQ(r2.last_hidden[0], r1.last_hidden[0]) << name;
    // Two sequences: two batches, one per worker, one intra-op thread each; each sequence's
    // outputs equal its own single-sequence run on 1 thread (FP32; INT8's dynamic scale spans
    // the batch, and each batch here holds one sequence).
    t2.encode_tokens(two, r2);
    EXPECT_EQ(t2.stats().batches, 2) << name;
    EXPECT_EQ(t2.stats().workers_used, 2) << name;
    EXPECT_EQ(t2.stats().intra_threads_used, 1) << name;
    EXPECT_EQ(r2.last_hidden[0], r1.last_hidden[0]) << name;
    // An explicit split is kept as asked.
    Encoder fixed =
        Encoder::load(dir.path() / "m", {.precision = p},
                      {.threads = 2, .workers = 2, .intra_threads = 1, .outputs = what});
    fixed.encode_tokens(one, r2);
    EXPECT_EQ(fixed.stats().workers_used, 1) << name;
    EXPECT_EQ(fixed.stats().intra_threads_used, 1) << name;
    EXPECT_EQ(r2.logits, r1.logits) << name;
  }
}

// The per-call override the runtime uses really reaches the forward pass's OpenMP setting (the
// tap runs on the calling thread after forward() set its thread count), and nests.
TEST(EncoderThreads, ScopedForwardThreadsSetsTheForwardThreadCount) {
  test::TempDir dir;
  test::write_tiny_bert(dir.path() / "m");
  const BertModel model = BertModel::load(dir.path() / "m", {.threads = 1});
  const std::vector<int32_t> ids = {2, 7, 8, 3};
  const std::vector<BertSequence> batch = {{ids, {}}};
  int seen = 0;
  const ActivationTap tap = [&](std::string_view, TapPoint, const float*, int64_t, int64_t,
                                std::ptrdiff_t) { seen = omp_get_max_threads(); };
  model.forward(batch, BertOutputKind::logits, tap);
  EXPECT_EQ(seen, 1);
  {
    const models::ScopedForwardThreads two(2);
    model.forward(batch, BertOutputKind::logits, tap);
    EXPECT_EQ(seen, 2);
    {
      const models::ScopedForwardThreads three(3);
      model.forward(batch, BertOutputKind::logits, tap);
      EXPECT_EQ(seen, 3);
    }
    model.forward(batch, BertOutputKind::logits, tap);
    EXPECT_EQ(seen, 2);
  }
  model.forward(batch, BertOutputKind::logits, tap);
  EXPECT_EQ(seen, 1);
}

TEST_F(EncoderTest, Int8DynamicRunsAndAgreesWithFp32) {
  const std::vector<TextInput> in = inputs_of(sentences());
  Encoder fp32 = load({.threads = 2});
  Encoder int8 = load({.threads = 2}, Precision::int8_dynamic);
  EXPECT_EQ(int8.model().precision(), Precision::int8_dynamic);
  const EncoderOutputs a = fp32.encode(in), b = int8.encode(in);
  EXPECT_GT(cosine(a.logits, b.logits), 0.99);
}

TEST_F(EncoderTest, ErrorsNameTheInputAndTheOption) {
  Encoder enc = load({.threads = 1});
  std::vector<int32_t> good = {2, 11, 3}, bad = {2, 999, 3};
  EncoderOutputs out;
  const std::vector<BertSequence> empty_seq = {{good, {}}, {{}, {}}};
  try {
    enc.encode_tokens(empty_seq, out);
    FAIL() << "expected InvalidArgument";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("input 1"), std::string::npos) << e.what();
  }
  const std::vector<BertSequence> bad_id = {{good, {}}, {good, {}}, {bad, {}}};
  try {
    enc.encode_tokens(bad_id, out);
    FAIL() << "expected InvalidArgument";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("input 2, position 1: token id 999"), std::string::npos)
        << e.what();
  }
  const std::string not_utf8 = "good \xff movie";
  const std::vector<TextInput> bad_text = {{"good"}, {not_utf8}};
  try {
    enc.encode(bad_text, out);
    FAIL() << "expected DataError";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("input 1"), std::string::npos) << e.what();
  }
  // Usable after a failed call.
  const std::vector<TextInput> ok = {{"good"}};
  EXPECT_EQ(enc.encode(ok).count, 1);

  EXPECT_THROW(load({.threads = 2, .workers = 2, .intra_threads = 2}), InvalidArgument);
  EXPECT_THROW(load({.threads = -1}), InvalidArgument);
  EXPECT_THROW(load({.max_seq_len = 65}), InvalidArgument);  // max_position_embeddings 64
  EXPECT_THROW(load({.max_batch_tokens = 0}), InvalidArgument);
}

}  // namespace
}  // namespace octet
