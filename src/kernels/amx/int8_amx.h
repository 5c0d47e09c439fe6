// AMX INT8 GEMM entry points (contracts in kernels/int8.h). The packed-B layout is the AVX-512
// VNNI one (16-column panels of [ceil(K/4) groups][16 columns][4 k]), whose 16-group slices are
// exactly AMX B tiles; gemm_packed_b_size adds a zeroed guard after the last panel because the
// last K step of a tile may read past it. The elementwise INT8 kernels of this ISA are the
// AVX-512 ones.
#pragma once

#include "kernels/int8.h"

namespace octet::kernels::amx {

std::size_t gemm_packed_b_size(int n, int k);
void gemm_pack_b(const int8_t* b, std::ptrdiff_t ldb, int n, int k, void* packed);
std::size_t gemm_workspace_size(int rows, int k);
void gemm(const GemmParams& p, int m0, int m1, int n0, int n1, void* workspace);

}  // namespace octet::kernels::amx
