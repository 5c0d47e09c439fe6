// MLM pretraining: corpus reading (zlib), packing, dynamic masking statistics, and short real
// runs on a slice of the BBC news corpus: the loss falls, held-out accuracy rises, a run
// interrupted and resumed from its checkpoint ends bit-identical to an uninterrupted one, and
// the saved directory loads in the Octet engine and in the trainer.
#include "train/pretrain.h"

#include <gtest/gtest.h>
#include <zlib.h>

#include <nlohmann/json.hpp>

#include "common/test_support.h"
#include "io/bert_config.h"
#include "io/safetensors.h"
#include "octet/error.h"
#include "octet/model.h"
#include "train/bert_torch.h"
#include "train/corpus.h"

namespace octet::train {
namespace {

namespace fs = std::filesystem;
using test::TempDir;

void write_gz(const fs::path& path, const std::string& text) {
  gzFile f = gzopen(path.c_str(), "wb");
  ASSERT_NE(f, nullptr);
  ASSERT_EQ(gzwrite(f, text.data(), static_cast<unsigned>(text.size())),
            static_cast<int>(text.size()));
  ASSERT_EQ(gzclose(f), Z_OK);
}

TEST(CorpusTest, ReadsGzipLinesSkippingEmptyOnesAndHandlesCrlfAndNoFinalNewline) {
  TempDir dir;
  write_gz(dir.path() / "a.txt.gz", "first doc\r\n\nsecond doc\nthird");
  std::vector<std::pair<std::string, std::size_t>> lines;
  read_gz_lines(dir.path() / "a.txt.gz",
                [&](std::string_view l, std::size_t no) { lines.emplace_back(l, no); });
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[0].first, "first doc");
  EXPECT_EQ(lines[1].first, "second doc");
  EXPECT_EQ(lines[1].second, 3u);
  EXPECT_EQ(lines[2].first, "third");
}

TEST(CorpusTest, TruncatedGzipIsAnErrorNamingTheFile) {
  TempDir dir;
  std::string text;
  for (int i = 0; i < 20000; ++i) text += "line number " + std::to_string(i * 7919) + "\n";
  write_gz(dir.path() / "full.txt.gz", text);
  std::string bytes = test::read_file(dir.path() / "full.txt.gz");
  test::write_file(dir.path() / "cut.txt.gz", bytes.substr(0, bytes.size() / 2));
  try {
    read_gz_lines(dir.path() / "cut.txt.gz", [](std::string_view, std::size_t) {});
    FAIL() << "a truncated gzip file was read without error";
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find("cut.txt.gz"), std::string::npos) << e.what();
  }
}

TEST(CorpusTest, CorpusFilesListsDirectoriesAndRejectsMissingOnes) {
  TempDir dir;
  write_gz(dir.path() / "b.txt.gz", "x\n");
  write_gz(dir.path() / "a.txt.gz", "y\n");
  test::write_file(dir.path() / "notes.md", "not corpus");
  auto files = corpus_files(dir.path());
  ASSERT_EQ(files.size(), 2u);
  EXPECT_EQ(files[0].filename(), "a.txt.gz");
  EXPECT_THROW(corpus_files(dir.path() / "missing"), DataError);
  TempDir empty;
  EXPECT_THROW(corpus_files(empty.path()), DataError);
}

TEST(CorpusTest, PacksDocumentsSeparatedBySepIntoClsSepSequences) {
  TempDir dir;
  write_gz(dir.path() / "c.txt.gz", "the cat sat\n\nthe dog ran away\n");
  auto tok = text::WordPieceTokenizer::from_vocab_file(test::require_data("vocab/vocab.txt"));
  PackedCorpus c = pack_corpus({dir.path() / "c.txt.gz"}, tok, 8);
  EXPECT_EQ(c.documents, 2u);
  // the cat sat [SEP] the dog ran away [SEP] = 9 tokens -> one sequence of 6 body tokens.
  ASSERT_EQ(c.stream.size(), 9u);
  EXPECT_EQ(c.stream[3], tok.sep_id());
  ASSERT_EQ(c.sequences(), 1u);
  std::vector<int32_t> seq(8);
  c.sequence(0, seq.data(), tok.cls_id(), tok.sep_id());
  EXPECT_EQ(seq[0], tok.cls_id());
  EXPECT_EQ(seq[7], tok.sep_id());
  EXPECT_EQ(seq[1], *tok.find("the"));
  EXPECT_EQ(seq[6], *tok.find("dog"));
  EXPECT_THROW(pack_corpus({dir.path() / "c.txt.gz"}, tok, 64), DataError);
}

