#include "octet/cpu.h"

#include <gtest/gtest.h>

#include "octet/error.h"

namespace octet {
namespace {

TEST(Cpu, ParsesEveryIsaName) {
  EXPECT_EQ(parse_isa("ref"), Isa::ref);
  EXPECT_EQ(parse_isa("avx2"), Isa::avx2);
  EXPECT_EQ(parse_isa("avx512"), Isa::avx512);
  EXPECT_EQ(parse_isa("avx512_vnni"), Isa::avx512_vnni);
  EXPECT_EQ(parse_isa("avx512vnni"), Isa::avx512_vnni);
  EXPECT_EQ(parse_isa("amx"), Isa::amx);
}

TEST(Cpu, RejectsUnknownIsaNameWithTheChoices) {
  try {
    parse_isa("sse9");
    FAIL() << "expected InvalidArgument";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("sse9"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("avx512_vnni"), std::string::npos);
  }
}

TEST(Cpu, RunnableIsasStartWithRefAndAreOrdered) {
  auto isas = runnable_isas();
  ASSERT_FALSE(isas.empty());
  EXPECT_EQ(isas.front(), Isa::ref);
  for (size_t i = 1; i < isas.size(); ++i)
    EXPECT_LT(static_cast<int>(isas[i - 1]), static_cast<int>(isas[i]));
}

TEST(Cpu, SetMaxIsaCapsAndRejectsWhatCannotRun) {
  Isa top = runnable_isas().back();
  set_max_isa(Isa::ref);
  EXPECT_EQ(active_isa(), Isa::ref);
  set_max_isa(top);
  if (top != Isa::amx) {
    EXPECT_THROW(set_max_isa(Isa::amx), Unsupported);
  }
}

}  // namespace
}  // namespace octet
