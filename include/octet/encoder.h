// octet::Encoder: the throughput runtime. Text (or token ids) in, model outputs out, in input
// order, with the batching and threading decided for you; the object to embed in a service.
//
//   octet::Encoder enc = octet::Encoder::load("models/sst2", {.precision = octet::Precision::fp32},
//                                             {.threads = 4});
//   std::vector<octet::TextInput> in = {{"a gripping film"}, {"dull", ""}, {"q?", "context"}};
//   octet::EncoderOutputs out = enc.encode(in);
//   float first_logit = out.logits[0];   // [in.size(), num_labels], row-major, input order
//
// What encode() does with N inputs:
//   1. tokenizes them (WordPiece; pairs with Hugging Face's longest-first truncation) to at most
//      max_seq_len tokens, on the worker threads;
//   2. sorts them by token count (stable; sort_by_length = false keeps input order, for
//      measuring what sorting buys);
//   3. cuts the order into batches greedily: a batch takes sequences while
//      (sequences in the batch) x (its longest sequence) <= max_batch_tokens and the count stays
//      <= max_batch_size (a single sequence always fits). The cost is counted as if padded to the
//      batch's longest sequence, which is what padded engines pay; Octet's engine by default
//      does not pad (BertModel packs the valid tokens of a batch back to back and runs
//      attention per sequence), so the budget bounds the activation working set and sorting
//      buys little; padding = Padding::longest runs the padded layout instead (a baseline);
//   4. runs the batches on `workers` threads at once, each batch with `intra_threads` OpenMP
//      threads inside the model (workers x intra_threads <= threads); batches are taken
//      longest-first from a shared counter, so the tail is short;
//   5. writes each sequence's outputs at its input index.
// The budget is also capped at an equal share of the call's tokens per worker, so that a call
// with few inputs (a benchmark batch of 8) is still split across every worker.
// Automatic threading (workers = intra_threads = 0): workers = threads with one intra-op thread
// each for threads <= 8 (independent batches scale best: no barrier per layer), else
// intra_threads = 4 and workers = threads / 4 (bounded workspace memory on large machines); and
// per call, when there are fewer batches than workers, the idle workers' threads go to the
// running batches as intra-op threads (OpenMP over GEMM blocks, attention heads and rows): a
// single batch on 2 threads runs as 1 worker x 2 intra-op threads (stats().workers_used,
// intra_threads_used). Outputs do not depend on the split (bit-identical; tested). Set both
// explicitly to fix the split (workers = 1, intra_threads = threads: lowest latency).
//
// Memory: every buffer the runtime owns (token arena, order and batch tables, per-worker
// sequence views, the output arrays when the caller reuses an EncoderOutputs) is kept across
// calls and only grows; stats().arena_growths counts the growths, so a steady state of
// same-sized calls shows none after the first. The model keeps its own per-call workspaces
// (BertModel's pool); BertModel::forward still returns its small outputs in fresh vectors and
// the tokenizer returns fresh Encodings: those allocations are outside the runtime. load()
// returns the heap pages freed while loading to the OS (malloc_trim), so that resident memory
// after load is what the model keeps.
//
// Precision: whatever BertLoadOptions ask (fp32, int8_dynamic) or the directory holds (a quantized
// directory written by `octet quantize` loads as int8_static). With int8_dynamic the activation
// scale is taken per batch, so a sequence's INT8 outputs vary slightly with its batch mates;
// FP32 outputs do not depend on batching beyond float rounding of the GEMM blocking.
//
// Errors: InvalidArgument for bad options (naming the field, expected and found), an empty token
// sequence or a token id outside the vocabulary (naming the input index); DataError for non-UTF-8
// text (naming the input index); load errors as BertModel::load. A failed call leaves the Encoder
// usable.
//
// Threading: encode() may be called from one thread at a time per Encoder (calls are serialised
// by an internal mutex); the Encoder owns its worker threads, started at construction and joined
// at destruction. Movable, not copyable.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string_view>
#include <vector>

