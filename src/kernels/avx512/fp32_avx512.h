// The avx512 FP32 row kernels (contracts in kernels/fp32.h), mapped into the table by dispatch.cc.
#pragma once

#include <cstddef>

namespace octet::kernels::avx512 {

void exp_f32(const float* x, float* y, std::size_t n);
void erf_f32(const float* x, float* y, std::size_t n);
void tanh_f32(const float* x, float* y, std::size_t n);
void gelu_erf_f32(const float* x, float* y, std::size_t n);
void gelu_tanh_f32(const float* x, float* y, std::size_t n);
void relu_f32(const float* x, float* y, std::size_t n);
void layer_norm_f32(const float* x, std::size_t ld_x, float* y, std::size_t ld_y, std::size_t rows,
                    std::size_t cols, const float* gamma, const float* beta, float eps);
void softmax_f32(float* x, std::size_t ld, std::size_t rows, std::size_t cols, std::size_t valid,
                 float scale);
float attention_head_f32(const float* q, const float* k, const float* v, std::size_t ld_qkv,
                         std::size_t rows, std::size_t t, std::size_t d, float scale, float* out,
                         std::size_t ld_out, float* scratch, const float* next_q);

}  // namespace octet::kernels::avx512