TEST(CorpusTest, MaskingFollowsBertsRatesAndNeverTouchesSpecialTokens) {
  const int32_t cls = 101, sep = 102, mask = 103, vocab = 30522;
  std::vector<int32_t> ids(200000);
  for (std::size_t i = 0; i < ids.size(); ++i)
    ids[i] = i % 100 == 0 ? cls : i % 100 == 99 ? sep : 1000 + static_cast<int32_t>(i % 5000);
  const std::vector<int32_t> original = ids;
  MaskingOptions o;
  MaskedBatch m = mask_tokens(ids, o, 7, mask, vocab, {cls, sep, 0});
  const double candidates = 200000.0 * 98 / 100;
  EXPECT_NEAR(m.positions.size() / candidates, 0.15, 0.005);
  std::size_t masked = 0, kept = 0, random = 0;
  for (std::size_t k = 0; k < m.positions.size(); ++k) {
    const auto p = static_cast<std::size_t>(m.positions[k]);
    EXPECT_NE(original[p], cls);
    EXPECT_NE(original[p], sep);
    EXPECT_EQ(m.labels[k], original[p]);
    if (ids[p] == mask) {
      ++masked;
    } else if (ids[p] == original[p]) {
      ++kept;
    } else {
      ++random;
    }
  }
  const double n = static_cast<double>(m.positions.size());
  EXPECT_NEAR(masked / n, 0.8, 0.01);
  EXPECT_NEAR(random / n, 0.1, 0.01);  // a random draw may equal the original: counted as kept
  EXPECT_NEAR(kept / n, 0.1, 0.01);
  // Unselected positions are untouched; the same seed gives the same masking.
  std::size_t changed = 0;
  for (std::size_t i = 0; i < ids.size(); ++i) changed += ids[i] != original[i];
  EXPECT_LE(changed, m.positions.size());
  std::vector<int32_t> again = original;
  MaskedBatch m2 = mask_tokens(again, o, 7, mask, vocab, {cls, sep, 0});
  EXPECT_EQ(m2.positions, m.positions);
  EXPECT_EQ(again, ids);
}

// A slice of the real BBC news corpus as its own gzip file.
fs::path corpus_slice(const fs::path& dir, std::size_t documents) {
  std::string text;
  std::size_t n = 0;
  read_gz_lines(test::require_data("corpus/bbc_news.txt.gz"), [&](std::string_view l, std::size_t) {
    if (n++ < documents) (text += l) += '\n';
  });
  const fs::path out = dir / "slice.txt.gz";
  write_gz(out, text);
  return out;
}

PretrainOptions tiny_run(const fs::path& corpus, const fs::path& out) {
  PretrainOptions o;
  o.corpus = {corpus};
  o.vocab = test::require_data("vocab/vocab.txt");
  o.config = io::parse_bert_config({{"vocab_size", 30522},
                                    {"hidden_size", 64},
                                    {"num_hidden_layers", 2},
                                    {"num_attention_heads", 2},
                                    {"intermediate_size", 128},
                                    {"max_position_embeddings", 64}},
                                   "test");
  o.out = out;
  o.batch_size = 16;
  o.seq_len = 64;
  o.max_steps = 120;
  o.adamw.lr = 2e-3;
  o.threads = 1;
  o.log_every = 10;
  o.eval_every = 0;
  o.save_every = 0;
  o.eval_sequences = 32;
  return o;
}

