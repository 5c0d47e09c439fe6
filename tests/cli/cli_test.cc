// The `octet` command as users run it: exit codes (0 ok, 2 usage, 3 bad model or input), error
// messages that say what and where, outputs that are complete or absent, never half-written.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "common/cli_runner.h"
#include "common/test_support.h"
#include "common/tiny_bert.h"

namespace octet {
namespace {

using test::CliResult;
using ::testing::HasSubstr;

class Cli : public test::CliTest {
 protected:
  void SetUp() override {
    model_ = tmp_ / "model";
    test::write_tiny_bert(model_);
  }

  // `octet predict --model <model_> --input - <flags>` reading `input`.
  CliResult predict(const std::string& flags, const std::string& input = "") const {
    return run("predict --model " + q(model_) + " --input - " + flags, input);
  }

  std::filesystem::path model_;
};

TEST_F(Cli, WithoutSubcommandIsAUsageError) {
  CliResult r = run("");
  EXPECT_TRUE(test::exits_with(r, 2, "subcommand"));
}

TEST_F(Cli, UnknownFlagIsAUsageError) {
  CliResult r = predict("--frobnicate 3");
  EXPECT_TRUE(test::exits_with(r, 2, "frobnicate"));
}

TEST_F(Cli, PredictWritesOneJsonObjectPerLineInInputOrder) {
  CliResult r = predict("--threads 1", "a great movie\nthe acting was terrible .\nfun\tstory\n");
  ASSERT_EQ(r.code, 0) << r.err;
  std::istringstream lines(r.out);
  std::string line;
  int n = 0;
  while (std::getline(lines, line)) {
    auto j = nlohmann::json::parse(line);
    ASSERT_TRUE(j.contains("label")) << line;
    ASSERT_EQ(j["logits"].size(), 2u) << line;
    int label = j["label"];
    EXPECT_GE(label, 0);
    EXPECT_LT(label, 2);
    float l0 = j["logits"][0], l1 = j["logits"][1];
    EXPECT_EQ(label, l1 > l0 ? 1 : 0);
    ++n;
  }
  EXPECT_EQ(n, 3);
}

TEST_F(Cli, PredictIsIndependentOfBatchSize) {
  const std::string input = "a great movie\nthe acting was terrible .\nfun\tstory\nbad\n";
  CliResult a = predict("--batch-size 1", input);
  CliResult b = predict("--batch-size 3", input);
  ASSERT_EQ(a.code, 0) << a.err;
  ASSERT_EQ(b.code, 0) << b.err;
  auto la = std::count(a.out.begin(), a.out.end(), '\n');
  EXPECT_EQ(la, 4);
  // Labels must agree; logits may differ in the last bits between batch shapes.
  std::istringstream sa(a.out), sb(b.out);
  std::string x, y;
  while (std::getline(sa, x) && std::getline(sb, y)) {
    EXPECT_EQ(nlohmann::json::parse(x)["label"], nlohmann::json::parse(y)["label"]);
  }
}

TEST_F(Cli, RegressionModelPrintsScores) {
  auto reg = tmp_ / "reg";
  test::write_tiny_bert(reg, {.num_labels = 1});
  CliResult r = run("predict --model " + q(reg) + " --input -", "good\tgreat\n");
  ASSERT_EQ(r.code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_TRUE(j.contains("score"));
  EXPECT_FALSE(j.contains("label"));
}

TEST_F(Cli, PredictWritesOutputFileAtomically) {
  auto out = tmp_ / "pred.jsonl";
  CliResult r = predict("--output " + q(out), "good\nbad\n");
  ASSERT_EQ(r.code, 0) << r.err;
  const std::string before = test::read_file(out);
  EXPECT_EQ(std::count(before.begin(), before.end(), '\n'), 2);
  // A failing run (bad input) leaves the earlier output untouched and no temporary file behind.
  CliResult bad = predict("--output " + q(out), "good\n\xff\xfe bad\n");
  EXPECT_EQ(bad.code, 3);
  EXPECT_EQ(test::read_file(out), before);
  for (const auto& e : std::filesystem::directory_iterator(tmp_.path())) {
    EXPECT_THAT(e.path().filename().string(), ::testing::Not(HasSubstr(".tmp")));
  }
}

TEST_F(Cli, NonUtf8InputNamesLineAndByte) {
  CliResult r = predict("", "good\nbad \xc3\x28 text\n");
  EXPECT_TRUE(test::exits_with(r, 3, {"UTF-8", "2"}));
}

TEST_F(Cli, EmptyInputIsAnError) {
  CliResult r = predict("", "");
  EXPECT_TRUE(test::exits_with(r, 3, "no input"));
}

TEST_F(Cli, OverLongInputIsTruncatedToMaxSeqLen) {
  std::string text;
  for (int i = 0; i < 5000; ++i) text += "great movie ";
  CliResult r = predict("--max-seq-len 32", text + "\n");
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("\"label\""));
}

TEST_F(Cli, MaxSeqLenBeyondThePositionTableIsAUsageError) {
  CliResult r = predict("--max-seq-len 4096", "good\n");
  EXPECT_TRUE(test::exits_with(r, 2, {"--max-seq-len", "4096"}));
}

TEST_F(Cli, NegativeThreadsIsAUsageError) {
  CliResult r = predict("--threads -1", "good\n");
  EXPECT_TRUE(test::exits_with(r, 2, "--threads"));
}

TEST_F(Cli, Int8DynamicPrecisionPredictsLikeFp32OnClearCases) {
  const std::string input = "a great movie\nthe acting was terrible .\nfun\tstory\n";
  CliResult fp32 = predict("", input);
  CliResult int8 = predict("--precision int8-dynamic", input);
  ASSERT_EQ(fp32.code, 0) << fp32.err;
  ASSERT_EQ(int8.code, 0) << int8.err;
  EXPECT_EQ(std::count(int8.out.begin(), int8.out.end(), '\n'), 3);
  CliResult per_tensor = predict("--precision int8-dynamic --per-tensor", input);
  EXPECT_EQ(per_tensor.code, 0) << per_tensor.err;
  CliResult int8_attention = predict("--precision int8-dynamic --attention int8", input);
  EXPECT_EQ(int8_attention.code, 0) << int8_attention.err;
  EXPECT_EQ(std::count(int8_attention.out.begin(), int8_attention.out.end(), '\n'), 3);
}

TEST_F(Cli, AttentionFlagIsCheckedBeforeUse) {
  CliResult bad = predict("--precision int8-dynamic --attention int4", "good\n");
  EXPECT_TRUE(test::exits_with(bad, 2, {"--attention", "int4"}));
  // An FP32 model has no INT8 attention: a clear error, not a silent FP32 run.
  CliResult fp32 = predict("--attention int8", "good\n");
  EXPECT_NE(fp32.code, 0);
  EXPECT_THAT(fp32.err, HasSubstr("int8_attention applies to INT8 models"));
}

TEST_F(Cli, UnknownPrecisionIsAUsageErrorBeforeAnyFileIsRead) {
  CliResult r =
      run("eval --model " + q(model_) + " --task sst2 --data missing.tsv --precision int4");
  EXPECT_TRUE(test::exits_with(r, 2, {"--precision", "int4"}));
  CliResult pt = predict("--per-tensor", "good\n");
  EXPECT_TRUE(test::exits_with(pt, 2, "--per-tensor"));
}

TEST_F(Cli, MissingModelDirectoryIsABadModel) {
  CliResult r = run("predict --model " + q(tmp_ / "nope") + " --input -", "good\n");
  EXPECT_TRUE(test::exits_with(r, 3, "nope"));
}

TEST_F(Cli, TruncatedWeightsAreABadModel) {
  auto weights = model_ / "model.safetensors";
  std::string bytes = test::read_file(weights);
  test::write_file(weights, bytes.substr(0, bytes.size() / 2));
  CliResult r = predict("", "good\n");
  EXPECT_TRUE(test::exits_with(r, 3, "model.safetensors"));
}

TEST_F(Cli, MissingVocabularyIsABadModel) {
  std::filesystem::remove(model_ / "vocab.txt");
  CliResult r = predict("", "good\n");
  EXPECT_TRUE(test::exits_with(r, 3, "vocab.txt"));
}

TEST_F(Cli, EvalPrintsTableAndWritesJson) {
  auto data = tmp_ / "dev.tsv";
  test::write_file(data, "sentence\tlabel\na great movie\t1\nterrible acting\t0\nfun story\t1\n");
  auto json = tmp_ / "out" / "result.json";
  std::filesystem::create_directories(json.parent_path());
  CliResult r =
      run("eval --model " + q(model_) + " --task sst2 --data " + q(data) + " --json " + q(json));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("accuracy"));
  auto j = nlohmann::json::parse(test::read_file(json));
  EXPECT_EQ(j["task"], "sst2");
  EXPECT_EQ(j["examples"], 3);
  double acc = j["metrics"]["accuracy"];
  EXPECT_GE(acc, 0.0);
  EXPECT_LE(acc, 1.0);
  EXPECT_TRUE(j.contains("seconds"));
}

TEST_F(Cli, EvalAgainstABaselineComparesExampleByExample) {
  auto data = tmp_ / "dev.tsv";
  test::write_file(data,
                   "sentence\tlabel\na great movie\t1\nterrible acting\t0\nfun story\t1\n"
                   "boring\t0\nwonderful cast\t1\n");
  auto json = tmp_ / "cmp.json";
  // The model against itself: no difference, no example predicted differently.
  CliResult r = run("eval --model " + q(model_) + " --task sst2 --data " + q(data) +
                    " --baseline " + q(model_) + " --resamples 100 --threads 1 --json " + q(json));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("difference +0.0000"));
  EXPECT_THAT(r.out, HasSubstr("0 of 5 examples predicted differently"));
  auto j = nlohmann::json::parse(test::read_file(json));
  EXPECT_EQ(j["baseline"]["metrics"]["accuracy"], j["metrics"]["accuracy"]);
  const auto& c = j["comparison"];
  EXPECT_EQ(c["metric"], "accuracy");
  EXPECT_EQ(c["difference"], 0.0);
  EXPECT_EQ(c["interval"][0], 0.0);
  EXPECT_EQ(c["interval"][1], 0.0);
  EXPECT_EQ(c["resamples"], 100);
  EXPECT_EQ(c["replicates"].size(), 100u);
  EXPECT_EQ(c["examples_predicted_differently"], 0);
  // --precision applies to --model only: the baseline runs in FP32, so the whole-set figures
  // are those of two plain evaluations.
  auto int8_json = tmp_ / "int8.json";
  r = run("eval --model " + q(model_) + " --task sst2 --data " + q(data) + " --precision " +
          "int8-dynamic --baseline " + q(model_) + " --resamples 100 --threads 1 --json " +
          q(int8_json));
  ASSERT_EQ(r.code, 0) << r.err;
  auto k = nlohmann::json::parse(test::read_file(int8_json));
  EXPECT_EQ(k["baseline"]["metrics"]["accuracy"], j["metrics"]["accuracy"]);
  EXPECT_EQ(k["comparison"]["model"], k["metrics"]["accuracy"]);
  // Usage and model errors.
  r = run("eval --model " + q(model_) + " --task sst2 --data " + q(data) + " --baseline " +
          q(model_) + " --resamples 10");
  EXPECT_TRUE(test::exits_with(r, 2, "--resamples must be at least 100, found 10"));
  r = run("eval --model " + q(model_) + " --task sst2 --data " + q(data) + " --baseline " +
          q(tmp_ / "no-such-model"));
  EXPECT_TRUE(test::exits_with(r, 3, "no-such-model"));
}

