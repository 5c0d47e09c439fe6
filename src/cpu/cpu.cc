// CPU feature detection (cpuid + xgetbv) and the ISA cap.
#include "octet/cpu.h"

#include <cpuid.h>
#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <mutex>

#include "octet/error.h"

namespace octet {
namespace {

struct CpuFlags {
  bool avx2 = false, fma = false, f16c = false;
  bool avx512f = false, avx512bw = false, avx512vl = false, avx512dq = false;
  bool avx512vnni = false;
  bool os_ymm = false, os_zmm = false;
  std::string brand;
};

unsigned long long xgetbv0() {
  unsigned eax, edx;
  __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return (static_cast<unsigned long long>(edx) << 32) | eax;
}

CpuFlags read_flags() {
  CpuFlags f;
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return f;
  const bool osxsave = c & (1u << 27);
  f.fma = c & (1u << 12);
  f.f16c = c & (1u << 29);
  if (osxsave) {
    unsigned long long xcr0 = xgetbv0();
    f.os_ymm = (xcr0 & 0x6) == 0x6;                // SSE + AVX state
    f.os_zmm = f.os_ymm && (xcr0 & 0xE0) == 0xE0;  // opmask + ZMM_Hi256 + Hi16_ZMM
  }
  if (__get_cpuid_count(7, 0, &a, &b, &c, &d)) {
    f.avx2 = b & (1u << 5);
    f.avx512f = b & (1u << 16);
    f.avx512dq = b & (1u << 17);
    f.avx512bw = b & (1u << 30);
    f.avx512vl = b & (1u << 31);
    f.avx512vnni = c & (1u << 11);
  }
  unsigned max_ext = __get_cpuid_max(0x80000000u, nullptr);
  if (max_ext >= 0x80000004u) {
    char brand[49] = {};
    for (unsigned i = 0; i < 3; ++i) {
      __get_cpuid(0x80000002u + i, &a, &b, &c, &d);
      std::memcpy(brand + 16 * i, &a, 4);
      std::memcpy(brand + 16 * i + 4, &b, 4);
      std::memcpy(brand + 16 * i + 8, &c, 4);
      std::memcpy(brand + 16 * i + 12, &d, 4);
    }
    f.brand = brand;
    auto first = f.brand.find_first_not_of(' ');
    f.brand = first == std::string::npos ? "" : f.brand.substr(first);
  }
  return f;
}

const CpuFlags& flags() {
  static const CpuFlags f = read_flags();
  return f;
}

Isa detect() {
  const CpuFlags& f = flags();
  if (!(f.os_ymm && f.avx2 && f.fma && f.f16c)) return Isa::ref;
  if (!(f.os_zmm && f.avx512f && f.avx512bw && f.avx512vl && f.avx512dq)) return Isa::avx2;
  if (!f.avx512vnni) return Isa::avx512;
  return Isa::avx512_vnni;
}

// -1: no API cap.
std::atomic<int> g_api_cap{-1};

Isa env_cap_checked() {
  static std::once_flag once;
  static Isa cap = Isa::avx512_vnni;
  static std::string error;
  std::call_once(once, [] {
    const char* env = std::getenv("OCTET_MAX_ISA");
    if (env == nullptr || *env == '\0') return;
    try {
      cap = parse_isa(env);
    } catch (const Error& e) {
      error = fmt::format("OCTET_MAX_ISA: {}", e.what());
      return;
    }
    if (static_cast<int>(cap) > static_cast<int>(cpu_isa()) ||
        static_cast<int>(cap) > static_cast<int>(built_isa())) {
      error = fmt::format(
          "OCTET_MAX_ISA={} cannot run here: this CPU supports up to {} and this build has up to "
          "{}",
          env, isa_name(cpu_isa()), isa_name(built_isa()));
    }
  });
  if (!error.empty()) throw Unsupported(error);
  return cap;
}

}  // namespace

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::ref:
      return "ref";
    case Isa::avx2:
      return "avx2";
    case Isa::avx512:
      return "avx512";
    case Isa::avx512_vnni:
      return "avx512_vnni";
  }
  return "unknown";
}

Isa parse_isa(std::string_view name) {
  if (name == "ref") return Isa::ref;
  if (name == "avx2") return Isa::avx2;
  if (name == "avx512") return Isa::avx512;
  if (name == "avx512_vnni" || name == "avx512vnni") return Isa::avx512_vnni;
  throw InvalidArgument(
      fmt::format("unknown ISA '{}': expected one of ref, avx2, avx512, avx512_vnni", name));
}

Isa cpu_isa() {
  static const Isa isa = detect();
  return isa;
}

Isa built_isa() {
#if defined(OCTET_HAVE_AVX512_VNNI)
  return Isa::avx512_vnni;
#elif defined(OCTET_HAVE_AVX512)
  return Isa::avx512;
#elif defined(OCTET_HAVE_AVX2)
  return Isa::avx2;
#else
  return Isa::ref;
#endif
}

std::vector<Isa> runnable_isas() {
  std::vector<Isa> out;
  int top = std::min(static_cast<int>(cpu_isa()), static_cast<int>(built_isa()));
  for (int i = 0; i <= top; ++i) out.push_back(static_cast<Isa>(i));
  return out;
}

Isa active_isa() {
  int top = std::min(static_cast<int>(cpu_isa()), static_cast<int>(built_isa()));
  top = std::min(top, static_cast<int>(env_cap_checked()));
  int api = g_api_cap.load(std::memory_order_relaxed);
  if (api >= 0) top = std::min(top, api);
  return static_cast<Isa>(top);
}

void set_max_isa(Isa isa) {
  int top = std::min(static_cast<int>(cpu_isa()), static_cast<int>(built_isa()));
  if (static_cast<int>(isa) > top) {
    throw Unsupported(
        fmt::format("ISA {} cannot run here: CPU supports up to {}, build has up to {}",
                    isa_name(isa), isa_name(cpu_isa()), isa_name(built_isa())));
  }
  g_api_cap.store(static_cast<int>(isa), std::memory_order_relaxed);
}

std::string cpu_description() {
  const CpuFlags& f = flags();
  return fmt::format(
      "{} [avx2={} fma={} avx512f={} avx512bw={} avx512vl={} avx512_vnni={} os_zmm={}]",
      f.brand.empty() ? "unknown CPU" : f.brand, f.avx2, f.fma, f.avx512f, f.avx512bw, f.avx512vl,
      f.avx512vnni, f.os_zmm);
}

}  // namespace octet
