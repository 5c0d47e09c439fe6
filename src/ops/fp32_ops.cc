#include "ops/fp32_ops.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "common/check.h"
#include "kernels/kernels.h"

namespace octet::ops {
namespace {

// Elementwise work is split into chunks of whole cache lines, large enough to amortise the
// fork-join (a few microseconds) against ~1 ns per element.
constexpr int64_t kElementChunk = 16 * 1024;

template <typename F>
void parallel_chunks(int64_t n, int64_t chunk, int threads, F f) {
  const int64_t chunks = (n + chunk - 1) / chunk;
  if (chunks <= 1 || threads <= 1) {
    f(0, n);
    return;
  }
#pragma omp parallel for num_threads(threads) schedule(static)
  for (int64_t c = 0; c < chunks; ++c) {
    const int64_t begin = c * chunk;
    f(begin, std::min(n, begin + chunk));
  }
}

}  // namespace

void layer_norm(const float* x, float* y, int64_t rows, int64_t cols, const float* gamma,
                const float* beta, float eps, int threads) {
  OCTET_CHECK(rows >= 0 && cols >= 1);
  const auto& k = kernels::table().fp32;
  const int64_t rows_per_chunk = std::max<int64_t>(1, kElementChunk / cols);
  parallel_chunks(rows, rows_per_chunk, threads, [&](int64_t r0, int64_t r1) {
    k.layer_norm(x + r0 * cols, cols, y + r0 * cols, cols, r1 - r0, cols, gamma, beta, eps);
  });
}

namespace {

// Rows [r0, r1) of a per-row reduction over chunks of about kElementChunk values, in parallel:
// f(r0, r1) returns the chunk's max |.| or NaN; the first bad row is found by rescanning only
// the chunk that reported NaN (errors are rare; the fast path keeps one reduction).
template <typename F>
float reduce_max_chunks(int64_t rows, int64_t cols, int threads, F f, int64_t* bad_chunk_start,
                        int64_t* rows_per_chunk_out) {
  const int64_t rows_per_chunk = std::max<int64_t>(1, kElementChunk / std::max<int64_t>(1, cols));
  const int64_t chunks = (rows + rows_per_chunk - 1) / rows_per_chunk;
  *rows_per_chunk_out = rows_per_chunk;
  float amax = 0.0f;
  int64_t bad = chunks;
  if (chunks <= 1 || threads <= 1) {
    for (int64_t c = 0; c < chunks; ++c) {
      const float m = f(c * rows_per_chunk, std::min(rows, (c + 1) * rows_per_chunk));
      if (std::isnan(m)) {
        bad = std::min(bad, c);
      } else {
        amax = std::max(amax, m);
      }
    }
  } else {
#pragma omp parallel for num_threads(threads) schedule(static) reduction(max                   \
                                                                         : amax) reduction(min \
                                                                                           : bad)
    for (int64_t c = 0; c < chunks; ++c) {
      const float m = f(c * rows_per_chunk, std::min(rows, (c + 1) * rows_per_chunk));
      if (std::isnan(m)) {
        bad = std::min(bad, c);
      } else {
        amax = std::max(amax, m);
      }
    }
  }
  *bad_chunk_start = bad < chunks ? bad * rows_per_chunk : -1;
  return bad < chunks ? std::numeric_limits<float>::quiet_NaN() : amax;
}

// The first row in [r0, r1) whose abs_max is NaN (r1 if none).
int64_t first_bad_row(const float* y, int64_t r0, int64_t r1, int64_t cols, int64_t ld) {
  const auto& k = kernels::table().int8;
  for (int64_t r = r0; r < r1; ++r) {
    if (std::isnan(k.abs_max(y + r * ld, static_cast<std::size_t>(cols)))) return r;
  }
  return r1;
}

}  // namespace

float layer_norm_abs_max(const float* x, float* y, int64_t rows, int64_t cols, const float* gamma,
                         const float* beta, float eps, int threads, int64_t* bad_row) {
  OCTET_CHECK(rows >= 0 && cols >= 1);
  const auto& k = kernels::table();
  int64_t bad_start = -1, per_chunk = 1;
  const float amax = reduce_max_chunks(
      rows, cols, threads,
      [&](int64_t r0, int64_t r1) {
        k.fp32.layer_norm(x + r0 * cols, cols, y + r0 * cols, cols, r1 - r0, cols, gamma, beta,
                          eps);
        float m = 0.0f;
        for (int64_t r = r0; r < r1; ++r) {
          const float v = k.int8.abs_max(y + r * cols, static_cast<std::size_t>(cols));
          if (std::isnan(v)) return v;
          m = std::max(m, v);
        }
        return m;
      },
      &bad_start, &per_chunk);
  *bad_row = bad_start < 0
                 ? -1
                 : first_bad_row(y, bad_start, std::min(rows, bad_start + per_chunk), cols, cols);
  return amax;
}

float abs_max(const float* x, int64_t rows, int64_t cols, int64_t ld, int threads,
              int64_t* bad_row) {
  OCTET_CHECK(rows >= 0 && cols >= 1 && ld >= cols);
  const auto& k = kernels::table().int8;
  int64_t bad_start = -1, per_chunk = 1;
  const float amax = reduce_max_chunks(
      rows, cols, threads,
      [&](int64_t r0, int64_t r1) {
        float m = 0.0f;
        for (int64_t r = r0; r < r1; ++r) {
          const float v = k.abs_max(x + r * ld, static_cast<std::size_t>(cols));
          if (std::isnan(v)) return v;
          m = std::max(m, v);
        }
        return m;
      },
      &bad_start, &per_chunk);
  *bad_row = bad_start < 0
                 ? -1
                 : first_bad_row(x, bad_start, std::min(rows, bad_start + per_chunk), cols, ld);
  return amax;
}

