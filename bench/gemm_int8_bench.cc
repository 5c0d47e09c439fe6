// INT8 GEMM benchmarks: Octet's kernels next to oneDNN's u8s8s32 matmul, in one binary.
//
//   build-*/gemm_int8_bench --benchmark_filter='M:128/'        # one M
//   OCTET_MAX_ISA=avx2 build-*/gemm_int8_bench                  # another ISA
//
// Entries (Google Benchmark names): Peak/vpdpbusd (a register-only vpdpbusd stream: the
// machine's VNNI peak) and, under amx, PeakAmx/tdpbusd (4 C tiles, operands already in tiles: the
// AMX compute peak), then for every M in {1, 8, 32, 128, 512, 1024}, (K, N) in the BERT shapes
// and 1 and 2 threads: oneDNN/u8s8s32, Octet/<isa>/u8_f32 (dequantize epilogue, u8 activations
// like oneDNN's), Octet/<isa>/s8_f32 (Q8BERT's signed activations) and Octet/<isa>/s8_s32. Under
// the amx ISA both Octet/amx and Octet/avx512_vnni entries run, and oneDNN is not capped (it uses
// its AMX kernel, brg:avx512_core_amx_int8). Counters: ops = 2*M*N*K per second, vs_onednn =
// oneDNN time / Octet time for the same shape and threads, of_peak = fraction of the single-core
// vpdpbusd peak (times the thread count).
//
// Before timing, every entry checks its output: oneDNN's s32 against the reference kernel on the
// first rows (without VNNI oneDNN saturates int16 pair sums: such entries are labelled INEXACT and
// still timed), Octet's s32 bit for bit and its f32 within a relative tolerance against oneDNN
// on every row when oneDNN was exact, else against the reference rows.
#include <benchmark/benchmark.h>
#include <fmt/format.h>
#include <omp.h>
#include <time.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <oneapi/dnnl/dnnl.hpp>
#include <random>
#include <string>
#include <tuple>
#include <vector>

// GCC 12.2 bug 105593: its AVX-512 intrinsics warn about their own undefined operands.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop

#include "kernels/kernels.h"
#include "octet/cpu.h"
#include "ops/gemm_int8.h"

