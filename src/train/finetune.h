// Fine-tuning a BERT on a GLUE task: the library behind `octet finetune`.
//
//   octet::train::FinetuneOptions o;
//   o.model_dir = "models/octet-bert-mini-uncased";     // pretrained encoder (or a classifier)
//   o.task = octet::data::Task::mrpc;
//   o.train_file = ".../MRPC/train.tsv";  o.dev_file = ".../MRPC/dev.tsv";  o.out_dir = "out/mrpc";
//   FinetuneResult r = octet::train::finetune(o, [](const FinetuneProgress& p) { ... });
//   r.engine_dev.main_value();   // the best checkpoint's dev metric as Octet's engine computes it
//
// What it does: tokenizes the train and dev files with the model's WordPiece vocabulary (pairs
// for pair tasks, truncated longest-first to max_seq_len), puts a head on the encoder for the
// task (classification with cross-entropy over TaskSpec::num_labels, or regression with the mean
// squared error for STS-B), and trains with AdamW (no weight decay on biases and LayerNorm),
// linear warm-up then linear decay of the learning rate, gradient clipping by global norm and
// the dropout rates of the model's config. Each epoch visits the training examples in an order
// shuffled with the seed, in batches padded to their longest sequence (attention mask on the
// padding). After each epoch it evaluates on dev with the task's GLUE metrics and, when the
// task's main metric improved (NaN counts as worst), saves the model to out_dir
// (save_pretrained: config.json with num_labels / id2label / problem_type set for the task,
// model.safetensors, vocab.txt, and tokenizer_config.json if the source had one). train_log.json
// in out_dir is rewritten (atomically) after every epoch. At the end, the best checkpoint is
// loaded by Octet's inference engine (octet::BertModel) and evaluated on dev again: that figure
// (engine_dev) is the one `octet eval --model out_dir` reproduces and the one to report.
//
// Initialisation: InitMode::pretrained loads model_dir with load_pretrained (an encoder-only
// checkpoint gets a fresh head; a checkpoint whose head does not fit the task is an
// InvalidArgument unless new_head is set). InitMode::random builds the same architecture with
// Hugging Face's random initialisation, from model_dir's config.json and vocab.txt (weights unused)
// or from config_file + vocab_file: the baseline that shows what pretraining brings.
//
// Determinism: the classifier's initialisation and dropout draw from libtorch's generator, seeded
// with `seed` (torch::manual_seed) before the model is built; the example order comes from a
// generator of Octet's own (splitmix64 / Fisher-Yates, identical on every platform). The same
// options with the same `threads` give bit-identical losses and checkpoints on one machine;
// another thread count may change float summation order in libtorch's kernels and so the last
// bits of the results.
//
// Errors: bad option values and a head / task mismatch -> InvalidArgument; unreadable or
// malformed files -> IoError / DataError / ModelFormatError naming the file; a loss that becomes
// NaN or infinite -> octet::Error naming the step (learning rate too high?).
// Threading: finetune() sets libtorch's and OpenMP's thread counts for the process.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "data/glue.h"
#include "eval/metrics.h"
#include "train/bert_torch.h"
#include "train/integer_qat.h"
#include "train/qat.h"

namespace octet::train {

enum class InitMode { pretrained, random };

struct FinetuneOptions {
  // Pretrained encoder or classifier directory (config.json, model.safetensors, vocab.txt); with
  // InitMode::random, only its config.json and vocab.txt are read (unless config_file is set).
  std::filesystem::path model_dir;
  InitMode init = InitMode::pretrained;
  // InitMode::random without model_dir: the architecture's config.json and the vocab.txt to use.
  std::filesystem::path config_file;
  std::filesystem::path vocab_file;

  data::Task task = data::Task::sst2;
  std::filesystem::path train_file;
  std::filesystem::path dev_file;
  std::filesystem::path out_dir;
  // A directory that already holds a model.safetensors or train_log.json is refused unless set.
  bool overwrite = false;
  // InitMode::pretrained: discard the checkpoint's classifier (if any) and start a fresh head of
  // the task's size, as Hugging Face's ignore_mismatched_sizes; e.g. to move an SST-2 model to
  // STS-B. Without it a head that does not fit the task is an error.
  bool new_head = false;

