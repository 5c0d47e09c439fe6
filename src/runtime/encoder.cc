// octet::Encoder (include/octet/encoder.h): tokenize on the pool, plan length-sorted batches
// under a token budget, run them on the pool, scatter the outputs back to input order.
#include "octet/encoder.h"

#include <fmt/format.h>
#include <malloc.h>
#include <omp.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <functional>
#include <mutex>
#include <utility>

#include "io/bert_config.h"
#include "models/bert.h"
#include "octet/error.h"
#include "runtime/batching.h"
#include "runtime/thread_pool.h"
#include "text/wordpiece.h"

namespace octet {

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Resolves threads / workers / intra_threads (see the header) or throws InvalidArgument. Returns
// true for the automatic split (both left 0), whose intra-op count is then chosen per call.
bool resolve_threads(EncoderOptions& o) {
  if (o.threads < 0 || o.workers < 0 || o.intra_threads < 0) {
    throw InvalidArgument(fmt::format(
        "EncoderOptions: threads, workers and intra_threads must be >= 0 (0 = automatic), found "
        "{}, {} and {}",
        o.threads, o.workers, o.intra_threads));
  }
  const bool explicit_threads = o.threads > 0;
  const bool automatic = o.workers == 0 && o.intra_threads == 0;
  if (!explicit_threads) {
    o.threads = (o.workers > 0 && o.intra_threads > 0) ? o.workers * o.intra_threads
                                                       : std::max(1, omp_get_max_threads());
  }
  if (o.workers == 0 && o.intra_threads == 0) {
    if (o.threads <= 8) {
      o.workers = o.threads;
      o.intra_threads = 1;
    } else {
      o.intra_threads = 4;
      o.workers = o.threads / 4;
    }
  } else if (o.intra_threads == 0) {
    o.intra_threads = std::max(1, o.threads / o.workers);
  } else if (o.workers == 0) {
    o.workers = std::max(1, o.threads / o.intra_threads);
  }
  if (explicit_threads && o.workers * o.intra_threads > o.threads) {
    throw InvalidArgument(
        fmt::format("EncoderOptions: workers x intra_threads = {} x {} exceeds threads = {}",
                    o.workers, o.intra_threads, o.threads));
  }
  return automatic;
}

struct TokenArena {
  std::vector<int32_t> ids, types;
};

}  // namespace

struct Encoder::Impl {
  Impl(BertModel m, std::unique_ptr<text::WordPieceTokenizer> t, EncoderOptions o, bool automatic)
      : model(std::move(m)),
        tokenizer(std::move(t)),
        options(o),
        automatic_split(automatic),
        pool(o.workers) {}

  BertModel model;
  std::unique_ptr<text::WordPieceTokenizer> tokenizer;  // null: the directory has no vocab.txt
  EncoderOptions options;
  bool automatic_split;  // workers = intra_threads = 0 asked: intra-op threads chosen per call
  EncoderStats stats;
  runtime::ThreadPool pool;
  std::mutex call_mu;

  // Arenas reused across calls (grown, never shrunk).
  std::vector<TokenArena> arenas;       // one per worker (tokenization chunk)
  std::vector<int64_t> starts;          // input i: first token in arenas[owner[i]]
  std::vector<int32_t> owner, lengths;  // per input
  std::vector<BertSequence> sequences;  // per input, views into the arenas
  std::vector<int64_t> order;
  std::vector<runtime::Batch> batches;
  std::vector<std::vector<BertSequence>> worker_batches;  // per worker
  std::vector<text::Encoding> worker_encodings;           // per worker, reused across texts
  // Per batch of the plan, reused across calls: a steady state of calls plans the same batches,
  // so each batch's outputs (and its last-hidden buffers, handed to `out` by swapping) fit.
  std::vector<BertOutputs> batch_outputs;
  std::vector<int64_t> worker_growths, worker_truncated;

