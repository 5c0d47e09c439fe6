// Static INT8 BERT (calibrated scales, quant/bert_quant.h) against the FP32 PyTorch reference
// (scripts/make_golden.py) on the BERT-base-shaped golden model: cosine >= 0.99 for the logits
// and for every sequence's last hidden states, for symmetric and asymmetric activations,
// per-channel and per-tensor weights, and the max / percentile / KL / MSE calibrators; and the
// quantized directory reloads bit-identically (the issue's "done when").
//
// Calibration uses 8 random sequences (seeded, ids from the vocabulary's word range), never the
// golden inputs themselves.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "common/test_support.h"
#include "golden/golden_fixture.h"
#include "octet/model.h"
#include "quant/bert_quant.h"

namespace octet {
namespace {

using nlohmann::json;
using test::Golden;
using test::load_golden;

double cosine(const float* a, const float* b, std::size_t n) {
  double ab = 0.0, aa = 0.0, bb = 0.0;
  for (std::size_t i = 0; i < n; ++i) {
    ab += double{a[i]} * b[i];
    aa += double{a[i]} * a[i];
    bb += double{b[i]} * b[i];
  }
  return ab / std::sqrt(aa * bb);
}

class BertInt8StaticGolden : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    g_ = new Golden(load_golden("base"));
    const BertModel fp32 = BertModel::load(g_->dir, {.threads = 2});
    const int64_t vocab = fp32.config().vocab_size;
    std::mt19937 rng(2024);
    std::vector<std::vector<int32_t>> ids;
    for (int b = 0; b < 8; ++b) {
      const int len = 16 + static_cast<int>(rng() % 33);
      std::vector<int32_t> s(len);
      s[0] = 101 % vocab;
      for (int i = 1; i < len; ++i) {
        s[i] = static_cast<int32_t>(1000 + rng() % static_cast<uint32_t>(std::min<int64_t>(
                                                       20000, std::max<int64_t>(1, vocab - 1000))));
        s[i] %= static_cast<int32_t>(vocab);
      }
      ids.push_back(s);
    }
    std::vector<BertSequence> batch;
    for (const auto& s : ids) batch.push_back({s, {}});
    quant::CalibrationCollector col({});
    const ActivationTap tap = col.tap();
    BertOutputKind what = BertOutputKind::last_hidden;
    if (fp32.has_classifier()) what = what | BertOutputKind::logits;
    fp32.forward(std::span(batch).subspan(0, 4), what, tap);
    fp32.forward(std::span(batch).subspan(4), what, tap);
    calib_ = new json{{"format", quant::kCalibrationFormat},
                      {"version", quant::kCalibrationVersion},
                      {"tensors", col.to_json()}};
  }
  static void TearDownTestSuite() {
    delete g_;
    delete calib_;
  }

  void check(const std::string& config_json) {
    SCOPED_TRACE(config_json);
    const quant::QuantizationConfig cfg =
        quant::parse_quantization_config(json::parse(config_json), "test");
    const quant::QuantizedBert q = quant::quantize_bert(g_->dir, cfg, calib_);
    const BertModel model = quant::load_in_memory(q, 2);
    std::vector<BertSequence> batch;
    for (std::size_t b = 0; b < g_->ids.size(); ++b) batch.push_back({g_->ids[b], g_->types[b]});
    const int64_t h = g_->meta["hidden_size"].get<int64_t>();
    const int64_t labels = g_->meta["num_labels"].get<int64_t>();
    BertOutputKind what = BertOutputKind::last_hidden;
    if (labels > 0) what = what | BertOutputKind::logits;
    const BertOutputs out = model.forward(batch, what);
    std::printf("[base, static %s] encoder weights %.1f%% of FP32\n", config_json.c_str(),
                100.0 * q.int8_encoder_bytes / q.fp32_encoder_bytes);
    EXPECT_LE(q.int8_encoder_bytes, 0.27 * q.fp32_encoder_bytes);
    if (labels > 0) {
      const std::vector<float> want = g_->read("logits");
      ASSERT_EQ(out.logits.size(), want.size());
      const double c = cosine(out.logits.data(), want.data(), want.size());
      std::printf("  logits       cosine vs FP32 %.6f (min 0.99)\n", c);
      EXPECT_GE(c, 0.99) << "logits";
    }
    const std::vector<float> want_hidden = g_->read("last_hidden");
    std::size_t row = 0;
    double worst = 1.0;
    for (std::size_t b = 0; b < batch.size(); ++b) {
      const std::size_t n = g_->ids[b].size() * h;
      ASSERT_EQ(out.last_hidden[b].size(), n);
      const double c = cosine(out.last_hidden[b].data(), want_hidden.data() + row * h, n);
      worst = std::min(worst, c);
      EXPECT_GE(c, 0.99) << "last_hidden of sequence " << b;
      row += g_->ids[b].size();
    }
    std::printf("  last_hidden  cosine vs FP32, worst sequence %.6f (min 0.99)\n", worst);
  }

  static Golden* g_;
  static json* calib_;
};

Golden* BertInt8StaticGolden::g_ = nullptr;
json* BertInt8StaticGolden::calib_ = nullptr;

TEST_F(BertInt8StaticGolden, SymmetricMaxPerChannel) { check(R"({})"); }
TEST_F(BertInt8StaticGolden, SymmetricKlPerTensor) {
  check(R"({"calibrator": {"kind": "kl"}, "weights": "per_tensor"})");
}
TEST_F(BertInt8StaticGolden, SymmetricPercentile) {
  check(R"({"calibrator": {"kind": "percentile", "percentile": 99.99}})");
}
TEST_F(BertInt8StaticGolden, SymmetricMse) { check(R"({"calibrator": {"kind": "mse"}})"); }
TEST_F(BertInt8StaticGolden, AsymmetricMaxIndependent) {
  check(R"({"scheme": "asymmetric", "threshold_mode": "independent"})");
}
TEST_F(BertInt8StaticGolden, AsymmetricKlPerTensor) {
  check(R"({"scheme": "asymmetric", "threshold_mode": "independent", "weights": "per_tensor",
            "calibrator": {"kind": "kl"}})");
}

TEST_F(BertInt8StaticGolden, QuantizedDirectoryReloadsBitIdentically) {
  const quant::QuantizedBert q = quant::quantize_bert(
      g_->dir,
      quant::parse_quantization_config(
          json::parse(R"({"scheme": "asymmetric", "threshold_mode": "independent"})"), "test"),
      calib_);
  std::vector<BertSequence> batch;
  for (std::size_t b = 0; b < g_->ids.size(); ++b) batch.push_back({g_->ids[b], g_->types[b]});
  const BertOutputKind what = BertOutputKind::last_hidden;
  const BertOutputs before = quant::load_in_memory(q, 2).forward(batch, what);
  test::TempDir tmp;
  quant::write_quantized_dir(q, tmp.path() / "q");
  const BertOutputs after = BertModel::load(tmp.path() / "q", {.threads = 2}).forward(batch, what);
  ASSERT_EQ(before.last_hidden.size(), after.last_hidden.size());
  for (std::size_t b = 0; b < before.last_hidden.size(); ++b) {
    ASSERT_EQ(before.last_hidden[b].size(), after.last_hidden[b].size());
    EXPECT_EQ(0, std::memcmp(before.last_hidden[b].data(), after.last_hidden[b].data(),
                             before.last_hidden[b].size() * sizeof(float)))
        << "sequence " << b;
  }
}

}  // namespace
}  // namespace octet