TEST_F(Cli, EvalMalformedRowNamesFileAndLine) {
  auto data = tmp_ / "dev.tsv";
  test::write_file(data, "sentence\tlabel\ngood\t1\nno label column here\n");
  CliResult r = run("eval --model " + q(model_) + " --task sst2 --data " + q(data));
  EXPECT_TRUE(test::exits_with(r, 3, {"dev.tsv", "3"}));
}

TEST_F(Cli, EvalUnknownTaskListsTheChoices) {
  CliResult r = run("eval --model " + q(model_) + " --task squad3 --data x.tsv");
  EXPECT_TRUE(test::exits_with(r, 2, "sst2"));
}

TEST_F(Cli, EvalRegressionTaskOnAClassifierIsRefused) {
  auto data = tmp_ / "stsb.tsv";
  test::write_file(
      data,
      "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore\n"
      "0\tmain-captions\tMSRvid\t2012test\t0000\tnone\tnone\ta movie\ta film\t5.000\n");
  CliResult r = run("eval --model " + q(model_) + " --task stsb --data " + q(data));
  EXPECT_TRUE(test::exits_with(r, 2, "regression"));
}

TEST_F(Cli, InspectDescribesTheModel) {
  CliResult r = run("inspect --model " + q(model_));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("parameters"));
  EXPECT_THAT(r.out, HasSubstr("2 layers"));
  CliResult j = run("inspect --json --model " + q(model_));
  ASSERT_EQ(j.code, 0) << j.err;
  auto parsed = nlohmann::json::parse(j.out);
  EXPECT_GT(parsed["parameters"].get<int64_t>(), 0);
}

}  // namespace
}  // namespace octet
