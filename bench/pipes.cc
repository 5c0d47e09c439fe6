// Which AVX-512 operations cost issue slots beside vpdpbusd on this core: a loop of 12 independent
// vpdpbusd (one per cycle on Zen 4, where a zmm vpdpbusd occupies both multiply pipes for a
// cycle) plus 6 of one other instruction; the extra time over the vpdpbusd-only loop, per added
// instruction, in cycles at the clock that the vpdpbusd-only loop implies (1 vpdpbusd / cycle).
// About 0 = the instruction runs on other pipes, in the shadow of the dot products; about 1 = it
// competes with them. Measured on Zen 4 (2026-11-23): vmulps, vfmadd231ps and vrcp14ps cost ~1.0,
// vpermt2ps ~0.8; vaddps, vmaxps, vpmaxud, vpandd, vpaddd, vcvtdq2ps, vcvtps2dq, vrndscaleps,
// vscalefps, vpermps, vblendmps, vgetexpps, vpmovusdb and register vpbroadcastd cost ~0. So work
// placed beside the dot products is free when it avoids multiplies (docs/kernels.md).
//
//   c++ -O2 -std=c++17 bench/pipes.cc -o pipes && ./pipes
// Exit 0; 2 when the CPU lacks AVX-512 VNNI.
#include <time.h>

#include <cstdint>
#include <cstdio>

namespace {

double thread_seconds() {
  timespec t;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
}

#define DP(i) "vpdpbusd %%zmm25, %%zmm24, %%zmm" #i "\n\t"
#define DP12 DP(0) DP(1) DP(2) DP(3) DP(4) DP(5) DP(6) DP(7) DP(8) DP(9) DP(10) DP(11)
#define CLOBBERS                                                                                \
  "cc", "k1", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9",   \
      "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15", "xmm16", "xmm17", "xmm18", "xmm19", \
      "xmm20", "xmm21", "xmm22", "xmm23", "xmm24", "xmm25", "xmm26", "xmm27"
// A loop of 12 vpdpbusd and 6 instances of OP(12..17), each writing its own register.
#define STREAM(name, OP)                                                                        \
  __attribute__((target("avx512f,avx512vnni,avx512dq,avx512bw"))) void name(int64_t n) {        \
    __asm__ volatile("vpxord %%zmm26, %%zmm26, %%zmm26\n\t"                                   \
                     "vpxord %%zmm27, %%zmm27, %%zmm27\n\t"                                   \
                     "kxnorw %%k1, %%k1, %%k1\n\t"                                            \
                     "1:\n\t" DP12 OP(12) OP(13) OP(14) OP(15) OP(16) OP(17) "dec %0\n\t"     \
                     "jnz 1b\n\t"                                                             \
                     : "+r"(n)                                                                \
                     :                                                                        \
                     : CLOBBERS); \
  }
#define NONE(i)
#define MULPS(i) "vmulps %%zmm27, %%zmm26, %%zmm" #i "\n\t"
#define FMAPS(i) "vfmadd231ps %%zmm27, %%zmm26, %%zmm" #i "\n\t"
#define RCP14(i) "vrcp14ps %%zmm26, %%zmm" #i "\n\t"
#define ADDPS(i) "vaddps %%zmm27, %%zmm26, %%zmm" #i "\n\t"
#define MAXPS(i) "vmaxps %%zmm27, %%zmm26, %%zmm" #i "\n\t"
#define PMAXUD(i) "vpmaxud %%zmm27, %%zmm26, %%zmm" #i "\n\t"
#define PANDD(i) "vpandd %%zmm27, %%zmm26, %%zmm" #i "\n\t"
#define PADDD(i) "vpaddd %%zmm27, %%zmm26, %%zmm" #i "\n\t"
#define CVTDQ2PS(i) "vcvtdq2ps %%zmm26, %%zmm" #i "\n\t"
#define CVTPS2DQ(i) "vcvtps2dq %%zmm26, %%zmm" #i "\n\t"
#define RNDSCALE(i) "vrndscaleps $0, %%zmm26, %%zmm" #i "\n\t"
#define SCALEF(i) "vscalefps %%zmm27, %%zmm26, %%zmm" #i "\n\t"
#define PERMPS(i) "vpermps %%zmm27, %%zmm26, %%zmm" #i "\n\t"
#define PERMT2PS(i) "vpermt2ps %%zmm27, %%zmm26, %%zmm" #i "\n\t"
#define BLENDMPS(i) "vblendmps %%zmm27, %%zmm26, %%zmm" #i "%{%%k1%}\n\t"
#define GETEXP(i) "vgetexpps %%zmm26, %%zmm" #i "\n\t"
#define PMOVUSDB(i) "vpmovusdb %%zmm26, %%xmm" #i "\n\t"
#define BCAST(i) "vpbroadcastd %%xmm26, %%zmm" #i "\n\t"
STREAM(s_none, NONE)
STREAM(s_mulps, MULPS)
STREAM(s_fmaps, FMAPS)
STREAM(s_rcp14, RCP14)
STREAM(s_addps, ADDPS)
STREAM(s_maxps, MAXPS)
STREAM(s_pmaxud, PMAXUD)
STREAM(s_pandd, PANDD)
STREAM(s_paddd, PADDD)
STREAM(s_cvtdq2ps, CVTDQ2PS)
STREAM(s_cvtps2dq, CVTPS2DQ)
STREAM(s_rndscale, RNDSCALE)
STREAM(s_scalef, SCALEF)
STREAM(s_permps, PERMPS)
STREAM(s_permt2ps, PERMT2PS)
STREAM(s_blendmps, BLENDMPS)
STREAM(s_getexp, GETEXP)
STREAM(s_pmovusdb, PMOVUSDB)
STREAM(s_bcast, BCAST)

// Seconds per loop trip, best of 15 runs of 2^20 trips.
double per_trip(void (*f)(int64_t)) {
  constexpr int64_t kTrips = 1 << 20;
  f(kTrips / 16);
  double best = 1e30;
  for (int t = 0; t < 15; ++t) {
    const double t0 = thread_seconds();
    f(kTrips);
    const double dt = thread_seconds() - t0;
    if (dt > 0 && dt < best) best = dt;
  }
  return best / kTrips;
}

}  // namespace

