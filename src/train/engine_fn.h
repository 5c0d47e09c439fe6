// The engine inside libtorch autograd: a value computed by Octet's inference code, with the
// gradient of an FP32 "surrogate" (the straight-through estimator). Shared by the two forward
// passes that compute what an exported model computes: QatBert's (Q8BERT, train/qat.h) and
// IntegerQatBert's (I-BERT, train/integer_qat.h).
//
//   torch::Tensor y = attach(grad, [&] { return torch::tanh(x); },          // surrogate
//                            [&] { return engine_tanh(x); });                // the engine's value
//   // forward: the engine's value; backward: the gradient goes unchanged to tanh(x).
//
// A GEMM needs no surrogate forward pass: `attach_linear` returns the engine's act(x w^T + b) and
// back-propagates through the fake-quantized operands it is given (x_fq, w_fq: autograd
// expressions, their straight-through estimators included), so the FP32 product is never formed.
//
// Batches are padded at the end of each row (attention_mask 1 on a prefix): padded_lengths
// checks it and returns each row's token count. Not thread-safe (like the modules).
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <string_view>
#include <vector>

namespace octet::train {

// The engine's result, computed when the autograd function runs.
using EngineCall = std::function<torch::Tensor()>;

// Forward: `call`'s float tensor, which must have the surrogate's shape (Error otherwise: an
// internal fault). Backward: the incoming gradient goes unchanged to `surrogate`.
class EngineFn : public torch::autograd::Function<EngineFn> {
 public:
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, torch::Tensor surrogate,
                               EngineCall call);
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads);
};

// The engine value, attached to the surrogate's graph when gradients are recorded (`grad`); the
// surrogate is not evaluated otherwise.
torch::Tensor attach(bool grad, const std::function<torch::Tensor()>& surrogate, EngineCall call);

// The engine's GEMM, and its pre-activation when it has an activation (undefined otherwise).
struct LinearOut {
  torch::Tensor value, pre;
};
using LinearCall = std::function<LinearOut()>;

// What follows the GEMM (the backward pass differentiates it at the engine's pre-activation).
enum class LinearAct : int { none, gelu, gelu_tanh, relu };

// Forward: `call`'s value, [..., n] for x_fq [..., k] and w_fq [n, k] (Error otherwise: an
// internal fault). Backward: the gradients of act(x_fq w_fq^T + b) for x_fq, w_fq and b, with
// act' taken at `pre`.
class LinearFn : public torch::autograd::Function<LinearFn> {
 public:
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, torch::Tensor x_fq,
                               torch::Tensor w_fq, torch::Tensor b, LinearAct act, LinearCall call);
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads);
};

// The engine's value with LinearFn's gradient when gradients are recorded (`grad`); the operands
// are not evaluated otherwise.
torch::Tensor attach_linear(bool grad, const std::function<torch::Tensor()>& x_fq,
                            const std::function<torch::Tensor()>& w_fq, const torch::Tensor& b,
                            LinearAct act, const LinearCall& call);

// Each row's token count from an attention mask [B, T] (1 = token, 0 = padding) that must be 1 on
// a non-empty prefix of every row; InvalidArgument names `what`, the row and the position.
std::vector<int64_t> padded_lengths(const torch::Tensor& attention_mask, std::string_view what);

// ids [B, T] and token types as int32 vectors (the engine's), checked against the table sizes;
// InvalidArgument names `what`, the row and the token.
void engine_ids(const torch::Tensor& input_ids, const torch::Tensor& token_type_ids, int64_t vocab,
                int64_t type_vocab, std::string_view what, std::vector<int32_t>& ids,
                std::vector<int32_t>& types);

}  // namespace octet::train
