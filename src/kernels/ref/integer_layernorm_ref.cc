// Reference i-LayerNorm (QUANT_SPEC B.9; the HF/fairseq IntLayerNorm arithmetic in exact
// integers with the paper's integer square root and a std = 0 guard). Contract in
// kernels/integer.h.
#include <algorithm>

#include "kernels/integer_scalar.h"
#include "kernels/ref/integer_ref.h"

namespace octet::kernels::ref {

namespace is = integer_scalar;

void ilayernorm(const int32_t* x, std::ptrdiff_t ldx, int rows, int cols, int shift,
                const int64_t* bias, int64_t* y, std::ptrdiff_t ldy) {
  for (int i = 0; i < rows; ++i) {
    const int32_t* xi = x + i * ldx;
    int64_t* yi = y + i * ldy;
    auto in = [&](int j) { return int64_t{std::clamp(xi[j], -kIlnInputMax, kIlnInputMax)}; };
    int64_t sum = 0;
    for (int j = 0; j < cols; ++j) sum += in(j);
    const int64_t mean = is::rounded_mean(sum, cols);
    uint64_t var = 0;
    for (int j = 0; j < cols; ++j) {
      const int64_t ds = (in(j)-mean) >> shift;
      var += static_cast<uint64_t>(ds * ds);
    }
    const int64_t factor = is::ilayernorm_factor(var, shift);
    for (int j = 0; j < cols; ++j) {
      yi[j] = (((in(j)-mean) * factor) >> 1) + bias[j];
    }
  }
}

}  // namespace octet::kernels::ref
