// The pure part of CPU detection: from feature bits (cpuid, xgetbv, the AMX permission request)
// to an ISA level, and the check of an OCTET_MAX_ISA value against what can run. Internal (not
// installed): separated from the cpuid reads so that tests can feed it the inputs of CPUs they
// do not run on (no AMX, AMX without OS support, AMX permission refused).
#pragma once

#include <string>
#include <string_view>

#include "octet/cpu.h"

namespace octet::cpu_detail {

struct CpuFeatures {
  bool avx2 = false, fma = false, f16c = false;
  bool avx512f = false, avx512bw = false, avx512vl = false, avx512dq = false;
  bool avx512vnni = false;
  bool amx_tile = false, amx_int8 = false;  // cpuid leaf 7 EDX bits 24, 25
  bool os_ymm = false, os_zmm = false;
  bool os_amx = false;  // XCR0 bits 17 (XTILECFG) and 18 (XTILEDATA)
  // Linux: arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) succeeded (or was not needed).
  bool amx_permission = false;
  std::string amx_permission_error;  // why the request failed, when it did
};

// The best ISA these features allow. When the CPU has the AMX instructions but AMX cannot be used
// (OS state, permission, missing VNNI below it), *amx_unavailable says why; else it is cleared.
Isa isa_from_features(const CpuFeatures& f, std::string* amx_unavailable);

// Resolves an OCTET_MAX_ISA value: returns the cap, or throws InvalidArgument (unknown name) or
// Unsupported (above what the CPU `cpu` or the build `built` can run; `cpu_limit` is appended to
// the message when non-empty, e.g. why AMX is unavailable).
Isa resolve_isa_cap(std::string_view value, Isa cpu, Isa built, std::string_view cpu_limit);

}  // namespace octet::cpu_detail
