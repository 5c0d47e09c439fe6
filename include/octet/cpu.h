// CPU capabilities and the instruction-set cap.
//
// Octet builds one binary that runs on any x86-64 and picks its kernels at run time. The ISA in
// use is the lowest of: what the CPU and OS support (cpuid + xgetbv), what this build compiled,
// the OCTET_MAX_ISA environment variable, and set_max_isa() (for tests and benchmarks).
//
//   octet::Isa isa = octet::active_isa();            // e.g. Isa::avx512_vnni
//   octet::set_max_isa(octet::Isa::avx2);            // throws Unsupported if it cannot run
//
// OCTET_MAX_ISA accepts ref, avx2, avx512, avx512_vnni (also spelled avx512vnni), amx. An
// unknown value, or one the CPU or build cannot run, is an error (octet::InvalidArgument /
// Unsupported) raised on first use, never silently ignored.
//
// AMX needs more than cpuid: the OS must enable the tile state (XCR0 bits 17 and 18) and, on
// Linux, grant this process the permission to use it (arch_prctl(ARCH_REQ_XCOMP_PERM,
// XFEATURE_XTILEDATA)), which detection requests once. When any step fails the CPU is reported
// as avx512_vnni and cpu_description() says why AMX is unavailable.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace octet {

// Ordered: each level implies the ones below it.
enum class Isa : int {
  ref = 0,          // portable C++, the specification of every kernel
  avx2 = 1,         // AVX2 + FMA + F16C
  avx512 = 2,       // AVX-512 F, BW, VL, DQ
  avx512_vnni = 3,  // avx512 + AVX512_VNNI (vpdpbusd)
  amx = 4,          // avx512_vnni + AMX-TILE + AMX-INT8 (tdpbusd/tdpbssd), OS state and permission
};

const char* isa_name(Isa isa);
// Parses "ref", "avx2", "avx512", "avx512_vnni" / "avx512vnni", "amx"; throws InvalidArgument
// otherwise.
Isa parse_isa(std::string_view name);

// The best ISA the CPU and the OS (saved register state) support.
Isa cpu_isa();
// The best ISA compiled into this build.
Isa built_isa();
// Every ISA that is both built and supported by this CPU, lowest first.
std::vector<Isa> runnable_isas();

// The ISA kernels dispatch to now: min(cpu, built, OCTET_MAX_ISA, set_max_isa()).
// Throws if OCTET_MAX_ISA names an unknown ISA or one that cannot run here.
Isa active_isa();
// Caps the ISA for this process (tests, benchmarks). Throws Unsupported if `isa` cannot run here.
// Not thread-safe with concurrent kernel calls: call it between runs.
void set_max_isa(Isa isa);

// Size in bytes of the calling core's L2 cache (sysconf, read once), 1 MiB when the system does
// not report it. Kernels size their blocking and prefetching policies by it.
std::size_t l2_cache_bytes();

// A one-line description: CPU brand string and flags that matter to Octet, and why AMX is
// unavailable when the CPU has it but the OS or the permission request refused it.
std::string cpu_description();

}  // namespace octet