namespace {

using octet::Isa;
using octet::kernels::ActDtype;
using octet::kernels::GemmOutput;

// ---- Peak: 24 independent vpdpbusd chains (latency 5, up to 2 per cycle: >= 10 needed). ----
// Inline assembly, because the compiler merges identical intrinsic chains into one.
constexpr int kPeakChains = 24;

__attribute__((target("avx512f,avx512vnni"))) void vpdpbusd_stream(int64_t iterations) {
#define OCTET_DP(i) "vpdpbusd %%zmm25, %%zmm24, %%zmm" #i "\n\t"
  __asm__ volatile(
      "vpternlogd $0xff, %%zmm24, %%zmm24, %%zmm24\n\t"
      "vpternlogd $0xff, %%zmm25, %%zmm25, %%zmm25\n\t"
      "1:\n\t"
      OCTET_DP(0) OCTET_DP(1) OCTET_DP(2) OCTET_DP(3) OCTET_DP(4) OCTET_DP(5) OCTET_DP(6)
      OCTET_DP(7) OCTET_DP(8) OCTET_DP(9) OCTET_DP(10) OCTET_DP(11) OCTET_DP(12) OCTET_DP(13)
      OCTET_DP(14) OCTET_DP(15) OCTET_DP(16) OCTET_DP(17) OCTET_DP(18) OCTET_DP(19)
      OCTET_DP(20) OCTET_DP(21) OCTET_DP(22) OCTET_DP(23)
      "dec %0\n\t"
      "jnz 1b\n\t"
      : "+r"(iterations)
      :
      : "cc", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9",
        "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15", "xmm16", "xmm17", "xmm18",
        "xmm19", "xmm20", "xmm21", "xmm22", "xmm23", "xmm24", "xmm25");
#undef OCTET_DP
}

double thread_cpu_seconds() {
  timespec t;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
}

double wall_seconds() {
  timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
}

// Runs the timing loop and records the fastest single call as the counter best_us: one thread
// by its CPU time, several by wall time. On a shared machine the fastest call is the one other
// processes left alone, the figure that compares implementations; the mean is reported too.
template <typename F>
void timed_loop(benchmark::State& state, int threads, F&& run) {
  double best = 1e30;
  for (auto _ : state) {
    const double t0 = threads > 1 ? wall_seconds() : thread_cpu_seconds();
    run();
    best = std::min(best, (threads > 1 ? wall_seconds() : thread_cpu_seconds()) - t0);
  }
  state.counters["best_us"] = best * 1e6;
}

double g_peak_ops_per_s = 0.0;  // Peak/vpdpbusd's rate (single core), set by the reporter

// Single-threaded entries are timed by thread CPU time, multi-threaded ones by wall time: on a
// shared machine the CPU time of one thread is the figure that survives other load.
double seconds_per_iteration(const benchmark::BenchmarkReporter::Run& r) {
  const bool wall = r.counters.count("threads") && r.counters.at("threads").value > 1;
  return (wall ? r.real_accumulated_time : r.cpu_accumulated_time) /
         static_cast<double>(r.iterations);
}

void BM_PeakVpdpbusd(benchmark::State& state) {
  if (octet::cpu_isa() < Isa::avx512_vnni) {
    state.SkipWithError("CPU has no AVX-512 VNNI");
    return;
  }
  constexpr int64_t kIterations = 1 << 16;
  timed_loop(state, 1, [] { vpdpbusd_stream(kIterations); });
  const double ops = kPeakChains * 64.0 * 2 * kIterations;
  state.counters["ops_per_call"] = ops;
  state.counters["ops"] = benchmark::Counter(ops, benchmark::Counter::kIsIterationInvariantRate);
}

// ---- AMX peak: 4 independent C tiles, tdpbusd on tiles already loaded (no memory traffic) ----
struct alignas(64) AmxConfig {
  uint8_t bytes[64];
};
constexpr AmxConfig amx_config() {
  AmxConfig c{};
  c.bytes[0] = 1;  // palette 1; every tile 16 rows x 64 bytes
  for (int t = 0; t < 8; ++t) c.bytes[16 + 2 * t] = 64, c.bytes[48 + t] = 16;
  return c;
}
constexpr AmxConfig kAmxConfig = amx_config();

__attribute__((target("amx-tile,amx-int8"))) void tdpbusd_stream(int64_t iterations) {
  _tile_loadconfig(kAmxConfig.bytes);
  // The operand tiles hold zeros (LDTILECFG clears them): their values do not change the speed.
  for (int64_t i = 0; i < iterations; ++i) {
    _tile_dpbusd(0, 4, 6);
    _tile_dpbusd(1, 4, 7);
    _tile_dpbusd(2, 5, 6);
    _tile_dpbusd(3, 5, 7);
  }
  _tile_release();
}

void BM_PeakTdpbusd(benchmark::State& state) {
  constexpr int64_t kIterations = 1 << 14;
  timed_loop(state, 1, [] { tdpbusd_stream(kIterations); });
  const double ops = 4.0 * 16 * 16 * 64 * 2 * kIterations;
  state.counters["ops_per_call"] = ops;
  state.counters["ops"] = benchmark::Counter(ops, benchmark::Counter::kIsIterationInvariantRate);
}

// ---- Problem data shared by the entries of one shape ----
struct Problem {
  int m, n, k;
  std::vector<uint8_t> a_u8;
  std::vector<int8_t> a_s8;
  std::vector<int8_t> w;  // n x k
  std::vector<float> w_scales, bias;
  std::vector<int32_t> onednn_s32;  // oneDNN's result on a_u8, the oracle for Octet's entries
  bool onednn_exact = false;        // oneDNN matched the reference on the sampled rows
  std::vector<int32_t> ref_rows;    // exact sum a_u8 * w of the first min(M, 4) rows
};

Problem& problem(int m, int n, int k) {
  static std::map<std::tuple<int, int, int>, Problem> cache;
  auto [it, fresh] = cache.try_emplace({m, n, k});
  Problem& p = it->second;
  if (fresh) {
    p.m = m, p.n = n, p.k = k;
    std::mt19937 rng(1234 + m + 7 * n + 13 * k);
    std::uniform_int_distribution<int> u8(0, 255), s8(-128, 127);
    p.a_u8.resize(static_cast<size_t>(m) * k);
    p.a_s8.resize(p.a_u8.size());
    for (size_t i = 0; i < p.a_u8.size(); ++i) {
      p.a_u8[i] = static_cast<uint8_t>(u8(rng));
      p.a_s8[i] = static_cast<int8_t>(p.a_u8[i] ^ 0x80);
    }
    p.w.resize(static_cast<size_t>(n) * k);
    for (auto& x : p.w) x = static_cast<int8_t>(s8(rng));
    std::uniform_real_distribution<float> scale(0.5e-3f, 2e-3f), bias(-1.0f, 1.0f);
    p.w_scales.resize(n);
    p.bias.resize(n);
    for (int j = 0; j < n; ++j) p.w_scales[j] = scale(rng), p.bias[j] = bias(rng);
  }
  return p;
}

// Exact int32 reference of rows [0, rows) with the reference kernel.
std::vector<int32_t> reference_rows(const Problem& pr, int rows) {
  auto w = octet::ops::PackedWeightsInt8::pack(pr.w.data(), pr.n, pr.k, pr.k, {}, Isa::ref);
  std::vector<int32_t> c(static_cast<size_t>(rows) * pr.n);
  octet::ops::ActivationsInt8 a{pr.a_u8.data(), ActDtype::u8, rows, pr.k, pr.k, 0, 1.0f};
  octet::ops::gemm_int8_s32(a, w, nullptr, c.data(), pr.n, 1);
  return c;
}

std::map<std::string, double> g_onednn_seconds;  // per shape and thread count

std::string shape_key(int m, int n, int k, int threads) {
  return fmt::format("{}/{}/{}/{}", m, n, k, threads);
}

void set_counters(benchmark::State& state, const Problem& pr, int threads) {
  const double ops = 2.0 * pr.m * pr.n * pr.k;
  state.counters["ops"] = benchmark::Counter(ops, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["M"] = pr.m, state.counters["N"] = pr.n, state.counters["K"] = pr.k;
  state.counters["threads"] = threads;
}

void BM_OneDnn(benchmark::State& state) {
  const int m = state.range(0), k = state.range(1), n = state.range(2), threads = state.range(3);
  Problem& pr = problem(m, n, k);
  using dnnl::memory;
  using dt = memory::data_type;
  using tag = memory::format_tag;
  omp_set_num_threads(threads);
  dnnl::engine eng(dnnl::engine::kind::cpu, 0);
  dnnl::stream stream(eng);
  const memory::dims a_dims{m, k}, b_dims{k, n}, c_dims{m, n};
  memory::desc a_md(a_dims, dt::u8, tag::ab), c_md(c_dims, dt::s32, tag::ab);
  memory::desc b_any(b_dims, dt::s8, tag::any), b_user_md(b_dims, dt::s8, tag::ba);
  dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(a_md, b_any, c_md), eng);
  memory a_mem(a_md, eng, pr.a_u8.data());
  memory b_user(b_user_md, eng, pr.w.data());
  memory b_mem(pd.weights_desc(), eng);
  dnnl::reorder(b_user, b_mem).execute(stream, b_user, b_mem);  // once, like a weight load
  pr.onednn_s32.assign(static_cast<size_t>(m) * n, 0);
  memory c_mem(c_md, eng, pr.onednn_s32.data());
  dnnl::matmul mm(pd);
  auto run = [&] {
    mm.execute(stream, {{DNNL_ARG_SRC, a_mem}, {DNNL_ARG_WEIGHTS, b_mem}, {DNNL_ARG_DST, c_mem}});
    stream.wait();
  };
  run();
  if (pr.ref_rows.empty()) pr.ref_rows = reference_rows(pr, std::min(m, 4));
  pr.onednn_exact = true;
  for (size_t i = 0; i < pr.ref_rows.size(); ++i) {
    if (pr.ref_rows[i] != pr.onednn_s32[i]) {
      // Without VNNI oneDNN uses vpmaddubsw, whose int16 pair sums saturate (QUANT_SPEC D.6):
      // report it and keep timing; Octet's entries then check against the reference rows only.
      pr.onednn_exact = false;
      state.SetLabel(fmt::format("INEXACT (int16 saturation): row {} col {}: {} vs exact {}", i / n,
                                 i % n, pr.onednn_s32[i], pr.ref_rows[i]));
      break;
    }
  }
  timed_loop(state, threads, run);
  set_counters(state, pr, threads);
}

// Records oneDNN's mean time once Google Benchmark has finished the entry (see main()).
class RatioReporter : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    for (const Run& r : runs) {
      const std::string name = r.benchmark_name();
      if (name.rfind("oneDNN/", 0) == 0 && !r.error_occurred) {
        const auto get = [&](const char* c) { return static_cast<int>(r.counters.at(c).value); };
        g_onednn_seconds[shape_key(get("M"), get("N"), get("K"), get("threads"))] =
            seconds_per_iteration(r);
      }
    }
    ConsoleReporter::ReportRuns(runs);
  }
};

