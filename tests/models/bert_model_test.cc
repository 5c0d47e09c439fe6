// octet::BertModel: loading errors (missing, misshapen, mistyped tensors, config/weights
// disagreement), input validation, optional heads, and concurrent forward passes. Models are
// tiny and written here with io::write_safetensors.
#include <gtest/gtest.h>

#include <fstream>
#include <functional>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "common/test_support.h"
#include "io/bert_config.h"
#include "io/safetensors.h"
#include "octet/error.h"
#include "octet/model.h"

namespace octet {
namespace {

struct Tensor {
  std::vector<int64_t> shape;
  std::vector<float> values;
  io::DType dtype = io::DType::F32;  // F32 or I32 (values cast)
};
using Tensors = std::map<std::string, Tensor>;

constexpr int64_t kH = 8, kI = 16, kVocab = 20, kPos = 16, kLabels = 3;

nlohmann::json tiny_config() {
  return {{"model_type", "bert"},
          {"hidden_size", kH},
          {"num_hidden_layers", 2},
          {"num_attention_heads", 2},
          {"intermediate_size", kI},
          {"vocab_size", kVocab},
          {"max_position_embeddings", kPos},
          {"type_vocab_size", 2},
          {"hidden_act", "gelu"},
          {"layer_norm_eps", 1e-12},
          {"num_labels", kLabels}};
}

Tensors tiny_tensors(const std::string& prefix = "bert.") {
  std::mt19937 rng(5);
  std::normal_distribution<float> d(0.0f, 0.5f);
  Tensors t;
  auto add = [&](const std::string& name, std::vector<int64_t> shape) {
    int64_t n = 1;
    for (int64_t s : shape) n *= s;
    std::vector<float> v(n);
    for (float& x : v) x = d(rng);
    t[name] = {shape, v};
  };
  add(prefix + "embeddings.word_embeddings.weight", {kVocab, kH});
  add(prefix + "embeddings.position_embeddings.weight", {kPos, kH});
  add(prefix + "embeddings.token_type_embeddings.weight", {2, kH});
  add(prefix + "embeddings.LayerNorm.weight", {kH});
  add(prefix + "embeddings.LayerNorm.bias", {kH});
  for (int i = 0; i < 2; ++i) {
    const std::string p = prefix + "encoder.layer." + std::to_string(i) + ".";
    for (const char* n : {"attention.self.query", "attention.self.key", "attention.self.value",
                          "attention.output.dense"}) {
      add(p + n + ".weight", {kH, kH});
      add(p + n + ".bias", {kH});
    }
    add(p + "attention.output.LayerNorm.weight", {kH});
    add(p + "attention.output.LayerNorm.bias", {kH});
    add(p + "intermediate.dense.weight", {kI, kH});
    add(p + "intermediate.dense.bias", {kI});
    add(p + "output.dense.weight", {kH, kI});
    add(p + "output.dense.bias", {kH});
    add(p + "output.LayerNorm.weight", {kH});
    add(p + "output.LayerNorm.bias", {kH});
  }
  add(prefix + "pooler.dense.weight", {kH, kH});
  add(prefix + "pooler.dense.bias", {kH});
  add("classifier.weight", {kLabels, kH});
  add("classifier.bias", {kLabels});
  add("cls.predictions.bias", {kVocab});  // ignored
  return t;
}

void write_model(const std::filesystem::path& dir, const Tensors& tensors,
                 const nlohmann::json& config = tiny_config()) {
  std::filesystem::create_directories(dir);
  test::write_file(dir / "config.json", config.dump());
  std::vector<std::vector<int32_t>> ints;
  ints.reserve(tensors.size());
  std::vector<io::TensorView> views;
  for (const auto& [name, t] : tensors) {
    if (t.dtype == io::DType::I32) {
      ints.emplace_back(t.values.begin(), t.values.end());
      views.push_back(io::tensor_view<int32_t>(name, t.shape, ints.back()));
    } else {
      views.push_back(io::tensor_view<float>(name, t.shape, t.values));
    }
  }
  io::write_safetensors(dir / "model.safetensors", views);
}

// The ModelFormatError message of loading `tensors`, or "" if it loads.
std::string load_error(const Tensors& tensors, const nlohmann::json& config = tiny_config()) {
  test::TempDir tmp;
  write_model(tmp.path() / "m", tensors, config);
  try {
    BertModel::load(tmp.path() / "m");
  } catch (const ModelFormatError& e) {
    return e.what();
  }
  return "";
}

TEST(BertModelLoad, LoadsTinyModelAndCountsParameters) {
  test::TempDir tmp;
  const Tensors t = tiny_tensors();
  write_model(tmp.path() / "m", t);
  const BertModel m = BertModel::load(tmp.path() / "m", {.threads = 1});
  int64_t expected = 0;
  for (const auto& [name, tensor] : t)
    if (name.rfind("cls.", 0) != 0) expected += static_cast<int64_t>(tensor.values.size());
  EXPECT_EQ(m.parameter_count(), expected);
  EXPECT_TRUE(m.has_pooler());
  EXPECT_TRUE(m.has_classifier());
  EXPECT_EQ(m.config().num_labels, kLabels);
}

TEST(BertModelLoad, RejectsMissingTensorNamingIt) {
  Tensors t = tiny_tensors();
  t.erase("bert.encoder.layer.1.output.dense.bias");
  const std::string msg = load_error(t);
  EXPECT_NE(msg.find("missing tensor 'bert.encoder.layer.1.output.dense.bias'"), std::string::npos)
      << msg;
  EXPECT_NE(msg.find("model.safetensors"), std::string::npos) << msg;
}

TEST(BertModelLoad, RejectsWrongShapeWithExpectedAndFound) {
  Tensors t = tiny_tensors();
  t["bert.encoder.layer.0.intermediate.dense.weight"] = {{kI, kH + 1},
                                                         std::vector<float>(kI * (kH + 1))};
  const std::string msg = load_error(t);
  EXPECT_NE(msg.find("'bert.encoder.layer.0.intermediate.dense.weight' has shape [16, 9], "
                     "expected [16, 8]"),
            std::string::npos)
      << msg;
  EXPECT_NE(msg.find("intermediate_size, hidden_size"), std::string::npos) << msg;
}

TEST(BertModelLoad, RejectsIntegerWeights) {
  Tensors t = tiny_tensors();
  t["bert.encoder.layer.0.attention.self.key.weight"].dtype = io::DType::I32;
  const std::string msg = load_error(t);
  EXPECT_NE(msg.find("'bert.encoder.layer.0.attention.self.key.weight' has dtype I32; expected "
                     "F32, F16 or BF16"),
            std::string::npos)
      << msg;
}

TEST(BertModelLoad, RejectsNonFiniteWeightsNamingTensorAndIndex) {
  for (float bad : {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(),
                    -std::numeric_limits<float>::infinity()}) {
    Tensors t = tiny_tensors();
    t["bert.encoder.layer.1.attention.output.dense.weight"].values[13] = bad;
    const std::string msg = load_error(t);
    EXPECT_NE(msg.find("'bert.encoder.layer.1.attention.output.dense.weight' holds a non-finite "
                       "value"),
              std::string::npos)
        << msg;
    EXPECT_NE(msg.find("flat index 13"), std::string::npos) << msg;
  }
}

TEST(BertModelLoad, RejectsConfigThatDisagreesWithWeights) {
  nlohmann::json c = tiny_config();
  c["num_hidden_layers"] = 3;
  std::string msg = load_error(tiny_tensors(), c);
  EXPECT_NE(msg.find("missing tensor 'bert.encoder.layer.2."), std::string::npos) << msg;
  c = tiny_config();
  c["vocab_size"] = 30;
  msg = load_error(tiny_tensors(), c);
  EXPECT_NE(msg.find("word_embeddings.weight' has shape [20, 8], expected [30, 8]"),
            std::string::npos)
      << msg;
  c = tiny_config();
  c["num_labels"] = 2;
  c.erase("id2label");
  msg = load_error(tiny_tensors(), c);
  EXPECT_NE(msg.find("'classifier.weight' has shape [3, 8], expected [2, 8]"), std::string::npos)
      << msg;
}

TEST(BertModelLoad, RejectsFileWithoutBertEmbeddings) {
  Tensors t = tiny_tensors();
  t.erase("bert.embeddings.word_embeddings.weight");
  const std::string msg = load_error(t);
  EXPECT_NE(msg.find("missing tensor 'bert.embeddings.word_embeddings.weight'"), std::string::npos)
      << msg;
}

TEST(BertModelLoad, AcceptsUnprefixedNamesAndGammaBeta) {
  Tensors t = tiny_tensors("");
  Tensors renamed;
  for (auto& [name, tensor] : t) {
    std::string n = name;
    if (n.find("LayerNorm.weight") != std::string::npos) n.replace(n.rfind("weight"), 6, "gamma");
    if (n.find("LayerNorm.bias") != std::string::npos) n.replace(n.rfind("bias"), 4, "beta");
    renamed[n] = tensor;
  }
  EXPECT_EQ(load_error(renamed), "");
}

class BertModelForward : public ::testing::Test {
 protected:
  void SetUp() override {
    write_model(tmp_.path() / "m", tiny_tensors());
    Tensors encoder_only = tiny_tensors();
    encoder_only.erase("classifier.weight");
    encoder_only.erase("classifier.bias");
    write_model(tmp_.path() / "enc", encoder_only);
  }
  test::TempDir tmp_;
  std::vector<int32_t> ids_ = {2, 5, 7, 3}, types_ = {0, 0, 1, 1};
};

std::string forward_error(const BertModel& m, std::vector<BertSequence> batch,
                          BertOutputKind what = BertOutputKind::last_hidden) {
  try {
    m.forward(batch, what);
  } catch (const InvalidArgument& e) {
    return e.what();
  }
  return "";
}

TEST_F(BertModelForward, RejectsBadInputsNamingSequenceAndPosition) {
  const BertModel m = BertModel::load(tmp_.path() / "m", {.threads = 1});
  const std::vector<int32_t> bad_id = {2, 20, 3}, bad_type = {0, 2, 0}, empty = {};
  const std::vector<int32_t> too_long(kPos + 1, 4), short_types = {0};
  EXPECT_NE(forward_error(m, {{ids_, types_}, {bad_id, {}}})
                .find("sequence 1, position 1: input id 20 outside the vocabulary [0, 20)"),
            std::string::npos);
  EXPECT_NE(forward_error(
                m, {{ids_, {}}, {std::span<const int32_t>(ids_.data(), 3), {}}, {bad_id, bad_type}})
                .find("sequence 2, position 1: input id 20"),
            std::string::npos);
  const std::vector<int32_t> ok3 = {2, 4, 3};
  EXPECT_NE(forward_error(m, {{ok3, bad_type}}).find("sequence 0, position 1: token type id 2"),
            std::string::npos);
  EXPECT_NE(forward_error(m, {{ids_, {}}, {empty, {}}}).find("sequence 1: no tokens"),
            std::string::npos);
  EXPECT_NE(forward_error(m, {{too_long, {}}})
                .find("17 tokens, more than "
                      "max_position_embeddings = 16"),
            std::string::npos);
  EXPECT_NE(forward_error(m, {{ids_, short_types}}).find("1 token_type_ids for 4 input_ids"),
            std::string::npos);
  EXPECT_NE(forward_error(m, {}).find("batch is empty"), std::string::npos);
}

TEST_F(BertModelForward, LogitsWithoutClassifierIsAnErrorThatSaysSo) {
  const BertModel enc = BertModel::load(tmp_.path() / "enc", {.threads = 1});
  EXPECT_FALSE(enc.has_classifier());
  EXPECT_TRUE(enc.has_pooler());
  EXPECT_NE(forward_error(enc, {{ids_, types_}}, BertOutputKind::logits).find("no classifier"),
            std::string::npos);
  const BertOutputs out = enc.forward(std::vector<BertSequence>{{ids_, types_}},
                                      BertOutputKind::pooled | BertOutputKind::mean_pooled);
  EXPECT_EQ(out.pooled.size(), static_cast<std::size_t>(kH));
  EXPECT_EQ(out.mean_pooled.size(), static_cast<std::size_t>(kH));

  const BertModel headless = BertModel::load(tmp_.path() / "m", {.threads = 1, .load_head = false});
  EXPECT_FALSE(headless.has_pooler());
  EXPECT_NE(forward_error(headless, {{ids_, types_}}, BertOutputKind::pooled).find("no pooler"),
            std::string::npos);
}

TEST_F(BertModelForward, MeanPooledIsTheMeanOfLastHidden) {
  const BertModel m = BertModel::load(tmp_.path() / "m", {.threads = 1});
  const std::vector<int32_t> other = {2, 9, 3};
  const BertOutputs out =
      m.forward(std::vector<BertSequence>{{ids_, types_}, {other, {}}},
                BertOutputKind::last_hidden | BertOutputKind::mean_pooled | BertOutputKind::logits);
  ASSERT_EQ(out.last_hidden.size(), 2u);
  EXPECT_EQ(out.logits.size(), static_cast<std::size_t>(2 * kLabels));
  for (int b = 0; b < 2; ++b) {
    const std::size_t t = out.last_hidden[b].size() / kH;
    EXPECT_EQ(t, b == 0 ? ids_.size() : other.size());
    for (int64_t c = 0; c < kH; ++c) {
      double sum = 0;
      for (std::size_t i = 0; i < t; ++i) sum += out.last_hidden[b][i * kH + c];
      EXPECT_NEAR(out.mean_pooled[b * kH + c], sum / t, 1e-5);
    }
  }
}

// Asked for pooled outputs and logits only, the last layer's FFN out and LayerNorm run on each
// sequence's first row alone (layers::EncoderScratch::first_rows_only); asked for last_hidden as
// well, on every row. Both must give the same pooled outputs and logits bit for bit, in every
// precision, packed and padded, for batches of unequal sequences.
TEST_F(BertModelForward, PooledAndLogitsDoNotDependOnComputingEveryRow) {
  const std::vector<int32_t> a = {2, 5, 7, 3}, b = {2, 9, 3}, c = {2, 4, 6, 8, 10, 12, 3};
  const std::vector<BertSequence> batch = {{a, types_}, {b, {}}, {c, {}}, {b, {}}};
  struct Config {
    const char* name;
    BertLoadOptions options;
  };
  const Config configs[] = {
      {"fp32", {.threads = 1}},
      {"int8 dynamic", {.threads = 1, .precision = Precision::int8_dynamic}},
      {"int8 dynamic per tensor",
       {.threads = 1, .precision = Precision::int8_dynamic, .per_channel = false}},
      {"int8 dynamic, int8 attention",
       {.threads = 2, .precision = Precision::int8_dynamic, .int8_attention = true}},
  };
  for (const Config& cfg : configs) {
    const BertModel m = BertModel::load(tmp_.path() / "m", cfg.options);
    for (Padding padding : {Padding::none, Padding::longest}) {
      const BertOutputs head =
          m.forward(batch, BertOutputKind::logits | BertOutputKind::pooled, padding);
      const BertOutputs all = m.forward(
          batch, BertOutputKind::logits | BertOutputKind::pooled | BertOutputKind::last_hidden,
          padding);
      const std::string where =
          std::string(cfg.name) + (padding == Padding::none ? ", packed" : ", padded");
      ASSERT_EQ(head.logits.size(), batch.size() * kLabels) << where;
      EXPECT_EQ(head.logits, all.logits) << where;
      EXPECT_EQ(head.pooled, all.pooled) << where;
      // And the first rows of last_hidden are what the pooler read: same pooled output.
      for (std::size_t s = 0; s < batch.size(); ++s) {
        EXPECT_EQ(all.last_hidden[s].size(), batch[s].input_ids.size() * kH) << where;
      }
    }
  }
}

TEST_F(BertModelForward, ConcurrentCallsGiveTheSameResults) {
  const BertModel m = BertModel::load(tmp_.path() / "m", {.threads = 1});
  const std::vector<BertSequence> batch = {{ids_, types_}};
  const std::vector<float> want = m.forward(batch, BertOutputKind::logits).logits;
  std::vector<std::vector<float>> got(4);
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&, i] {
      for (int r = 0; r < 20; ++r) got[i] = m.forward(batch, BertOutputKind::logits).logits;
    });
  }
  for (auto& t : threads) t.join();
  for (const auto& g : got) EXPECT_EQ(g, want);
}

}  // namespace
}  // namespace octet
