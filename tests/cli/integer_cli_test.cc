// The integer-only (I-BERT) mode as users run it, on a tiny model and a small SST-2-layout file:
// `octet calibrate --calibrator ema-minmax` -> `octet quantize --mode integer-only` -> `octet eval`
// / `predict` / `inspect`, and the usage errors (exit 2) and bad-file errors (exit 3).
#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>

#include "common/test_support.h"
#include "common/tiny_bert.h"

#ifndef OCTET_CLI_PATH
#error "tests/cli needs the octet_cli target (OCTET_BUILD_CLI=ON)"
#endif

namespace octet {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;

struct CliRun {
  int code = -1;
  std::string out, err;
};

class IntegerCli : public ::testing::Test {
 protected:
  void SetUp() override {
    model_ = tmp_ / "model";
    test::write_tiny_bert(model_, {.hidden = 32, .intermediate = 64, .heads = 2});
    std::string tsv = "sentence\tlabel\n";
    const char* words[] = {
        "a great movie", "the acting was terrible .", "fun story", "a film", "great fun",
        "terrible",      "the story was great ."};
    for (int i = 0; i < 40; ++i)
      tsv += std::string(words[i % 7]) + "\t" + (i % 3 ? "1" : "0") + "\n";
    test::write_file(tmp_ / "train.tsv", tsv);
    test::write_file(tmp_ / "dev.tsv", tsv);
  }

  CliRun run(const std::string& args) {
    auto out = tmp_ / "stdout.txt", err = tmp_ / "stderr.txt";
    std::string cmd = std::string("'") + OCTET_CLI_PATH + "' " + args + " </dev/null >'" +
                      out.string() + "' 2>'" + err.string() + "'";
    int status = std::system(cmd.c_str());
    CliRun r;
    r.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    r.out = test::read_file(out);
    r.err = test::read_file(err);
    return r;
  }

  // fmt, not "'" + s + "'": GCC 12 gives a -Wrestrict false positive on the latter.
  std::string q(const std::filesystem::path& p) const { return fmt::format("'{}'", p.string()); }

  test::TempDir tmp_;
  std::filesystem::path model_;
};

TEST_F(IntegerCli, CalibrateQuantizeEvalPredict) {
  CliRun r = run("calibrate --model " + q(model_) + " --task sst2 --data " + q(tmp_ / "train.tsv") +
                 " --out " + q(tmp_ / "calib.json") +
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
  const CliRun r3 = run("predict --model " + q(tmp_ / "ibert") + " --input " + q(tmp_ / "in.txt") +
                        " --threads 3 --batch-size 3");
  ASSERT_EQ(r3.code, 0) << r3.err;
  EXPECT_EQ(r.out, r3.out);  // bit-identical whatever the batching and threads

  r = run("inspect --model " + q(tmp_ / "ibert"));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("integer-only"));

  // Usage errors: a flag of the INT8 schemes, no calibration, a bad mode.
  r = run(quantize + " --scheme asymmetric");
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, HasSubstr("--mode integer-only takes only --model, --out and --calibration"));
  r = run("quantize --mode integer-only --model " + q(model_) + " --out " + q(tmp_ / "x"));
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, HasSubstr("needs --calibration FILE"));
  r = run("quantize --mode int4 --model " + q(model_) + " --out " + q(tmp_ / "z"));
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, HasSubstr("--mode must be int8 or integer-only, found 'int4'"));

  // A static calibration lacks the outputs and embedding sums: named, with the fix.
  r = run("calibrate --model " + q(model_) + " --task sst2 --data " + q(tmp_ / "train.tsv") +
          " --out " + q(tmp_ / "static.json") + " --samples 30 --bins 512 --threads 1");
  ASSERT_EQ(r.code, 0) << r.err;
  r = run("quantize --mode integer-only --model " + q(model_) + " --out " + q(tmp_ / "y") +
          " --calibration " + q(tmp_ / "static.json"));
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, HasSubstr("--calibrator ema-minmax"));

  // A damaged integer-only directory: exit 3 naming config.json and the key.
  json bad = cfg;
  bad["quantization_config"]["bits"]["embedding_sum"] = 8;
  test::write_file(tmp_ / "ibert" / "config.json", bad.dump());
  r = run("eval --model " + q(tmp_ / "ibert") + " --task sst2 --data " + q(tmp_ / "dev.tsv"));
  EXPECT_EQ(r.code, 3);
  EXPECT_THAT(r.err, HasSubstr("config.json: quantization_config: key \"bits\""));
}

}  // namespace
}  // namespace octet
