// The `octet` command: predict, eval, inspect (and pretrain, finetune with the trainer). See
// README.md for the contract.
#include <fmt/format.h>

#include <cstdio>
#include <exception>
#include <new>

#include "cli.h"
#include "octet/cpu.h"
#include "octet/error.h"

int main(int argc, char** argv) {
  using namespace octet::cli;
  CLI::App app{"octet: 8-bit Transformer inference on CPUs"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("octet 0.1.0"));
  Runner predict = register_predict(app);
  Runner eval = register_eval(app);
  Runner inspect = register_inspect(app);
  Runner calibrate = register_calibrate(app);
  Runner quantize = register_quantize(app);
  Runner compare = register_compare(app);
  Runner bench = register_bench(app);
#ifdef OCTET_HAVE_TRAIN
  Runner pretrain = register_pretrain(app);
  Runner finetune = register_finetune(app);
#endif
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e);
    return code == 0 ? kExitOk : kExitUsage;
  }
  try {
    for (CLI::App* sub : app.get_subcommands()) {
      const std::string& name = sub->get_name();
      if (name == "predict") return predict();
      if (name == "eval") return eval();
      if (name == "inspect") return inspect();
      if (name == "calibrate") return calibrate();
      if (name == "quantize") return quantize();
      if (name == "compare") return compare();
      if (name == "bench") return bench();
#ifdef OCTET_HAVE_TRAIN
      if (name == "pretrain") return pretrain();
      if (name == "finetune") return finetune();
#endif
    }
    return kExitUsage;
  } catch (const octet::InvalidArgument& e) {
    std::fprintf(stderr, "octet: error: %s\n", e.what());
    return kExitUsage;
  } catch (const octet::Error& e) {
    std::fprintf(stderr, "octet: error: %s\n", e.what());
    return kExitBadInput;
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "octet: error: out of memory\n");
    return kExitInternal;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "octet: internal error: %s\n", e.what());
    return kExitInternal;
  }
}
