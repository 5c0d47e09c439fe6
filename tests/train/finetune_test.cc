// Fine-tuning (src/train/finetune.h) on real GLUE data: the CI training smoke test (a tiny random
// BERT on a slice of SST-2: the loss falls and dev accuracy is clearly above chance), regression
// on STS-B, determinism, the best checkpoint reproduced by Octet's engine, and bad inputs.
#include "train/finetune.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <numeric>
#include <sstream>
#include <string>
#include <vector>

#include "common/test_support.h"
#include "data/glue.h"
#include "eval/metrics.h"
#include "io/bert_config.h"
#include "io/safetensors.h"
#include "octet/error.h"
#include "octet/model.h"
#include "text/wordpiece.h"

namespace octet::train {
namespace {

namespace fs = std::filesystem;

// The smoke test's model: 2 layers, hidden 64, 2 heads, FFN 256, the real BERT uncased vocabulary.
void write_tiny_config(const fs::path& path, int64_t num_labels = 2) {
  nlohmann::json j = {{"model_type", "bert"},
                      {"vocab_size", 30522},
                      {"hidden_size", 64},
                      {"num_hidden_layers", 2},
                      {"num_attention_heads", 2},
                      {"intermediate_size", 256},
                      {"max_position_embeddings", 128},
                      {"type_vocab_size", 2},
                      {"hidden_act", "gelu"},
                      {"layer_norm_eps", 1e-12},
                      {"hidden_dropout_prob", 0.1},
                      {"attention_probs_dropout_prob", 0.1},
                      {"initializer_range", 0.02},
                      {"num_labels", num_labels}};
  test::write_file(path, j.dump(2));
}

// The header and the first `n` rows of a GLUE TSV file with a header line.
fs::path head_of(const fs::path& src, std::size_t n, const fs::path& dst) {
  std::ifstream in(src, std::ios::binary);
  std::string line, out;
  for (std::size_t i = 0; i <= n && std::getline(in, line); ++i) out += line + "\n";
  test::write_file(dst, out);
  return dst;
}

double mean(const std::vector<double>& v, std::size_t begin, std::size_t end) {
  return std::accumulate(v.begin() + begin, v.begin() + end, 0.0) / double(end - begin);
}

FinetuneOptions random_tiny(const test::TempDir& tmp, data::Task task) {
  FinetuneOptions o;
  o.init = InitMode::random;
  o.config_file = tmp / "tiny_config.json";
  write_tiny_config(o.config_file);
  o.vocab_file = test::require_data("vocab/vocab.txt");
  o.task = task;
  // One thread: on CI's two busy cores, two OpenMP threads spin against each other (4x slower).
  o.threads = 1;
  o.out_dir = tmp / "out";
  return o;
}

// The CI smoke test, run once for the suite: a few hundred steps on a slice of SST-2 train.
class FinetuneSmokeTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    tmp_ = std::make_unique<test::TempDir>();
    options_ = random_tiny(*tmp_, data::Task::sst2);
    options_.train_file = test::require_data("glue/SST-2/train.tsv");
    options_.dev_file = test::require_data("glue/SST-2/dev.tsv");
    options_.max_train_examples = 4000;
    options_.epochs = 2;
    options_.batch_size = 32;
    options_.lr = 1e-3;
    options_.max_seq_len = 64;
    const auto t0 = std::chrono::steady_clock::now();
    result_ = std::make_unique<FinetuneResult>(finetune(options_));
    seconds_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
  static void TearDownTestSuite() {
    result_.reset();
    tmp_.reset();
  }

