// The libtorch BERT against Octet's inference engine, and save_pretrained / load_pretrained
// round trips.
#include "train/bert_torch.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/test_support.h"
#include "io/safetensors.h"
#include "octet/error.h"
#include "octet/model.h"

namespace octet::train {
namespace {

io::BertConfig small_config(int64_t num_labels = 3) {
  nlohmann::json j = {
      {"model_type", "bert"},          {"vocab_size", 100},        {"hidden_size", 64},
      {"num_hidden_layers", 2},        {"num_attention_heads", 4}, {"intermediate_size", 128},
      {"max_position_embeddings", 32}, {"type_vocab_size", 2},     {"layer_norm_eps", 1e-12},
      {"hidden_act", "gelu"},          {"num_labels", num_labels}};
  return io::parse_bert_config(j, "small_config");
}

// HF's init (std 0.02) makes attention nearly uniform and the head almost constant, which
// would hide mistakes; give every parameter a scale at which errors show.
BertForSequenceClassification random_model(const io::BertConfig& c, uint64_t seed) {
  torch::manual_seed(seed);
  BertForSequenceClassification m(c);
  torch::NoGradGuard no_grad;
  for (auto& p : m->named_parameters()) {
    if (p.key().find("LayerNorm.weight") != std::string::npos)
      p.value().normal_(1.0, 0.2);
    else
      p.value().normal_(0.0, 0.15);
  }
  m->eval();
  return m;
}

std::filesystem::path write_vocab(const test::TempDir& tmp) {
  std::string vocab;
  for (int i = 0; i < 100; ++i) vocab += "tok" + std::to_string(i) + "\n";
  test::write_file(tmp / "vocab.txt", vocab);
  return tmp / "vocab.txt";
}

void expect_same_parameters(BertForSequenceClassification& a, BertForSequenceClassification& b,
                            bool through_f16) {
  auto pb = b->named_parameters();
  auto pa = a->named_parameters();
  ASSERT_EQ(pa.size(), pb.size());
  for (const auto& p : pa) {
    const torch::Tensor* other = pb.find(p.key());
    ASSERT_NE(other, nullptr) << p.key();
    torch::Tensor expected = p.value().detach();
    if (through_f16) expected = expected.to(torch::kHalf).to(torch::kFloat);
    EXPECT_TRUE(torch::equal(expected, other->detach())) << p.key();
  }
}

TEST(BertTorchTest, ParameterNamesAreHuggingFaces) {
  io::BertConfig c = small_config();
  BertForSequenceClassification m(c);
  auto params = m->named_parameters();
  for (const char* name :
       {"bert.embeddings.word_embeddings.weight", "bert.embeddings.position_embeddings.weight",
        "bert.embeddings.token_type_embeddings.weight", "bert.embeddings.LayerNorm.weight",
        "bert.embeddings.LayerNorm.bias", "bert.encoder.layer.0.attention.self.query.weight",
        "bert.encoder.layer.1.attention.self.key.bias",
        "bert.encoder.layer.1.attention.self.value.weight",
        "bert.encoder.layer.0.attention.output.dense.weight",
        "bert.encoder.layer.0.attention.output.LayerNorm.bias",
        "bert.encoder.layer.1.intermediate.dense.weight", "bert.encoder.layer.1.output.dense.bias",
        "bert.encoder.layer.1.output.LayerNorm.weight", "bert.pooler.dense.weight",
        "classifier.weight", "classifier.bias"})
    EXPECT_NE(params.find(name), nullptr) << name;
  // 3 embeddings + 2 (LN) + per layer 16 tensors + pooler 2 + classifier 2.
  EXPECT_EQ(params.size(), 3u + 2u + 2u * 16u + 2u + 2u);
  EXPECT_EQ(params["classifier.weight"].sizes(), torch::IntArrayRef({3, 64}));
}

TEST(BertTorchTest, OctetEngineMatchesLibtorchOnMixedLengthBatch) {
  io::BertConfig c = small_config();
  BertForSequenceClassification model = random_model(c, 7);

  // Four sequences of mixed lengths, padded to the longest for libtorch.
  const std::vector<int64_t> lengths = {7, 3, 12, 1};
  const int64_t b = static_cast<int64_t>(lengths.size()), t = 12;
  torch::manual_seed(11);
  torch::Tensor ids = torch::randint(1, c.vocab_size, {b, t}, torch::kLong);
  torch::Tensor types = torch::randint(0, 2, {b, t}, torch::kLong);
  torch::Tensor mask = torch::zeros({b, t}, torch::kLong);
  for (int64_t i = 0; i < b; ++i) {
    mask[i].slice(0, 0, lengths[i]).fill_(1);
    ids[i].slice(0, lengths[i]).fill_(c.pad_token_id);
    types[i].slice(0, lengths[i]).fill_(0);
  }
  BertTorchOutputs ref;
  {
    torch::NoGradGuard no_grad;
    ref = model->forward(ids, types, mask);
  }

  test::TempDir tmp;
  save_pretrained(model, c, write_vocab(tmp), tmp / "model");
  EXPECT_TRUE(std::filesystem::exists(tmp / "model" / "vocab.txt"));
  BertModel octet_model = BertModel::load(tmp / "model", {.threads = 1});

  std::vector<std::vector<int32_t>> ids32(b), types32(b);
  std::vector<BertSequence> batch;
  for (int64_t i = 0; i < b; ++i) {
    for (int64_t k = 0; k < lengths[i]; ++k) {
      ids32[i].push_back(static_cast<int32_t>(ids[i][k].item<int64_t>()));
      types32[i].push_back(static_cast<int32_t>(types[i][k].item<int64_t>()));
    }
    batch.push_back({ids32[i], types32[i]});
  }
  BertOutputs out =
      octet_model.forward(batch, BertOutputKind::logits | BertOutputKind::last_hidden);

  torch::Tensor ref_logits = ref.logits.contiguous();
  ASSERT_EQ(out.logits.size(), static_cast<size_t>(b * c.num_labels));
  float max_logit_diff = 0, max_hidden_diff = 0, max_logit = 0;
  for (int64_t i = 0; i < b * c.num_labels; ++i) {
    max_logit_diff =
        std::max(max_logit_diff, std::abs(out.logits[i] - ref_logits.data_ptr<float>()[i]));
    max_logit = std::max(max_logit, std::abs(out.logits[i]));
  }
  for (int64_t i = 0; i < b; ++i) {
    torch::Tensor h = ref.last_hidden[i].slice(0, 0, lengths[i]).contiguous();
    ASSERT_EQ(out.last_hidden[i].size(), static_cast<size_t>(h.numel()));
    for (int64_t k = 0; k < h.numel(); ++k)
      max_hidden_diff =
          std::max(max_hidden_diff, std::abs(out.last_hidden[i][k] - h.data_ptr<float>()[k]));
  }
  RecordProperty("max_abs_logit_diff", std::to_string(max_logit_diff));
  RecordProperty("max_abs_hidden_diff", std::to_string(max_hidden_diff));
  EXPECT_LT(max_logit_diff, 1e-4f);
  EXPECT_LT(max_hidden_diff, 1e-4f);
  // The comparison means something only if the logits are not all near zero.
  EXPECT_GT(max_logit, 0.05f);
}

TEST(BertTorchTest, PaddingDoesNotChangeLibtorchOutputs) {
  io::BertConfig c = small_config();
  BertForSequenceClassification model = random_model(c, 3);
  torch::NoGradGuard no_grad;
  torch::Tensor ids = torch::randint(1, c.vocab_size, {1, 5}, torch::kLong);
  BertTorchOutputs alone = model->forward(ids);
  torch::Tensor padded =
      torch::cat({ids, torch::randint(1, c.vocab_size, {1, 4}, torch::kLong)}, 1);
  torch::Tensor mask =
      torch::cat({torch::ones({1, 5}, torch::kLong), torch::zeros({1, 4}, torch::kLong)}, 1);
  BertTorchOutputs with_pad = model->forward(padded, {}, mask);
  EXPECT_TRUE(torch::allclose(alone.logits, with_pad.logits, 1e-5, 1e-5));
  EXPECT_TRUE(torch::allclose(alone.last_hidden, with_pad.last_hidden.slice(1, 0, 5), 1e-5, 1e-5));
}

// Mixed precision: bfloat16 products (8-bit mantissa, relative rounding 2^-9 per operand) stay
// close to FP32 on the outputs and the gradients, every parameter still gets a gradient, the
// parameters stay FP32, and setting f32 back gives bit-identical FP32 results.
TEST(BertTorchTest, Bf16MatmulsTrackFp32AndKeepFp32Parameters) {
  struct Restore {
    ~Restore() { set_matmul_precision(MatmulPrecision::f32); }
  } restore;
  io::BertConfig c = small_config();
  BertForSequenceClassification model = random_model(c, 5);
  torch::Tensor ids = torch::randint(1, c.vocab_size, {3, 9}, torch::kLong);
  auto run = [&](MatmulPrecision p) {
    set_matmul_precision(p);
    model->zero_grad();
    torch::Tensor logits = model->forward(ids).logits;
    logits.square().sum().backward();
    std::vector<torch::Tensor> grads;
    for (const auto& param : model->parameters()) {
      EXPECT_EQ(param.scalar_type(), torch::kFloat);
      EXPECT_TRUE(param.grad().defined());
      grads.push_back(param.grad().clone());
    }
    return std::make_pair(logits.detach(), grads);
  };
  auto [f32_logits, f32_grads] = run(MatmulPrecision::f32);
  auto [bf_logits, bf_grads] = run(MatmulPrecision::bf16);
  auto [again_logits, again_grads] = run(MatmulPrecision::f32);
  EXPECT_EQ(bf_logits.scalar_type(), torch::kFloat);
  EXPECT_TRUE(torch::equal(f32_logits, again_logits));
  const double scale = f32_logits.abs().max().item<double>();
  const double diff = (bf_logits - f32_logits).abs().max().item<double>();
  EXPECT_GT(diff, 0.0) << "bf16 products should round";
  EXPECT_LT(diff, 0.05 * scale) << "bf16 logits too far from FP32";
  // Gradients as a whole (cosine over all parameters) agree.
  torch::Tensor a = torch::cat([&] {
    std::vector<torch::Tensor> v;
    for (auto& g : f32_grads) v.push_back(g.flatten());
    return v;
  }());
  torch::Tensor b = torch::cat([&] {
    std::vector<torch::Tensor> v;
    for (auto& g : bf_grads) v.push_back(g.flatten());
    return v;
  }());
  const double cosine = (a * b).sum().item<double>() / (a.norm() * b.norm()).item<double>();
  EXPECT_GT(cosine, 0.99);
}

TEST(BertTorchTest, SaveThenLoadPretrainedGivesIdenticalParameters) {
  io::BertConfig c = small_config();
  BertForSequenceClassification model = random_model(c, 5);
  test::TempDir tmp;
  save_pretrained(model, c, write_vocab(tmp), tmp / "m");
  PretrainedBert loaded = load_pretrained(tmp / "m");
  EXPECT_TRUE(loaded.newly_initialized.empty());
  EXPECT_EQ(loaded.config.num_labels, 3);
  EXPECT_EQ(loaded.config.hidden_size, 64);
  expect_same_parameters(model, loaded.model, /*through_f16=*/false);
}

TEST(BertTorchTest, SavesF16AndLoadsItBackRounded) {
  io::BertConfig c = small_config(1);  // regression head
  BertForSequenceClassification model = random_model(c, 9);
  test::TempDir tmp;
  save_pretrained(model, c, {}, tmp / "m", SaveDType::F16);
  EXPECT_FALSE(std::filesystem::exists(tmp / "m" / "vocab.txt"));
  io::SafetensorsReader r(tmp / "m" / "model.safetensors");
  EXPECT_EQ(r.get("classifier.weight").dtype, io::DType::F16);
  PretrainedBert loaded = load_pretrained(tmp / "m");
  EXPECT_EQ(loaded.config.problem_type, io::ProblemType::regression);
  expect_same_parameters(model, loaded.model, /*through_f16=*/true);
}

TEST(BertTorchTest, LoadsEncoderCheckpointWithoutPrefixOrHead) {
  io::BertConfig c = small_config();
  BertForSequenceClassification model = random_model(c, 13);
  test::TempDir tmp;
  // An encoder-only checkpoint as transformers' BertModel saves it: no "bert." prefix, no
  // classifier.
  std::vector<torch::Tensor> keep;
  std::vector<io::TensorView> views;
  for (const auto& p : model->named_parameters()) {
    if (!p.key().starts_with("bert.")) continue;
    torch::Tensor t = p.value().detach().contiguous();
    keep.push_back(t);
    views.push_back(io::TensorView{
        p.key().substr(5), io::DType::F32, std::vector<int64_t>(t.sizes().begin(), t.sizes().end()),
        std::span<const std::byte>(static_cast<const std::byte*>(t.data_ptr()), t.nbytes())});
  }
  std::filesystem::create_directories(tmp / "enc");
  io::write_safetensors(tmp / "enc" / "model.safetensors", views);
  test::write_file(tmp / "enc" / "config.json", io::to_json(c).dump());

  PretrainedBert loaded = load_pretrained(tmp / "enc");
  EXPECT_EQ(loaded.newly_initialized,
            (std::vector<std::string>{"classifier.weight", "classifier.bias"}));
  auto want = model->named_parameters();
  for (const auto& p : loaded.model->named_parameters()) {
    if (p.key().starts_with("classifier.")) continue;
    EXPECT_TRUE(torch::equal(want[p.key()], p.value())) << p.key();
  }
}

TEST(BertTorchTest, RejectsCheckpointWhoseShapesDisagreeWithConfig) {
  io::BertConfig c = small_config();
  BertForSequenceClassification model = random_model(c, 17);
  test::TempDir tmp;
  save_pretrained(model, c, {}, tmp / "m");
  io::BertConfig wider = c;
  wider.intermediate_size = 96;
  wider.raw["intermediate_size"] = 96;
  test::write_file(tmp / "m" / "config.json", io::to_json(wider).dump());
  try {
    load_pretrained(tmp / "m");
    FAIL() << "expected ModelFormatError";
  } catch (const ModelFormatError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("intermediate.dense.weight"), std::string::npos) << msg;
    EXPECT_NE(msg.find("[96, 64]"), std::string::npos) << msg;
    EXPECT_NE(msg.find("[128, 64]"), std::string::npos) << msg;
  }
}

TEST(BertTorchTest, RejectsCheckpointMissingEncoderTensor) {
  io::BertConfig c = small_config();
  test::TempDir tmp;
  std::vector<float> w(100 * 64, 0.0f);
  std::vector<io::TensorView> views = {
      io::tensor_view<float>("bert.embeddings.word_embeddings.weight", {100, 64}, w)};
  std::filesystem::create_directories(tmp / "m");
  io::write_safetensors(tmp / "m" / "model.safetensors", views);
  test::write_file(tmp / "m" / "config.json", io::to_json(c).dump());
  EXPECT_THROW(load_pretrained(tmp / "m"), ModelFormatError);
}

TEST(BertTorchTest, SinusoidalPositionsHaveTheConfiguredStdAndRotateByOffset) {
  io::BertConfig c = small_config();
  torch::Tensor w = torch::zeros({64, 32});
  init_sinusoidal_positions(w, c);
  EXPECT_NEAR(w.std().item<double>(), 0.02, 1e-6);
  // Column pair (2i, 2i+1) is (sin, cos) of pos * f_i scaled by one factor: its norm is the same
  // at every position, and the first pair advances by exactly one radian per position.
  const double scale = std::hypot(w[0][0].item<double>(), w[0][1].item<double>());
  for (int64_t p = 0; p < 64; ++p) {
    EXPECT_NEAR(std::hypot(w[p][6].item<double>(), w[p][7].item<double>()), scale, 1e-6) << p;
    EXPECT_NEAR(w[p][0].item<double>(), scale * std::sin(static_cast<double>(p)), 1e-6) << p;
  }
  EXPECT_GT(w[63][31].item<double>(), 0.99 * scale);  // the slowest wavelength barely turns
}

TEST(BertTorchTest, IdentityQueryKeyInitAddsGainTimesIdentity) {
  io::BertConfig c = small_config();
  torch::manual_seed(3);
  BertForMaskedLM a(c);
  torch::manual_seed(3);
  BertForMaskedLM b(c);
  add_identity_to_query_key(*b->bert, 0.7);
  const auto before = a->named_parameters();
  for (const auto& item : b->named_parameters()) {
    const std::string& name = item.key();
    const torch::Tensor diff = item.value() - before[name];
    const bool qk = name.find(".query.weight") != std::string::npos ||
                    name.find(".key.weight") != std::string::npos;
    if (qk)
      EXPECT_TRUE(torch::allclose(diff, torch::eye(64) * 0.7, 0, 1e-6)) << name;
    else
      EXPECT_EQ(diff.abs().max().item<float>(), 0.0f) << name;
  }
}

TEST(BertTorchTest, LocalInitMakesEachHeadAttendToItsOffset) {
  io::BertConfig c = small_config();  // hidden 64, 4 heads of 16, 32 positions
  torch::manual_seed(5);
  BertForMaskedLM m(c);
  torch::Tensor& table = m->bert->embeddings->position_embeddings->weight;
  init_local_positions(table, c);
  EXPECT_NEAR(table.std().item<double>(), 0.02, 1e-6);
  add_local_attention(*m->bert, c, 2.0);
  EXPECT_EQ(local_attention_offsets(4), (std::vector<int64_t>{-1, 1, -2, 2}));
  // Positions alone (as the embedding LayerNorm would normalise them): every head's attention
  // peaks at its offset, in every layer, wherever that offset is inside the sequence.
  torch::NoGradGuard no_grad;
  const torch::Tensor x = torch::layer_norm(table, {64});
  const int64_t d = c.head_dim();
  for (const auto& layer : *m->bert->encoder->layer) {
    BertSelfAttentionImpl& self = *layer->as<BertLayerImpl>()->attention->self;
    const torch::Tensor q = self.query(x), k = self.key(x);
    for (int64_t h = 0; h < 4; ++h) {
      const int64_t offset = local_attention_offsets(4)[h];
      const torch::Tensor scores =
          q.slice(1, h * d, (h + 1) * d).matmul(k.slice(1, h * d, (h + 1) * d).t());
      const torch::Tensor probs = torch::softmax(scores / std::sqrt(double(d)), 1);
      for (int64_t i = 2; i < 30; ++i) {
        EXPECT_EQ(scores[i].argmax().item<int64_t>(), i + offset) << "head " << h << " row " << i;
        EXPECT_GT(probs[i][i + offset].item<double>(), 0.3) << "head " << h << " row " << i;
      }
    }
  }
  io::BertConfig one_head = c;
  one_head.num_attention_heads = 1;
  torch::Tensor w = torch::zeros({32, 64});
  EXPECT_THROW(init_local_positions(w, one_head), InvalidArgument);
}

}  // namespace
}  // namespace octet::train
