// `octet calibrate`, `octet quantize` and `octet compare` as users run them, on a tiny model and a
// small SST-2-layout file: the calibrate -> quantize -> eval / predict pipeline, the compare table
// and its JSON, and the usage errors (exit 2) and bad-input errors (exit 3) with their messages.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

#include "cli/tiny_sst2_cli.h"
#include "common/test_support.h"

namespace octet {
namespace {

using nlohmann::json;
using test::CliResult;
using ::testing::HasSubstr;

class QuantCli : public test::TinySst2Cli {
 protected:
  std::string calibrate(const std::string& extra = "") {
    return "calibrate --model " + q(model_) + " --task sst2 --data " + q(tmp_ / "train.tsv") +
           " --out " + q(tmp_ / "calib.json") + " --samples 30 --bins 512 --threads 1 " + extra;
  }
};

TEST_F(QuantCli, CalibrateQuantizeEvalPredict) {
  CliResult r = run(calibrate());
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("calibrated 30 examples"));
  const json calib = json::parse(test::read_file(tmp_ / "calib.json"));
  EXPECT_EQ(calib["format"], "octet-calibration");
  EXPECT_EQ(calib["samples"], 30);
  EXPECT_TRUE(calib["tensors"].contains("bert.encoder.layer.1.intermediate.dense"));

  r = run("quantize --model " + q(model_) + " --out " + q(tmp_ / "int8") + " --calibration " +
          q(tmp_ / "calib.json") +
          " --calibrator kl --scheme asymmetric --threshold-mode "
          "independent --weights per-tensor --keep-fp32 'bert.encoder.layer.0.output.dense'");
  ASSERT_EQ(r.code, 0) << r.err;
  const json cfg = json::parse(test::read_file(tmp_ / "int8" / "config.json"));
  const json& qc = cfg["quantization_config"];
  EXPECT_EQ(qc["scheme"], "asymmetric");
  EXPECT_EQ(qc["weights"], "per_tensor");
  EXPECT_EQ(qc["calibrator"]["kind"], "kl");
  EXPECT_EQ(qc["keep_fp32"][0], "bert.encoder.layer.0.output.dense");
  EXPECT_TRUE(std::filesystem::exists(tmp_ / "int8" / "vocab.txt"));

  r = run("eval --model " + q(tmp_ / "int8") + " --task sst2 --data " + q(tmp_ / "dev.tsv") +
          " --threads 1");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("accuracy"));
  test::write_file(tmp_ / "in.txt", "a great movie\nterrible\n");
  r = run("predict --model " + q(tmp_ / "int8") + " --input " + q(tmp_ / "in.txt") +
          " --threads 1");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("\"logits\""));
  r = run("inspect --model " + q(tmp_ / "int8"));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("I8"));
  // --precision applies to FP32 directories only.
  r = run("eval --model " + q(tmp_ / "int8") + " --task sst2 --data " + q(tmp_ / "dev.tsv") +
          " --precision int8-dynamic");
  EXPECT_TRUE(test::exits_with(r, 2, "quantized model directory"));
}

TEST_F(QuantCli, CompareTableAndJson) {
  ASSERT_EQ(run(calibrate()).code, 0);
  CliResult r = run("compare --model " + q(model_) + " --task sst2 --data " + q(tmp_ / "dev.tsv") +
                    " --calibration " + q(tmp_ / "calib.json") +
                    " --modes dynamic,static-max,asym-kl --per-layer --per-layer-samples 8 "
                    "--threads 1 --json " +
                    q(tmp_ / "cmp.json"));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("static-max"));
  EXPECT_THAT(r.out, HasSubstr("SQNR dB"));
  const json j = json::parse(test::read_file(tmp_ / "cmp.json"));
  ASSERT_EQ(j["modes"].size(), 3u);
  EXPECT_EQ(j["modes"][2]["quantization_config"]["scheme"], "asymmetric");
  EXPECT_GT(j["modes"][1]["logits_cosine"].get<double>(), 0.9);
  EXPECT_LT(j["modes"][1]["encoder_bytes"].get<double>(), j["fp32"]["encoder_bytes"].get<double>());
  // Each mode against FP32 example by example: the relative error lies in its bootstrap interval,
  // and the count of changed predictions is at most the number of examples.
  for (const json& m : j["modes"]) {
    const json& iv = m["relative_error_interval_pct"];
    ASSERT_TRUE(iv[0].is_number() && iv[1].is_number()) << m.dump();
    const double e = m["relative_error_pct"].get<double>();
    EXPECT_LE(iv[0].get<double>(), e + 1e-9) << m["mode"];
    EXPECT_GE(iv[1].get<double>(), e - 1e-9) << m["mode"];
    EXPECT_EQ(m["vs_fp32"]["resamples"], 1000);
    EXPECT_EQ(m["vs_fp32"]["examples"], j["examples"]);
    EXPECT_LE(m["vs_fp32"]["examples_predicted_differently"].get<int>(), j["examples"].get<int>());
    EXPECT_FALSE(m["vs_fp32"].contains("replicates"));
  }
  EXPECT_THAT(r.out, HasSubstr("95% interval"));
  // Every quantized layer of the tiny model (2 layers x 6 outputs + pooler + classifier) and the
  // embeddings.
  EXPECT_EQ(j["per_layer"]["layers"].size(), 2u * 6u + 3u);
  for (const json& l : j["per_layer"]["layers"]) {
    EXPECT_TRUE(l["sqnr_db"].is_null() || l["sqnr_db"].get<double>() > 10.0) << l.dump();
  }
}

TEST_F(QuantCli, UsageAndInputErrors) {
  // Calibrating on the dev split.
  CliResult r = run("calibrate --model " + q(model_) + " --task sst2 --data " +
                    q(tmp_ / "dev.tsv") + " --out " + q(tmp_ / "c.json"));
  EXPECT_TRUE(test::exits_with(r, 2, "training split"));
  EXPECT_FALSE(std::filesystem::exists(tmp_ / "c.json"));
  r = run(calibrate("--calibrator entropy"));
  EXPECT_TRUE(test::exits_with(r, 2, "--calibrator"));
  r = run(calibrate("--bins 12"));
  EXPECT_TRUE(test::exits_with(r, 2, "bins"));
  // Static quantization without statistics; a bad scheme; an unknown compare mode.
  r = run("quantize --model " + q(model_) + " --out " + q(tmp_ / "o"));
  EXPECT_TRUE(test::exits_with(r, 2, "--calibration"));
  r = run("quantize --model " + q(model_) + " --out " + q(tmp_ / "o") +
          " --activations dynamic --scheme skewed");
  EXPECT_TRUE(test::exits_with(r, 2, "scheme"));
  r = run("compare --model " + q(model_) + " --task sst2 --data " + q(tmp_ / "dev.tsv") +
          " --modes static-magic");
  EXPECT_TRUE(test::exits_with(r, 2, "static-magic"));
  // A corrupt calibration file is bad input.
  test::write_file(tmp_ / "bad.json", "{\"format\": \"octet-calibration\", \"version\": 1}");
  r = run("quantize --model " + q(model_) + " --out " + q(tmp_ / "o") + " --calibration " +
          q(tmp_ / "bad.json"));
  EXPECT_TRUE(test::exits_with(r, 3, "tensors"));
  EXPECT_FALSE(std::filesystem::exists(tmp_ / "o" / "config.json"));
}

}  // namespace
}  // namespace octet
