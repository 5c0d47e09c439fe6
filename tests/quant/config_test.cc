// QuantizationConfig: defaults, JSON round trip, site classification, keep_fp32 globs, and every
// parse error naming its key.
#include "quant/config.h"

#include <gtest/gtest.h>

#include <string>

#include "octet/error.h"

namespace octet::quant {
namespace {

using nlohmann::json;

TEST(QuantizationConfig, DefaultsQuantizeEveryLinearAndTheEmbeddings) {
  const QuantizationConfig c = parse_quantization_config(json::object(), "test");
  EXPECT_EQ(c.activations, ActivationMode::static_);
  EXPECT_EQ(c.scheme, Scheme::symmetric);
  EXPECT_EQ(c.weights, WeightGranularity::per_channel);
  EXPECT_EQ(c.calibrator.kind, CalibratorKind::max);
  EXPECT_EQ(c.threshold_mode, ThresholdMode::symmetric);
  for (const char* p :
       {"bert.encoder.layer.0.attention.self.query", "bert.encoder.layer.11.attention.self.key",
        "bert.encoder.layer.3.attention.self.value", "bert.encoder.layer.3.attention.output.dense",
        "bert.encoder.layer.3.intermediate.dense", "bert.encoder.layer.3.output.dense",
        "bert.pooler.dense", "classifier", "bert.embeddings.word_embeddings",
        "bert.embeddings.position_embeddings"}) {
    EXPECT_TRUE(c.quantizes(p)) << p;
  }
  for (const char* p :
       {"bert.embeddings.token_type_embeddings", "bert.embeddings.LayerNorm",
        "bert.encoder.layer.3.output.LayerNorm", "bert.encoder.layer.x.output.dense",
        "bert.encoder.layer..output.dense", "bert.encoder.layer.3.attention.self", "other"}) {
    EXPECT_FALSE(c.quantizes(p)) << p;
  }
  EXPECT_FALSE(c.enabled(Site::attention_scores));
  EXPECT_FALSE(c.enabled(Site::attention_context));
}

TEST(QuantizationConfig, KeepFp32PatternsAndSiteSwitches) {
  const json j = json::parse(R"({
    "quantize": {"pooler": false, "attention_scores": true},
    "keep_fp32": ["bert.encoder.layer.1?.*", "*.intermediate.dense", "classifier"]
  })");
  const QuantizationConfig c = parse_quantization_config(j, "test");
  EXPECT_FALSE(c.quantizes("bert.pooler.dense"));
  EXPECT_FALSE(c.quantizes("bert.encoder.layer.11.attention.self.query"));
  EXPECT_TRUE(c.quantizes("bert.encoder.layer.1.attention.self.query"));
  EXPECT_FALSE(c.quantizes("bert.encoder.layer.1.intermediate.dense"));
  EXPECT_FALSE(c.quantizes("classifier"));
  EXPECT_TRUE(c.enabled(Site::attention_scores));
}

TEST(GlobMatch, StarAndQuestionMarkOverWholeString) {
  EXPECT_TRUE(glob_match("*", ""));
  EXPECT_TRUE(glob_match("a*c", "abbbc"));
  EXPECT_TRUE(glob_match("a?c", "abc"));
  EXPECT_FALSE(glob_match("a?c", "ac"));
  EXPECT_FALSE(glob_match("abc", "abcd"));
  EXPECT_TRUE(glob_match("*.dense", "bert.pooler.dense"));
  EXPECT_FALSE(glob_match("*.dense", "bert.pooler.dense.weight"));
  EXPECT_TRUE(glob_match("**a*b", "xxaxxb"));
}

TEST(QuantizationConfig, JsonRoundTripForEveryCalibrator) {
  QuantizationConfig c;
  c.activations = ActivationMode::dynamic;
  c.scheme = Scheme::asymmetric;
  c.weights = WeightGranularity::per_tensor;
  c.threshold_mode = ThresholdMode::independent;
  c.sites[static_cast<int>(Site::attention_context)] = true;
  c.sites[static_cast<int>(Site::word_embeddings)] = false;
  c.keep_fp32 = {"classifier", "bert.encoder.layer.11.*"};
  for (auto kind : {CalibratorKind::max, CalibratorKind::ema, CalibratorKind::percentile,
                    CalibratorKind::kl, CalibratorKind::mse}) {
    c.calibrator = CalibratorSpec{};
    c.calibrator.kind = kind;
    if (kind == CalibratorKind::ema) c.calibrator.decay = 0.95;
    if (kind == CalibratorKind::percentile) c.calibrator.percentile = 99.999;
    if (kind == CalibratorKind::kl) c.calibrator.kl_form = KlForm::signed_;
    if (kind != CalibratorKind::max && kind != CalibratorKind::ema) c.calibrator.bins = 1024;
    const json j = to_json(c);
    const QuantizationConfig back = parse_quantization_config(json::parse(j.dump()), "test");
    EXPECT_TRUE(back == c) << j.dump();
    EXPECT_EQ(to_json(back), j);
  }
}

void expect_error(const std::string& text, const std::string& needle) {
  SCOPED_TRACE(text);
  const json j = json::parse(text);
  try {
    parse_quantization_config(j, "quant.json");
    ADD_FAILURE() << "accepted";
  } catch (const InvalidArgument& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("quant.json: "), std::string::npos) << what;
    EXPECT_NE(what.find(needle), std::string::npos) << what;
  }
}