  static std::unique_ptr<test::TempDir> tmp_;
  static FinetuneOptions options_;
  static std::unique_ptr<FinetuneResult> result_;
  static double seconds_;
};
std::unique_ptr<test::TempDir> FinetuneSmokeTest::tmp_;
FinetuneOptions FinetuneSmokeTest::options_;
std::unique_ptr<FinetuneResult> FinetuneSmokeTest::result_;
double FinetuneSmokeTest::seconds_ = 0;

// One test, not four: ctest runs every test in a process of its own, and the training should run
// once.
TEST_F(FinetuneSmokeTest, LossFallsDevAccuracyBeatsChanceAndTheEngineAgrees) {
  ASSERT_NE(result_, nullptr) << "the smoke training failed (see the error above)";
  {
    SCOPED_TRACE("TrainingLossFalls");
    const std::vector<double>& l = result_->step_losses;
    ASSERT_EQ(static_cast<int64_t>(l.size()), result_->total_steps);
    ASSERT_EQ(result_->total_steps, 2 * 125);  // 4000 examples / 32, two epochs
    const std::size_t fifth = l.size() / 5;
    const double first = mean(l, 0, fifth), last = mean(l, l.size() - fifth, l.size());
    std::printf(
        "smoke: %lld steps in %.1f s, loss first 20%% %.4f -> last 20%% %.4f, dev accuracy "
        "libtorch %.4f, engine %.4f (best epoch %d)\n",
        static_cast<long long>(l.size()), seconds_, first, last, result_->best_dev.main_value(),
        result_->engine_dev.main_value(), result_->best_epoch);
    // ln 2 = 0.693 is chance; a model that learned nothing stays there.
    EXPECT_GT(first, 0.6);
    EXPECT_LT(last, first - 0.15) << "first 20% " << first << ", last 20% " << last;
  }
  {
    SCOPED_TRACE("DevAccuracyIsClearlyAboveChance");
    ASSERT_EQ(result_->dev_examples, 872);
    EXPECT_EQ(result_->best_dev.main, "accuracy");
    // Measured 0.750 (libtorch and engine); chance is 0.509 (the majority class).
    EXPECT_GT(result_->best_dev.main_value(), 0.68);
    EXPECT_GT(result_->engine_dev.main_value(), 0.68);
    // The saved model is the best epoch's.
    double best = 0;
    for (const EpochRecord& e : result_->epochs) best = std::max(best, e.dev.main_value());
    EXPECT_EQ(result_->best_dev.main_value(), best);
    EXPECT_TRUE(result_->epochs[result_->best_epoch - 1].saved);
  }
  {
    SCOPED_TRACE("OctetEngineReproducesTheBestDevMetric");
    // Reload the saved checkpoint independently, as `octet eval` does.
    const fs::path out = options_.out_dir;
    BertModel model = BertModel::load(out, {.threads = 1});
    ASSERT_TRUE(model.has_classifier());
    auto tok = text::WordPieceTokenizer::from_model_dir(out);
    data::Dataset dev = data::read_glue(data::Task::sst2, options_.dev_file);
    std::vector<int> pred;
    for (const data::Example& ex : dev.examples) {
      text::Encoding e = tok.encode(ex.text_a, 64);
      std::vector<BertSequence> batch = {{e.input_ids, e.token_type_ids}};
      BertOutputs o = model.forward(batch, BertOutputKind::logits);
      pred.push_back(o.logits[1] > o.logits[0] ? 1 : 0);
    }
    eval::MetricResult m = eval::glue_metrics(data::Task::sst2, pred, {}, dev);
    EXPECT_EQ(m.main_value(), result_->engine_dev.main_value());
    // libtorch and the engine differ by float rounding only: at most a near-tie may flip.
    EXPECT_NEAR(m.main_value(), result_->best_dev.main_value(), 2.0 / 872 + 1e-12);
  }
  {
    SCOPED_TRACE("WritesConfigForTheTaskAndTrainLog");
    const fs::path out = options_.out_dir;
    io::BertConfig c = io::load_bert_config(out / "config.json");
    EXPECT_EQ(c.num_labels, 2);
    EXPECT_EQ(c.id2label, (std::vector<std::string>{"negative", "positive"}));
    EXPECT_EQ(c.problem_type, io::ProblemType::single_label_classification);
    EXPECT_EQ(c.hidden_size, 64);
    EXPECT_TRUE(fs::exists(out / "vocab.txt"));

    nlohmann::json log = nlohmann::json::parse(test::read_file(out / "train_log.json"));
    EXPECT_EQ(log["task"], "sst2");
    EXPECT_EQ(log["seed"], 42);
    EXPECT_EQ(log["options"]["lr"], 1e-3);
    EXPECT_EQ(log["options"]["init"], "random");
    ASSERT_EQ(log["epochs"].size(), 2u);
    EXPECT_EQ(log["epochs"][0]["train_loss"].get<double>(), result_->epochs[0].train_loss);
    EXPECT_GT(log["epochs"][1]["examples_per_second"].get<double>(), 0);
    EXPECT_EQ(log["best_epoch"], result_->best_epoch);
    EXPECT_EQ(log["engine_dev"]["accuracy"].get<double>(), result_->engine_dev.main_value());
    EXPECT_EQ(log["engine_parity"]["predictions_agree"].get<int64_t>(),
              result_->engine_parity.predictions_agree);
  }
  {
    SCOPED_TRACE("EngineParityIsMeasuredExampleByExample");
    // FP32: the engine's logits are libtorch's up to float rounding (the round-trip bound).
    const EngineParity& p = result_->engine_parity;
    std::printf(
        "smoke: engine against libtorch: %lld of %lld predictions agree, logits max "
        "|diff| %.3g, mean %.3g\n",
        static_cast<long long>(p.predictions_agree), static_cast<long long>(p.examples),
        p.max_abs_logit_diff, p.mean_abs_logit_diff);
    EXPECT_EQ(p.examples, 872);
    EXPECT_GE(p.predictions_agree, 870);
    EXPECT_LT(p.max_abs_logit_diff, 1e-4);
    EXPECT_LE(p.mean_abs_logit_diff, p.max_abs_logit_diff);
    if (p.predictions_agree < p.examples) {
      EXPECT_LT(p.max_disagreeing_margin, 2e-4);
    }
  }
}

TEST(FinetuneTest, RegressionLossFallsOnStsbSlice) {
  test::TempDir tmp;
  FinetuneOptions o = random_tiny(tmp, data::Task::stsb);
  o.train_file = test::require_data("glue/STS-B/train.tsv");
  o.dev_file = head_of(test::require_data("glue/STS-B/dev.tsv"), 200, tmp / "dev.tsv");
  o.max_train_examples = 1024;
  o.epochs = 3;
  o.lr = 1e-3;
  o.max_seq_len = 64;
  FinetuneResult r = finetune(o);
  const std::vector<double>& l = r.step_losses;
  ASSERT_EQ(l.size(), 96u);
  const std::size_t fifth = l.size() / 5;
  const double first = mean(l, 0, fifth), last = mean(l, l.size() - fifth, l.size());
  std::printf("stsb: mse first 20%% %.3f -> last 20%% %.3f, dev pearson %.4f\n", first, last,
              r.best_dev.at("pearson"));
  // Scores are 0..5 (variance about 2.3): the loss starts far above it and must come down.
  EXPECT_LT(last, 0.6 * first);
  EXPECT_EQ(r.best_dev.main, "pearson_and_spearman");
  EXPECT_TRUE(std::isfinite(r.engine_dev.at("pearson")));
  io::BertConfig c = io::load_bert_config(o.out_dir / "config.json");
  EXPECT_EQ(c.num_labels, 1);
  EXPECT_EQ(c.problem_type, io::ProblemType::regression);
  EXPECT_NEAR(r.engine_dev.at("pearson"), r.best_dev.at("pearson"), 1e-4);
  EXPECT_EQ(r.engine_parity.examples, 200);
  EXPECT_EQ(r.engine_parity.predictions_agree, -1);  // a regression: no predicted class
  EXPECT_LT(r.engine_parity.max_abs_logit_diff, 1e-4);
}

FinetuneResult short_run(const test::TempDir& tmp, uint64_t seed, const std::string& out) {
  FinetuneOptions o = random_tiny(tmp, data::Task::sst2);
  o.train_file = test::require_data("glue/SST-2/train.tsv");
  o.dev_file = head_of(test::require_data("glue/SST-2/dev.tsv"), 64, tmp / "dev.tsv");
  o.max_train_examples = 160;
  o.epochs = 1;
  o.batch_size = 16;
  o.seed = seed;
  o.engine_eval = false;
  o.out_dir = tmp / out;
  return finetune(o);
}

TEST(FinetuneTest, SameSeedGivesIdenticalLossesAndWeights) {
  test::TempDir tmp;
  FinetuneResult a = short_run(tmp, 7, "a"), b = short_run(tmp, 7, "b"), c = short_run(tmp, 8, "c");
  ASSERT_EQ(a.step_losses.size(), 10u);
  EXPECT_EQ(a.step_losses, b.step_losses);
  EXPECT_NE(a.step_losses, c.step_losses);
  EXPECT_EQ(test::read_file(tmp / "a" / "model.safetensors"),
            test::read_file(tmp / "b" / "model.safetensors"));
}

TEST(FinetuneTest, StartsFromEncoderOnlyCheckpointWithFreshHeadOfTheTaskSize) {
  test::TempDir tmp;
  // An encoder checkpoint (no pooler, no classifier, names without "bert."), as pretraining
  // writes, whose config says num_labels 2.
  write_tiny_config(tmp / "enc" / "config.json");
  io::BertConfig c = io::load_bert_config(tmp / "enc" / "config.json");
  torch::manual_seed(3);
  BertForSequenceClassification m(c);
  std::vector<torch::Tensor> keep;
  std::vector<io::TensorView> views;
  for (const auto& p : m->named_parameters()) {
    if (!p.key().starts_with("bert.") || p.key().starts_with("bert.pooler.")) continue;
    torch::Tensor t = p.value().detach().contiguous();
    keep.push_back(t);
    views.push_back(
        {p.key().substr(5), io::DType::F32,
         std::vector<int64_t>(t.sizes().begin(), t.sizes().end()),
         std::span<const std::byte>(static_cast<const std::byte*>(t.data_ptr()), t.nbytes())});
  }
  io::write_safetensors(tmp / "enc" / "model.safetensors", views, {});
  fs::copy_file(test::require_data("vocab/vocab.txt"), tmp / "enc" / "vocab.txt");

  FinetuneOptions o;
  o.model_dir = tmp / "enc";
  o.task = data::Task::stsb;
  o.train_file = test::require_data("glue/STS-B/train.tsv");
  o.dev_file = head_of(test::require_data("glue/STS-B/dev.tsv"), 32, tmp / "dev.tsv");
  o.max_train_examples = 64;
  o.epochs = 1;
  o.threads = 1;
  o.out_dir = tmp / "out";
  FinetuneResult r = finetune(o);
  EXPECT_EQ(r.newly_initialized,
            (std::vector<std::string>{"bert.pooler.dense.weight", "bert.pooler.dense.bias",
                                      "classifier.weight", "classifier.bias"}));
  io::SafetensorsReader reader(o.out_dir / "model.safetensors");
  const io::TensorInfo* head = reader.find("classifier.weight");
  ASSERT_NE(head, nullptr);
  EXPECT_EQ(head->shape, (std::vector<int64_t>{1, 64}));
  // The encoder's weights were loaded, not re-initialised: the first step starts from them.
  BertModel engine = BertModel::load(o.out_dir, {.threads = 1});
  EXPECT_EQ(engine.config().num_labels, 1);
}

TEST(FinetuneTest, RejectsBadInputsWithClearErrors) {
  test::TempDir tmp;
  FinetuneOptions base = random_tiny(tmp, data::Task::sst2);
  base.train_file = test::require_data("glue/SST-2/train.tsv");
  base.dev_file = head_of(test::require_data("glue/SST-2/dev.tsv"), 16, tmp / "dev.tsv");
  base.max_train_examples = 16;
  base.epochs = 1;
  base.engine_eval = false;

  auto expect_error = [&](FinetuneOptions o, auto error_tag, const std::string& needle) {
    using E = decltype(error_tag);
    try {
      finetune(o);
      ADD_FAILURE() << "no error; expected one mentioning " << needle;
    } catch (const E& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    } catch (const std::exception& e) {
      ADD_FAILURE() << "wrong error type: " << e.what();
    }
  };

  FinetuneOptions o = base;
  o.train_file = tmp / "missing.tsv";
  expect_error(o, IoError(""), "missing.tsv");

  o = base;
  o.epochs = 0;
  expect_error(o, InvalidArgument(""), "--epochs");

  o = base;
  o.lr = -1;
  expect_error(o, InvalidArgument(""), "--lr");

  o = base;
  o.init = InitMode::pretrained;  // with --config: not allowed
  expect_error(o, InvalidArgument(""), "--model");

  o = base;
  o.max_seq_len = 512;  // the tiny model has 128 positions
  expect_error(o, InvalidArgument(""), "max_position_embeddings");

  o = base;  // a test split has no labels
  o.task = data::Task::mrpc;
  o.train_file = test::require_data("glue/MRPC/train.tsv");
  o.dev_file = test::require_data("glue/MRPC/test.tsv");
  expect_error(o, DataError(""), "no labels");

  o = base;  // a malformed training file names the file and line
  test::write_file(tmp / "bad.tsv", "sentence\tlabel\na fine film\t1\nno label column\n");
  o.train_file = tmp / "bad.tsv";
  expect_error(o, DataError(""), "bad.tsv");

  // A classifier whose head does not fit the task.
  write_tiny_config(tmp / "cls3" / "config.json", 3);
  io::BertConfig c3 = io::load_bert_config(tmp / "cls3" / "config.json");
  BertForSequenceClassification m3(c3);
  save_pretrained(m3, c3, test::require_data("vocab/vocab.txt"), tmp / "cls3");
  o = base;
  o.init = InitMode::pretrained;
  o.config_file.clear();
  o.vocab_file.clear();
  o.model_dir = tmp / "cls3";
  expect_error(o, InvalidArgument(""), "3 label(s), but task sst2 needs 2 labels");
  o.new_head = true;  // unless asked to replace the head
  o.out_dir = tmp / "new_head";
  EXPECT_EQ(finetune(o).newly_initialized,
            (std::vector<std::string>{"classifier.weight", "classifier.bias"}));
  EXPECT_EQ(io::load_bert_config(tmp / "new_head" / "config.json").num_labels, 2);
  o.new_head = false;

  // Output directories: never the starting model, never an earlier run without --overwrite.
  o.out_dir = tmp / "cls3";
  expect_error(o, InvalidArgument(""), "is the model directory");
  o = base;
  o.out_dir = tmp / "cls3";
  expect_error(o, InvalidArgument(""), "--overwrite");
}

}  // namespace
}  // namespace octet::train
