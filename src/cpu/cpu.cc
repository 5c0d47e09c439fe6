// CPU feature detection (cpuid + xgetbv) and the ISA cap.
#include "octet/cpu.h"

#include <cpuid.h>
#include <fmt/format.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <mutex>

#include "cpu/cpu_detect.h"
#include "octet/error.h"

namespace octet {
namespace {

using cpu_detail::CpuFeatures;

struct CpuFlags {
  CpuFeatures f;
  std::string brand;
};

unsigned long long xgetbv0() {
  unsigned eax, edx;
  __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return (static_cast<unsigned long long>(edx) << 32) | eax;
}

// Linux keeps the 8 KiB AMX tile state out of a process until it asks for it (kernel 5.16+);
// without the permission the first tile instruction kills the process with SIGILL.
void request_amx_permission(CpuFeatures& f) {
#if defined(__linux__)
  constexpr long kArchGetXcompPerm = 0x1022, kArchReqXcompPerm = 0x1023, kXtiledata = 18;
  if (syscall(SYS_arch_prctl, kArchReqXcompPerm, kXtiledata) != 0) {
    const int err = errno;
    f.amx_permission_error =
        fmt::format("arch_prctl(ARCH_REQ_XCOMP_PERM, XTILEDATA) refused: {} ({})",
                    std::strerror(err), err == EINVAL ? "Linux older than 5.16?" : "OS policy");
    return;
  }
  unsigned long long granted = 0;
  if (syscall(SYS_arch_prctl, kArchGetXcompPerm, &granted) != 0 ||
      !(granted & (1ull << kXtiledata))) {
    f.amx_permission_error = fmt::format(
        "arch_prctl(ARCH_GET_XCOMP_PERM) does not list XTILEDATA after the request (mask {:#x})",
        granted);
    return;
  }
  f.amx_permission = true;
#else
  f.amx_permission_error = "AMX permission request is implemented for Linux only";
#endif
}

CpuFlags read_flags() {
  CpuFlags out;
  CpuFeatures& f = out.f;
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return out;
  const bool osxsave = c & (1u << 27);
  f.fma = c & (1u << 12);
  f.f16c = c & (1u << 29);
  if (osxsave) {
    unsigned long long xcr0 = xgetbv0();
    f.os_ymm = (xcr0 & 0x6) == 0x6;                // SSE + AVX state
    f.os_zmm = f.os_ymm && (xcr0 & 0xE0) == 0xE0;  // opmask + ZMM_Hi256 + Hi16_ZMM
    f.os_amx = (xcr0 & 0x60000) == 0x60000;        // XTILECFG + XTILEDATA
  }
  if (__get_cpuid_count(7, 0, &a, &b, &c, &d)) {
    f.avx2 = b & (1u << 5);
    f.avx512f = b & (1u << 16);
    f.avx512dq = b & (1u << 17);
    f.avx512bw = b & (1u << 30);
    f.avx512vl = b & (1u << 31);
    f.avx512vnni = c & (1u << 11);
    f.amx_tile = d & (1u << 24);
    f.amx_int8 = d & (1u << 25);
  }
  if (f.amx_tile && f.amx_int8 && f.os_amx) request_amx_permission(f);
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
    out.brand = brand;
    auto first = out.brand.find_first_not_of(' ');
    out.brand = first == std::string::npos ? "" : out.brand.substr(first);
  }
  return out;
}

const CpuFlags& flags() {
  static const CpuFlags f = read_flags();
  return f;
}

struct Detected {
  Isa isa;
  std::string amx_unavailable;
};

const Detected& detected() {
  static const Detected d = [] {
    Detected out;
    out.isa = cpu_detail::isa_from_features(flags().f, &out.amx_unavailable);
    return out;
  }();
  return d;
}

// -1: no API cap.
std::atomic<int> g_api_cap{-1};

Isa env_cap_checked() {
  static std::once_flag once;
  static Isa cap = Isa::amx;
  static std::string error;
  std::call_once(once, [] {
    const char* env = std::getenv("OCTET_MAX_ISA");
    if (env == nullptr || *env == '\0') return;
    try {
      cap = cpu_detail::resolve_isa_cap(env, cpu_isa(), built_isa(), detected().amx_unavailable);
    } catch (const Unsupported& e) {
      error = fmt::format("OCTET_MAX_ISA={}", e.what());
    } catch (const Error& e) {
      error = fmt::format("OCTET_MAX_ISA: {}", e.what());
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
    case Isa::amx:
      return "amx";
  }
  return "unknown";
}

Isa parse_isa(std::string_view name) {
  if (name == "ref") return Isa::ref;
  if (name == "avx2") return Isa::avx2;
  if (name == "avx512") return Isa::avx512;
  if (name == "avx512_vnni" || name == "avx512vnni") return Isa::avx512_vnni;
  if (name == "amx") return Isa::amx;
  throw InvalidArgument(
      fmt::format("unknown ISA '{}': expected one of ref, avx2, avx512, avx512_vnni, amx", name));
}

Isa cpu_isa() { return detected().isa; }

Isa built_isa() {
#if defined(OCTET_HAVE_AMX)
  return Isa::amx;
#elif defined(OCTET_HAVE_AVX512_VNNI)
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

std::size_t l2_cache_bytes() {
  static const std::size_t bytes = [] {
    const long v = sysconf(_SC_LEVEL2_CACHE_SIZE);
    return v > 0 ? static_cast<std::size_t>(v) : std::size_t{1} << 20;
  }();
  return bytes;
}

std::string cpu_description() {
  const CpuFeatures& f = flags().f;
  std::string out = fmt::format(
      "{} [avx2={} fma={} avx512f={} avx512bw={} avx512vl={} avx512_vnni={} os_zmm={} amx_tile={} "
      "amx_int8={} os_amx={} amx_permission={}]",
      flags().brand.empty() ? "unknown CPU" : flags().brand, f.avx2, f.fma, f.avx512f, f.avx512bw,
      f.avx512vl, f.avx512vnni, f.os_zmm, f.amx_tile, f.amx_int8, f.os_amx, f.amx_permission);
  if (!detected().amx_unavailable.empty())
    out += "; AMX unavailable: " + detected().amx_unavailable;
  return out;
}

namespace cpu_detail {

Isa isa_from_features(const CpuFeatures& f, std::string* amx_unavailable) {
  amx_unavailable->clear();
  if (!(f.os_ymm && f.avx2 && f.fma && f.f16c)) return Isa::ref;
  if (!(f.os_zmm && f.avx512f && f.avx512bw && f.avx512vl && f.avx512dq)) return Isa::avx2;
  if (!f.avx512vnni) return Isa::avx512;
  if (!(f.amx_tile && f.amx_int8)) return Isa::avx512_vnni;
  if (!f.os_amx) {
    *amx_unavailable = "the OS does not enable the AMX tile state (XCR0 bits 17, 18 clear)";
  } else if (!f.amx_permission) {
    *amx_unavailable =
        f.amx_permission_error.empty() ? "AMX permission not granted" : f.amx_permission_error;
  } else {
    return Isa::amx;
  }
  return Isa::avx512_vnni;
}

Isa resolve_isa_cap(std::string_view value, Isa cpu, Isa built, std::string_view cpu_limit) {
  const Isa cap = parse_isa(value);
  if (static_cast<int>(cap) > static_cast<int>(cpu) ||
      static_cast<int>(cap) > static_cast<int>(built)) {
    throw Unsupported(fmt::format(
        "{} cannot run here: this CPU supports up to {}{} and this build has up to {}", value,
        isa_name(cpu), cpu_limit.empty() ? "" : fmt::format(" ({})", cpu_limit), isa_name(built)));
  }
  return cap;
}

}  // namespace cpu_detail

}  // namespace octet
