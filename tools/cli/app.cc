// Parsing and error handling shared by the `octet` and `octet-train` programs: one place maps
// exceptions to the exit codes of cli.h, so both programs keep the same contract (and the same
// "octet: error: " prefix: octet-train is what `octet pretrain|finetune` runs).
#include <cstdio>
#include <exception>
#include <new>

#include "cli.h"
#include "octet/error.h"

namespace octet::cli {

int run_app(CLI::App& app, int argc, char** argv, const std::map<std::string, Runner>& runners) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e);
    return code == 0 ? kExitOk : kExitUsage;
  }
  try {
    for (CLI::App* sub : app.get_subcommands()) {
      auto it = runners.find(sub->get_name());
      if (it != runners.end()) return it->second();
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

}  // namespace octet::cli
