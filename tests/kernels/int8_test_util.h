// Shared pieces of the INT8 kernel tests: the per-ISA parameterisation (visible skips for ISAs the
// CPU, the build or the OCTET_MAX_ISA cap exclude), the record of which ISAs really ran, and
// random data with printed seeds.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "kernels/kernels.h"
#include "octet/cpu.h"

namespace octet::test {

// ISAs whose INT8 tests ran at least once in this process (checked by the guard in
// int8_gemm_test.cc).
inline std::set<Isa>& exercised_int8_isas() {
  static std::set<Isa> isas;
  return isas;
}

inline const std::vector<Isa>& all_isas() {
  static const std::vector<Isa> isas{Isa::ref, Isa::avx2, Isa::avx512, Isa::avx512_vnni, Isa::amx};
  return isas;
}

inline bool isa_runnable(Isa isa) {
  for (Isa r : runnable_isas()) {
    if (r == isa) return true;
  }
  return false;
}

// Base fixture: GetParam() is the ISA under test. SetUp skips, with the reason, when the ISA
// cannot run here or is above the OCTET_MAX_ISA cap of this run.
class Int8IsaTest : public ::testing::TestWithParam<Isa> {
 protected:
  void SetUp() override {
    const Isa isa = GetParam();
    if (!isa_runnable(isa)) {
      GTEST_SKIP() << "ISA " << isa_name(isa) << " not runnable here (CPU supports up to "
                   << isa_name(cpu_isa()) << ", build has up to " << isa_name(built_isa()) << ")";
    }
    if (static_cast<int>(isa) > static_cast<int>(active_isa())) {
      GTEST_SKIP() << "ISA " << isa_name(isa)
                   << " excluded by the cap OCTET_MAX_ISA=" << isa_name(active_isa());
    }
    exercised_int8_isas().insert(isa);
  }
  Isa isa() const { return GetParam(); }
  const kernels::Int8Kernels& kernels() const { return kernels::table_for(GetParam()).int8; }
  const kernels::Int8Kernels& reference() const { return kernels::table_for(Isa::ref).int8; }
};

inline std::string isa_param_name(const ::testing::TestParamInfo<Isa>& info) {
  return isa_name(info.param);
}

#define OCTET_INSTANTIATE_ISA_TESTS(fixture)                                             \
  INSTANTIATE_TEST_SUITE_P(Isa, fixture, ::testing::ValuesIn(::octet::test::all_isas()), \
                           ::octet::test::isa_param_name)

template <typename T>
std::vector<T> random_ints(std::mt19937& rng, std::size_t n, int lo, int hi) {
  std::uniform_int_distribution<int> d(lo, hi);
  std::vector<T> v(n);
  for (auto& x : v) x = static_cast<T>(d(rng));
  return v;
}

inline std::vector<float> random_floats(std::mt19937& rng, std::size_t n, float lo, float hi) {
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

// One attention head's operands as a slice of a fused QKV matrix: t rows of [Q | K | V | 5 floats
// of padding] (row stride ld), uniform in [-range, range]; ld_out = d + 3 for outputs whose 3
// padding floats must stay untouched. Shared by the FP32 and INT8 attention tests.
struct AttentionHead {
  std::size_t t, d, ld, ld_out;
  std::vector<float> qkv;
};

inline AttentionHead make_attention_head(std::size_t t, std::size_t d, float range, uint32_t seed) {
  std::mt19937 rng(seed);
  AttentionHead h{t, d, 3 * d + 5, d + 3, {}};
  h.qkv = random_floats(rng, t * h.ld, -range, range);
  return h;
}

}  // namespace octet::test
