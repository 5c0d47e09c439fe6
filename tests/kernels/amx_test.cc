// AMX: detection from feature bits (CPUs without AMX, without the OS tile state, with the Linux
// permission refused) and the OCTET_MAX_ISA check, simulated through the pure detection
// functions; on a CPU with AMX, the kernel against the reference on shapes that exercise every
// tile-block case (2 x 2 blocks, one-tile blocks, the in-place / packed A paths, row tails mixing
// both), and after another user left a different tile configuration on the thread.
#include <gtest/gtest.h>
#include <immintrin.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "cpu/cpu_detect.h"
#include "kernels/int8_test_util.h"
#include "octet/error.h"
#include "ops/gemm_int8.h"

namespace octet {
namespace {

using cpu_detail::CpuFeatures;
using kernels::ActDtype;

CpuFeatures sapphire_rapids() {
  CpuFeatures f;
  f.avx2 = f.fma = f.f16c = true;
  f.avx512f = f.avx512bw = f.avx512vl = f.avx512dq = f.avx512vnni = true;
  f.amx_tile = f.amx_int8 = true;
  f.os_ymm = f.os_zmm = f.os_amx = true;
  f.amx_permission = true;
  return f;
}

TEST(AmxDetection, FullFeatureSetIsAmx) {
  std::string why = "stale";
  EXPECT_EQ(cpu_detail::isa_from_features(sapphire_rapids(), &why), Isa::amx);
  EXPECT_EQ(why, "");
}

TEST(AmxDetection, CpuWithoutAmxIsVnniWithoutAReason) {
  CpuFeatures f = sapphire_rapids();
  f.amx_tile = f.amx_int8 = false;  // Ice Lake / Zen 4
  std::string why;
  EXPECT_EQ(cpu_detail::isa_from_features(f, &why), Isa::avx512_vnni);
  EXPECT_EQ(why, "");
  f = sapphire_rapids();
  f.amx_int8 = false;  // AMX-TILE alone (BF16 only) is not enough for the INT8 kernel
  EXPECT_EQ(cpu_detail::isa_from_features(f, &why), Isa::avx512_vnni);
}

TEST(AmxDetection, MissingOsStateOrPermissionGivesTheReason) {
  CpuFeatures f = sapphire_rapids();
  f.os_amx = false;
  std::string why;
  EXPECT_EQ(cpu_detail::isa_from_features(f, &why), Isa::avx512_vnni);
  EXPECT_NE(why.find("XCR0"), std::string::npos) << why;

  f = sapphire_rapids();
  f.amx_permission = false;
  f.amx_permission_error = "arch_prctl(ARCH_REQ_XCOMP_PERM, XTILEDATA) refused: Invalid argument";
  EXPECT_EQ(cpu_detail::isa_from_features(f, &why), Isa::avx512_vnni);
  EXPECT_NE(why.find("ARCH_REQ_XCOMP_PERM"), std::string::npos) << why;
}

TEST(AmxDetection, AmxWithoutVnniOrAvx512StaysBelow) {
  CpuFeatures f = sapphire_rapids();
  f.avx512vnni = false;
  std::string why;
  EXPECT_EQ(cpu_detail::isa_from_features(f, &why), Isa::avx512);
  f = sapphire_rapids();
  f.os_zmm = false;
  EXPECT_EQ(cpu_detail::isa_from_features(f, &why), Isa::avx2);
}

TEST(AmxDetection, CapAmxIsRefusedClearlyWhereAmxCannotRun) {
  // A VNNI CPU whose OS refused the tile permission, on an AMX build.
  try {
    cpu_detail::resolve_isa_cap("amx", Isa::avx512_vnni, Isa::amx, "permission refused: EPERM");
    FAIL() << "expected Unsupported";
  } catch (const Unsupported& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("amx cannot run here"), std::string::npos) << msg;
    EXPECT_NE(msg.find("supports up to avx512_vnni"), std::string::npos) << msg;
    EXPECT_NE(msg.find("permission refused: EPERM"), std::string::npos) << msg;
    EXPECT_NE(msg.find("build has up to amx"), std::string::npos) << msg;
  }
  // A build without the AMX kernels on an AMX CPU.
  EXPECT_THROW(cpu_detail::resolve_isa_cap("amx", Isa::amx, Isa::avx512_vnni, ""), Unsupported);
  // What can run is accepted; unknown names are usage errors listing amx among the choices.
  EXPECT_EQ(cpu_detail::resolve_isa_cap("avx512_vnni", Isa::avx512_vnni, Isa::amx, ""),
            Isa::avx512_vnni);
  EXPECT_EQ(cpu_detail::resolve_isa_cap("amx", Isa::amx, Isa::amx, ""), Isa::amx);
  try {
    cpu_detail::resolve_isa_cap("amx2", Isa::amx, Isa::amx, "");
    FAIL() << "expected InvalidArgument";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("amx"), std::string::npos) << e.what();
  }
}

TEST(AmxDetection, CpuDescriptionReportsAmxState) {
  const std::string d = cpu_description();
  EXPECT_NE(d.find("amx_tile="), std::string::npos) << d;
  EXPECT_NE(d.find("amx_permission="), std::string::npos) << d;
  if (cpu_isa() == Isa::amx) {
    EXPECT_NE(d.find("amx_permission=true"), std::string::npos) << d;
    EXPECT_EQ(d.find("AMX unavailable"), std::string::npos) << d;
  }
}

