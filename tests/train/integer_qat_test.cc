// Integer-only-aware fine-tuning (src/train/integer_qat.h): the simulated forward pass against the
// integer-only engine (random model, then the CI parity criterion on a short fine-tune of
// a tiny BERT on real SST-2: predictions agree on >= 99.5% of SST-2 dev, logits within a
// tolerance derived below), the straight-through gradients against the FP32 model's, the loss
// going down, and the errors.
#include "train/integer_qat.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/test_support.h"
#include "data/glue.h"
#include "octet/error.h"
#include "octet/model.h"
#include "ops/integer_ops.h"
#include "quant/bert_quant.h"
#include "text/wordpiece.h"
#include "train/finetune.h"

namespace octet::train {
namespace {

namespace fs = std::filesystem;

std::vector<float> to_vector(const torch::Tensor& t) {
  torch::Tensor c = t.detach().to(torch::kFloat).contiguous();
  return {c.data_ptr<float>(), c.data_ptr<float>() + c.numel()};
}

io::BertConfig tiny_config(double dropout = 0.1, const char* act = "gelu") {
  nlohmann::json j = {{"model_type", "bert"},
                      {"vocab_size", 30522},
                      {"hidden_size", 64},
                      {"num_hidden_layers", 2},
                      {"num_attention_heads", 2},
                      {"intermediate_size", 256},
                      {"max_position_embeddings", 128},
                      {"type_vocab_size", 2},
                      {"hidden_act", act},
                      {"layer_norm_eps", 1e-12},
                      {"initializer_range", 0.02},
                      {"hidden_dropout_prob", dropout},
                      {"attention_probs_dropout_prob", dropout},
                      {"num_labels", 2}};
  return io::parse_bert_config(j, "tiny config");
}

// A batch of sequences of different lengths (padded at the end), ids from the usual word range.
struct Batch {
  torch::Tensor ids, types, mask;
  std::vector<std::vector<int32_t>> ids32, types32;  // what seqs point to
  std::vector<BertSequence> seqs;
};

Batch random_batch(int b, int max_len, uint64_t seed) {
  torch::manual_seed(seed);
  Batch r;
  r.ids = torch::zeros({b, max_len}, torch::kLong);
  r.types = torch::zeros_like(r.ids);
  r.mask = torch::zeros_like(r.ids);
  for (int i = 0; i < b; ++i) {
    const int len = 2 + (i * 7 + int(seed)) % (max_len - 1);
    torch::Tensor row = torch::randint(1000, 20000, {len}, torch::kLong);
    std::vector<int32_t>& si = r.ids32.emplace_back();
    std::vector<int32_t>& st = r.types32.emplace_back();
    for (int k = 0; k < len; ++k) {
      const int64_t id = k == 0 ? 101 : (k == len - 1 ? 102 : row[k].item<int64_t>());
      const int64_t tt = k >= len / 2 ? 1 : 0;
      r.ids[i][k] = id;
      r.types[i][k] = tt;
      r.mask[i][k] = 1;
      si.push_back(static_cast<int32_t>(id));
      st.push_back(static_cast<int32_t>(tt));
    }
  }
  for (int i = 0; i < b; ++i) r.seqs.push_back({r.ids32[i], r.types32[i]});
  return r;
}

// How far the engine's logits may be from the simulated ones.
//
// Both sides compute the encoder with the same integer code on the same integers, so the
// dequantized last hidden states x are expected bit-identical. They are then fed to an FP32
// pooler and classifier computed by two implementations (the engine's MatmulF32, libtorch's
// linear, and two tanh). A float32 dot product of K terms plus a bias, in any order, is within
// gamma_K (sum |w_i x_i| + |b|) of the exact value (gamma_K = K u / (1 - K u), u = 2^-24), so two
// implementations differ by at most twice that. With, in addition, one step of the encoder's
// output scale S_c (gamma_c sqrt(H) / 2^30, the value of one unit of the last i-LayerNorm) in
// case a hidden value differed by one code:
//   pooled:  d_p[j] = 2 gamma_H (sum_i |Wp_ji x_i| + |bp_j|) + sum_i |Wp_ji| S_i + 8 u
//            (tanh is 1-Lipschitz; 8 u covers two tanh implementations a few ulps apart),
//   logits:  d_l[k] = sum_j |Wc_kj| d_p[j] + 2 gamma_H (sum_j |Wc_kj p_j| + |bc_k|).
// The tolerance of each logit is d_l[k] for its example, evaluated in float64.
torch::Tensor logit_tolerance(BertForSequenceClassification& m, const torch::Tensor& cls_hidden,
                              const std::vector<double>& out_scale) {
  torch::NoGradGuard ng;
  const double u = std::ldexp(1.0, -24);
  const int64_t H = cls_hidden.size(1);
  const double gamma = H * u / (1 - H * u);
  auto d = [](const torch::Tensor& t) { return t.detach().to(torch::kDouble); };
  const torch::Tensor x = d(cls_hidden), wp = d(m->bert->pooler->dense->weight),
                      bp = d(m->bert->pooler->dense->bias), wc = d(m->classifier->weight),
                      bc = d(m->classifier->bias);
  const torch::Tensor s = torch::tensor(out_scale, torch::kDouble);
  const torch::Tensor p = torch::tanh(torch::matmul(x, wp.t()) + bp);
  const torch::Tensor dp = 2 * gamma * (torch::matmul(x.abs(), wp.abs().t()) + bp.abs()) +
                           torch::matmul(wp.abs(), s).unsqueeze(0) + 8 * u;
  return torch::matmul(dp, wc.abs().t()) +
         2 * gamma * (torch::matmul(p.abs(), wc.abs().t()) + bc.abs());
}

struct Parity {
  int64_t n = 0, agree = 0, positive = 0, within = 0, logits = 0;
  double max_abs = 0, max_tolerance = 0;
};

// Simulated forward (eval mode) vs the engine loading `engine_dir`, on batches of sequences.
void compare(IntegerQatBert& sim, const BertModel& engine, const Batch& b, Parity& res) {
  torch::NoGradGuard ng;
  sim.model()->eval();
  const std::vector<float> fq = to_vector(sim.forward(b.ids, b.types, b.mask));
  const BertOutputs eo = engine.forward(b.seqs, BertOutputKind::logits);
  // The simulated [CLS] hidden states, for the tolerance (the engine's, if the parity holds).
  // The engine's output scale: one unit of the last i-LayerNorm (engine code, the exported
  // gamma).
  auto last = sim.model()->bert->encoder->layer[sim.model()->bert->encoder->layer->size() - 1];
  const auto& ln = last->as<BertLayer>()->output->LayerNorm;
  const std::vector<float> g = to_vector(ln->weight), be = to_vector(ln->bias);
  const std::vector<double> scale = ops::prepare_ilayernorm(g, be, 0).out_scale;
  const BertOutputs hidden = engine.forward(b.seqs, BertOutputKind::last_hidden);
  const int64_t H = static_cast<int64_t>(scale.size());
  torch::Tensor cls = torch::zeros({int64_t(b.seqs.size()), H});
  for (std::size_t i = 0; i < b.seqs.size(); ++i)
    for (int64_t c = 0; c < H; ++c) cls[int64_t(i)][c] = hidden.last_hidden[i][c];
  const std::vector<float> tol = to_vector(logit_tolerance(sim.model(), cls, scale));
  ASSERT_EQ(eo.logits.size(), fq.size());
  for (std::size_t i = 0; i < b.seqs.size(); ++i) {
    const float* a = fq.data() + 2 * i;
    const float* e = eo.logits.data() + 2 * i;
    res.agree += (a[1] > a[0]) == (e[1] > e[0]);
    res.positive += e[1] > e[0];
    for (int k = 0; k < 2; ++k) {
      const double diff = std::fabs(double(a[k]) - double(e[k]));
      res.max_abs = std::max(res.max_abs, diff);
      res.max_tolerance = std::max(res.max_tolerance, double(tol[2 * i + k]));
      res.within += diff <= tol[2 * i + k];
      ++res.logits;
    }
  }
  res.n += static_cast<int64_t>(b.seqs.size());
}

TEST(IntegerQat, SimulatedForwardIsTheIntegerOnlyEngineOnARandomModel) {
  torch::manual_seed(7);
  io::BertConfig c = tiny_config();
  BertForSequenceClassification model(c);
  {
    // Larger weights than the initialiser's, so that every activation spans many codes.
    torch::NoGradGuard ng;
    for (auto& p : model->named_parameters())
      if (p.key().find("LayerNorm") == std::string::npos) p.value().normal_(0.0, 0.3);
  }
  IntegerQatBert sim(model, c);
  EXPECT_EQ(sim.sites().size(), 1u + 9u * 2u);
  model->train();
  for (uint64_t s = 0; s < 4; ++s) {
    const Batch b = random_batch(6, 24, 100 + s);
    sim.forward(b.ids, b.types, b.mask);  // observes every site
  }
  EXPECT_TRUE(sim.ready());
  EXPECT_EQ(sim.batches(), 4);
  test::TempDir tmp;
  export_integer_qat(sim, c, test::require_data("vocab/vocab.txt"), tmp / "out");
  BertModel engine = BertModel::load(tmp / "out", {.threads = 1});
  ASSERT_EQ(engine.precision(), Precision::integer_only);
  Parity p;
  for (uint64_t s = 0; s < 3; ++s) compare(sim, engine, random_batch(8, 40, 200 + s), p);
  std::printf(
      "integer QAT vs engine (random model): %lld sequences, argmax agree %lld, max |diff| "
      "%.3g (largest tolerance %.3g)\n",
      static_cast<long long>(p.n), static_cast<long long>(p.agree), p.max_abs, p.max_tolerance);
  EXPECT_EQ(p.agree, p.n);
  EXPECT_EQ(p.within, p.logits) << "max |diff| " << p.max_abs;
  // Restoring the exported calibration into a fresh wrapper reproduces the same forward pass.
  PretrainedBert again = load_pretrained(tmp / "out" / "fp32");
  IntegerQatBert sim2(again.model, again.config);
  sim2.restore(quant::load_calibration(tmp / "out" / "qat_calibration.json"));
  const Batch b = random_batch(5, 30, 300);
  torch::NoGradGuard ng;
  model->eval();
  again.model->eval();
  EXPECT_TRUE(
      torch::equal(sim.forward(b.ids, b.types, b.mask), sim2.forward(b.ids, b.types, b.mask)));
}

TEST(IntegerQat, StraightThroughGradientsFollowTheFp32Model) {
  // No dropout, so that the FP32 model and the simulation see the same function up to the
  // integer approximations.
  torch::manual_seed(8);
  io::BertConfig c = tiny_config(/*dropout=*/0.0);
  BertForSequenceClassification model(c);
  IntegerQatBert sim(model, c);
  model->train();
  const Batch b = random_batch(8, 20, 11);
  const torch::Tensor labels = torch::tensor({0, 1, 1, 0, 1, 0, 0, 1}, torch::kLong);
  auto grads = [&](bool integer) {
    model->zero_grad();
    torch::Tensor logits = integer ? sim.forward(b.ids, b.types, b.mask)
                                   : model->forward(b.ids, b.types, b.mask).logits;
    torch::nn::functional::cross_entropy(logits, labels).backward();
    std::vector<torch::Tensor> g;
    for (auto& p : model->named_parameters()) {
      if (p.key().find("word_embeddings") != std::string::npos) continue;  // sparse rows
      EXPECT_TRUE(p.value().grad().defined()) << p.key();
      if (p.value().grad().defined()) g.push_back(p.value().grad().flatten().clone());
    }
    return torch::cat(g);
  };
  const torch::Tensor gi = grads(true), gf = grads(false);
  ASSERT_EQ(gi.numel(), gf.numel());
  EXPECT_TRUE(torch::isfinite(gi).all().item<bool>());
  const double cosine = (gi * gf).sum().item<double>() / (gi.norm() * gf.norm()).item<double>();
  std::printf("integer QAT: gradient cosine with the FP32 model %.4f, norms %.4g vs %.4g\n", cosine,
              gi.norm().item<double>(), gf.norm().item<double>());
  // The STE gradient is the FP32 gradient evaluated on the integer path's values: close, not
  // equal (those values carry the quantization error).
  EXPECT_GT(cosine, 0.9);
  EXPECT_LT(cosine, 1.0 - 1e-9);
  // Every encoder parameter gets a gradient (LayerNorm gamma / beta included).
  const auto gamma = model->bert->encoder->layer[0]->as<BertLayer>()->output->LayerNorm->weight;
  EXPECT_GT(gamma.grad().abs().sum().item<double>(), 0.0);
}

TEST(IntegerQat, RejectsWhatTheIntegerEngineCannotRun) {
  torch::manual_seed(9);
  io::BertConfig c = tiny_config();
  BertForSequenceClassification model(c);
  IntegerQatBert sim(model, c);
  const Batch b = random_batch(2, 8, 1);
  // Eval before any range was observed.
  model->eval();
  try {
    sim.forward(b.ids, b.types, b.mask);
    FAIL() << "eval before training must fail";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("'bert.embeddings.sum'"), std::string::npos) << e.what();
  }
  test::TempDir tmp;
  EXPECT_THROW(export_integer_qat(sim, c, test::require_data("vocab/vocab.txt"), tmp / "o"),
               InvalidArgument);
  // Padding inside a row.
  model->train();
  torch::Tensor mask = torch::ones({1, 5}, torch::kLong);
  mask[0][2] = 0;
  try {
    sim.forward(torch::full({1, 5}, 1000, torch::kLong), {}, mask);
    FAIL() << "a hole in the mask must fail";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("row 0 has a token at 3 after padding at 2"),
              std::string::npos)
        << e.what();
  }
  EXPECT_THROW(sim.forward(torch::full({1, 3}, 40000, torch::kLong)), InvalidArgument);
  EXPECT_THROW(IntegerQatBert(model, c, 1.0), InvalidArgument);
  io::BertConfig relu = tiny_config(0.1, "relu");
  EXPECT_THROW(IntegerQatBert(BertForSequenceClassification(relu), relu), Unsupported);
}

