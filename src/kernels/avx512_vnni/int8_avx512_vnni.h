// AVX-512 VNNI INT8 GEMM and attention entry points (contracts in kernels/int8.h). The elementwise
// INT8 kernels of this ISA are the AVX-512 ones (kernels/avx512/int8_avx512.h).
#pragma once

#include "kernels/int8.h"

namespace octet::kernels::avx512_vnni {

std::size_t gemm_packed_b_size(int n, int k);
void gemm_pack_b(const int8_t* b, std::ptrdiff_t ldb, int n, int k, void* packed);
std::size_t gemm_workspace_size(int rows, int k);
void gemm(const GemmParams& p, int m0, int m1, int n0, int n1, void* workspace);
float attention_head_s8(const float* q, const float* k, const float* v, std::size_t ld_qkv,
                        std::size_t rows, std::size_t t, std::size_t d, float scale, float* out,
                        std::size_t ld_out, float* scratch, const float* next_q);

}  // namespace octet::kernels::avx512_vnni