  void tokenize_texts(std::span<const TextInput> inputs);
  void copy_tokens(std::span<const BertSequence> inputs);
  void run(EncoderOutputs& out);
  // One encode call: serialised, `fill` puts the inputs' tokens in the arenas, then run().
  void call(const std::function<void()>& fill, EncoderOutputs& out);
  void prepare_per_input(std::size_t n) {
    int64_t g = 0;
    g += runtime::grow_to(starts, n);
    g += runtime::grow_to(owner, n);
    g += runtime::grow_to(lengths, n);
    g += runtime::grow_to(sequences, n);
    stats.arena_growths += g;
  }
  void fill_sequences(std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) {
      const TokenArena& a = arenas[owner[i]];
      const auto len = static_cast<std::size_t>(lengths[i]);
      sequences[i] = {std::span<const int32_t>(a.ids.data() + starts[i], len),
                      std::span<const int32_t>(a.types.data() + starts[i], len)};
    }
  }
};

// Appends n values of `src` (or zeros when src is empty) to v, counting capacity growth.
static int append(std::vector<int32_t>& v, std::span<const int32_t> src, std::size_t n) {
  const bool grows = v.size() + n > v.capacity();
  if (grows) v.reserve(std::max(v.capacity() * 2, v.size() + n));
  if (src.empty()) {
    v.insert(v.end(), n, 0);
  } else {
    v.insert(v.end(), src.begin(), src.begin() + static_cast<std::ptrdiff_t>(n));
  }
  return grows ? 1 : 0;
}

void Encoder::Impl::tokenize_texts(std::span<const TextInput> inputs) {
  if (!tokenizer) {
    throw InvalidArgument(
        "Encoder::encode: the model directory has no vocab.txt, so text cannot be tokenized; "
        "pass token ids to encode_tokens() instead");
  }
  const std::size_t n = inputs.size();
  const int w_count = pool.size();
  const std::size_t max_len = options.max_seq_len;
  prepare_per_input(n);
  pool.run([&](int w) {
    TokenArena& a = arenas[w];
    a.ids.clear();
    a.types.clear();
    const std::size_t lo = n * w / w_count, hi = n * (w + 1) / w_count;
    for (std::size_t i = lo; i < hi; ++i) {
      const TextInput& in = inputs[i];
      text::Encoding& e = worker_encodings[w];
      try {
        if (in.text_b.empty()) {
          tokenizer->encode(in.text_a, max_len, e);
        } else {
          tokenizer->encode_pair(in.text_a, in.text_b, max_len, e);
        }
        if (e.untruncated_size > e.size()) ++worker_truncated[w];
      } catch (const DataError& err) {
        throw DataError(fmt::format("input {}: {}", i, err.what()));
      }
      starts[i] = static_cast<int64_t>(a.ids.size());
      owner[i] = w;
      lengths[i] = static_cast<int32_t>(e.size());
      worker_growths[w] += append(a.ids, e.input_ids, e.size());
      worker_growths[w] += append(a.types, e.token_type_ids, e.size());
    }
  });
  fill_sequences(n);
}

void Encoder::Impl::copy_tokens(std::span<const BertSequence> inputs) {
  const std::size_t n = inputs.size();
  const std::size_t max_len = options.max_seq_len;
  const int64_t vocab = model.config().vocab_size;
  const int64_t type_vocab = model.config().type_vocab_size;
  prepare_per_input(n);
  TokenArena& a = arenas[0];
  a.ids.clear();
  a.types.clear();
  for (std::size_t i = 0; i < n; ++i) {
    const BertSequence& s = inputs[i];
    const std::size_t len = s.input_ids.size();
    if (len == 0) throw InvalidArgument(fmt::format("input {}: no tokens (input_ids is empty)", i));
    if (!s.token_type_ids.empty() && s.token_type_ids.size() != len) {
      throw InvalidArgument(
          fmt::format("input {}: {} token_type_ids for {} input_ids; expected the same length "
                      "(or none)",
                      i, s.token_type_ids.size(), len));
    }
    // Checked here so that the message names the caller's input, not a position in a batch.
    for (std::size_t p = 0; p < len; ++p) {
      const int32_t id = s.input_ids[p];
      const int32_t tt = s.token_type_ids.empty() ? 0 : s.token_type_ids[p];
      if (id < 0 || id >= vocab) {
        throw InvalidArgument(fmt::format(
            "input {}, position {}: token id {} outside the vocabulary [0, {})", i, p, id, vocab));
      }
      if (tt < 0 || tt >= type_vocab) {
        throw InvalidArgument(
            fmt::format("input {}, position {}: token type id {} outside [0, type_vocab_size = {})",
                        i, p, tt, type_vocab));
      }
    }
    const std::size_t keep = std::min(len, max_len);
    starts[i] = static_cast<int64_t>(a.ids.size());
    owner[i] = 0;
    lengths[i] = static_cast<int32_t>(keep);
    if (keep < len) {
      // The first keep - 1 tokens and the last one (the final [SEP]).
      ++worker_truncated[0];
      stats.arena_growths += append(a.ids, s.input_ids, keep - 1);
      stats.arena_growths += append(a.ids, s.input_ids.last(1), 1);
      stats.arena_growths += append(a.types, s.token_type_ids, keep - 1);
      stats.arena_growths += append(
          a.types, s.token_type_ids.empty() ? s.token_type_ids : s.token_type_ids.last(1), 1);
    } else {
      stats.arena_growths += append(a.ids, s.input_ids, keep);
      stats.arena_growths += append(a.types, s.token_type_ids, keep);
    }
  }
  fill_sequences(n);
}

