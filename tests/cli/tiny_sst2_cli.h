// Fixture of the CLI tests of the quantization commands (quant_cli_test.cc, integer_cli_test.cc):
// a tiny random BERT (hidden 32, 2 layers, 2 heads) in tmp_/model and a 40-example SST-2-layout
// file written twice, as tmp_/train.tsv and tmp_/dev.tsv.
#pragma once

#include <filesystem>
#include <string>

#include "common/cli_runner.h"
#include "common/test_support.h"
#include "common/tiny_bert.h"

namespace octet::test {

class TinySst2Cli : public CliTest {
 protected:
  void SetUp() override {
    model_ = tmp_ / "model";
    write_tiny_bert(model_, {.hidden = 32, .intermediate = 64, .heads = 2});
    std::string tsv = "sentence\tlabel\n";
    const char* words[] = {
        "a great movie", "the acting was terrible .", "fun story", "a film", "great fun",
        "terrible",      "the story was great ."};
    for (int i = 0; i < 40; ++i)
      tsv += std::string(words[i % 7]) + "\t" + (i % 3 ? "1" : "0") + "\n";
    write_file(tmp_ / "train.tsv", tsv);
    write_file(tmp_ / "dev.tsv", tsv);
  }

  std::filesystem::path model_;
};

}  // namespace octet::test
