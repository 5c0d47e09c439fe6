// FP32 operators of the BERT forward pass over packed token matrices: shape checks, work
// splitting over OpenMP threads, and calls into the kernel table (kernels/fp32.h).
//
// A packed batch holds the valid tokens of B sequences back to back: rows
// [offsets[b], offsets[b + 1]) of every [tokens, width] activation belong to sequence b. Nothing
// is padded, so the per-row operators need no mask and attention runs per sequence.
// All functions parallelise with `threads` OpenMP threads and never allocate; the attention
// scratch is supplied by the caller (attention_scratch_floats(max_len, head_dim) per thread).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "io/bert_config.h"

namespace octet::ops {

// y = LayerNorm(x) row-wise over `cols` (in place allowed).
void layer_norm(const float* x, float* y, int64_t rows, int64_t cols, const float* gamma,
                const float* beta, float eps, int threads);

// layer_norm, and returns max |y| over all rows, taken chunk by chunk right after each chunk is
// normalised (still in cache): the range a dynamic INT8 quantization of y needs, without another
// pass over y. If a row of y holds a NaN or an infinity, returns NaN and sets *bad_row to the
// first such row (else *bad_row = -1).
float layer_norm_abs_max(const float* x, float* y, int64_t rows, int64_t cols, const float* gamma,
                         const float* beta, float eps, int threads, int64_t* bad_row);

// max |x| over rows x cols (row stride ld), rows split over `threads`; NaN and *bad_row = the
// first row holding a NaN or an infinity (else *bad_row = -1). Bit for bit the maximum of
// kernels' abs_max per row, whatever the thread count.
float abs_max(const float* x, int64_t rows, int64_t cols, int64_t ld, int threads,
              int64_t* bad_row);

// x = act(x) elementwise over n values (erf GELU, tanh GELU or ReLU).
void activation(io::Activation act, float* x, int64_t n, int threads);

// x = tanh(x) elementwise.
void tanh_inplace(float* x, int64_t n, int threads);

// Multi-head self-attention over a packed batch. qkv: [tokens, 3 * heads * head_dim] with
// row stride ld_qkv: Q, K, V of head h at columns h*d, H + h*d, 2H + h*d (H = heads * d).
// ctx: [tokens, H] with row stride ld_ctx, head h at columns h*d. `offsets` has B + 1 entries.
// scratch: threads * scratch_per_thread floats, scratch_per_thread >=
// kernels::attention_scratch_floats(longest sequence, head_dim), 64-byte aligned slices.
// ctx_abs_max: if not null, receives max |ctx| over the written values, taken per (sequence,
// head) right after each is computed (still in cache): the range of a dynamic INT8 quantization
// of ctx without another pass; NaN if any value is not finite.
// valid: empty (packed batch), or B entries, sequence b's count of valid tokens, the first ones of
// its rows (a batch padded to its longest sequence): every row of b attends to those keys only.
// int8: the two matmuls on int8 codes with int32 accumulation (kernels::Int8Kernels::
// attention_head_s8: dynamic per-row Q, per-key K, per-channel V steps, u8 probabilities;
// Bhandare et al.) instead of FP32.
void self_attention(const float* qkv, int64_t ld_qkv, std::span<const int64_t> offsets,
                    int64_t heads, int64_t head_dim, float* ctx, int64_t ld_ctx, float* scratch,
                    std::size_t scratch_per_thread, int threads, float* ctx_abs_max = nullptr,
                    std::span<const int64_t> valid = {}, bool int8 = false);

// Scratch floats per thread for self_attention, rounded up to whole 64-byte lines.
std::size_t attention_scratch_per_thread(int64_t max_len, int64_t head_dim);

}  // namespace octet::ops