// ---- The AMX kernel itself (skipped visibly where AMX cannot run or is capped) ----

class AmxKernel : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!test::isa_runnable(Isa::amx)) {
      GTEST_SKIP() << "AMX not runnable here: " << cpu_description();
    }
    if (active_isa() != Isa::amx) {
      GTEST_SKIP() << "AMX excluded by the cap OCTET_MAX_ISA=" << isa_name(active_isa());
    }
    test::exercised_int8_isas().insert(Isa::amx);
  }

  // s32 and f32+GELU outputs of `isa` for one random case.
  static void run(Isa isa, int m, int n, int k, ActDtype dtype, int32_t za, int lda_pad,
                  uint32_t seed, std::vector<int32_t>* s32, std::vector<float>* f32) {
    std::mt19937 rng(seed);
    const int lda = k + lda_pad;
    auto a = test::random_ints<uint8_t>(rng, size_t(m) * lda, 0, 255);
    auto w = test::random_ints<int8_t>(rng, size_t(n) * k, -128, 127);
    auto scales = test::random_floats(rng, n, 1e-3f, 1e-2f);
    auto bias = test::random_floats(rng, n, -1.0f, 1.0f);
    const auto pw = ops::PackedWeightsInt8::pack(w.data(), n, k, k, scales, isa);
    const ops::ActivationsInt8 act{a.data(), dtype, m, k, lda, za, 0.01f};
    s32->assign(size_t(m) * n, 0);
    ops::gemm_int8_s32(act, pw, nullptr, s32->data(), n, 1);
    f32->assign(size_t(m) * n, 0.0f);
    ops::gemm_int8_f32(act, pw, {bias.data(), kernels::Activation::gelu}, f32->data(), n, 1);
  }

  static void expect_matches_reference(int m, int n, int k, ActDtype dtype, int32_t za, int lda_pad,
                                       uint32_t seed) {
    std::vector<int32_t> got, want;
    std::vector<float> got_f, want_f;
    run(Isa::amx, m, n, k, dtype, za, lda_pad, seed, &got, &got_f);
    run(Isa::ref, m, n, k, dtype, za, lda_pad, seed, &want, &want_f);
    for (size_t i = 0; i < got.size(); ++i) {
      ASSERT_EQ(got[i], want[i]) << "s32 at row " << i / n << " col " << i % n << " (M=" << m
                                 << " N=" << n << " K=" << k << " lda=K+" << lda_pad
                                 << " seed=" << seed << ")";
      ASSERT_NEAR(got_f[i], want_f[i], 2e-6f * (4.0f + std::fabs(want_f[i])))
          << "f32+gelu at row " << i / n << " col " << i % n << " (M=" << m << " N=" << n
          << " K=" << k << " seed=" << seed << ")";
    }
  }
};

TEST_F(AmxKernel, MatchesReferenceOnEveryTileBlockCase) {
  uint32_t seed = 700;
  // M: one-tile blocks, full 2 x 2 blocks, a 16-row tail after whole tiles (in place: the tail
  // tile has the copy's stride), beyond one ops-layer block of 128. K: multiples of 64 (A in
  // place) and not (A packed, zero padded). N: odd panel counts (one-panel blocks) and masks.
  for (int m : {8, 12, 16, 20, 32, 40, 48, 57, 64, 96, 130}) {
    for (int k : {64, 100, 192, 768}) {
      for (int n : {16, 40, 64}) {
        ++seed;
        const bool u8 = seed % 2 == 0;
        expect_matches_reference(m, n, k, u8 ? ActDtype::u8 : ActDtype::s8, u8 ? 131 : 0,
                                 seed % 3 == 0 ? 7 : 0, seed);
        if (HasFatalFailure()) return;
      }
    }
  }
}

// Another library may leave its own tile configuration on the thread (or none): the kernel loads
// its own at every call.
// A static table: GCC 12's _tile_loadconfig tells the compiler it reads 8 bytes only, so stores
// to a stack buffer just before it may be dropped.
struct alignas(64) ForeignTileConfig {
  uint8_t bytes[64];
};
constexpr ForeignTileConfig foreign_config() {
  ForeignTileConfig c{};
  c.bytes[0] = 1;  // palette 1
  for (int t = 0; t < 8; ++t) {
    c.bytes[16 + 2 * t] = 4;  // colsb: 4 bytes
    c.bytes[48 + t] = 2;      // rows: 2
  }
  return c;
}
constexpr ForeignTileConfig kForeignConfig = foreign_config();

__attribute__((target("amx-tile"))) void load_foreign_tile_config() {
  _tile_loadconfig(kForeignConfig.bytes);
}

TEST_F(AmxKernel, ReloadsItsTileConfigurationAfterAnotherUser) {
  load_foreign_tile_config();
  expect_matches_reference(48, 48, 256, ActDtype::s8, 0, 0, 4242);
  load_foreign_tile_config();
  expect_matches_reference(33, 20, 320, ActDtype::u8, 3, 5, 4243);
}

}  // namespace
}  // namespace octet