// The CI run: a short integer-only-aware fine-tune of a tiny random-initialised BERT on real
// SST-2 (3,000 training examples, 2 epochs of 32), exported by finetune() itself; shared by the
// loss and the parity tests.
class IntegerQatFinetune : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    tmp_ = new test::TempDir();
    FinetuneOptions& o = options_;
    o.init = InitMode::random;
    o.config_file = *tmp_ / "tiny_config.json";
    test::write_file(o.config_file, io::to_json(tiny_config()).dump(2));
    o.vocab_file = test::require_data("vocab/vocab.txt");
    o.task = data::Task::sst2;
    o.train_file = test::require_data("glue/SST-2/train.tsv");
    o.dev_file = test::require_data("glue/SST-2/dev.tsv");
    o.out_dir = *tmp_ / "out";
    o.threads = 1;
    o.max_train_examples = 3000;
    o.epochs = 2;
    o.batch_size = 32;
    o.lr = 1e-3;
    o.max_seq_len = 64;
    o.qat.enabled = true;
    o.qat.mode = QatMode::integer_only;
    result_ = new FinetuneResult(finetune(o));
  }
  static void TearDownTestSuite() {
    delete result_;
    delete tmp_;
  }
  static test::TempDir* tmp_;
  static FinetuneOptions options_;
  static FinetuneResult* result_;
};
test::TempDir* IntegerQatFinetune::tmp_ = nullptr;
FinetuneOptions IntegerQatFinetune::options_;
FinetuneResult* IntegerQatFinetune::result_ = nullptr;

