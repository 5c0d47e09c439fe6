#include "train/engine_fn.h"

#include <fmt/format.h>

#include <utility>

#include "octet/error.h"

namespace octet::train {

torch::Tensor EngineFn::forward(torch::autograd::AutogradContext*, torch::Tensor surrogate,
                                EngineCall call) {
  torch::Tensor v = call();
  if (v.sizes() != surrogate.sizes() || v.scalar_type() != torch::kFloat)
    throw Error(fmt::format("engine forward: result {} {} for a surrogate {} (internal)",
                            c10::toString(v.scalar_type()), c10::str(v.sizes()),
                            c10::str(surrogate.sizes())));
  return v;
}

torch::autograd::variable_list EngineFn::backward(torch::autograd::AutogradContext*,
                                                  torch::autograd::variable_list grads) {
  return {grads[0], torch::Tensor()};
}

torch::Tensor attach(bool grad, const std::function<torch::Tensor()>& surrogate, EngineCall call) {
  if (!grad) return call();
  return EngineFn::apply(surrogate(), std::move(call));
}

torch::Tensor LinearFn::forward(torch::autograd::AutogradContext* ctx, torch::Tensor x_fq,
                                torch::Tensor w_fq, torch::Tensor b, LinearAct act,
                                LinearCall call) {
  LinearOut out = call();
  std::vector<int64_t> shape = x_fq.sizes().vec();
  const bool ok = w_fq.dim() == 2 && !shape.empty() && shape.back() == w_fq.size(1) &&
                  b.dim() == 1 && b.size(0) == w_fq.size(0);
  if (ok) shape.back() = w_fq.size(0);
  if (!ok || out.value.sizes() != shape || out.value.scalar_type() != torch::kFloat ||
      (act != LinearAct::none && (!out.pre.defined() || out.pre.sizes() != shape)))
    throw Error(fmt::format("engine linear: result {} for x {} and w {} (internal)",
                            c10::str(out.value.sizes()), c10::str(x_fq.sizes()),
                            c10::str(w_fq.sizes())));
  ctx->saved_data["act"] = static_cast<int64_t>(act);
  ctx->save_for_backward({x_fq, w_fq, act == LinearAct::none ? torch::Tensor() : out.pre});
  return out.value;
}

torch::autograd::variable_list LinearFn::backward(torch::autograd::AutogradContext* ctx,
                                                  torch::autograd::variable_list grads) {
  const torch::autograd::variable_list s = ctx->get_saved_variables();
  const torch::Tensor &x = s[0], &w = s[1], &pre = s[2];
  torch::Tensor g = grads[0];
  switch (static_cast<LinearAct>(ctx->saved_data["act"].toInt())) {
    case LinearAct::none:
      break;
    case LinearAct::gelu:
      g = at::gelu_backward(g, pre, "none");
      break;
    case LinearAct::gelu_tanh:
      g = at::gelu_backward(g, pre, "tanh");
      break;
    case LinearAct::relu:
      g = g * pre.gt(0).to(g.scalar_type());
      break;
  }
  const int64_t n = w.size(0), k = w.size(1);
  const torch::Tensor g2 = g.reshape({-1, n});
  return {g2.mm(w).reshape(x.sizes()), g2.t().mm(x.reshape({-1, k})), g2.sum(0), torch::Tensor(),
          torch::Tensor()};
}

torch::Tensor attach_linear(bool grad, const std::function<torch::Tensor()>& x_fq,
                            const std::function<torch::Tensor()>& w_fq, const torch::Tensor& b,
                            LinearAct act, const LinearCall& call) {
  if (!grad) return call().value;
  return LinearFn::apply(x_fq(), w_fq(), b, act, call);
}

std::vector<int64_t> padded_lengths(const torch::Tensor& attention_mask, std::string_view what) {
  const torch::Tensor m = attention_mask.to(torch::kLong).contiguous();
  const int64_t B = m.size(0), T = m.size(1);
  std::vector<int64_t> len(B);
  for (int64_t b = 0; b < B; ++b) {
    const int64_t* row = m.data_ptr<int64_t>() + b * T;
    int64_t n = 0;
    while (n < T && row[n] != 0) ++n;
    for (int64_t j = n; j < T; ++j)
      if (row[j] != 0)
        throw InvalidArgument(
            fmt::format("{}: attention_mask row {} has a token at {} after padding at {}: the "
                        "engine runs unpadded prefixes",
                        what, b, j, n));
    if (n == 0)
      throw InvalidArgument(fmt::format("{}: attention_mask row {} is all padding", what, b));
    len[b] = n;
  }
  return len;
}

void engine_ids(const torch::Tensor& input_ids, const torch::Tensor& token_type_ids, int64_t vocab,
                int64_t type_vocab, std::string_view what, std::vector<int32_t>& ids,
                std::vector<int32_t>& types) {
  const torch::Tensor i = input_ids.to(torch::kLong).contiguous();
  const torch::Tensor t = token_type_ids.to(torch::kLong).contiguous();
  const int64_t T = i.size(1), n = i.numel();
  ids.resize(n);
  types.resize(n);
  for (int64_t k = 0; k < n; ++k) {
    const int64_t id = i.data_ptr<int64_t>()[k], tt = t.data_ptr<int64_t>()[k];
    if (id < 0 || id >= vocab || tt < 0 || tt >= type_vocab)
      throw InvalidArgument(
          fmt::format("{}: token {} of row {}: id {} / type {} outside [0, {}) / [0, {})", what,
                      k % T, k / T, id, tt, vocab, type_vocab));
    ids[k] = static_cast<int32_t>(id);
    types[k] = static_cast<int32_t>(tt);
  }
}

}  // namespace octet::train