enum class Variant { u8_f32, s8_f32, s8_s32 };

// Parallel speed-up that survives a shared machine: single-thread CPU time of the whole call over
// the CPU time of the busiest of `threads` threads, each running its share of the columns (the
// split plan_gemm_int8 makes for M <= 128) concurrently. Wall time on a loaded 2-core machine
// measures the other processes; this measures load balance and shared-cache/memory contention.
double busiest_thread_speedup(const Problem& pr, const octet::ops::ActivationsInt8& a,
                              const octet::ops::PackedWeightsInt8& w,
                              const octet::ops::DequantizeEpilogue& e, int threads) {
  const int n = pr.n, k = pr.k;
  const int per = (n / 16 + threads - 1) / threads * 16;
  std::vector<octet::ops::PackedWeightsInt8> parts;
  std::vector<std::vector<float>> scales;
  for (int t = 0; t < threads; ++t) {
    const int n0 = std::min(n, t * per), n1 = std::min(n, n0 + per);
    scales.emplace_back(pr.w_scales.begin() + n0, pr.w_scales.begin() + n1);
    parts.push_back(octet::ops::PackedWeightsInt8::pack(pr.w.data() + static_cast<size_t>(n0) * k,
                                                        n1 - n0, k, k, scales.back(), w.isa()));
  }
  std::vector<float> c(static_cast<size_t>(pr.m) * n);
  const int reps = std::max(3, static_cast<int>(2e8 / (2.0 * pr.m * n * k)));
  double single = 1e30, busiest = 1e30;
  for (int r = 0; r < reps; ++r) {
    const double t0 = thread_cpu_seconds();
    octet::ops::gemm_int8_f32(a, w, e, c.data(), n, 1);
    single = std::min(single, thread_cpu_seconds() - t0);
    std::vector<double> spent(threads);
#pragma omp parallel num_threads(threads)
    {
      const int t = omp_get_thread_num();
      octet::ops::DequantizeEpilogue et = e;
      et.bias = e.bias + t * per;
      const double t1 = thread_cpu_seconds();
      octet::ops::gemm_int8_f32(a, parts[t], et, c.data() + t * per, n, 1);
      spent[t] = thread_cpu_seconds() - t1;
    }
    busiest = std::min(busiest, *std::max_element(spent.begin(), spent.end()));
  }
  return single / busiest;
}