TEST_F(IntegerQatFinetune, ShortRunReducesTheLoss) {
  const auto& l = result_->step_losses;
  ASSERT_GE(l.size(), 150u);
  const std::size_t fifth = l.size() / 5;
  double first = 0, last = 0;
  for (std::size_t i = 0; i < fifth; ++i) {
    first += l[i] / double(fifth);
    last += l[l.size() - 1 - i] / double(fifth);
  }
  std::printf("integer QAT fine-tune: %zu steps, mean loss first 20%% %.4f -> last 20%% %.4f\n",
              l.size(), first, last);
  EXPECT_TRUE(std::isfinite(last));
  EXPECT_LT(last, first - 0.05);
  EXPECT_LT(last, 0.69);  // below chance (ln 2)
}

TEST_F(IntegerQatFinetune, ExportedIntegerOnlyEngineMatchesTheSimulation) {
  const fs::path out = options_.out_dir;
  ASSERT_GE(result_->best_epoch, 1);
  ASSERT_TRUE(fs::exists(out / "fp32" / "model.safetensors"));
  ASSERT_TRUE(fs::exists(out / "qat_calibration.json"));
  // The simulation rebuilt from the export (FP32 weights + EMA ranges), the engine from the
  // integer-only directory.
  PretrainedBert p = load_pretrained(out / "fp32");
  IntegerQatBert sim(p.model, p.config);
  sim.restore(quant::load_calibration(out / "qat_calibration.json"));
  BertModel engine = BertModel::load(out, {.threads = 1});
  ASSERT_EQ(engine.precision(), Precision::integer_only);
  auto tok = text::WordPieceTokenizer::from_model_dir(out);
  const data::Dataset dev = data::read_glue(data::Task::sst2, options_.dev_file);
  Parity res;
  const std::size_t batch = 64;
  for (std::size_t start = 0; start < dev.examples.size(); start += batch) {
    const std::size_t n = std::min(batch, dev.examples.size() - start);
    std::vector<text::Encoding> enc;
    std::size_t t = 0;
    for (std::size_t i = 0; i < n; ++i) {
      enc.push_back(tok.encode(dev.examples[start + i].text_a, options_.max_seq_len));
      t = std::max(t, enc.back().input_ids.size());
    }
    Batch b;
    b.ids = torch::zeros({int64_t(n), int64_t(t)}, torch::kLong);
    b.types = torch::zeros_like(b.ids);
    b.mask = torch::zeros_like(b.ids);
    for (std::size_t i = 0; i < n; ++i) {
      for (std::size_t k = 0; k < enc[i].input_ids.size(); ++k) {
        b.ids[i][k] = enc[i].input_ids[k];
        b.types[i][k] = enc[i].token_type_ids[k];
        b.mask[i][k] = 1;
      }
      b.seqs.push_back({enc[i].input_ids, enc[i].token_type_ids});
    }
    compare(sim, engine, b, res);
  }
  std::printf(
      "integer QAT parity: %lld SST-2 dev examples, predictions agree %.4f, logits max |diff| "
      "%.3g (%lld of %lld within their tolerance, largest %.3g); engine predicts positive for "
      "%lld; dev accuracy libtorch %.4f, engine %.4f\n",
      static_cast<long long>(res.n), double(res.agree) / double(res.n), res.max_abs,
      static_cast<long long>(res.within), static_cast<long long>(res.logits), res.max_tolerance,
      static_cast<long long>(res.positive), result_->best_dev.main_value(),
      result_->engine_dev.main_value());
  ASSERT_EQ(res.n, 872);
  EXPECT_GE(double(res.agree) / double(res.n), 0.995);
  EXPECT_GE(double(res.within) / double(res.logits), 0.995);
  // Agreement means something only if the model does not predict one class for everything.
  EXPECT_GT(res.positive, res.n / 5);
  EXPECT_LT(res.positive, res.n - res.n / 5);
  // The engine's dev figure is the simulated one up to the disagreements.
  EXPECT_NEAR(result_->engine_dev.main_value(), result_->best_dev.main_value(), 0.005 + 1e-9);
  EXPECT_GT(result_->best_dev.main_value(), 0.55);  // chance: 0.509
}

}  // namespace
}  // namespace octet::train
