// Optimiser set-up shared by pretraining and fine-tuning: AdamW with BERT's weight-decay
// exclusions, the linear warm-up / linear decay learning-rate schedule, and thread settings.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <memory>

namespace octet::train {

struct AdamWSettings {
  double lr = 5e-5;  // peak learning rate
  double weight_decay = 0.01;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-6;
};

// AdamW over every trainable parameter of `module`, in two groups: weight decay on matrices,
// none on biases and LayerNorm parameters (names ending in "bias" or containing "LayerNorm"),
// as in BERT and Hugging Face's run_glue / run_mlm.
std::unique_ptr<torch::optim::AdamW> make_adamw(torch::nn::Module& module, const AdamWSettings& s);

// Learning rate at `step` (0-based): linear warm-up from 0 to `peak` over `warmup` steps, then
// linear decay to 0 at `total` steps (Hugging Face's get_linear_schedule_with_warmup).
double linear_warmup_decay(int64_t step, int64_t warmup, int64_t total, double peak);

// Sets the learning rate of every parameter group of an AdamW optimiser.
void set_learning_rate(torch::optim::AdamW& optimizer, double lr);

// Intra-op threads for libtorch (0 = all cores); one inter-op thread. Also keeps the memory
// libtorch frees inside the process (glibc: no mmap for large blocks, no trimming of the heap):
// a training step allocates and frees the same large activation and gradient buffers every step,
// and with glibc's defaults each of them goes back to the kernel and is faulted in again, zeroed,
// on the next step (a quarter of a BERT-mini pretraining step on one core was page clearing).
void set_torch_threads(int threads);

}  // namespace octet::train
