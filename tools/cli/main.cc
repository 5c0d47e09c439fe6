// Placeholder until the CLI lands: prints the version and the active ISA.
#include <cstdio>

#include "octet/cpu.h"

int main() {
  std::printf("octet 0.1.0, kernels: %s\n", octet::isa_name(octet::active_isa()));
  return 0;
}