  int epochs = 3;
  int64_t batch_size = 32;
  int64_t eval_batch_size = 64;
  // Peak learning rate. 1e-4 suits small BERTs (L <= 4, H <= 256); BERT-base prefers 2e-5..5e-5.
  double lr = 1e-4;
  double warmup_ratio = 0.1;  // warm-up steps = ceil(ratio * total steps), as Hugging Face
  double weight_decay = 0.01;
  double max_grad_norm = 1.0;  // 0 disables clipping
  int64_t max_seq_len = 128;   // tokens per example, [CLS]/[SEP] included
  uint64_t seed = 42;
  int threads = 0;  // 0: all cores
  // Train on the first N examples of train_file only (0: all), for smoke tests and slices.
  int64_t max_train_examples = 0;
  SaveDType dtype = SaveDType::F32;
  // Evaluate the saved best checkpoint with Octet's engine at the end (engine_dev).
  bool engine_eval = true;
  // Quantization-aware fine-tuning (train/qat.h) when qat.enabled: the training and dev forward
  // passes are fake-quantized, and out_dir receives the INT8 model (the format of `octet
  // quantize`, EMA ranges as static scales) with the FP32 weights in out_dir/fp32/. An epoch is
  // saved only once every quantizer has observed a batch (the head starts at
  // qat.head_start_step). Needs dtype F32. With qat.mode == QatMode::integer_only the forward
  // passes are the integer-only engine's (train/integer_qat.h) and out_dir receives the
  // integer-only model (the format of `octet quantize --mode integer-only`).
  QatOptions qat;
};

struct EpochRecord {
  int epoch = 0;            // 1-based
  double train_loss = 0;    // mean over the epoch's steps
  eval::MetricResult dev;   // libtorch forward pass, eval mode
  double seconds = 0;       // training time of the epoch (evaluation excluded)
  double eval_seconds = 0;  // dev evaluation time
  double examples_per_second = 0;
  bool saved = false;  // the dev main metric improved and the checkpoint was written
};

// Reported to the callback after every optimiser step and at the end of every epoch.
struct FinetuneProgress {
  enum class Kind { step, epoch };
  Kind kind = Kind::step;
  int epoch = 0;  // 1-based
  int epochs = 0;
  int64_t step = 0;  // optimiser steps done so far (all epochs)
  int64_t total_steps = 0;
  double loss = 0;  // this step's loss (Kind::step) or the epoch's mean (Kind::epoch)
  double lr = 0;    // learning rate used by this step
  double examples_per_second = 0;       // training throughput so far
  double eta_seconds = 0;               // remaining training time (evaluation excluded)
  const EpochRecord* record = nullptr;  // Kind::epoch only
};
using FinetuneCallback = std::function<void(const FinetuneProgress&)>;

// The saved checkpoint's dev logits in Octet's engine against the training pass's (libtorch, for
// QAT its fake-quantized forward) at the kept epoch, example by example.
struct EngineParity {
  int64_t examples = 0;            // 0: not measured (engine_eval off)
  int64_t predictions_agree = -1;  // classification; -1 for a regression task
  double max_abs_logit_diff = 0;   // over every logit
  double mean_abs_logit_diff = 0;
  double max_disagreeing_margin = 0;  // largest libtorch top-1 minus top-2 logit among the
                                      // examples whose predictions differ (0 if none)
};

struct FinetuneResult {
  std::vector<double> step_losses;  // every optimiser step's training loss, in order
  std::vector<EpochRecord> epochs;
  int best_epoch = 0;             // 1-based; the epoch whose checkpoint is in out_dir
  eval::MetricResult best_dev;    // libtorch's dev metrics of the best epoch
  eval::MetricResult engine_dev;  // Octet's engine on the saved checkpoint (if engine_eval)
  EngineParity engine_parity;     // the engine against libtorch on dev (if engine_eval)
  int64_t train_examples = 0, dev_examples = 0;
  int64_t steps_per_epoch = 0, total_steps = 0, warmup_steps = 0;
  double seconds = 0;                          // wall time of the whole call
  std::vector<std::string> newly_initialized;  // parameters not found in the checkpoint
};

// Checks the option values that need no file (epochs, sizes, rates, paths given), so that usage
// errors come before any file is read. Throws InvalidArgument naming the option.
void check_finetune_options(const FinetuneOptions& options);

FinetuneResult finetune(const FinetuneOptions& options, const FinetuneCallback& progress = {});

// The task's head in a config: num_labels, id2label (the task's label names, or "LABEL_0" for
// STS-B) and problem_type, plus "finetuning_task" and "architectures" for Hugging Face.
void set_task_head(io::BertConfig& config, data::Task task);

}  // namespace octet::train