#include "octet/model.h"

namespace octet {

namespace text {
class WordPieceTokenizer;
}

struct EncoderOptions {
  // Tokens per sequence, specials included; 0: 128, or max_position_embeddings if smaller.
  std::size_t max_seq_len = 0;
  // Batch cost bound: sequences x longest sequence (padded-equivalent tokens).
  std::size_t max_batch_tokens = 4096;
  std::size_t max_batch_size = 64;
  bool sort_by_length = true;
  // Padding::none (default): the engine packs each batch (no padding is computed).
  // Padding::longest: pad each batch to its longest sequence, as padded engines do; a baseline
  // for measuring what packing and sorting buy (octet/model.h Padding).
  Padding padding = Padding::none;
  // Total threads; 0: all cores (omp_get_max_threads()).
  int threads = 0;
  // Concurrent batches and OpenMP threads per batch; both 0: automatic (see above). Setting one
  // and leaving the other 0 gives the other threads / the one (at least 1).
  int workers = 0;
  int intra_threads = 0;
  BertOutputKind outputs = BertOutputKind::logits;
};

// One example: a single text, or a pair when text_b is non-empty. Views must outlive encode().
struct TextInput {
  std::string_view text_a;
  std::string_view text_b = {};
};

struct EncoderOutputs {
  int64_t count = 0;  // number of inputs
  int64_t hidden_size = 0;
  int64_t num_labels = 0;
  std::vector<float> logits;                    // [count, num_labels] if requested
  std::vector<float> pooled;                    // [count, hidden_size] if requested
  std::vector<float> mean_pooled;               // [count, hidden_size] if requested
  std::vector<std::vector<float>> last_hidden;  // count arrays [T_i, hidden_size] if requested
  std::vector<int32_t> lengths;                 // tokens per input after truncation
};

// What the last encode() call did (for tests, logs and the bench command).
struct EncoderStats {
  int64_t sequences = 0;
  int64_t batches = 0;
  int64_t tokens = 0;         // valid tokens run
  int64_t padded_tokens = 0;  // sum over batches of size x longest: what a padded engine runs
  int64_t run_tokens = 0;     // rows the model ran: tokens (packed) or padded_tokens (longest)
  int64_t truncated = 0;      // inputs cut to max_seq_len
  // The thread split the call ran with: workers that had a batch, and the OpenMP threads of the
  // first of them (automatic split: threads / workers_used).
  int workers_used = 0;
  int intra_threads_used = 0;
  // Cumulative over the Encoder's life: how many times a runtime-owned buffer had to grow.
  int64_t arena_growths = 0;
  double tokenize_seconds = 0, run_seconds = 0;
};

class Encoder {
 public:
  // Loads the model (BertModel::load, with model_options.threads replaced by the intra-op thread
  // count) and dir/vocab.txt.
  static Encoder load(const std::filesystem::path& dir, BertLoadOptions model_options = {},
                      EncoderOptions options = {});

  Encoder(Encoder&&) noexcept;
  Encoder& operator=(Encoder&&) noexcept;
  ~Encoder();

  // Texts in, outputs in input order. An empty span gives count = 0 and empty arrays.
  EncoderOutputs encode(std::span<const TextInput> inputs);
  // The same, reusing `out`'s storage (no allocation once it is large enough).
  void encode(std::span<const TextInput> inputs, EncoderOutputs& out);
  // Already tokenized inputs (token_type_ids may be empty). A sequence longer than max_seq_len
  // keeps its first max_seq_len - 1 tokens and its last token (the final [SEP]).
  void encode_tokens(std::span<const BertSequence> inputs, EncoderOutputs& out);

  const BertModel& model() const;
  const text::WordPieceTokenizer& tokenizer() const;
  const EncoderOptions& options() const;  // resolved: max_seq_len, threads, workers, intra
  const EncoderStats& stats() const;

 private:
  struct Impl;
  explicit Encoder(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace octet
