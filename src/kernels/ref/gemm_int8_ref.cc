// Reference INT8 GEMM: C[m0:m1, n0:n1] = epilogue(sum_k (A[i][k] - za) * B[j][k]).
//
// Layout: A row-major (lda), s8 or u8; packed B = canonical B (n x k row-major, row stride k)
// with n padded to kPackedColumnBlock zero rows. Accumulation in int32 is exact for
// K <= kMaxGemmK (|term| <= 255 * 128); the epilogue is ref::store_epilogue.
#include <algorithm>
#include <cstring>

#include "kernels/ref/gemm_int8_epilogue_ref.h"
#include "kernels/ref/int8_ref.h"

namespace octet::kernels::ref {
namespace {

int padded_n(int n) {
  return (n + kPackedColumnBlock - 1) / kPackedColumnBlock * kPackedColumnBlock;
}

template <typename T>
void gemm_typed(const GemmParams& p, int m0, int m1, int n0, int n1) {
  const T* a = static_cast<const T*>(p.a);
  const int8_t* b = static_cast<const int8_t*>(p.packed_b);
  const int32_t za = p.a_zero_point;
  for (int i = m0; i < m1; ++i) {
    const T* a_row = a + i * p.lda;
    for (int j = n0; j < n1; ++j) {
      const int8_t* b_row = b + static_cast<std::ptrdiff_t>(j) * p.k;
      int32_t acc = 0;
      for (int kk = 0; kk < p.k; ++kk) acc += (int32_t{a_row[kk]} - za) * int32_t{b_row[kk]};
      store_epilogue(p, i, j, acc);
    }
  }
}

}  // namespace

std::size_t gemm_packed_b_size(int n, int k) {
  return static_cast<std::size_t>(padded_n(n)) * static_cast<std::size_t>(k);
}

void gemm_pack_b(const int8_t* b, std::ptrdiff_t ldb, int n, int k, void* packed) {
  int8_t* out = static_cast<int8_t*>(packed);
  for (int j = 0; j < n; ++j) std::memcpy(out + static_cast<std::ptrdiff_t>(j) * k, b + j * ldb, k);
  std::memset(out + static_cast<std::ptrdiff_t>(n) * k, 0,
              static_cast<std::size_t>(padded_n(n) - n) * k);
}

std::size_t gemm_workspace_size(int, int) { return 0; }

void gemm(const GemmParams& p, int m0, int m1, int n0, int n1, void*) {
  if (p.a_dtype == ActDtype::s8) {
    gemm_typed<int8_t>(p, m0, m1, n0, n1);
  } else {
    gemm_typed<uint8_t>(p, m0, m1, n0, n1);
  }
}

}  // namespace octet::kernels::ref
