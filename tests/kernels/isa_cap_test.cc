// The kernel suite runs once per OCTET_MAX_ISA cap (tests/CMakeLists.txt), including caps this
// CPU cannot run (amx on a CPU without AMX, or with the Linux tile permission refused). For
// programs such a cap is an error; here it would make every test that touches the kernel table
// throw. Before any test, this environment checks the cap with the same function the library uses
// and, when it cannot run, says so and lifts it, so the suite runs up to the CPU's best ISA and
// every ISA-specific test above it is reported as skipped (Int8IsaTest, AmxKernel).
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "cpu/cpu_detect.h"
#include "octet/error.h"

namespace octet {
namespace {

std::string g_lifted_cap;  // the cap that could not run here, with the reason ("" if none)

class IsaCapEnvironment : public ::testing::Environment {
 public:
  void SetUp() override {
    const char* cap = std::getenv("OCTET_MAX_ISA");
    if (cap == nullptr || *cap == '\0') return;
    try {
      cpu_detail::resolve_isa_cap(cap, cpu_isa(), built_isa(), "");
    } catch (const Unsupported& e) {
      g_lifted_cap = e.what();
      std::printf(
          "NOTE: OCTET_MAX_ISA=%s cannot run here (%s); this run tests up to %s and reports the "
          "ISAs above as skipped.\n%s\n",
          cap, e.what(), isa_name(cpu_isa() < built_isa() ? cpu_isa() : built_isa()),
          cpu_description().c_str());
      unsetenv("OCTET_MAX_ISA");
    }
    // An unknown name (InvalidArgument) is left in place: the tests then fail, as they should.
  }
};

const auto* const g_env = ::testing::AddGlobalTestEnvironment(new IsaCapEnvironment);

TEST(IsaCap, CapThatCannotRunIsReportedAndLifted) {
  if (g_lifted_cap.empty()) {
    GTEST_SKIP() << "OCTET_MAX_ISA is unset or runnable here (active ISA " << isa_name(active_isa())
                 << ")";
  }
  EXPECT_NE(g_lifted_cap.find("cannot run here"), std::string::npos) << g_lifted_cap;
  EXPECT_EQ(active_isa(), cpu_isa() < built_isa() ? cpu_isa() : built_isa());
}

}  // namespace
}  // namespace octet
