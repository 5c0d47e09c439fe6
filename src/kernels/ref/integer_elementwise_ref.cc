// Reference integer-only elementwise kernels: i-GELU (QUANT_SPEC B.7, the fairseq/HF IntGELU
// arithmetic in exact integers), wide dyadic requantization (B.4, exact in 128 bits) and the
// requantizing residual addition (B.2, QuantAct with identity). Contracts in kernels/integer.h.
#include <cstdint>

#include "kernels/integer_scalar.h"
#include "kernels/ref/integer_ref.h"

namespace octet::kernels::ref {

namespace is = integer_scalar;

void igelu(const int32_t* x, std::ptrdiff_t ldx, int rows, int cols, const int32_t* b,
           const int64_t* c, const int64_t* one, int64_t* y, std::ptrdiff_t ldy) {
  for (int i = 0; i < rows; ++i) {
    for (int j = 0; j < cols; ++j) {
      const int64_t v = x[i * ldx + j];
      const int64_t mag = v < 0 ? -v : v;
      const int64_t a = (mag < -int64_t{b[j]} ? mag : -int64_t{b[j]}) + b[j];  // in [b, 0]
      int64_t e = a * a + c[j];
      if (v < 0) e = -e;
      e >>= kIgeluOverflowShift;  // floor(e / 2^14), after the sign as in the reference
      y[i * ldy + j] = v * (one[j] - e);
    }
  }
}

namespace {

void store_bits(void* y, std::ptrdiff_t idx, int out_bits, int64_t v) {
  if (out_bits <= 8) {
    static_cast<int8_t*>(y)[idx] = static_cast<int8_t>(v);
  } else if (out_bits <= 16) {
    static_cast<int16_t*>(y)[idx] = static_cast<int16_t>(v);
  } else {
    static_cast<int32_t*>(y)[idx] = static_cast<int32_t>(v);
  }
}

}  // namespace

void requantize_wide(const int64_t* x, std::ptrdiff_t ldx, int rows, int cols,
                     const int32_t* multiplier, const int32_t* shift, int out_bits, void* y,
                     std::ptrdiff_t ldy) {
  for (int i = 0; i < rows; ++i) {
    for (int j = 0; j < cols; ++j) {
      const int64_t v = x[i * ldx + j] < -INT64_MAX ? -INT64_MAX : x[i * ldx + j];  // |v| < 2^63
      const __int128 q = is::requantize_wide_value(v, multiplier[j], shift[j]);
      store_bits(y, i * ldy + j, out_bits, is::saturate_bits(q, out_bits));
    }
  }
}

void residual_add(const int32_t* x, std::ptrdiff_t ldx, const int32_t* mx, const int32_t* sx,
                  const int8_t* r, std::ptrdiff_t ldr, const int32_t* mr, const int32_t* sr,
                  int rows, int cols, int out_bits, void* y, std::ptrdiff_t ldy) {
  for (int i = 0; i < rows; ++i) {
    for (int j = 0; j < cols; ++j) {
      int64_t q = is::rhe_i64(int64_t{x[i * ldx + j]} * mx[j], sx[j]);
      if (r) q += is::rhe_i64(int64_t{r[i * ldr + j]} * mr[j], sr[j]);
      store_bits(y, i * ldy + j, out_bits, is::saturate_bits(q, out_bits));
    }
  }
}

}  // namespace octet::kernels::ref
