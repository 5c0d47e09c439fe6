// The packed-B layout of the exact int16 GEMMs (AVX2, and AVX-512 without VNNI): 16-column
// panels, each [ceil(K/2) pairs][16 columns][2 k] int16, N and K padded with zeros. Both ISAs read
// the same bytes (AVX2 as two ymm per pair-group, AVX-512 as one zmm), so packing is defined once
// here and compiled without ISA flags: it runs once per weight matrix, at load time.
#pragma once

#include <cstddef>
#include <cstdint>

namespace octet::kernels::int16_layout {

// Each panel holds ceil(K/2) pair-groups of 16 columns x 2 k (64 bytes).
std::size_t packed_b_size(int n, int k);
void pack_b(const int8_t* b, std::ptrdiff_t ldb, int n, int k, void* packed);

}  // namespace octet::kernels::int16_layout
