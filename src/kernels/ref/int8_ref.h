// Reference (portable C++) INT8 kernels: the specification of every Int8Kernels entry.
// Contracts in kernels/int8.h. Packed B for this path is the canonical row-major n x k matrix with
// n padded to kPackedColumnBlock rows of zeros.
#pragma once

#include "kernels/int8.h"

namespace octet::kernels::ref {

std::size_t gemm_packed_b_size(int n, int k);
void gemm_pack_b(const int8_t* b, std::ptrdiff_t ldb, int n, int k, void* packed);
std::size_t gemm_workspace_size(int rows, int k);
void gemm(const GemmParams& p, int m0, int m1, int n0, int n1, void* workspace);

float quantize_s8(const float* x, std::size_t n, float inv_scale, int8_t* q);
void quantize_u8(const float* x, std::size_t n, float inv_scale, int32_t zero_point, uint8_t* q,
                 float* min_out, float* max_out);
float abs_max(const float* x, std::size_t n);
void min_max(const float* x, std::size_t n, float* min_out, float* max_out);
void dequantize_s8(const int8_t* q, std::size_t n, float scale, float* x);
void dequantize_u8(const uint8_t* q, std::size_t n, float scale, int32_t zero_point, float* x);
void gather_rows_s8(const int8_t* table, std::ptrdiff_t ld_table, const int32_t* ids,
                    std::size_t count, std::size_t cols, int8_t* out, std::ptrdiff_t ld_out);
void requantize(const int32_t* x, int rows, int cols, std::ptrdiff_t ldx, const int32_t* bias,
                const int32_t* multiplier, const int32_t* shift, int32_t out_zero_point,
                GemmOutput output, void* y, std::ptrdiff_t ldy);
float attention_head_s8(const float* q, const float* k, const float* v, std::size_t ld_qkv,
                        std::size_t rows, std::size_t t, std::size_t d, float scale, float* out,
                        std::size_t ld_out, float* scratch, const float* next_q);

}  // namespace octet::kernels::ref
