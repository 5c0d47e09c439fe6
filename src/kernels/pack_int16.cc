#include "kernels/pack_int16.h"

namespace octet::kernels::int16_layout {
namespace {
int pairs_of(int k) { return (k + 1) / 2; }
}  // namespace

std::size_t packed_b_size(int n, int k) {
  const std::size_t panels = static_cast<std::size_t>((n + 15) / 16);
  return panels * static_cast<std::size_t>(pairs_of(k)) * 64;
}

void pack_b(const int8_t* b, std::ptrdiff_t ldb, int n, int k, void* packed) {
  const int pairs = pairs_of(k);
  const int panels = (n + 15) / 16;
  int16_t* out = static_cast<int16_t*>(packed);
  for (int pn = 0; pn < panels; ++pn) {
    for (int g = 0; g < pairs; ++g) {
      for (int c = 0; c < 16; ++c) {
        const int j = 16 * pn + c;
        for (int t = 0; t < 2; ++t) {
          const int kk = 2 * g + t;
          *out++ = (j < n && kk < k) ? int16_t{b[j * ldb + kk]} : int16_t{0};
        }
      }
    }
  }
}

}  // namespace octet::kernels::int16_layout
