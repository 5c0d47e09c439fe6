// Single-core arithmetic peaks of this machine, for the compute floor of bench/compare.sh:
//   vpdpbusd  AVX-512 VNNI u8 x s8 dot products on zmm registers: 64 multiply-adds = 128 int8
//             operations per instruction (what Octet's INT8 GEMM kernels issue);
//   fma_f32   AVX-512F vfmadd231ps on zmm registers: 16 multiply-adds = 32 FP32 operations per
//             instruction (AVX2 ymm, 16 operations, when the CPU has no AVX-512F).
// Each stream runs 24 independent accumulator chains (latency 4-5 cycles, up to 2 per cycle:
// >= 10 chains keep both ports busy) in inline assembly (the compiler would merge identical
// intrinsic chains). Timed by the thread's CPU time, best of `trials` runs of `iterations` loop
// trips: on a shared machine the fastest run is the one other processes left alone.
//
//   c++ -O2 -std=c++17 bench/peers/peak.cc -o peak && ./peak [trials]
//   {"vpdpbusd_ops_per_s": 4.5e11, "fma_f32_flops_per_s": 1.1e11, "fma_isa": "avx512f", ...}
// A stream the CPU cannot run is reported as null. Exit 0; 2 on a bad argument.
#include <time.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace {

constexpr int kChains = 24;
constexpr int64_t kIterations = 1 << 18;

__attribute__((target("avx512f,avx512vnni"))) void vpdpbusd_stream(int64_t iterations) {
#define PEAK_DP(i) "vpdpbusd %%zmm25, %%zmm24, %%zmm" #i "\n\t"
  __asm__ volatile(
      "vpternlogd $0xff, %%zmm24, %%zmm24, %%zmm24\n\t"
      "vpternlogd $0xff, %%zmm25, %%zmm25, %%zmm25\n\t"
      "1:\n\t" PEAK_DP(0) PEAK_DP(1) PEAK_DP(2) PEAK_DP(3) PEAK_DP(4) PEAK_DP(5) PEAK_DP(6)
          PEAK_DP(7) PEAK_DP(8) PEAK_DP(9) PEAK_DP(10) PEAK_DP(11) PEAK_DP(12) PEAK_DP(13)
              PEAK_DP(14) PEAK_DP(15) PEAK_DP(16) PEAK_DP(17) PEAK_DP(18) PEAK_DP(19)
                  PEAK_DP(20) PEAK_DP(21) PEAK_DP(22) PEAK_DP(23)
      "dec %0\n\t"
      "jnz 1b\n\t"
      : "+r"(iterations)
      :
      : "cc", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9",
        "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15", "xmm16", "xmm17", "xmm18", "xmm19",
        "xmm20", "xmm21", "xmm22", "xmm23", "xmm24", "xmm25");
#undef PEAK_DP
}

__attribute__((target("avx512f"))) void fma512_stream(int64_t iterations) {
#define PEAK_FMA(i) "vfmadd231ps %%zmm25, %%zmm24, %%zmm" #i "\n\t"
  __asm__ volatile(
      "vpxord %%zmm24, %%zmm24, %%zmm24\n\t"
      "vpxord %%zmm25, %%zmm25, %%zmm25\n\t"
      "1:\n\t" PEAK_FMA(0) PEAK_FMA(1) PEAK_FMA(2) PEAK_FMA(3) PEAK_FMA(4) PEAK_FMA(5)
          PEAK_FMA(6) PEAK_FMA(7) PEAK_FMA(8) PEAK_FMA(9) PEAK_FMA(10) PEAK_FMA(11) PEAK_FMA(12)
              PEAK_FMA(13) PEAK_FMA(14) PEAK_FMA(15) PEAK_FMA(16) PEAK_FMA(17) PEAK_FMA(18)
                  PEAK_FMA(19) PEAK_FMA(20) PEAK_FMA(21) PEAK_FMA(22) PEAK_FMA(23)
      "dec %0\n\t"
      "jnz 1b\n\t"
      : "+r"(iterations)
      :
      : "cc", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9",
        "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15", "xmm16", "xmm17", "xmm18", "xmm19",
        "xmm20", "xmm21", "xmm22", "xmm23", "xmm24", "xmm25");
#undef PEAK_FMA
}

// AVX2 has 16 ymm registers: 14 chains.
__attribute__((target("avx2,fma"))) void fma256_stream(int64_t iterations) {
#define PEAK_FMA(i) "vfmadd231ps %%ymm15, %%ymm14, %%ymm" #i "\n\t"
  __asm__ volatile(
      "vxorps %%ymm14, %%ymm14, %%ymm14\n\t"
      "vxorps %%ymm15, %%ymm15, %%ymm15\n\t"
      "1:\n\t" PEAK_FMA(0) PEAK_FMA(1) PEAK_FMA(2) PEAK_FMA(3) PEAK_FMA(4) PEAK_FMA(5)
          PEAK_FMA(6) PEAK_FMA(7) PEAK_FMA(8) PEAK_FMA(9) PEAK_FMA(10) PEAK_FMA(11) PEAK_FMA(12)
              PEAK_FMA(13)
      "dec %0\n\t"
      "jnz 1b\n\t"
      : "+r"(iterations)
      :
      : "cc", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9",
        "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15");
#undef PEAK_FMA
}

double thread_cpu_seconds() {
  timespec t;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
}

// Operations per second of the best of `trials` runs.
template <typename F>
double best_rate(F stream, double ops_per_iteration, int trials) {
  stream(kIterations / 16);  // warm up (frequency, page faults)
  double best = 1e30;
  for (int t = 0; t < trials; ++t) {
    const double t0 = thread_cpu_seconds();
    stream(kIterations);
    const double dt = thread_cpu_seconds() - t0;
    if (dt > 0 && dt < best) best = dt;
  }
  return ops_per_iteration * static_cast<double>(kIterations) / best;
}

}  // namespace

int main(int argc, char** argv) {
  int trials = 20;
  if (argc > 2 || (argc == 2 && (trials = std::atoi(argv[1])) < 1)) {
    std::fprintf(stderr, "usage: peak [trials >= 1] (found '%s')\n", argc > 1 ? argv[1] : "");
    return 2;
  }
  __builtin_cpu_init();
  const bool vnni = __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512f");
  const bool avx512 = __builtin_cpu_supports("avx512f");
  const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  std::string dp = "null", fma = "null", fma_isa = "none";
  if (vnni) dp = std::to_string(best_rate(vpdpbusd_stream, kChains * 128.0, trials));
  if (avx512) {
    fma = std::to_string(best_rate(fma512_stream, kChains * 32.0, trials));
    fma_isa = "avx512f";
  } else if (avx2) {
    fma = std::to_string(best_rate(fma256_stream, 14 * 16.0, trials));
    fma_isa = "avx2";
  }
  std::printf(
      "{\"vpdpbusd_ops_per_s\": %s, \"fma_f32_flops_per_s\": %s, \"fma_isa\": \"%s\", "
      "\"trials\": %d, \"chains\": %d}\n",
      dp.c_str(), fma.c_str(), fma_isa.c_str(), trials, kChains);
  return 0;
}
