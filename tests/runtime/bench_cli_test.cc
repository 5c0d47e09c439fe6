// `octet bench` run as a process on a tiny model: the JSON report (fields, consistency with the
// flags), the dump of inputs and logits, real-data mode on a small GLUE file, and the usage and
// input errors with their exit codes.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

#include "common/cli_runner.h"
#include "common/test_support.h"
#include "common/tiny_bert.h"

namespace octet {
namespace {

using test::CliResult;

class BenchCli : public test::CliTest {
 protected:
  void SetUp() override { test::write_tiny_bert(model_); }
  // `octet bench <args>`.
  CliResult bench(const std::string& args) const { return run("bench " + args); }
  std::string model() const { return q(model_); }
  std::filesystem::path model_ = tmp_ / "m";
};

TEST_F(BenchCli, ReportsLatencyThroughputAndMemoryAsJson) {
  const auto dump = tmp_ / "dump.json";
  const CliResult r = bench(std::string("--model ") + model() +
                            " --precision int8 --batch 3 --seq-len 10 --threads 2 --repeat 4 "
                            "--json - --dump " +
                            q(dump));
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
    const CliResult r = bench(std::string("--model ") + model() + " --task sst2 --data " + q(data) +
                              " --repeat 1 --warmup 0 --json -" + order);
    ASSERT_EQ(r.code, 0) << r.err;
    const nlohmann::json j = nlohmann::json::parse(r.out);
    EXPECT_EQ(j["sequences"], 3);
    EXPECT_EQ(j["sorted"], std::string(order).empty());
    EXPECT_TRUE(j["metrics"].contains("accuracy")) << j.dump();
    EXPECT_GE(j["padded_tokens"].get<int64_t>(), j["tokens"].get<int64_t>());
  }
}

TEST_F(BenchCli, RejectsBadUsageWithExitCode2AndBadModelsWith3) {
  CliResult r = bench(std::string("--model ") + model() + " --precision integer-only");
  EXPECT_TRUE(test::exits_with(r, 2, "octet quantize --mode integer-only"));
  r = bench(std::string("--model ") + model() + " --shape bert-mini");
  EXPECT_TRUE(test::exits_with(r, 2, "exactly one of --model"));
  r = bench("--shape bert-large");
  EXPECT_EQ(r.code, 2);
  r = bench(std::string("--model ") + model() + " --precision int4");
  EXPECT_TRUE(test::exits_with(r, 2, "found 'int4'"));
  r = bench(std::string("--model ") + model() + " --seq-len 1000");
  EXPECT_TRUE(test::exits_with(r, 2, "max_position_embeddings"));
  r = bench(std::string("--model ") + q(tmp_ / "missing"));
  EXPECT_TRUE(test::exits_with(r, 3, "missing"));
}

}  // namespace
}  // namespace octet
