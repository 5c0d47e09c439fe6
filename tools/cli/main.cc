// The `octet` command: predict, eval, inspect, calibrate, quantize, compare, bench. See README.md
// for the contract. `octet pretrain|finetune` run the separate `octet-train` program
// (tools/cli/train/), which links libtorch: this program never does, so that inference starts
// fast and its peak memory is the model's, not libtorch's.
#include <fmt/format.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <string_view>
#include <system_error>

#include "cli.h"

namespace octet::cli {
namespace {

constexpr const char* kTrainerName = "octet-train";

bool is_trainer_command(std::string_view name) { return name == "pretrain" || name == "finetune"; }

// octet-train beside this executable (/proc/self/exe: symbolic links resolved), or empty when this
// executable cannot be located.
std::filesystem::path trainer_path(std::error_code& ec) {
  const std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) return {};
  return self.parent_path() / kTrainerName;
}

// Replaces this process with `octet-train <argv[1..]>` (argv[0] kept, so usage lines read
// "octet finetune"): its exit code, output and signals are the command's. Returns only on failure.
int exec_trainer(char** argv) {
  const std::string command = argv[1];
  std::error_code ec;
  const std::filesystem::path trainer = trainer_path(ec);
  if (ec) {
    std::fprintf(stderr,
                 "octet: error: `octet %s` runs %s from the directory of the octet executable, "
                 "but /proc/self/exe cannot be read: %s\n",
                 command.c_str(), kTrainerName, ec.message().c_str());
    return kExitInternal;
  }
  if (!std::filesystem::exists(trainer, ec)) {
    std::fprintf(stderr,
                 "octet: error: `octet %s` needs the trainer program %s, which was not found: this "
                 "build of Octet lacks the trainer (libtorch). Install libtorch-dev "
                 "(scripts/install_deps.sh), re-run cmake and build the octet_train_cli target\n",
                 command.c_str(), trainer.c_str());
    return kExitUsage;
  }
  execv(trainer.c_str(), argv);
  const int err = errno;
  std::fprintf(stderr, "octet: error: `octet %s`: cannot run %s: %s\n", command.c_str(),
               trainer.c_str(), std::strerror(err));
  return kExitInternal;
}

}  // namespace
}  // namespace octet::cli

int main(int argc, char** argv) {
  using namespace octet::cli;
  // Handed over before any parsing, so that every argument (--help included) reaches octet-train
  // untouched. octet has no global options, so the subcommand is always argv[1].
  if (argc >= 2 && is_trainer_command(argv[1])) return exec_trainer(argv);

  CLI::App app{"octet: 8-bit Transformer inference on CPUs"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("octet 0.1.0"));
  const std::map<std::string, Runner> runners = {
      {"predict", register_predict(app)},   {"eval", register_eval(app)},
      {"inspect", register_inspect(app)},   {"calibrate", register_calibrate(app)},
      {"quantize", register_quantize(app)}, {"compare", register_compare(app)},
      {"bench", register_bench(app)},
  };
  // Listed in --help only: the commands themselves never reach the parser (above).
  std::error_code ec;
  const std::filesystem::path trainer = trainer_path(ec);
  const std::string where = !ec && std::filesystem::exists(trainer, ec)
                                ? fmt::format("runs {}", kTrainerName)
                                : fmt::format("needs {}: not in this build", kTrainerName);
  app.add_subcommand("pretrain",
                     fmt::format("Masked-language-model pretraining of a BERT on a text "
                                 "corpus ({}; libtorch)",
                                 where));
  app.add_subcommand("finetune",
                     fmt::format("Fine-tune a BERT on a GLUE task ({}; libtorch)", where));
  return run_app(app, argc, argv, runners);
}
