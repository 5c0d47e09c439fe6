// Reference i-exp and i-softmax (QUANT_SPEC B.8; the HF/fairseq IntSoftmax arithmetic in exact
// integers, with the 16-bit exp requantization made static). Contracts in kernels/integer.h.
#include <algorithm>
#include <cstring>

#include "kernels/integer_scalar.h"
#include "kernels/ref/integer_ref.h"

namespace octet::kernels::ref {

namespace is = integer_scalar;

void iexp(const int32_t* x, std::size_t n, const IexpParams& p, int32_t* y) {
  for (std::size_t i = 0; i < n; ++i) y[i] = is::iexp_value(x[i], p);
}

void isoftmax(const int32_t* x, std::ptrdiff_t ldx, int rows, int cols, int valid,
              const IexpParams& p, uint8_t* y, std::ptrdiff_t ldy) {
  constexpr int kDown = kIsoftmaxSumBits - kIsoftmaxOutBits;  // 24
  for (int i = 0; i < rows; ++i) {
    const int32_t* xi = x + i * ldx;
    uint8_t* yi = y + i * ldy;
    std::memset(yi, 0, static_cast<std::size_t>(cols));
    if (valid <= 0) continue;
    const int32_t mx = *std::max_element(xi, xi + valid);
    int64_t sum = 0;
    for (int j = 0; j < valid; ++j) sum += is::iexp_value(int64_t{xi[j]} - mx, p);
    const int64_t factor = (int64_t{1} << kIsoftmaxSumBits) / sum;  // sum >= 1: the max gives c
    for (int j = 0; j < valid; ++j) {
      const int64_t e = is::iexp_value(int64_t{xi[j]} - mx, p);
      yi[j] = static_cast<uint8_t>(std::min<int64_t>((e * factor) >> kDown, 255));
    }
  }
}

}  // namespace octet::kernels::ref
