// FP32 row kernels (softmax, LayerNorm, GELU, ...): signatures and the Fp32Kernels table section.
// Implementations: kernels/ref/*.cc (specification), kernels/avx2/*.cc, kernels/avx512/*.cc.
#pragma once

#include <cstddef>
#include <cstdint>

namespace octet::kernels {

struct Fp32Kernels {
};

}  // namespace octet::kernels