void BM_Octet(benchmark::State& state, Variant variant, Isa isa) {
  const int m = state.range(0), k = state.range(1), n = state.range(2), threads = state.range(3);
  Problem& pr = problem(m, n, k);
  auto w = octet::ops::PackedWeightsInt8::pack(pr.w.data(), n, k, k, pr.w_scales, isa);
  const bool s8 = variant != Variant::u8_f32;
  // s8 activations are a_u8 - 128, so with zero point 128 on a_u8 both compute the same sums.
  octet::ops::ActivationsInt8 a{s8 ? static_cast<const void*>(pr.a_s8.data()) : pr.a_u8.data(),
                                s8 ? ActDtype::s8 : ActDtype::u8,
                                m,
                                k,
                                k,
                                s8 ? 0 : 128,
                                0.01f};
  std::vector<int32_t> c32(static_cast<size_t>(m) * n);
  std::vector<float> cf(static_cast<size_t>(m) * n);
  octet::ops::DequantizeEpilogue e{pr.bias.data(), octet::kernels::Activation::none};
  auto run = [&] {
    if (variant == Variant::s8_s32) {
      octet::ops::gemm_int8_s32(a, w, nullptr, c32.data(), n, threads);
    } else {
      octet::ops::gemm_int8_f32(a, w, e, cf.data(), n, threads);
    }
  };
  run();
  if (pr.ref_rows.empty()) pr.ref_rows = reference_rows(pr, std::min(m, 4));
  // Every row against oneDNN when oneDNN is exact, else the reference rows.
  const int check_rows = pr.onednn_exact ? m : static_cast<int>(pr.ref_rows.size()) / n;
  const std::vector<int32_t>& oracle = pr.onednn_exact ? pr.onednn_s32 : pr.ref_rows;
  for (int i = 0; i < check_rows; ++i) {
    for (int j = 0; j < n; ++j) {
      // The oracle holds sum a_u8 * w; Octet computes sum (a_u8 - 128) * w = that - 128 colsum.
      const int64_t expect =
          oracle[static_cast<size_t>(i) * n + j] - int64_t{128} * w.col_sums()[j];
      const size_t idx = static_cast<size_t>(i) * n + j;
      bool ok;
      double got;
      if (variant == Variant::s8_s32) {
        got = c32[idx];
        ok = c32[idx] == expect;
      } else {
        const double want = static_cast<double>(expect) * 0.01 * pr.w_scales[j] + pr.bias[j];
        got = cf[idx];
        ok = std::fabs(got - want) <= 1e-5 * (1.0 + std::fabs(want));
      }
      if (!ok) {
        state.SkipWithError(fmt::format("mismatch at row {} col {}: got {}, expected {}", i, j, got,
                                        static_cast<double>(expect))
                                .c_str());
        return;
      }
    }
  }
  timed_loop(state, threads, run);
  set_counters(state, pr, threads);
  if (threads > 1 && variant == Variant::u8_f32) {
    state.counters["busiest_thread_speedup"] = busiest_thread_speedup(pr, a, w, e, threads);
  }
}