TEST(QuantizationConfig, RejectsEveryBadKeyTypeAndValueNamingTheKey) {
  expect_error(R"({"activation": "static"})", "key \"activation\" is unknown");
  expect_error(R"({"activations": "sometimes"})", "key \"activations\" is \"sometimes\"");
  expect_error(R"({"activations": 1})", "key \"activations\" is 1");
  expect_error(R"({"scheme": "affine"})", "key \"scheme\"");
  expect_error(R"({"weights": "per_row"})", "key \"weights\"");
  expect_error(R"({"threshold_mode": "both"})", "key \"threshold_mode\"");
  expect_error(R"({"threshold_mode": "independent"})",
               "key \"threshold_mode\" is \"independent\" with scheme \"symmetric\"");
  expect_error(R"({"calibrator": "kl"})", "key \"calibrator\" is \"kl\": expected an object");
  expect_error(R"({"calibrator": {}})", "key \"calibrator.kind\" is missing");
  expect_error(R"({"calibrator": {"kind": "entropy"}})", "key \"calibrator.kind\"");
  expect_error(R"({"calibrator": {"kind": "ema", "decay": 1.5}})", "key \"calibrator.decay\"");
  expect_error(R"({"calibrator": {"kind": "ema", "decay": "0.9"}})", "key \"calibrator.decay\"");
  expect_error(R"({"calibrator": {"kind": "percentile", "percentile": 40}})",
               "key \"calibrator.percentile\"");
  expect_error(R"({"calibrator": {"kind": "kl", "percentile": 99.9}})",
               "key \"calibrator.percentile\" does not apply to calibrator kind \"kl\"");
  expect_error(R"({"calibrator": {"kind": "max", "bins": 2048}})", "key \"calibrator.bins\"");
  expect_error(R"({"calibrator": {"kind": "kl", "bins": 100}})", "key \"calibrator.bins\"");
  expect_error(R"({"calibrator": {"kind": "kl", "bins": 2048.5}})", "key \"calibrator.bins\"");
  expect_error(R"({"calibrator": {"kind": "kl", "kl_form": "magnitude"}})",
               "key \"calibrator.kl_form\"");
  expect_error(R"({"calibrator": {"kind": "kl", "levels": 128}})", "key \"calibrator.levels\"");
  expect_error(R"({"quantize": []})", "key \"quantize\"");
  expect_error(R"({"quantize": {"softmax": true}})", "key \"quantize.softmax\" is unknown");
  expect_error(R"({"quantize": {"query": "yes"}})", "key \"quantize.query\"");
  expect_error(R"({"keep_fp32": "classifier"})", "key \"keep_fp32\"");
  expect_error(R"({"keep_fp32": ["ok", 3]})", "key \"keep_fp32[1]\"");
  expect_error(R"({"keep_fp32": [""]})", "key \"keep_fp32[0]\"");
  expect_error(R"([1, 2])", "expected a JSON object");
}

TEST(QuantizationConfig, ModelFilesReportModelFormatError) {
  EXPECT_THROW(parse_quantization_config(json::parse(R"({"scheme": 5})"),
                                         "model/config.json: quantization_config", true),
               ModelFormatError);
}

TEST(QuantizationConfig, ValidateRejectsIndependentSymmetric) {
  QuantizationConfig c;
  c.threshold_mode = ThresholdMode::independent;
  EXPECT_THROW(validate(c), InvalidArgument);
  c.scheme = Scheme::asymmetric;
  EXPECT_NO_THROW(validate(c));
}

}  // namespace
}  // namespace octet::quant
