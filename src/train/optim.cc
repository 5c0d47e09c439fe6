#include "train/optim.h"

#include <ATen/Parallel.h>
#include <malloc.h>
#include <omp.h>

#include <string>
#include <vector>

#include "octet/error.h"

namespace octet::train {

std::unique_ptr<torch::optim::AdamW> make_adamw(torch::nn::Module& module, const AdamWSettings& s) {
  std::vector<torch::Tensor> decay, no_decay;
  for (const auto& p : module.named_parameters(/*recurse=*/true)) {
    if (!p.value().requires_grad()) continue;
    const std::string& name = p.key();
    const bool exempt = name.ends_with("bias") || name.find("LayerNorm") != std::string::npos;
    (exempt ? no_decay : decay).push_back(p.value());
  }
  auto options = [&](double wd) {
    auto o = std::make_unique<torch::optim::AdamWOptions>(s.lr);
    o->betas({s.beta1, s.beta2}).eps(s.eps).weight_decay(wd);
    return o;
  };
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(decay, options(s.weight_decay));
  groups.emplace_back(no_decay, options(0.0));
  return std::make_unique<torch::optim::AdamW>(groups, torch::optim::AdamWOptions(s.lr));
}

double linear_warmup_decay(int64_t step, int64_t warmup, int64_t total, double peak) {
  if (total <= 0) throw InvalidArgument("linear_warmup_decay: total steps must be positive");
  if (step < warmup) return peak * static_cast<double>(step + 1) / static_cast<double>(warmup);
  const int64_t rest = total - warmup;
  if (rest <= 0) return peak;
  const double left = static_cast<double>(total - step) / static_cast<double>(rest);
  return peak * std::max(0.0, left);
}

void set_learning_rate(torch::optim::AdamW& optimizer, double lr) {
  for (auto& group : optimizer.param_groups())
    static_cast<torch::optim::AdamWOptions&>(group.options()).lr(lr);
}

void set_torch_threads(int threads) {
  if (threads < 0) throw InvalidArgument("--threads must be >= 0");
  const int n = threads == 0 ? omp_get_num_procs() : threads;
  torch::set_num_threads(n);
  omp_set_num_threads(n);
  static bool interop_set = false;
  if (!interop_set) {
    at::set_num_interop_threads(1);
    // Keep freed memory in the process (see optim.h). Failure only costs speed.
    mallopt(M_MMAP_MAX, 0);
    mallopt(M_TRIM_THRESHOLD, 1 << 30);
    mallopt(M_TOP_PAD, 64 << 20);
    interop_set = true;
  }
}

}  // namespace octet::train