// Adds the ratio counters after the fact: they need the oneDNN time of the same shape, which
// the reporter records when that entry finishes (entries run in registration order).
class OctetRatioReporter : public RatioReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    std::vector<Run> copy = runs;
    for (Run& r : copy) {
      const std::string name = r.benchmark_name();
      if (name.rfind("Peak/", 0) == 0 && !r.error_occurred) {
        g_peak_ops_per_s = r.counters.at("ops").value;
      }
      if (name.rfind("Octet/", 0) != 0 || r.error_occurred) continue;
      const auto get = [&](const char* c) { return static_cast<int>(r.counters.at(c).value); };
      const int m = get("M"), n = get("N"), k = get("K"), threads = get("threads");
      const double seconds = seconds_per_iteration(r);
      auto it = g_onednn_seconds.find(shape_key(m, n, k, threads));
      if (it != g_onednn_seconds.end()) r.counters["vs_onednn"] = it->second / seconds;
      if (g_peak_ops_per_s > 0) {
        r.counters["of_peak"] = 2.0 * m * n * k / seconds / (g_peak_ops_per_s * threads);
      }
    }
    RatioReporter::ReportRuns(copy);
  }
};

void register_all() {
  benchmark::RegisterBenchmark("Peak/vpdpbusd", BM_PeakVpdpbusd)->MinTime(0.2);
  if (octet::active_isa() == Isa::amx) {
    benchmark::RegisterBenchmark("PeakAmx/tdpbusd", BM_PeakTdpbusd)->MinTime(0.2);
  }
  // Under amx the VNNI kernel runs in the same binary too, for the ratio of the two in one run.
  std::vector<Isa> isas{octet::active_isa()};
  if (octet::active_isa() == Isa::amx) isas.push_back(Isa::avx512_vnni);
  const int ms[] = {1, 8, 32, 128, 512, 1024};
  const std::pair<int, int> kns[] = {{768, 768}, {768, 3072}, {3072, 768}, {1024, 4096}};
  for (int threads : {1, 2}) {
    for (auto [k, n] : kns) {
      for (int m : ms) {
        auto shape = [&](benchmark::internal::Benchmark* b) {
          b->Args({m, k, n, threads})
              ->ArgNames({"M", "K", "N", "threads"})
              ->MinTime(0.05)
              ->Repetitions(3)
              ->Unit(benchmark::kMicrosecond);
          if (threads > 1) b->UseRealTime();
        };
        shape(benchmark::RegisterBenchmark("oneDNN/u8s8s32", BM_OneDnn));
        for (Isa i : isas) {
          const std::string isa = octet::isa_name(i);
          shape(benchmark::RegisterBenchmark(("Octet/" + isa + "/u8_f32").c_str(), BM_Octet,
                                             Variant::u8_f32, i));
          shape(benchmark::RegisterBenchmark(("Octet/" + isa + "/s8_f32").c_str(), BM_Octet,
                                             Variant::s8_f32, i));
          shape(benchmark::RegisterBenchmark(("Octet/" + isa + "/s8_s32").c_str(), BM_Octet,
                                             Variant::s8_s32, i));
        }
      }
    }
  }
}

