// AVX2 integer-only I-BERT kernels: i-exp, i-softmax and i-LayerNorm, bit-exact with the
// reference. The int64-heavy kernels (i-GELU, requantize_wide, residual_add) run the reference
// on AVX2 (no 64-bit multiply, arithmetic shift or saturating narrowing). Contracts in
// kernels/integer.h.
#pragma once

#include "kernels/integer.h"

namespace octet::kernels::avx2 {

void iexp(const int32_t* x, std::size_t n, const IexpParams& p, int32_t* y);
void isoftmax(const int32_t* x, std::ptrdiff_t ldx, int rows, int cols, int valid,
              const IexpParams& p, uint8_t* y, std::ptrdiff_t ldy);
void ilayernorm(const int32_t* x, std::ptrdiff_t ldx, int rows, int cols, int shift,
                const int64_t* bias, int64_t* y, std::ptrdiff_t ldy);

}  // namespace octet::kernels::avx2
