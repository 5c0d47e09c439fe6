// Shared pieces of the `octet` command-line tool: subcommand registration, exit codes, progress.
//
// Exit codes (a stable contract): 0 success, 1 internal error, 2 usage error (bad flags or flag
// values), 3 bad model or input file (missing, malformed, non-UTF-8, wrong shapes).
#pragma once

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstddef>
#include <functional>
#include <map>
#include <string>

namespace octet::cli {

inline constexpr int kExitOk = 0;
inline constexpr int kExitInternal = 1;
inline constexpr int kExitUsage = 2;
inline constexpr int kExitBadInput = 3;

// Each subcommand registers its options on `app` and returns the function that runs it.
using Runner = std::function<int()>;
Runner register_predict(CLI::App& app);
Runner register_eval(CLI::App& app);
Runner register_inspect(CLI::App& app);
// Static quantization (tools/cli/{calibrate,quantize,compare}.cc).
Runner register_calibrate(CLI::App& app);
Runner register_quantize(CLI::App& app);
Runner register_compare(CLI::App& app);
// Runtime speed and memory (tools/cli/bench.cc).
Runner register_bench(CLI::App& app);
#ifdef OCTET_HAVE_TRAIN
// tools/cli/train/: the separate `octet-train` program, built only with the libtorch trainer
// (`octet pretrain|finetune` exec it, so that `octet` never loads libtorch).
Runner register_pretrain(CLI::App& app);
Runner register_finetune(CLI::App& app);
#endif

// Parses argv into `app` and runs the Runner of the subcommand chosen (keyed by its name), mapping
// exceptions to the exit codes above with an "octet: error: " message (tools/cli/app.cc).
int run_app(CLI::App& app, int argc, char** argv, const std::map<std::string, Runner>& runners);

// A progress bar on stderr, drawn only when stderr is a terminal; at most ~10 redraws a second.
class Progress {
 public:
  Progress(std::string label, std::size_t total);
  ~Progress();
  void advance(std::size_t n);
  void finish();

 private:
  void draw(bool final);
  std::string label_;
  std::size_t total_, done_ = 0;
  bool enabled_, finished_ = false;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

// Applies --threads: 0 means all cores. Throws InvalidArgument on a negative value.
void set_threads(int threads);

}  // namespace octet::cli