// oneDNN picks AMX (brg:avx512_core_amx_int8) where the CPU has it. By default oneDNN is capped
// at the instruction set Octet runs (VNNI for avx512_vnni, nothing for amx), the like-for-like
// comparison; OCTET_BENCH_ONEDNN_ISA=native lets it use everything.
const char* cap_onednn_isa() {
  const char* env = std::getenv("OCTET_BENCH_ONEDNN_ISA");
  if (env != nullptr && std::string(env) == "native") return "native (may use AMX)";
  switch (octet::active_isa()) {
    case Isa::amx:
      return "native (AMX, as Octet)";
    case Isa::avx512_vnni:
      dnnl::set_max_cpu_isa(dnnl::cpu_isa::avx512_core_vnni);
      return "avx512_core_vnni";
    case Isa::avx512:
      dnnl::set_max_cpu_isa(dnnl::cpu_isa::avx512_core);
      return "avx512_core";
    case Isa::avx2:
      dnnl::set_max_cpu_isa(dnnl::cpu_isa::avx2);
      return "avx2";
    case Isa::ref:
      dnnl::set_max_cpu_isa(dnnl::cpu_isa::sse41);
      return "sse41";
  }
  return "native";
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  const char* onednn_isa = cap_onednn_isa();
  std::printf("CPU: %s; Octet ISA: %s; oneDNN ISA cap: %s\n", octet::cpu_description().c_str(),
              octet::isa_name(octet::active_isa()), onednn_isa);
  register_all();
  OctetRatioReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  benchmark::Shutdown();
  return 0;
}
