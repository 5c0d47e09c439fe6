#include "common/cli_runner.h"

#include <sys/wait.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <stdexcept>

namespace octet::test {
namespace {

[[noreturn]] void fail(const std::string& msg) {
  ADD_FAILURE() << msg;
  throw std::runtime_error(msg);
}

}  // namespace

std::filesystem::path octet_binary() {
#ifdef OCTET_CLI_PATH
  const std::filesystem::path p = OCTET_CLI_PATH;
  if (!std::filesystem::exists(p)) fail("the octet binary " + p.string() + " is missing: build it");
  return p;
#else
  fail("the octet binary is not built (OCTET_BUILD_CLI=OFF): this test runs it");
#endif
}

bool trainer_binary_built() {
#ifdef OCTET_TRAIN_CLI_PATH
  return true;
#else
  return false;
#endif
}

std::string quote(const std::filesystem::path& p) {
  // Appended piecewise: "'" + s + "'" trips GCC 12's -Wrestrict false positive at -O3.
  std::string q = "'";
  for (char c : p.string()) {
    if (c == '\'') {
      q += "'\\''";
    } else {
      q += c;
    }
  }
  q += '\'';
  return q;
}

CliResult run_program(const std::filesystem::path& binary, const std::string& args,
                      const std::optional<std::string>& stdin_text) {
  const TempDir io;
  const auto in = io / "stdin", out = io / "stdout", err = io / "stderr";
  if (stdin_text) write_file(in, *stdin_text);
  std::string cmd = quote(binary);
  cmd += ' ';
  cmd += args;
  cmd += " <";
  cmd += stdin_text ? quote(in) : std::string("/dev/null");
  cmd += " >";
  cmd += quote(out);
  cmd += " 2>";
  cmd += quote(err);
  const int status = std::system(cmd.c_str());
  if (status == -1) fail("could not start /bin/sh for: " + cmd + ": " + std::strerror(errno));
  CliResult r;
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.out = read_file(out);
  r.err = read_file(err);
  return r;
}

::testing::AssertionResult exits_with(const CliResult& r, int code, std::string_view message) {
  return exits_with(r, code, {message});
}

::testing::AssertionResult exits_with(const CliResult& r, int code,
                                      std::initializer_list<std::string_view> messages) {
  std::string missing;
  for (std::string_view m : messages) {
    if (r.err.find(m) == std::string::npos) {
      missing += missing.empty() ? "" : ", ";
      missing += '"';
      missing += m;
      missing += '"';
    }
  }
  if (r.code == code && missing.empty()) return ::testing::AssertionSuccess();
  auto failure = ::testing::AssertionFailure();
  failure << "exit code " << r.code << " (expected " << code << ")";
  if (!missing.empty()) failure << "; standard error lacks " << missing;
  return failure << "\n--- standard error:\n" << r.err << "--- standard output:\n" << r.out;
}

CliResult run_octet(const std::string& args, const std::optional<std::string>& stdin_text) {
  return run_program(octet_binary(), args, stdin_text);
}

}  // namespace octet::test
