// INT8 GEMM operator: argument checks, weight packing, work splitting over OpenMP threads.
#include "ops/gemm_int8.h"

#include <fmt/format.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/fixedpoint.h"
#include "kernels/kernels.h"
#include "kernels/ref/gemm_int8_epilogue_ref.h"
#include "octet/error.h"

namespace octet::ops {
namespace {

using kernels::ActDtype;
using kernels::GemmOutput;
using kernels::GemmParams;

// Below about 4 MOP (~10 us on one core) a parallel region costs more than it saves.
constexpr double kMinParallelOps = 4.0e6;
// Rows of A per block: the packed A block (128 x K bytes) stays in L2 while the kernel sweeps
// every column panel of the block.
constexpr int kBlockM = 128;

[[noreturn]] void fail(const char* op, const std::string& what) {
  throw InvalidArgument(fmt::format("{}: {}", op, what));
}

void check_activations(const char* op, const ActivationsInt8& a, const PackedWeightsInt8& w) {
  if (w.n() == 0) fail(op, "the weights are empty (PackedWeightsInt8 was never packed)");
  if (a.m < 0) fail(op, fmt::format("A has m = {} rows, expected m >= 0", a.m));
  if (a.k != w.k()) {
    fail(op, fmt::format("A has k = {} columns but the packed weights have k = {}", a.k, w.k()));
  }
  if (a.ld < a.k) fail(op, fmt::format("A row stride {} is smaller than k = {}", a.ld, a.k));
  if (a.m > 0 && a.data == nullptr) fail(op, "A data pointer is null");
  if (a.dtype == ActDtype::s8 && a.zero_point != 0) {
    fail(op,
         fmt::format("s8 activations are symmetric: zero point must be 0, found {}", a.zero_point));
  }
  if (a.dtype == ActDtype::u8 && (a.zero_point < 0 || a.zero_point > 255)) {
    fail(op, fmt::format("u8 activation zero point {} is outside [0, 255]", a.zero_point));
  }
}

void check_output(const char* op, const void* c, std::ptrdiff_t ldc, int m, int n) {
  if (ldc < n) fail(op, fmt::format("C row stride {} is smaller than n = {}", ldc, n));
  if (m > 0 && c == nullptr) fail(op, "C data pointer is null");
}

GemmParams base_params(const ActivationsInt8& a, const PackedWeightsInt8& w, void* c,
                       std::ptrdiff_t ldc) {
  GemmParams p;
  p.m = a.m;
  p.n = w.n();
  p.k = w.k();
  p.a = a.data;
  p.lda = a.ld;
  p.a_dtype = a.dtype;
  p.a_zero_point = a.zero_point;
  p.packed_b = w.packed();
  p.col_sums = w.col_sums();
  p.c = c;
  p.ldc = ldc;
  return p;
}

// Per-thread A packing scratch, reused across calls.
uint8_t* thread_workspace(std::size_t bytes) {
  static thread_local AlignedBuffer<uint8_t> workspace;
  workspace.ensure(bytes);
  return workspace.data();
}

// f32 output with p.abs_max: *p.abs_max receives max |C| (0 for m == 0), each thread raising its
// own accumulator, combined in the kernels' order (kernels/int8.h): the same value for any
// split and thread count.
void run(const GemmParams& p, Isa isa, int threads) {
  float* const abs_max = p.output == GemmOutput::f32 ? p.abs_max : nullptr;
  if (abs_max != nullptr) *abs_max = 0.0f;
  if (p.m == 0) return;
  const kernels::Int8Kernels& kt = kernels::table_for(isa).int8;
  const GemmPartition part = plan_gemm_int8(p.m, p.n, p.k, threads);
  const int m_blocks = (p.m + part.block_m - 1) / part.block_m;
  const int n_blocks = (p.n + part.block_n - 1) / part.block_n;
  const int tasks = m_blocks * n_blocks;
  const std::size_t ws_bytes = kt.gemm_workspace_size(std::min(part.block_m, p.m), p.k);
  auto run_task = [&](const GemmParams& q, int t, uint8_t* ws) {
    const int m0 = (t / n_blocks) * part.block_m, n0 = (t % n_blocks) * part.block_n;
    kt.gemm(q, m0, std::min(m0 + part.block_m, p.m), n0, std::min(n0 + part.block_n, p.n), ws);
  };
  if (part.threads == 1) {
    uint8_t* ws = thread_workspace(ws_bytes);
    for (int t = 0; t < tasks; ++t) run_task(p, t, ws);
    return;
  }
#pragma omp parallel num_threads(part.threads)
  {
    GemmParams q = p;
    float local = 0.0f;
    if (abs_max != nullptr) q.abs_max = &local;
    uint8_t* ws = thread_workspace(ws_bytes);
#pragma omp for schedule(static)
    for (int t = 0; t < tasks; ++t) run_task(q, t, ws);
    if (abs_max != nullptr) {
#pragma omp critical(octet_gemm_int8_abs_max)
      kernels::ref::raise_abs_max(abs_max, local);
    }
  }
}

}  // namespace

GemmPartition plan_gemm_int8(int m, int n, int k, int threads) {
  GemmPartition part;
  part.threads = threads > 0 ? threads : omp_get_max_threads();
  if (2.0 * m * n * k < kMinParallelOps) part.threads = 1;
  const int panels = (n + kernels::kPackedColumnBlock - 1) / kernels::kPackedColumnBlock;
  part.block_m = std::max(1, std::min(m, kBlockM));
  const int m_blocks = (m + part.block_m - 1) / part.block_m;
  int n_split = 1;
  // Too few row blocks to share evenly: split the columns too, so every thread gets equal work.
  if (part.threads > 1 && m_blocks < 4 * part.threads && m_blocks % part.threads != 0) {
    n_split = m_blocks < part.threads ? (part.threads + m_blocks - 1) / m_blocks : part.threads;
  }
  n_split = std::max(1, std::min(n_split, panels));
  part.block_n = (panels + n_split - 1) / n_split * kernels::kPackedColumnBlock;
  return part;
}

PackedWeightsInt8 PackedWeightsInt8::pack(const int8_t* w, int n, int k, std::ptrdiff_t ldw,
                                          std::span<const float> scales, Isa isa) {
  const char* op = "PackedWeightsInt8::pack";
  if (n < 1) fail(op, fmt::format("weights have n = {} rows, expected n >= 1", n));
  if (k < 1 || k > kernels::kMaxGemmK) {
    fail(op, fmt::format("weights have k = {} columns, expected 1 <= k <= {} (the int32 "
                         "accumulator bound, docs/kernels.md)",
                         k, kernels::kMaxGemmK));
  }
  if (ldw < k) fail(op, fmt::format("weight row stride {} is smaller than k = {}", ldw, k));
  if (w == nullptr) fail(op, "weight data pointer is null");
  if (!scales.empty() && scales.size() != 1 && scales.size() != static_cast<std::size_t>(n)) {
    fail(op, fmt::format("expected 1 (per-tensor) or n = {} (per-channel) weight scales, found {}",
                         n, scales.size()));
  }
  for (std::size_t j = 0; j < scales.size(); ++j) {
    if (!(std::isfinite(scales[j]) && scales[j] > 0.0f)) {
      fail(op, fmt::format("weight scale {} is {}, expected a finite value > 0", j, scales[j]));
    }
  }
  const kernels::Int8Kernels& kt = kernels::table_for(isa).int8;  // throws if isa cannot run

  PackedWeightsInt8 out;
  out.n_ = n;
  out.k_ = k;
  out.isa_ = isa;
  out.packed_.resize(kt.gemm_packed_b_size(n, k));
  kt.gemm_pack_b(w, ldw, n, k, out.packed_.data());
  out.col_sums_.resize(n);
  for (int j = 0; j < n; ++j) {
    int32_t sum = 0;
    for (int kk = 0; kk < k; ++kk) sum += w[j * ldw + kk];
    out.col_sums_[j] = sum;
  }
  if (!scales.empty()) {
    out.scales_.resize(n);
    for (int j = 0; j < n; ++j) out.scales_[j] = scales[scales.size() == 1 ? 0 : j];
  }
  return out;
}

ActivationsInt8 quantize_activations_s8(const float* x, int rows, int cols, std::ptrdiff_t ldx,
                                        int8_t* q, std::ptrdiff_t ldq) {
  const char* op = "quantize_activations_s8";
  if (rows < 0 || cols < 1) {
    fail(op, fmt::format("shape {} x {}: expected rows >= 0 and cols >= 1", rows, cols));
  }
  if (ldx < cols || ldq < cols) {
    fail(op,
         fmt::format("row strides {} (x) and {} (q) must be at least cols = {}", ldx, ldq, cols));
  }
  if (rows > 0 && (x == nullptr || q == nullptr)) fail(op, "x or q data pointer is null");
  const kernels::Int8Kernels& kt = kernels::table().int8;
  float amax = 0.0f;
  for (int r = 0; r < rows; ++r) {
    const float row_max = kt.abs_max(x + r * ldx, cols);
    if (std::isnan(row_max)) {
      fail(op, fmt::format("row {} of the {} x {} input holds a NaN or an infinity; expected "
                           "finite activations",
                           r, rows, cols));
    }
    amax = std::max(amax, row_max);
  }
  const float inv_scale = amax > 0.0f ? 127.0f / amax : 1.0f;
  for (int r = 0; r < rows; ++r) kt.quantize_s8(x + r * ldx, cols, inv_scale, q + r * ldq);
  return ActivationsInt8{q, ActDtype::s8, rows, cols, ldq, 0, amax > 0.0f ? amax / 127.0f : 1.0f};
}

ActivationsInt8 quantize_activations_static(const float* x, int rows, int cols, std::ptrdiff_t ldx,
                                            ActDtype dtype, float inv_scale, float scale,
                                            int32_t zero_point, void* q, std::ptrdiff_t ldq,
                                            int threads) {
  const char* op = "quantize_activations_static";
  if (rows < 0 || cols < 1) {
    fail(op, fmt::format("shape {} x {}: expected rows >= 0 and cols >= 1", rows, cols));
  }
  if (ldx < cols || ldq < cols) {
    fail(op,
         fmt::format("row strides {} (x) and {} (q) must be at least cols = {}", ldx, ldq, cols));
  }
  if (rows > 0 && (x == nullptr || q == nullptr)) fail(op, "x or q data pointer is null");
  if (!(std::isfinite(inv_scale) && inv_scale > 0.0f && std::isfinite(scale) && scale > 0.0f)) {
    fail(op,
         fmt::format("inv_scale {} and scale {}: expected finite values > 0", inv_scale, scale));
  }
  const bool s8 = dtype == ActDtype::s8;
  if (s8 ? zero_point != 0 : (zero_point < 0 || zero_point > 255)) {
    fail(op, fmt::format("zero point {} for {} activations: expected {}", zero_point,
                         s8 ? "s8" : "u8", s8 ? "0" : "a value in [0, 255]"));
  }
  const kernels::Int8Kernels& kt = kernels::table().int8;
  // The kernels report the range they saw (NaN if any input was not finite): one pass.
  auto quantize_row = [&](int r) -> bool {
    if (s8) {
      return !std::isnan(
          kt.quantize_s8(x + r * ldx, cols, inv_scale, static_cast<int8_t*>(q) + r * ldq));
    }
    float lo = 0.0f, hi = 0.0f;
    kt.quantize_u8(x + r * ldx, cols, inv_scale, zero_point, static_cast<uint8_t*>(q) + r * ldq,
                   &lo, &hi);
    return !std::isnan(lo) && !std::isnan(hi);
  };
  int nthreads = threads > 0 ? threads : omp_get_max_threads();
  if (static_cast<double>(rows) * cols < 256.0 * 1024.0) nthreads = 1;
  int bad_row = rows;
  if (nthreads == 1) {
    for (int r = 0; r < rows && bad_row == rows; ++r) {
      if (!quantize_row(r)) bad_row = r;
    }
  } else {
#pragma omp parallel for num_threads(nthreads) schedule(static) reduction(min : bad_row)
    for (int r = 0; r < rows; ++r) {
      if (!quantize_row(r)) bad_row = std::min(bad_row, r);
    }
  }
  if (bad_row < rows) {
    fail(op, fmt::format("row {} of the {} x {} input holds a NaN or an infinity; expected finite "
                         "activations",
                         bad_row, rows, cols));
  }
  return ActivationsInt8{q, dtype, rows, cols, ldq, zero_point, scale};
}

void fake_quantize_static(float* x, int rows, int cols, std::ptrdiff_t ldx, ActDtype dtype,
                          float inv_scale, float scale, int32_t zero_point, void* q, int threads) {
  quantize_activations_static(x, rows, cols, ldx, dtype, inv_scale, scale, zero_point, q, cols,
                              threads);
  const kernels::Int8Kernels& kt = kernels::table().int8;
  auto row = [&](int r) {
    if (dtype == ActDtype::s8) {
      kt.dequantize_s8(static_cast<const int8_t*>(q) + r * cols, cols, scale, x + r * ldx);
    } else {
      kt.dequantize_u8(static_cast<const uint8_t*>(q) + r * cols, cols, scale, zero_point,
                       x + r * ldx);
    }
  };
  int nthreads = threads > 0 ? threads : omp_get_max_threads();
  if (static_cast<double>(rows) * cols < 256.0 * 1024.0) nthreads = 1;
  if (nthreads == 1) {
    for (int r = 0; r < rows; ++r) row(r);
  } else {
#pragma omp parallel for num_threads(nthreads) schedule(static)
    for (int r = 0; r < rows; ++r) row(r);
  }
}

void gemm_int8_s32(const ActivationsInt8& a, const PackedWeightsInt8& w, const int32_t* bias,
                   int32_t* c, std::ptrdiff_t ldc, int threads) {
  const char* op = "gemm_int8_s32";
  check_activations(op, a, w);
  check_output(op, c, ldc, a.m, w.n());
  GemmParams p = base_params(a, w, c, ldc);
  p.output = GemmOutput::s32;
  p.bias_s32 = bias;
  run(p, w.isa(), threads);
}

void gemm_int8_f32(const ActivationsInt8& a, const PackedWeightsInt8& w,
                   const DequantizeEpilogue& epilogue, float* c, std::ptrdiff_t ldc, int threads) {
  const char* op = "gemm_int8_f32";
  check_activations(op, a, w);
  check_output(op, c, ldc, a.m, w.n());
  if (!w.has_scales()) fail(op, "the packed weights carry no scales; pass them to pack()");
  if (!(std::isfinite(a.scale) && a.scale > 0.0f)) {
    fail(op, fmt::format("activation scale is {}, expected a finite value > 0", a.scale));
  }
  if (epilogue.residual != nullptr && epilogue.ldr < w.n()) {
    fail(op, fmt::format("residual row stride {} is smaller than n = {}", epilogue.ldr, w.n()));
  }
  GemmParams p = base_params(a, w, c, ldc);
  p.output = GemmOutput::f32;
  p.a_scale = a.scale;
  p.w_scales = w.scales();
  p.bias_f32 = epilogue.bias;
  p.activation = epilogue.activation;
  p.residual = epilogue.residual;
  p.ldr = epilogue.ldr;
  p.abs_max = epilogue.abs_max;
  run(p, w.isa(), threads);
}

void gemm_int8_requant(const ActivationsInt8& a, const PackedWeightsInt8& w,
                       const RequantizeEpilogue& epilogue, void* c, std::ptrdiff_t ldc,
                       int threads) {
  const char* op = "gemm_int8_requant";
  check_activations(op, a, w);
  check_output(op, c, ldc, a.m, w.n());
  const bool s8 = epilogue.output == GemmOutput::s8;
  if (!s8 && epilogue.output != GemmOutput::u8) fail(op, "output must be GemmOutput::s8 or ::u8");
  const int lo = s8 ? -128 : 0, hi = s8 ? 127 : 255;
  if (epilogue.zero_point < lo || epilogue.zero_point > hi) {
    fail(op, fmt::format("output zero point {} is outside [{}, {}]", epilogue.zero_point, lo, hi));
  }
  const std::size_t count = epilogue.multiplier.size();
  if ((count != 1 && count != static_cast<std::size_t>(w.n())) || epilogue.shift.size() != count) {
    fail(op, fmt::format("expected 1 or n = {} multipliers and as many shifts, found {} and {}",
                         w.n(), count, epilogue.shift.size()));
  }
  std::vector<int32_t> multiplier(w.n()), shift(w.n());
  for (int j = 0; j < w.n(); ++j) {
    const std::size_t src = count == 1 ? 0 : j;
    multiplier[j] = epilogue.multiplier[src];
    shift[j] = epilogue.shift[src];
    if (multiplier[j] != 0 && multiplier[j] < (int32_t{1} << 30)) {
      fail(op, fmt::format("multiplier {} is {}, expected 0 or a value in [2^30, 2^31) "
                           "(kernels::quantize_multiplier)",
                           src, multiplier[j]));
    }
    if (shift[j] < kernels::kMinRequantShift || shift[j] > kernels::kMaxRequantShift) {
      fail(op, fmt::format("shift {} is {}, expected a value in [{}, {}]", src, shift[j],
                           kernels::kMinRequantShift, kernels::kMaxRequantShift));
    }
  }
  GemmParams p = base_params(a, w, c, ldc);
  p.output = epilogue.output;
  p.bias_s32 = epilogue.bias;
  p.multiplier = multiplier.data();
  p.shift = shift.data();
  p.out_zero_point = epilogue.zero_point;
  run(p, w.isa(), threads);
}

}  // namespace octet::ops
