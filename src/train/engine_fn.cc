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
