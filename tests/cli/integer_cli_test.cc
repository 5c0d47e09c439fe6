// The integer-only (I-BERT) mode as users run it, on a tiny model and a small SST-2-layout file:
// `octet calibrate --calibrator ema-minmax` -> `octet quantize --mode integer-only` -> `octet eval`
// / `predict` / `inspect`, and the usage errors (exit 2) and bad-file errors (exit 3).
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

class IntegerCli : public test::TinySst2Cli {};

TEST_F(IntegerCli, CalibrateQuantizeEvalPredict) {
  CliResult r = run("calibrate --model " + q(model_) + " --task sst2 --data " +
                    q(tmp_ / "train.tsv") + " --out " + q(tmp_ / "calib.json") +
                    " --samples 30 --batch-size 8 --threads 1 --calibrator ema-minmax");
  ASSERT_EQ(r.code, 0) << r.err;
  const json calib = json::parse(test::read_file(tmp_ / "calib.json"));
  EXPECT_EQ(calib["calibrator"], "ema-minmax");
  EXPECT_EQ(calib["statistics"]["ema_decay"], 0.95);
  EXPECT_TRUE(calib["tensors"].contains("bert.embeddings.sum"));
  EXPECT_TRUE(calib["tensors"].contains("bert.encoder.layer.1.output.dense:output"));

  const std::string quantize = "quantize --mode integer-only --model " + q(model_) + " --out " +
                               q(tmp_ / "ibert") + " --calibration " + q(tmp_ / "calib.json");
  r = run(quantize);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("(integer-only)"));
  const json cfg = json::parse(test::read_file(tmp_ / "ibert" / "config.json"));
  EXPECT_EQ(cfg["quantization_config"]["mode"], "integer-only");

  r = run("eval --model " + q(tmp_ / "ibert") + " --task sst2 --data " + q(tmp_ / "dev.tsv") +
          " --threads 2 --json " + q(tmp_ / "eval.json"));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(json::parse(test::read_file(tmp_ / "eval.json"))["examples"], 40);

  test::write_file(tmp_ / "in.txt", "a great movie\nthe story was terrible .\nfun\n");
  r = run("predict --model " + q(tmp_ / "ibert") + " --input " + q(tmp_ / "in.txt") +
          " --threads 1 --batch-size 1");
  ASSERT_EQ(r.code, 0) << r.err;
  const CliResult r3 = run("predict --model " + q(tmp_ / "ibert") + " --input " +
                           q(tmp_ / "in.txt") + " --threads 3 --batch-size 3");
  ASSERT_EQ(r3.code, 0) << r3.err;
  EXPECT_EQ(r.out, r3.out);  // bit-identical whatever the batching and threads

  r = run("inspect --model " + q(tmp_ / "ibert"));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("integer-only"));

  // Usage errors: a flag of the INT8 schemes, no calibration, a bad mode.
  r = run(quantize + " --scheme asymmetric");
  EXPECT_TRUE(
      test::exits_with(r, 2, "--mode integer-only takes only --model, --out and --calibration"));
  r = run("quantize --mode integer-only --model " + q(model_) + " --out " + q(tmp_ / "x"));
  EXPECT_TRUE(test::exits_with(r, 2, "needs --calibration FILE"));
  r = run("quantize --mode int4 --model " + q(model_) + " --out " + q(tmp_ / "z"));
  EXPECT_TRUE(test::exits_with(r, 2, "--mode must be int8 or integer-only, found 'int4'"));

  // A static calibration lacks the outputs and embedding sums: named, with the fix.
  r = run("calibrate --model " + q(model_) + " --task sst2 --data " + q(tmp_ / "train.tsv") +
          " --out " + q(tmp_ / "static.json") + " --samples 30 --bins 512 --threads 1");
  ASSERT_EQ(r.code, 0) << r.err;
  r = run("quantize --mode integer-only --model " + q(model_) + " --out " + q(tmp_ / "y") +
          " --calibration " + q(tmp_ / "static.json"));
  EXPECT_TRUE(test::exits_with(r, 2, "--calibrator ema-minmax"));

  // A damaged integer-only directory: exit 3 naming config.json and the key.
  json bad = cfg;
  bad["quantization_config"]["bits"]["embedding_sum"] = 8;
  test::write_file(tmp_ / "ibert" / "config.json", bad.dump());
  r = run("eval --model " + q(tmp_ / "ibert") + " --task sst2 --data " + q(tmp_ / "dev.tsv"));
  EXPECT_TRUE(test::exits_with(r, 3, "config.json: quantization_config: key \"bits\""));
}

}  // namespace
}  // namespace octet
