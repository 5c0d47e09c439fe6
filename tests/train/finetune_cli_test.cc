// `octet finetune` as users run it: the dev metric it reports for the best checkpoint is exactly
// what `octet eval` computes on the saved model, and bad input gives the documented exit codes.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "common/test_support.h"

namespace octet {
namespace {

#ifndef OCTET_CLI_PATH
// Configured with OCTET_BUILD_CLI=OFF: say so instead of passing unseen.
TEST(FinetuneCli, NeedsTheOctetBinary) {
  GTEST_SKIP() << "the octet binary is not built (OCTET_BUILD_CLI=OFF): the CLI tests of "
                  "octet finetune did not run";
}
#else

namespace fs = std::filesystem;

struct CliRun {
  int code = -1;
  std::string out, err;
};

class FinetuneCli : public ::testing::Test {
 protected:
  CliRun run(const std::string& args) {
    const fs::path out = tmp_ / "stdout.txt", err = tmp_ / "stderr.txt";
    const std::string cmd = std::string("'") + OCTET_CLI_PATH + "' " + args + " >'" + out.string() +
                            "' 2>'" + err.string() + "'";
    const int status = std::system(cmd.c_str());
    CliRun r;
    r.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    r.out = test::read_file(out);
    r.err = test::read_file(err);
    return r;
  }
  // Built piecewise: "'" + s + "'" trips GCC 12's -Wrestrict false positive.
  static std::string q(const fs::path& p) {
    std::string quoted = "'";
    quoted += p.string();
    quoted += '\'';
    return quoted;
  }

  // A tiny random BERT trained for 2 steps on RTE: enough to check the plumbing.
  std::string tiny_args(const fs::path& out, const std::string& task = "rte", fs::path train = {},
                        fs::path dev = {}) {
    if (train.empty()) train = test::require_data("glue/RTE/train.tsv");
    if (dev.empty()) dev = dev_;
    const nlohmann::json config = {
        {"model_type", "bert"},          {"vocab_size", 30522},      {"hidden_size", 32},
        {"num_hidden_layers", 1},        {"num_attention_heads", 2}, {"intermediate_size", 64},
        {"max_position_embeddings", 128}};
    test::write_file(tmp_ / "config.json", config.dump());
    return "finetune --init random --config " + q(tmp_ / "config.json") + " --vocab " +
           q(test::require_data("vocab/vocab.txt")) + " --task " + task + " --train " + q(train) +
           " --dev " + q(dev) +
           " --max-train-examples 64 --epochs 1 --threads 1 --max-seq-len 128 --out " + q(out);
  }

  test::TempDir tmp_;
  fs::path dev_ = test::require_data("glue/RTE/dev.tsv");
};

TEST_F(FinetuneCli, EvalOfTheSavedModelReproducesTheReportedDevMetric) {
  CliRun ft = run(tiny_args(tmp_ / "out"));
  ASSERT_EQ(ft.code, 0) << ft.err;
  EXPECT_NE(ft.err.find("finetune: epoch 1/1 done"), std::string::npos) << ft.err;
  EXPECT_NE(ft.out.find("best        epoch 1: accuracy"), std::string::npos) << ft.out;

  CliRun ev = run("eval --model " + q(tmp_ / "out") + " --task rte --data " + q(dev_) +
                  " --threads 1 --json " + q(tmp_ / "eval.json"));
  ASSERT_EQ(ev.code, 0) << ev.err;
  const auto log = nlohmann::json::parse(test::read_file(tmp_ / "out" / "train_log.json"));
  const auto eval = nlohmann::json::parse(test::read_file(tmp_ / "eval.json"));
  EXPECT_EQ(eval["metrics"], log["engine_dev"]);
  EXPECT_EQ(eval["examples"], 277);
  EXPECT_EQ(log["options"]["max_train_examples"], 64);
  EXPECT_EQ(log["total_steps"], 2);
}

TEST_F(FinetuneCli, BadInputGivesTheDocumentedExitCodes) {
  const fs::path out = tmp_ / "out";
  const std::string args = tiny_args(out);
  CliRun r = run(tiny_args(out, "nosuchtask"));
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_NE(r.err.find("nosuchtask"), std::string::npos) << r.err;

  r = run(args + " --dtype f8");
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_NE(r.err.find("--dtype must be f32 or f16"), std::string::npos) << r.err;

  r = run(tiny_args(out, "rte", tmp_ / "absent.tsv"));
  EXPECT_EQ(r.code, 3) << r.err;
  EXPECT_NE(r.err.find("absent.tsv"), std::string::npos) << r.err;

  r = run(tiny_args(out, "mrpc", test::require_data("glue/MRPC/train.tsv"),
                    test::require_data("glue/MRPC/test.tsv")));
  EXPECT_EQ(r.code, 3) << r.err;
  EXPECT_NE(r.err.find("no labels"), std::string::npos) << r.err;

  test::write_file(tmp_ / "out" / "train_log.json", "{}");
  r = run(args);
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_NE(r.err.find("--overwrite"), std::string::npos) << r.err;
}

#endif  // OCTET_CLI_PATH

}  // namespace
}  // namespace octet
