// FP32 dense layer on oneDNN 2.6 matmul: y[M, N] = x[M, K] W^T + b, optionally + y (residual).
//
//   octet::ops::MatmulF32 mm(weight_nk, /*n=*/3072, /*k=*/768, bias);   // W in PyTorch [N, K]
//   AlignedBuffer<std::byte> scratch;            // per thread of the caller, reused
//   mm.run(x, m, y, /*accumulate=*/false, scratch);  // x [m, K], y [m, N], row-major, packed
//
// The weights are reordered once, at construction, into the blocked layout oneDNN's brgemm
// kernel prefers for (K, N) (format_tag::any queried at M = 128); every M then reuses that
// layout. Bias is fused; `accumulate` uses oneDNN's sum post-op so a residual add costs no
// extra pass over y. Primitives are created on first use of each (M, accumulate) and cached.
// Thread-safety: run() may be called concurrently with distinct scratch buffers. Primitives use
// oneDNN's user-managed scratchpad: with the library-managed one (Debian builds oneDNN without
// DNNL_ENABLE_CONCURRENT_EXEC) a primitive may only run on the thread that created it. The
// cache is mutex-protected. oneDNN parallelises each call with OpenMP over
// omp_get_max_threads() of the calling thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <oneapi/dnnl/dnnl.hpp>
#include <span>
#include <utility>

#include "common/aligned_buffer.h"

namespace octet::ops {

class MatmulF32 {
 public:
  MatmulF32();
  // weight_nk: N x K row-major (PyTorch nn.Linear layout); bias: N values (or empty for none).
  MatmulF32(std::span<const float> weight_nk, int64_t n, int64_t k, std::span<const float> bias);
  MatmulF32(MatmulF32&&) noexcept;
  MatmulF32& operator=(MatmulF32&&) noexcept;
  ~MatmulF32();

  int64_t n() const { return n_; }
  int64_t k() const { return k_; }

  // x: m x K, y: m x N, row-major and dense (row strides K and N). m >= 1. `scratch` grows to
  // the primitive's scratchpad size if needed (no allocation once it is large enough).
  void run(const float* x, int64_t m, float* y, bool accumulate,
           AlignedBuffer<std::byte>& scratch) const;

 private:
  struct Cache;
  int64_t n_ = 0;
  int64_t k_ = 0;
  bool has_bias_ = false;
  dnnl::memory::desc weights_md_;
  dnnl::memory weights_;
  dnnl::memory bias_;
  std::unique_ptr<Cache> cache_;
};

// The process-wide oneDNN CPU engine.
const dnnl::engine& cpu_engine();

}  // namespace octet::ops