void Encoder::Impl::run(EncoderOutputs& out) {
  const std::size_t n = lengths.size();
  const io::BertConfig& c = model.config();
  const BertOutputKind what = options.outputs;
  const int64_t hidden = c.hidden_size;
  const int64_t labels = c.num_labels;
  out.count = static_cast<int64_t>(n);
  out.hidden_size = hidden;
  out.num_labels = has(what, BertOutputKind::logits) ? labels : 0;
  int64_t g = 0;
  g += runtime::grow_to(out.logits, has(what, BertOutputKind::logits) ? n * labels : 0);
  g += runtime::grow_to(out.pooled, has(what, BertOutputKind::pooled) ? n * hidden : 0);
  g += runtime::grow_to(out.mean_pooled, has(what, BertOutputKind::mean_pooled) ? n * hidden : 0);
  g += runtime::grow_to(out.last_hidden, has(what, BertOutputKind::last_hidden) ? n : 0);
  g += runtime::grow_to(out.lengths, n);
  std::copy(lengths.begin(), lengths.end(), out.lengths.begin());

  // Spread the work over the workers: no batch larger than an equal share of the tokens, so
  // that a small call still keeps every worker busy (a single sequence always fits).
  int64_t total = 0;
  for (int32_t len : lengths) total += len;
  const int workers = pool.size();
  const auto share = static_cast<std::size_t>((total + workers - 1) / workers);
  runtime::BatchingOptions bo{
      .max_batch_tokens = std::max<std::size_t>(1, std::min(options.max_batch_tokens, share)),
      .max_batch_size = options.max_batch_size,
      .sort_by_length = options.sort_by_length};
  g += runtime::plan_batches(lengths, bo, order, batches);
  stats.arena_growths += g;
  stats.sequences = static_cast<int64_t>(n);
  stats.batches = static_cast<int64_t>(batches.size());
  stats.tokens = total;
  stats.padded_tokens = 0;
  for (const runtime::Batch& b : batches) stats.padded_tokens += b.padded_tokens();
  stats.run_tokens = options.padding == Padding::longest ? stats.padded_tokens : total;
  // Threads per running batch: with the automatic split, workers left without a batch (fewer
  // batches than workers) give their threads to the others as intra-op threads, so that a
  // single batch on 2 threads runs with 2 OpenMP threads instead of 1 (idle cores otherwise).
  const int active =
      static_cast<int>(std::min<std::size_t>(workers, std::max<std::size_t>(1, batches.size())));
  auto intra_for = [&](int w) {
    if (!automatic_split) return options.intra_threads;
    return std::max(options.intra_threads,
                    options.threads / active + (w < options.threads % active ? 1 : 0));
  };
  stats.workers_used = n == 0 ? 0 : active;
  stats.intra_threads_used = n == 0 ? 0 : intra_for(0);
  if (n == 0) return;
  // Any worker may take any batch: size every worker's view table for the largest one up front.
  int64_t largest = 0;
  for (const runtime::Batch& b : batches) largest = std::max(largest, b.end - b.begin);
  for (std::vector<BertSequence>& v : worker_batches) {
    if (static_cast<std::size_t>(largest) > v.capacity()) {
      ++stats.arena_growths;
      v.reserve(static_cast<std::size_t>(largest));
    }
  }

  const std::size_t nb = batches.size();
  if (nb > batch_outputs.size()) {
    ++stats.arena_growths;
    batch_outputs.resize(nb);
  }
  // Largest batches first, so that the last ones to finish are short.
  std::atomic<std::size_t> next{0};
  pool.run([&](int w) {
    if (w >= active) return;
    const models::ScopedForwardThreads intra(intra_for(w));
    std::vector<BertSequence>& seqs = worker_batches[w];
    for (;;) {
      const std::size_t k = next.fetch_add(1, std::memory_order_relaxed);
      if (k >= nb) return;
      const std::size_t bi = options.sort_by_length ? nb - 1 - k : k;
      const runtime::Batch& b = batches[bi];
      const auto count = static_cast<std::size_t>(b.end - b.begin);
      seqs.clear();
      for (int64_t j = b.begin; j < b.end; ++j) seqs.push_back(sequences[order[j]]);
      BertOutputs& r = batch_outputs[bi];
      if (has(what, BertOutputKind::last_hidden)) {
        // The model writes each sequence's hidden states into r.last_hidden[j] in place: size
        // the buffers here, where a growth can be counted.
        if (r.last_hidden.size() != count) r.last_hidden.resize(count);
        for (std::size_t j = 0; j < count; ++j) {
          const auto need = static_cast<std::size_t>(seqs[j].input_ids.size() * hidden);
          if (need > r.last_hidden[j].capacity()) {
            ++worker_growths[w];
            r.last_hidden[j].reserve(need);
          }
        }
      }
      model.forward(seqs, what, options.padding, r);
      for (std::size_t j = 0; j < count; ++j) {
        const auto i = static_cast<std::size_t>(order[b.begin + static_cast<int64_t>(j)]);
        if (has(what, BertOutputKind::logits)) {
          std::copy_n(r.logits.begin() + j * labels, labels, out.logits.begin() + i * labels);
        }
        if (has(what, BertOutputKind::pooled)) {
          std::copy_n(r.pooled.begin() + j * hidden, hidden, out.pooled.begin() + i * hidden);
        }
        if (has(what, BertOutputKind::mean_pooled)) {
          std::copy_n(r.mean_pooled.begin() + j * hidden, hidden,
                      out.mean_pooled.begin() + i * hidden);
        }
        if (has(what, BertOutputKind::last_hidden)) {
          // Hand the buffer over instead of copying it; the batch keeps out's previous one,
          // sized now (first calls) so that the next call of the same plan writes in place.
          std::swap(out.last_hidden[i], r.last_hidden[j]);
          if (r.last_hidden[j].capacity() < out.last_hidden[i].size()) {
            ++worker_growths[w];
            r.last_hidden[j].reserve(out.last_hidden[i].size());
          }
        }
      }
    }
  });
}

