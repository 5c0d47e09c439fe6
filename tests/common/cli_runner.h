// Running the real `octet` program from a test, as users run it: arguments through /bin/sh (so a
// test writes them as a user would type them, quoting paths with quote()), standard input from a
// string or /dev/null, standard output and error captured in full, and the exit code (128 + N when
// the program was killed by signal N).
//
//   test::CliResult r = test::run_octet("predict --model " + test::quote(dir) + " --input -",
//                                       "a great movie\n");
//   ASSERT_EQ(r.code, 0) << r.err;
//
// The binary is the octet_cli target of the build the tests belong to; a test build without it
// (OCTET_BUILD_CLI=OFF) fails such tests with a message, never passes them unseen.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>

#include "common/test_support.h"

namespace octet::test {

struct CliResult {
  int code = -1;  // exit code; 128 + N after signal N
  std::string out, err;
};

// `octet` of this build (tests fail with a message when it was not built).
std::filesystem::path octet_binary();
// Whether `octet-train` (the trainer program `octet pretrain|finetune` exec) was built beside it.
bool trainer_binary_built();

// `p` as one /bin/sh word, whatever characters it holds.
std::string quote(const std::filesystem::path& p);

// Runs `<binary> <args>` through /bin/sh; `args` is shell text (quote paths). Standard input is
// `stdin_text`, or /dev/null when absent.
CliResult run_program(const std::filesystem::path& binary, const std::string& args,
                      const std::optional<std::string>& stdin_text = std::nullopt);
// run_program(octet_binary(), ...).
CliResult run_octet(const std::string& args,
                    const std::optional<std::string>& stdin_text = std::nullopt);

// Success when `r` exited with `code` and its standard error holds every one of `messages`;
// otherwise a failure showing the exit code, what is missing and the whole standard error:
//   EXPECT_TRUE(test::exits_with(run("predict --threads -1 ..."), 2, "--threads"));
::testing::AssertionResult exits_with(const CliResult& r, int code, std::string_view message);
::testing::AssertionResult exits_with(const CliResult& r, int code,
                                      std::initializer_list<std::string_view> messages);

// Fixture of the tests that run `octet`: a temporary directory, run() and q().
class CliTest : public ::testing::Test {
 protected:
  CliResult run(const std::string& args,
                const std::optional<std::string>& stdin_text = std::nullopt) const {
    return run_octet(args, stdin_text);
  }
  static std::string q(const std::filesystem::path& p) { return quote(p); }

  TempDir tmp_;
};

}  // namespace octet::test
