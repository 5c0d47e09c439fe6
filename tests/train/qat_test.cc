// Quantization-aware fine-tuning (src/train/qat.h): the fake-quantization ops against the engine's
// quantizer (values and straight-through gradients), the EMA ranges, export errors, and the issue's
// parity criterion: a short QAT fine-tune of a tiny BERT on real SST-2, exported to an INT8 model
// directory, whose engine logits equal the libtorch fake-quantized forward pass's bit for bit on
// all of SST-2 dev (the issue asks for 99.5% of the predictions; the engine-exact pass gives
// all of them, on every ISA cap).
#include "train/qat.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/test_support.h"
#include "data/glue.h"
#include "io/safetensors.h"
#include "octet/error.h"
#include "octet/model.h"
#include "quant/bert_quant.h"
#include "quant/quantizer.h"
#include "text/wordpiece.h"
#include "train/engine_fn.h"
#include "train/finetune.h"

namespace octet::train {
namespace {

namespace fs = std::filesystem;

std::vector<float> to_vector(const torch::Tensor& t) {
  torch::Tensor c = t.detach().contiguous();
  return {c.data_ptr<float>(), c.data_ptr<float>() + c.numel()};
}

TEST(QatFakeQuant, SymmetricIsTheEngineQuantizerWithIdentityOrClippedGradient) {
  torch::manual_seed(1);
  torch::Tensor x = (torch::randn({4000}) * 2.0).requires_grad_(true);
  const float threshold = 2.5f;
  torch::Tensor y = fake_quantize_symmetric(x, threshold, SteMode::identity);
  const std::vector<float> xs = to_vector(x);
  std::vector<float> expected(xs.size());
  quant::fake_quantize_symmetric(xs, quant::symmetric_inv_scale(threshold), expected);
  EXPECT_EQ(to_vector(y), expected);
  // Values are codes in [-127, 127] times the step; some inputs were clamped.
  int clamped = 0;
  for (std::size_t i = 0; i < xs.size(); ++i) {
    const float code = expected[i] * quant::symmetric_inv_scale(threshold);
    ASSERT_NEAR(code, std::nearbyint(code), 1e-3) << i;
    ASSERT_LE(std::fabs(code), 127.0f + 1e-3f) << i;
    clamped += std::fabs(xs[i]) > threshold;
  }
  EXPECT_GT(clamped, 100);
  y.sum().backward();
  EXPECT_TRUE(torch::equal(x.grad(), torch::ones_like(x)));  // identity STE: no masking

  x.mutable_grad() = torch::Tensor();
  fake_quantize_symmetric(x, threshold, SteMode::clipped).sum().backward();
  const std::vector<float> g = to_vector(x.grad());
  for (std::size_t i = 0; i < xs.size(); ++i)
    ASSERT_EQ(g[i], std::fabs(xs[i]) <= threshold ? 1.0f : 0.0f) << "x = " << xs[i];
}

// train/engine_fn.h's attach_linear: the engine's value forward, and backward the gradient of
// act(x w^T + b) at the engine's pre-activation, equal to libtorch's autograd of that expression.
TEST(EngineLinear, GradientIsTheFp32ExpressionsWithoutItsForwardProduct) {
  namespace F = torch::nn::functional;
  for (const LinearAct act :
       {LinearAct::none, LinearAct::gelu, LinearAct::gelu_tanh, LinearAct::relu}) {
    SCOPED_TRACE(static_cast<int>(act));
    torch::manual_seed(3);
    const torch::Tensor x0 = torch::randn({3, 5, 8}), w0 = torch::randn({6, 8}),
                        b0 = torch::randn({6}), gy = torch::randn({3, 5, 6});
    auto f = [&](const torch::Tensor& z) {
      switch (act) {
        case LinearAct::gelu:
          return torch::gelu(z);
        case LinearAct::gelu_tanh:
          return torch::gelu(z, "tanh");
        case LinearAct::relu:
          return torch::relu(z);
        case LinearAct::none:
          break;
      }
      return z;
    };
    torch::Tensor x = x0.clone().requires_grad_(true), w = w0.clone().requires_grad_(true),
                  b = b0.clone().requires_grad_(true);
    f(F::linear(x, w, b)).backward(gy);
    // The "engine": the same product, computed outside autograd, plus a marker the forward value
    // must carry (it is the call's value, not a recomputation).
    int calls = 0;
    const LinearCall call = [&] {
      ++calls;
      LinearOut out;
      torch::NoGradGuard no_grad;
      out.pre = F::linear(x0, w0, b0);
      out.value = f(out.pre) + 1000.0f;
      return out;
    };
    torch::Tensor x2 = x0.clone().requires_grad_(true), w2 = w0.clone().requires_grad_(true),
                  b2 = b0.clone().requires_grad_(true);
    const torch::Tensor y = attach_linear(
        true, [&] { return x2 * 1.0; }, [&] { return w2 * 1.0; }, b2, act, call);
    EXPECT_EQ(calls, 1);
    EXPECT_TRUE(torch::allclose(y, f(F::linear(x0, w0, b0)) + 1000.0f));
    y.backward(gy);
    EXPECT_TRUE(torch::allclose(x2.grad(), x.grad(), 1e-5, 1e-5));
    EXPECT_TRUE(torch::allclose(w2.grad(), w.grad(), 1e-5, 1e-5));
    EXPECT_TRUE(torch::allclose(b2.grad(), b.grad(), 1e-5, 1e-5));
    // Without gradients: the call's value, the operands never evaluated.
    EXPECT_TRUE(torch::equal(
        attach_linear(
            false, [&]() -> torch::Tensor { throw Error("evaluated"); },
            [&]() -> torch::Tensor { throw Error("evaluated"); }, torch::Tensor(), act, call),
        y.detach()));
  }
  // A value of the wrong shape is an internal error, named.
  const torch::Tensor x = torch::zeros({2, 4}, torch::requires_grad()),
                      w = torch::zeros({3, 4}, torch::requires_grad());
  const LinearCall bad = [] { return LinearOut{torch::zeros({2, 4}), {}}; };
  EXPECT_THROW(
      attach_linear(
          true, [&] { return x; }, [&] { return w; }, torch::zeros({3}), LinearAct::none, bad),
      Error);
}

TEST(QatFakeQuant, AsymmetricIsTheEngineQuantizer) {
  torch::manual_seed(2);
  torch::Tensor x = torch::rand({3000}) * 5.0 - 1.0;  // [-1, 4)
  const std::vector<float> xs = to_vector(x);
  const quant::AsymmetricParams p = quant::asymmetric_params(-0.8f, 3.5f);
  std::vector<float> expected(xs.size());
  quant::fake_quantize_asymmetric(xs, p, expected);
  EXPECT_EQ(to_vector(fake_quantize_asymmetric(x, -0.8f, 3.5f, SteMode::identity)), expected);
  // 0.0 is exact (nudged zero point).
  EXPECT_EQ(fake_quantize_asymmetric(torch::zeros({3}), -0.8f, 3.5f, SteMode::identity)
                .abs()
                .max()
                .item<float>(),
            0.0f);
}

TEST(QatFakeQuant, WeightsPerTensorAndPerChannelAreTheEngineWeightQuantizer) {
  torch::manual_seed(3);
  torch::Tensor w = torch::randn({8, 32}) * torch::linspace(0.1, 2.0, 8).unsqueeze(1);
  w.requires_grad_(true);
  const std::vector<float> ws = to_vector(w);
  for (auto g : {quant::WeightGranularity::per_tensor, quant::WeightGranularity::per_channel}) {
    const quant::QuantizedWeights q = quant::quantize_weights(ws, 8, 32, g);
    torch::Tensor fq = fake_quantize_weight(w, g, "w");
    const std::vector<float> got = to_vector(fq);
    for (int c = 0; c < 8; ++c)
      for (int k = 0; k < 32; ++k) {
        const float inv = q.inv_scales.size() == 1 ? q.inv_scales[0] : q.inv_scales[c];
        ASSERT_EQ(got[c * 32 + k], float(q.q[c * 32 + k]) / inv) << c << "," << k;
      }
    w.mutable_grad() = torch::Tensor();
    (fq * 3.0).sum().backward();
    EXPECT_TRUE(torch::allclose(w.grad(), torch::full_like(w, 3.0)));
  }
  // Per channel, each row's largest magnitude is exactly code 127.
  torch::Tensor fq = fake_quantize_weight(w, quant::WeightGranularity::per_channel, "w");
  EXPECT_TRUE(torch::allclose(fq.abs().amax(1), w.detach().abs().amax(1)));
}

TEST(QatFakeQuant, EmaRangeStartsAtStartStepAndFollowsQ8bert) {
  QatOptions o;
  o.ema_decay = 0.9;
  ActivationQuantizer q("site", o, /*start_step=*/5);
  torch::Tensor a = torch::tensor({-1.0f, 2.0f}), b = torch::tensor({4.0f, -3.0f});
  // Before the start step: FP32 and nothing observed.
  EXPECT_TRUE(torch::equal(q.forward(a, /*training=*/true, 4), a));
  EXPECT_FALSE(q.observed());
  EXPECT_TRUE(torch::equal(q.forward(a, /*training=*/false, 4), a));
  q.forward(a, true, 5);  // first batch initialises: T = 2
  EXPECT_FLOAT_EQ(q.range().max, 2.0f);
  // T <- T - (1 - 0.9) (T - 4) = 2.2; the batch is quantized with the updated range, so 4
  // saturates at 2.2.
  torch::Tensor y = q.forward(b, true, 6);
  EXPECT_NEAR(q.range().max, 2.2f, 1e-6);
  EXPECT_NEAR(y[0].item<float>(), 2.2f, 1e-6);
  // Eval mode reads the range without updating it.
  q.forward(torch::tensor({100.0f}), false, 7);
  EXPECT_NEAR(q.range().max, 2.2f, 1e-6);
  EXPECT_EQ(q.statistics()["ema"]["batches"], 2);
}

io::BertConfig tiny_config() {
  nlohmann::json j = {
      {"model_type", "bert"},           {"vocab_size", 30522},       {"hidden_size", 64},
      {"num_hidden_layers", 2},         {"num_attention_heads", 2},  {"intermediate_size", 256},
      {"max_position_embeddings", 128}, {"type_vocab_size", 2},      {"hidden_act", "gelu"},
      {"layer_norm_eps", 1e-12},        {"initializer_range", 0.02}, {"num_labels", 2}};
  return io::parse_bert_config(j, "tiny config");
}

TEST(QatBertTest, ExportBeforeTheHeadStartsIsAnErrorNamingTheClassifier) {
  torch::manual_seed(4);
  io::BertConfig c = tiny_config();
  BertForSequenceClassification model(c);
  model->train();
  QatOptions o;
  o.enabled = true;
  QatBert qat(model, c, o);  // head starts at step 200
  qat.set_step(0);
  torch::Tensor ids = torch::randint(1000, 2000, {2, 7}, torch::kLong);
  torch::Tensor logits = qat.forward(ids);
  EXPECT_EQ(logits.sizes(), (std::vector<int64_t>{2, 2}));
  EXPECT_FALSE(qat.ready());
  test::TempDir tmp;
  try {
    export_qat(qat, c, test::require_data("vocab/vocab.txt"), tmp / "out");
    FAIL() << "export before the head's start step must fail";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("'classifier'"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("step 200"), std::string::npos) << e.what();
  }
}

struct Parity {
  int64_t n = 0, agree = 0, positive = 0;  // positive: the engine predicts class 1
  double max_abs = 0, mean_abs = 0;
};

// The exported directory's engine logits against the libtorch fake-quantized forward pass rebuilt
// from <out>/fp32 and <out>/qat_calibration.json, on every dev example.
// `engine_dir`: the engine's model (default: `out`).
Parity compare_with_engine(const fs::path& out, const fs::path& dev_file, const QatOptions& qo,
                           fs::path engine_dir = {}) {
  PretrainedBert p = load_pretrained(out / "fp32");
  QatBert qat(p.model, p.config, qo);
  qat.restore(quant::load_calibration(out / "qat_calibration.json"));
  p.model->eval();
  BertModel engine = BertModel::load(engine_dir.empty() ? out : engine_dir, {.threads = 1});
  EXPECT_EQ(engine.precision(), Precision::int8_static);
  auto tok = text::WordPieceTokenizer::from_model_dir(out);
  const data::Dataset dev = data::read_glue(data::Task::sst2, dev_file);
  Parity res;

  torch::NoGradGuard no_grad;
  const std::size_t batch = 64;
  for (std::size_t start = 0; start < dev.examples.size(); start += batch) {
    const std::size_t n = std::min(batch, dev.examples.size() - start);
    std::vector<text::Encoding> enc;
    std::size_t t = 0;
    for (std::size_t i = 0; i < n; ++i) {
      enc.push_back(tok.encode(dev.examples[start + i].text_a, 64));
      t = std::max(t, enc.back().input_ids.size());
    }
    torch::Tensor ids = torch::zeros({int64_t(n), int64_t(t)}, torch::kLong);
    torch::Tensor mask = torch::zeros_like(ids);
    std::vector<BertSequence> seqs;
    for (std::size_t i = 0; i < n; ++i) {
      for (std::size_t k = 0; k < enc[i].input_ids.size(); ++k) {
        ids[i][k] = enc[i].input_ids[k];
        mask[i][k] = 1;
      }
      seqs.push_back({enc[i].input_ids, enc[i].token_type_ids});
    }
    const std::vector<float> fq = to_vector(qat.forward(ids, torch::zeros_like(ids), mask));
    const BertOutputs eo = engine.forward(seqs, BertOutputKind::logits);
    EXPECT_EQ(eo.logits.size(), fq.size());
    for (std::size_t i = 0; i < n; ++i) {
      const float* a = fq.data() + 2 * i;
      const float* b = eo.logits.data() + 2 * i;
      res.agree += (a[1] > a[0]) == (b[1] > b[0]);
      res.positive += b[1] > b[0];
      for (int k = 0; k < 2; ++k) {
        const double d = std::fabs(double(a[k]) - double(b[k]));
        res.max_abs = std::max(res.max_abs, d);
        res.mean_abs += d;
      }
    }
    res.n += static_cast<int64_t>(n);
  }
  res.mean_abs /= double(2 * res.n);
  return res;
}

// The CI parity test: a short QAT fine-tune (tiny random-initialised BERT, 4,000 SST-2 training
// examples, 125 steps), exported by finetune() itself, then engine vs libtorch on all of SST-2 dev.
void run_parity(QatOptions qo, const char* label) {
  test::TempDir tmp;
  FinetuneOptions o;
  o.init = InitMode::random;
  o.config_file = tmp / "tiny_config.json";
  test::write_file(o.config_file, io::to_json(tiny_config()).dump(2));
  o.vocab_file = test::require_data("vocab/vocab.txt");
  o.task = data::Task::sst2;
  o.train_file = test::require_data("glue/SST-2/train.tsv");
  o.dev_file = test::require_data("glue/SST-2/dev.tsv");
  o.out_dir = tmp / "out";
  o.threads = 1;
  o.max_train_examples = 4000;
  o.epochs = 2;
  o.batch_size = 32;
  o.lr = 1e-3;
  o.max_seq_len = 64;
  qo.enabled = true;
  qo.head_start_step = 10;  // Q8BERT's 200 is longer than this run
  o.qat = qo;
  const FinetuneResult r = finetune(o);
  {
    const auto& l = r.step_losses;
    const std::size_t fifth = l.size() / 5;
    double first = 0, last = 0;
    for (std::size_t i = 0; i < fifth; ++i) {
      first += l[i] / double(fifth);
      last += l[l.size() - 1 - i] / double(fifth);
    }
    std::printf("qat parity (%s): %zu steps, loss first 20%% %.4f -> last 20%% %.4f\n", label,
                l.size(), first, last);
  }
  ASSERT_GE(r.best_epoch, 1);
  ASSERT_TRUE(fs::exists(o.out_dir / "fp32" / "model.safetensors"));
  // Q8BERT's layer set: per layer the QKV input, the Q and K outputs, attention output, FFN in
  // and out; pooler; classifier. The export quantizes the Q and K outputs with their ranges.
  {
    QatBert q(BertForSequenceClassification(tiny_config()), tiny_config(), qo);
    EXPECT_EQ(q.sites().size(), 2u * 6u + 2u);
    EXPECT_EQ(q.sites()[1]->name(), "bert.encoder.layer.0.attention.self.query:output");
    const nlohmann::json cfg = nlohmann::json::parse(test::read_file(o.out_dir / "config.json"));
    EXPECT_EQ(cfg["quantization_config"]["quantize"]["attention_scores"], true);
    const io::SafetensorsReader st(o.out_dir / "model.safetensors");
    EXPECT_NE(st.find("bert.encoder.layer.1.attention.self.key.output_scale"), nullptr);
  }
  const Parity p = compare_with_engine(o.out_dir, o.dev_file, qo);
  std::printf(
      "qat parity (%s): %lld dev examples, predictions agree %.4f, logits max |diff| %.3g mean "
      "%.3g; engine predicts positive for %lld; dev accuracy libtorch %.4f, engine %.4f\n",
      label, static_cast<long long>(p.n), double(p.agree) / double(p.n), p.max_abs, p.mean_abs,
      static_cast<long long>(p.positive), r.best_dev.main_value(), r.engine_dev.main_value());
  ASSERT_EQ(p.n, 872);
  // The fake-quantized forward pass computes the engine's numbers (QatBert's engine-exact pass:
  // the engine's kernels on the active ISA, the tensors the export stores): every prediction and
  // every logit of the exported model, bit for bit, on every ISA cap.
  EXPECT_EQ(p.agree, p.n);
  EXPECT_EQ(p.max_abs, 0.0);
  // Agreement means something only if the model does not predict one class for everything.
  EXPECT_GT(p.positive, p.n / 5);
  EXPECT_LT(p.positive, p.n - p.n / 5);
  // finetune's own report (train_log.json "engine_parity", the in-memory model against the
  // saved one) measures the same thing as the rebuilt model above.
  const EngineParity& e = r.engine_parity;
  EXPECT_EQ(e.examples, p.n);
  EXPECT_EQ(e.predictions_agree, p.n);
  EXPECT_EQ(e.max_abs_logit_diff, 0.0);
  EXPECT_EQ(r.engine_dev.main_value(), r.best_dev.main_value());
  // It learned something (chance: 0.509), so agreement is not measured on coin flips alone.
  EXPECT_GT(r.best_dev.main_value(), 0.55);

  // The same exported model with the engine's Q and K quantization switched off
  // (quantize.attention_scores false in a copy of its config) is measurably further from the
  // libtorch pass: the parity above depends on the engine quantizing Q and K as training did.
  const fs::path off = tmp / "qk_off";
  fs::create_directories(off);
  for (const char* f : {"model.safetensors", "vocab.txt"}) fs::copy_file(o.out_dir / f, off / f);
  nlohmann::json cfg = nlohmann::json::parse(test::read_file(o.out_dir / "config.json"));
  cfg["quantization_config"]["quantize"]["attention_scores"] = false;
  test::write_file(off / "config.json", cfg.dump(2));
  const Parity q = compare_with_engine(o.out_dir, o.dev_file, qo, off);
  std::printf(
      "qat parity (%s), engine without Q/K quantization: logits max |diff| %.3g mean %.3g\n", label,
      q.max_abs, q.mean_abs);
  EXPECT_GT(q.mean_abs, 0.01);
}

TEST(QatParity, Q8bertSymmetricPerTensorEngineMatchesFakeQuant) {
  run_parity(QatOptions{}, "symmetric, per tensor");
}

TEST(QatParity, AsymmetricPerChannelClippedEngineMatchesFakeQuant) {
  QatOptions qo;
  qo.scheme = quant::Scheme::asymmetric;
  qo.weights = quant::WeightGranularity::per_channel;
  qo.ste = SteMode::clipped;
  run_parity(qo, "asymmetric, per channel, clipped STE");
}

}  // namespace
}  // namespace octet::train
