// INT8 kernels (GEMM with fused epilogues, quantize, dequantize, gather, requantize): signatures
// and the Int8Kernels table section.
#pragma once

#include <cstddef>
#include <cstdint>

namespace octet::kernels {

struct Int8Kernels {
};

}  // namespace octet::kernels