int main() {
  __builtin_cpu_init();
  if (!__builtin_cpu_supports("avx512vnni") || !__builtin_cpu_supports("avx512dq")) {
    std::fprintf(stderr, "pipes: this CPU lacks AVX-512 VNNI / DQ\n");
    return 2;
  }
  const double base = per_trip(s_none);
  const double cycle = base / 12;  // 12 vpdpbusd per trip at one per cycle
  std::printf("12 vpdpbusd per trip: %.3f ns (clock %.2f GHz if one vpdpbusd per cycle)\n",
              base * 1e9, 1e-9 / cycle);
  const struct {
    const char* name;
    void (*f)(int64_t);
  } rows[] = {{"vmulps", s_mulps},       {"vfmadd231ps", s_fmaps},    {"vrcp14ps", s_rcp14},
              {"vaddps", s_addps},       {"vmaxps", s_maxps},         {"vpmaxud", s_pmaxud},
              {"vpandd", s_pandd},       {"vpaddd", s_paddd},         {"vcvtdq2ps", s_cvtdq2ps},
              {"vcvtps2dq", s_cvtps2dq}, {"vrndscaleps", s_rndscale}, {"vscalefps", s_scalef},
              {"vpermps", s_permps},     {"vpermt2ps", s_permt2ps},   {"vblendmps", s_blendmps},
              {"vgetexpps", s_getexp},   {"vpmovusdb", s_pmovusdb},   {"vpbroadcastd", s_bcast}};
  for (const auto& r : rows) {
    std::printf("%-13s %+.2f cycles each beside vpdpbusd\n", r.name,
                (per_trip(r.f) - base) / cycle / 6);
  }
  return 0;
}