void activation(io::Activation act, float* x, int64_t n, int threads) {
  const auto& k = kernels::table().fp32;
  kernels::UnaryF32Fn f = act == io::Activation::gelu        ? k.gelu_erf
                          : act == io::Activation::gelu_tanh ? k.gelu_tanh
                                                             : k.relu;
  parallel_chunks(n, kElementChunk, threads,
                  [&](int64_t b, int64_t e) { f(x + b, x + b, static_cast<std::size_t>(e - b)); });
}

void tanh_inplace(float* x, int64_t n, int threads) {
  const auto& k = kernels::table().fp32;
  parallel_chunks(n, kElementChunk, threads, [&](int64_t b, int64_t e) {
    k.tanh(x + b, x + b, static_cast<std::size_t>(e - b));
  });
}

std::size_t attention_scratch_per_thread(int64_t max_len, int64_t head_dim) {
  const auto t = static_cast<std::size_t>(max_len), d = static_cast<std::size_t>(head_dim);
  const std::size_t n =
      std::max(kernels::attention_scratch_floats(t, d), kernels::attention_s8_scratch_floats(t, d));
  return (n + 15) / 16 * 16;
}

void self_attention(const float* qkv, int64_t ld_qkv, std::span<const int64_t> offsets,
                    int64_t heads, int64_t head_dim, float* ctx, int64_t ld_ctx, float* scratch,
                    std::size_t scratch_per_thread, int threads, float* ctx_abs_max,
                    std::span<const int64_t> valid, bool int8) {
  OCTET_CHECK(offsets.size() >= 1);
  OCTET_CHECK(valid.empty() || valid.size() + 1 == offsets.size());
  const auto& k = kernels::table().fp32;
  const kernels::AttentionHeadS8Fn head_s8 = kernels::table().int8.attention_head_s8;
  float amax = 0.0f;
  int non_finite = 0;
  const int64_t batch = static_cast<int64_t>(offsets.size()) - 1;
  const int64_t hidden = heads * head_dim;
  const float scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
  const int64_t items = batch * heads;
  // One (sequence, head) pair per work item, dynamic scheduling because lengths differ, in
  // chunks of consecutive heads: within a chunk a thread knows its next item, whose Q, K, V rows
  // the kernel prefetches while it computes (next_q). A chunk is every head of a sequence on one
  // thread, fewer when that would leave threads without at least 4 chunks each.
  const int nthreads = std::max(1, threads);
  const int64_t chunk = std::max<int64_t>(
      1, nthreads == 1 ? heads : std::min<int64_t>(heads, items / (4 * nthreads)));
  // max |output| of one item (NaN if any output is NaN), from the kernel's tile stores.
  auto run_item = [&](int64_t item) {
    const int64_t b = item / heads, h = item % heads;
    const int64_t begin = offsets[b], rows = offsets[b + 1] - offsets[b];
    const int64_t t = valid.empty() ? rows : valid[b];
    OCTET_DCHECK(t <= rows && (t > 0 || rows == 0));
    float* my_scratch =
        scratch + static_cast<std::size_t>(omp_get_thread_num()) * scratch_per_thread;
    OCTET_DCHECK(kernels::attention_scratch_floats(t, head_dim) <= scratch_per_thread);
    const float* q = qkv + begin * ld_qkv + h * head_dim;
    float* out = ctx + begin * ld_ctx + h * head_dim;
    const bool next_in_chunk = (item + 1) % chunk != 0 && h + 1 < heads;
    if (int8) {
      OCTET_DCHECK(kernels::attention_s8_scratch_floats(rows, head_dim) <= scratch_per_thread);
      return head_s8(q, q + hidden, q + 2 * hidden, ld_qkv, static_cast<std::size_t>(rows),
                     static_cast<std::size_t>(t), static_cast<std::size_t>(head_dim), scale, out,
                     ld_ctx, my_scratch, next_in_chunk ? q + head_dim : nullptr);
    }
    return k.attention_head(q, q + hidden, q + 2 * hidden, ld_qkv, static_cast<std::size_t>(rows),
                            static_cast<std::size_t>(t), static_cast<std::size_t>(head_dim), scale,
                            out, ld_ctx, my_scratch, next_in_chunk ? q + head_dim : nullptr);
  };
  auto fold = [](float m, float& amax, int& non_finite) {
    if (std::isnan(m)) {
      non_finite = 1;
    } else {
      amax = std::max(amax, m);
    }
  };
  // One thread runs without a parallel region: libgomp allocates a team for every one-thread
  // region, and the steady state allocates nothing (tests/alloc).
  if (nthreads == 1) {
    for (int64_t item = 0; item < items; ++item) fold(run_item(item), amax, non_finite);
  } else {
#pragma omp parallel for num_threads(nthreads) schedule(dynamic, chunk) reduction(max     \
                                                                                  : amax) \
    reduction(max                                                                         \
              : non_finite)
    for (int64_t item = 0; item < items; ++item) fold(run_item(item), amax, non_finite);
  }
  if (ctx_abs_max != nullptr) {
    *ctx_abs_max = non_finite != 0 ? std::numeric_limits<float>::quiet_NaN() : amax;
  }
}

}  // namespace octet::ops
