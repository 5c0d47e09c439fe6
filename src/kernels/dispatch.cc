// The one place that maps an ISA to kernel functions. Each table is filled once, by a readable
// switch: an ISA inherits the entries of the ISA below it and overrides what it implements.
#include <array>
#include <mutex>

#include "kernels/kernels.h"
#include "octet/error.h"

namespace octet::kernels {
namespace {

void fill(KernelTable& t, Isa isa) {
  t.isa = isa;
  switch (isa) {
    case Isa::ref:
      // fp32 (ref)
      // int8 (ref)
      break;
    case Isa::avx2:
#if defined(OCTET_HAVE_AVX2)
      // fp32 (avx2)
      // int8 (avx2)
#endif
      break;
    case Isa::avx512:
#if defined(OCTET_HAVE_AVX512)
      // fp32 (avx512)
      // int8 (avx512)
#endif
      break;
    case Isa::avx512_vnni:
#if defined(OCTET_HAVE_AVX512_VNNI)
      // fp32 (avx512_vnni)
      // int8 (avx512_vnni)
#endif
      break;
  }
}

KernelTable build(Isa isa) {
  KernelTable t;
  // Fill cumulatively: ref first, then every ISA up to `isa`.
  for (int i = 0; i <= static_cast<int>(isa); ++i) fill(t, static_cast<Isa>(i));
  return t;
}

}  // namespace

const KernelTable& table_for(Isa isa) {
  static std::array<KernelTable, 4> tables;
  static std::array<std::once_flag, 4> once;
  bool runnable = false;
  for (Isa r : runnable_isas()) runnable |= (r == isa);
  if (!runnable) {
    throw Unsupported(std::string("kernel table for ISA ") + isa_name(isa) +
                      " requested, but this CPU or build cannot run it");
  }
  const int i = static_cast<int>(isa);
  std::call_once(once[i], [&] { tables[i] = build(isa); });
  return tables[i];
}

const KernelTable& table() { return table_for(active_isa()); }

}  // namespace octet::kernels
