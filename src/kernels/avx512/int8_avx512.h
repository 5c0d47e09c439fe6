// AVX-512 (F/BW/VL/DQ, no VNNI) INT8 kernels (contracts in kernels/int8.h).
// GEMM: exact int16 widening (vpmaddwd); packed B = 16-column panels of [ceil(K/2) pairs]
// [16 columns][2 k] int16.
#pragma once

#include "kernels/int8.h"

namespace octet::kernels::avx512 {

std::size_t gemm_workspace_size(int rows, int k);
void gemm(const GemmParams& p, int m0, int m1, int n0, int n1, void* workspace);

float quantize_s8(const float* x, std::size_t n, float inv_scale, int8_t* q);
void quantize_u8(const float* x, std::size_t n, float inv_scale, int32_t zero_point, uint8_t* q,
                 float* min_out, float* max_out);
float abs_max(const float* x, std::size_t n);
void min_max(const float* x, std::size_t n, float* min_out, float* max_out);
void dequantize_s8(const int8_t* q, std::size_t n, float scale, float* x);
void dequantize_u8(const uint8_t* q, std::size_t n, float scale, int32_t zero_point, float* x);
void requantize(const int32_t* x, int rows, int cols, std::ptrdiff_t ldx, const int32_t* bias,
                const int32_t* multiplier, const int32_t* shift, int32_t out_zero_point,
                GemmOutput output, void* y, std::ptrdiff_t ldy);
float attention_head_s8(const float* q, const float* k, const float* v, std::size_t ld_qkv,
                        std::size_t rows, std::size_t t, std::size_t d, float scale, float* out,
                        std::size_t ld_out, float* scratch, const float* next_q);

}  // namespace octet::kernels::avx512
