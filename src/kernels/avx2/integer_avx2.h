// AVX2 integer-only I-BERT kernels (all six), bit-exact with the reference; 64-bit arithmetic
// shifts, abs, min and max are emulated, products kept to 32 x 32 -> 64 bits. Contracts in
// kernels/integer.h.
#pragma once

#include "kernels/integer.h"

namespace octet::kernels::avx2 {

void igelu(const int32_t* x, std::ptrdiff_t ldx, int rows, int cols, const int32_t* b,
           const int64_t* c, const int64_t* one, int64_t* y, std::ptrdiff_t ldy);
void requantize_wide(const int64_t* x, std::ptrdiff_t ldx, int rows, int cols,
                     const int32_t* multiplier, const int32_t* shift, int out_bits, void* y,
                     std::ptrdiff_t ldy);
void residual_add(const int32_t* x, std::ptrdiff_t ldx, const int32_t* mx, const int32_t* sx,
                  const int8_t* r, std::ptrdiff_t ldr, const int32_t* mr, const int32_t* sr,
                  int rows, int cols, int out_bits, void* y, std::ptrdiff_t ldy);
void iexp(const int32_t* x, std::size_t n, const IexpParams& p, int32_t* y);
void isoftmax(const int32_t* x, std::ptrdiff_t ldx, int rows, int cols, int valid,
              const IexpParams& p, uint8_t* y, std::ptrdiff_t ldy);
void ilayernorm(const int32_t* x, std::ptrdiff_t ldx, int rows, int cols, int shift,
                const int64_t* bias, int64_t* y, std::ptrdiff_t ldy);

}  // namespace octet::kernels::avx2
