// `octet-train`: the training subcommands (pretrain, finetune), in a program of their own because
// they link libtorch, which the inference program `octet` must not load. Users run them as
// `octet pretrain|finetune ...`: octet execs this program, from its own directory, with the same
// arguments. Same exit codes and error format as `octet` (cli.h). See docs/training.md.
#include <string>

#include "cli.h"

int main(int argc, char** argv) {
  using namespace octet::cli;
  CLI::App app{"octet-train: the Octet trainer (libtorch); `octet pretrain|finetune` run it"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("octet-train 0.1.0"));
  const std::map<std::string, Runner> runners = {{"pretrain", register_pretrain(app)},
                                                 {"finetune", register_finetune(app)}};
  return run_app(app, argc, argv, runners);
}