Encoder::Encoder(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Encoder::Encoder(Encoder&&) noexcept = default;
Encoder& Encoder::operator=(Encoder&&) noexcept = default;
Encoder::~Encoder() = default;

Encoder Encoder::load(const std::filesystem::path& dir, BertLoadOptions model_options,
                      EncoderOptions options) {
  const bool automatic = resolve_threads(options);
  if (options.max_batch_tokens == 0 || options.max_batch_size == 0) {
    throw InvalidArgument(fmt::format(
        "EncoderOptions: max_batch_tokens and max_batch_size must be >= 1, found {} and {}",
        options.max_batch_tokens, options.max_batch_size));
  }
  if (static_cast<unsigned>(options.outputs) == 0) {
    throw InvalidArgument("EncoderOptions.outputs: no output requested");
  }
  if (options.padding != Padding::none && options.padding != Padding::longest) {
    throw InvalidArgument(
        fmt::format("EncoderOptions.padding: unknown value {}", static_cast<int>(options.padding)));
  }
  model_options.threads = options.intra_threads;
  BertModel model = BertModel::load(dir, model_options);
  if (options.padding == Padding::longest && model.precision() == Precision::integer_only) {
    throw InvalidArgument(fmt::format(
        "EncoderOptions.padding = longest: {} is an integer-only model, whose encoder runs one "
        "sequence at a time (nothing to pad); use Padding::none",
        dir.string()));
  }
  // Loading frees large temporaries (FP32 copies of weights that were then quantized or
  // reordered); glibc keeps freed heap pages resident unless asked to return them.
  malloc_trim(0);
  const auto max_pos = static_cast<std::size_t>(model.config().max_position_embeddings);
  if (options.max_seq_len == 0) options.max_seq_len = std::min<std::size_t>(128, max_pos);
  if (options.max_seq_len < 3 || options.max_seq_len > max_pos) {
    throw InvalidArgument(fmt::format(
        "EncoderOptions.max_seq_len must be in [3, {}] (the model's max_position_embeddings), "
        "found {}",
        max_pos, options.max_seq_len));
  }
  if (has(options.outputs, BertOutputKind::logits) && !model.has_classifier()) {
    throw InvalidArgument(fmt::format(
        "EncoderOptions.outputs asks for logits, but {} has no classifier (classifier.weight "
        "absent); ask for last_hidden, pooled or mean_pooled",
        dir.string()));
  }
  if (has(options.outputs, BertOutputKind::pooled) && !model.has_pooler()) {
    throw InvalidArgument(fmt::format(
        "EncoderOptions.outputs asks for pooled, but {} has no pooler (pooler.dense.weight absent)",
        dir.string()));
  }
  std::unique_ptr<text::WordPieceTokenizer> tok;
  if (std::filesystem::exists(dir / "vocab.txt")) {
    tok = std::make_unique<text::WordPieceTokenizer>(text::WordPieceTokenizer::from_model_dir(dir));
  }
  auto impl = std::make_unique<Impl>(std::move(model), std::move(tok), options, automatic);
  impl->arenas.resize(options.workers);
  impl->worker_batches.resize(options.workers);
  impl->worker_encodings.resize(options.workers);
  impl->worker_growths.assign(options.workers, 0);
  impl->worker_truncated.assign(options.workers, 0);
  return Encoder(std::move(impl));
}

EncoderOutputs Encoder::encode(std::span<const TextInput> inputs) {
  EncoderOutputs out;
  encode(inputs, out);
  return out;
}

void Encoder::Impl::call(const std::function<void()>& fill, EncoderOutputs& out) {
  std::lock_guard<std::mutex> lock(call_mu);
  std::fill(worker_truncated.begin(), worker_truncated.end(), 0);
  std::fill(worker_growths.begin(), worker_growths.end(), 0);
  const auto t0 = std::chrono::steady_clock::now();
  fill();
  stats.tokenize_seconds = seconds_since(t0);
  const auto t1 = std::chrono::steady_clock::now();
  run(out);
  stats.run_seconds = seconds_since(t1);
  stats.truncated = 0;
  for (std::size_t w = 0; w < worker_growths.size(); ++w) {
    stats.truncated += worker_truncated[w];
    stats.arena_growths += worker_growths[w];
  }
}

void Encoder::encode(std::span<const TextInput> inputs, EncoderOutputs& out) {
  impl_->call([&] { impl_->tokenize_texts(inputs); }, out);
}

void Encoder::encode_tokens(std::span<const BertSequence> inputs, EncoderOutputs& out) {
  impl_->call([&] { impl_->copy_tokens(inputs); }, out);
}

const BertModel& Encoder::model() const { return impl_->model; }
const text::WordPieceTokenizer& Encoder::tokenizer() const {
  if (!impl_->tokenizer) {
    throw InvalidArgument("Encoder::tokenizer: the model directory has no vocab.txt");
  }
  return *impl_->tokenizer;
}
const EncoderOptions& Encoder::options() const { return impl_->options; }
const EncoderStats& Encoder::stats() const { return impl_->stats; }

}  // namespace octet