TEST(PretrainTest, LossFallsOnRealTextAndTheModelLoadsInTheEngine) {
  TempDir dir;
  const fs::path corpus = corpus_slice(dir.path(), 300);
  PretrainOptions o = tiny_run(corpus, dir.path() / "model");
  std::vector<std::string> lines;
  PretrainResult r = pretrain(o, [&](const std::string& l) { lines.push_back(l); });
  EXPECT_EQ(r.steps_done, 120);
  EXPECT_EQ(r.tokens_seen, 120 * 16 * 64);
  auto log = nlohmann::json::parse(test::read_file(dir.path() / "model" / "pretrain_log.json"));
  const auto& h = log["history"];
  ASSERT_EQ(h.size(), 12u);
  const double first = h[0]["loss"], last = h[11]["loss"];
  // Starts near ln(30522) = 10.3 and must fall by far more than noise.
  EXPECT_GT(first, 9.0);
  EXPECT_LT(last, first - 2.5) << "first " << first << " last " << last;
  EXPECT_GT(r.eval_accuracy, 0.02);  // chance is 1/30522
  EXPECT_LT(r.eval_loss, 8.0);

  // The saved directory: HF names with the MLM head, loadable by both the engine and trainer.
  io::SafetensorsReader st(dir.path() / "model" / "model.safetensors");
  EXPECT_NE(st.find("cls.predictions.transform.dense.weight"), nullptr);
  EXPECT_NE(st.find("cls.predictions.bias"), nullptr);
  EXPECT_NE(st.find("bert.encoder.layer.1.output.LayerNorm.weight"), nullptr);
  PretrainedBert p = load_pretrained(dir.path() / "model");
  EXPECT_EQ(p.newly_initialized,
            std::vector<std::string>({"classifier.weight", "classifier.bias"}));
  BertLoadOptions lo;
  lo.load_head = false;
  BertModel engine = BertModel::load(dir.path() / "model", lo);
  EXPECT_EQ(engine.config().num_hidden_layers, 2);
}

TEST(PretrainTest, InterruptedAndResumedRunEndsBitIdenticalToAStraightRun) {
  TempDir dir;
  const fs::path corpus = corpus_slice(dir.path(), 120);
  auto quiet = [](const std::string&) {};
  PretrainOptions a = tiny_run(corpus, dir.path() / "a");
  a.max_steps = 12;
  a.save_every = 4;
  pretrain(a, quiet);

  PretrainOptions b = a;
  b.out = dir.path() / "b";
  b.stop_at_step = 7;
  PretrainResult first = pretrain(b, quiet);
  EXPECT_EQ(first.steps_done, 7);
  EXPECT_TRUE(fs::exists(dir.path() / "b" / "checkpoint" / "state.json"));
  b.stop_at_step = 0;
  b.resume = true;
  PretrainResult second = pretrain(b, quiet);
  EXPECT_EQ(second.steps_done, 12);
  EXPECT_EQ(second.tokens_seen, 12 * 16 * 64);
  EXPECT_EQ(test::read_file(dir.path() / "a" / "model.safetensors"),
            test::read_file(dir.path() / "b" / "model.safetensors"));

  // A checkpoint from another configuration is refused.
  PretrainOptions c = b;
  c.batch_size = 8;
  EXPECT_THROW(pretrain(c, quiet), InvalidArgument);
}

TEST(PretrainTest, RejectsVocabularyConfigMismatch) {
  TempDir dir;
  const fs::path corpus = corpus_slice(dir.path(), 20);
  PretrainOptions o = tiny_run(corpus, dir.path() / "m");
  o.config.vocab_size = 1000;
  EXPECT_THROW(pretrain(o, [](const std::string&) {}), InvalidArgument);
  o = tiny_run(corpus, dir.path() / "m");
  o.seq_len = 128;  // > max_position_embeddings 64
  EXPECT_THROW(pretrain(o, [](const std::string&) {}), InvalidArgument);
}

TEST(PretrainOptionsTest, PositionInitNamesRoundTrip) {
  for (PositionInit p : {PositionInit::normal, PositionInit::sinusoidal, PositionInit::local})
    EXPECT_EQ(parse_position_init(position_init_name(p)), p) << position_init_name(p);
  EXPECT_STREQ(position_init_name(PositionInit::local), "local");
  EXPECT_EQ(parse_position_init("Local"), std::nullopt);
}

}  // namespace
}  // namespace octet::train
