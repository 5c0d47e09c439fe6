// Masked-language-model pretraining of a BERT (`octet pretrain`): packed corpus sequences,
// dynamic masking, AdamW with linear warm-up and decay, gradient clipping, resumable
// checkpoints, deterministic in the seed, and progress with tokens per second.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "io/bert_config.h"
#include "train/corpus.h"
#include "train/optim.h"

namespace octet::train {

enum class PositionInit { normal, sinusoidal, local };
const char* position_init_name(PositionInit p);                          // "normal", ...
std::optional<PositionInit> parse_position_init(std::string_view name);  // nullopt if unknown

struct PretrainOptions {
  std::vector<std::filesystem::path> corpus;  // corpus files (see corpus_files)
  std::filesystem::path vocab;                // vocab.txt (uncased BERT vocabulary)
  io::BertConfig config;                      // architecture; vocab_size must match the vocab
  std::filesystem::path out;                  // output model directory
  int64_t batch_size = 64;                    // sequences per step
  int32_t seq_len = 128;
  int64_t max_steps = 1000;
  double warmup_ratio = 0.06;
  AdamWSettings adamw{.lr = 5e-4, .weight_decay = 0.01, .beta1 = 0.9, .beta2 = 0.98, .eps = 1e-6};
  double clip_norm = 1.0;
  MaskingOptions masking;
  uint64_t seed = 42;
  int threads = 0;
  int64_t log_every = 20;
  int64_t eval_every = 200;      // held-out MLM loss / accuracy; 0 = only at the end
  int64_t save_every = 200;      // resumable checkpoint; 0 = only at the end
  int64_t eval_sequences = 256;  // held out from the end of the corpus, never trained on
  double max_minutes = 0;        // stop (checkpoint and model saved) after this much training time
  int64_t stop_at_step = 0;      // > 0: stop after this step as if interrupted (checkpoint saved)
  bool resume = false;           // continue from <out>/checkpoint if present
  bool f16 = false;              // write the final model.safetensors as F16
  bool bf16 = false;             // bfloat16 matrix products (mixed precision, bert_torch.h)
  // Initial position embeddings: Hugging Face's N(0, initializer_range), or sinusoids (Vaswani et
  // al.) scaled to the same standard deviation, which put relative offsets in the embeddings from
  // the first step; or `local`: init_local_positions plus add_local_attention (bert_torch.h) with
  // local_attention_gain, heads that start attending to their neighbours. The architecture
  // (learned absolute positions, Hugging Face's BERT) is the same in every case.
  PositionInit position_init = PositionInit::normal;
  double local_attention_gain = 2.0;
  double qk_identity_gain = 0;  // > 0: add_identity_to_query_key (bert_torch.h) at the start
  int64_t benchmark_steps = 0;  // > 0: time this many steps, print tokens/s, write nothing
  std::string command_line;     // recorded in the log
};

struct PretrainStepLog {
  int64_t step = 0;
  double loss = 0, mlm_accuracy = 0, lr = 0, tokens_per_second = 0, elapsed_seconds = 0;
};

struct PretrainResult {
  int64_t steps_done = 0;
  int64_t tokens_seen = 0;  // sequences x seq_len over all steps (including before a resume)
  double train_seconds = 0;
  double tokens_per_second = 0;
  double eval_loss = 0, eval_accuracy = 0;  // held-out MLM, at the end
  bool stopped_by_time = false;
};

// Runs (or resumes) pretraining; writes <out>/config.json, model.safetensors, vocab.txt,
// pretrain_log.json and <out>/checkpoint/ (model.pt, optimizer.pt, state.json). Progress lines go
// to `log` (one line per call, no newline).
PretrainResult pretrain(const PretrainOptions& options,
                        const std::function<void(const std::string&)>& log);

}  // namespace octet::train
