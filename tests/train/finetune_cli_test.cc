// `octet finetune` as users run it: the dev metric it reports for the best checkpoint is exactly
// what `octet eval` computes on the saved model, and bad input gives the documented exit codes.
// It runs through `octet`, which execs `octet-train`: the exit codes and both output streams seen
// here are the trainer's, handed over.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "common/cli_runner.h"
#include "common/test_support.h"

namespace octet {
namespace {

namespace fs = std::filesystem;
using test::CliResult;

class FinetuneCli : public test::CliTest {
 protected:
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

  fs::path dev_ = test::require_data("glue/RTE/dev.tsv");
};

TEST_F(FinetuneCli, EvalOfTheSavedModelReproducesTheReportedDevMetric) {
  CliResult ft = run(tiny_args(tmp_ / "out"));
  ASSERT_EQ(ft.code, 0) << ft.err;
  EXPECT_NE(ft.err.find("finetune: epoch 1/1 done"), std::string::npos) << ft.err;
  EXPECT_NE(ft.out.find("best        epoch 1: accuracy"), std::string::npos) << ft.out;

  CliResult ev = run("eval --model " + q(tmp_ / "out") + " --task rte --data " + q(dev_) +
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
  CliResult r = run(tiny_args(out, "nosuchtask"));
  EXPECT_TRUE(test::exits_with(r, 2, "nosuchtask"));

  r = run(args + " --dtype f8");
  EXPECT_TRUE(test::exits_with(r, 2, "--dtype must be f32 or f16"));

  r = run(tiny_args(out, "rte", tmp_ / "absent.tsv"));
  EXPECT_TRUE(test::exits_with(r, 3, "absent.tsv"));

  r = run(tiny_args(out, "mrpc", test::require_data("glue/MRPC/train.tsv"),
                    test::require_data("glue/MRPC/test.tsv")));
  EXPECT_TRUE(test::exits_with(r, 3, "no labels"));

  test::write_file(tmp_ / "out" / "train_log.json", "{}");
  r = run(args);
  EXPECT_TRUE(test::exits_with(r, 2, "--overwrite"));
}

}  // namespace
}  // namespace octet
