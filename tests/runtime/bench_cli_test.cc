// `octet bench` run as a process on a tiny model: the JSON report (fields, consistency with the
// flags), the dump of inputs and logits, real-data mode on a small GLUE file, and the usage and
// input errors with their exit codes.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>

#include "common/test_support.h"
#include "common/tiny_bert.h"

#ifndef OCTET_CLI_PATH
#error "tests/runtime/bench_cli_test.cc needs the octet_cli target (OCTET_BUILD_CLI=ON)"
#endif

namespace octet {
namespace {

struct BenchRun {
  int code = -1;
  std::string out, err;
};

class BenchCli : public ::testing::Test {
 protected:
  void SetUp() override { test::write_tiny_bert(model_); }
  BenchRun run(const std::string& args) {
    const auto out = tmp_ / "stdout.txt", err = tmp_ / "stderr.txt";
    const std::string cmd = std::string("'") + OCTET_CLI_PATH + "' bench " + args + " >'" +
                            out.string() + "' 2>'" + err.string() + "'";
    const int status = std::system(cmd.c_str());
    BenchRun r;
    r.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    r.out = test::read_file(out);
    r.err = test::read_file(err);
    return r;
  }
  // Appends rather than prepends: GCC 12 at -O3 warns (-Wrestrict) on "literal" + std::string.
  static std::string quote(const std::filesystem::path& p) {
    std::string q = "'";
    q += p.string();
    q += '\'';
    return q;
  }
  std::string model() const { return quote(model_); }
  test::TempDir tmp_;
  std::filesystem::path model_ = tmp_ / "m";
};

TEST_F(BenchCli, ReportsLatencyThroughputAndMemoryAsJson) {
  const std::string dump = (tmp_ / "dump.json").string();
  const BenchRun r = run(std::string("--model ") + model() +
                         " --precision int8 --batch 3 --seq-len 10 --threads 2 --repeat 4 --json - "
                         "--dump '" +
                         dump + "'");
  ASSERT_EQ(r.code, 0) << r.err;
  const nlohmann::json j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["precision"], "int8_dynamic");
  EXPECT_EQ(j["batch"], 3);
  EXPECT_EQ(j["seq_len"], 10);
  EXPECT_EQ(j["sequences"], 3);
  EXPECT_EQ(j["tokens"], 30);
  EXPECT_EQ(j["threads"], 2);
  EXPECT_EQ(j["times_ms"].size(), 4u);
  const double median = j["latency_ms"]["median"], p90 = j["latency_ms"]["p90"];
  EXPECT_GT(median, 0);
  EXPECT_GE(p90, median);
  EXPECT_NEAR(j["sequences_per_second"].get<double>(), 3 / (median / 1e3), 1e-6);
  EXPECT_GT(j["peak_rss_bytes"].get<int64_t>(), 0);
  EXPECT_GE(j["peak_rss_bytes"].get<int64_t>(), j["rss_after_load_bytes"].get<int64_t>());
  EXPECT_GT(j["model_file_bytes"].get<int64_t>(), 0);

  const nlohmann::json d = nlohmann::json::parse(test::read_file(dump));
  ASSERT_EQ(d["input_ids"].size(), 3u);
  EXPECT_EQ(d["input_ids"][0].size(), 10u);
  EXPECT_EQ(d["input_ids"][0][0], 2);  // [CLS]
  EXPECT_EQ(d["input_ids"][0][9], 3);  // [SEP]
  EXPECT_EQ(d["logits"].size(), 6u);
}

TEST_F(BenchCli, RunsAGlueFileFromRawText) {
  const auto data = tmp_ / "dev.tsv";
  test::write_file(data,
                   "sentence\tlabel\na good movie\t1\nboring and bad\t0\n"
                   "i love this film , the story is great and the acting is good\t1\n");
  for (const char* order : {"", " --unsorted"}) {
    const BenchRun r = run(std::string("--model ") + model() + " --task sst2 --data '" +
                           data.string() + "' --repeat 1 --warmup 0 --json -" + order);
    ASSERT_EQ(r.code, 0) << r.err;
    const nlohmann::json j = nlohmann::json::parse(r.out);
    EXPECT_EQ(j["sequences"], 3);
    EXPECT_EQ(j["sorted"], std::string(order).empty());
    EXPECT_TRUE(j["metrics"].contains("accuracy")) << j.dump();
    EXPECT_GE(j["padded_tokens"].get<int64_t>(), j["tokens"].get<int64_t>());
  }
}

TEST_F(BenchCli, RejectsBadUsageWithExitCode2AndBadModelsWith3) {
  BenchRun r = run(std::string("--model ") + model() + " --precision integer-only");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("octet quantize --mode integer-only"), std::string::npos) << r.err;
  r = run(std::string("--model ") + model() + " --shape bert-mini");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("exactly one of --model"), std::string::npos) << r.err;
  r = run("--shape bert-large");
  EXPECT_EQ(r.code, 2);
  r = run(std::string("--model ") + model() + " --precision int4");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("found 'int4'"), std::string::npos) << r.err;
  r = run(std::string("--model ") + model() + " --seq-len 1000");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("max_position_embeddings"), std::string::npos) << r.err;
  r = run(std::string("--model ") + quote(tmp_ / "missing"));
  EXPECT_EQ(r.code, 3);
  EXPECT_NE(r.err.find("missing"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace octet
