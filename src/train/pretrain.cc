#include "train/pretrain.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <nlohmann/json.hpp>
#include <numeric>
#include <random>

#include "io/atomic_file.h"
#include "octet/error.h"
#include "train/bert_torch.h"

namespace octet::train {
namespace {

using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;

uint64_t mix(uint64_t a, uint64_t b) {  // splitmix64 of a combination
  uint64_t z = a * 0x9E3779B97F4A7C15ULL + b + 0x632BE59BD9B4E019ULL;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

// The order in which training sequences are visited: a fresh permutation each epoch.
class SequenceOrder {
 public:
  SequenceOrder(std::size_t n, uint64_t seed) : n_(n), seed_(seed) {}
  std::size_t at(uint64_t global) {
    const uint64_t epoch = global / n_;
    if (epoch != epoch_ || perm_.empty()) {
      perm_.resize(n_);
      std::iota(perm_.begin(), perm_.end(), std::size_t{0});
      std::mt19937_64 rng(mix(seed_, epoch + 1));
      std::shuffle(perm_.begin(), perm_.end(), rng);
      epoch_ = epoch;
    }
    return perm_[global % n_];
  }

 private:
  std::size_t n_;
  uint64_t seed_;
  uint64_t epoch_ = 0;
  std::vector<std::size_t> perm_;
};

struct Batch {
  torch::Tensor input_ids, positions, labels;
};

Batch make_batch(const PackedCorpus& corpus, const std::vector<std::size_t>& seqs,
                 const MaskingOptions& masking, uint64_t mask_seed,
                 const text::WordPieceTokenizer& tok) {
  const int32_t L = corpus.seq_len;
  std::vector<int32_t> ids(seqs.size() * static_cast<std::size_t>(L));
  for (std::size_t j = 0; j < seqs.size(); ++j)
    corpus.sequence(seqs[j], ids.data() + j * static_cast<std::size_t>(L), tok.cls_id(),
                    tok.sep_id());
  MaskedBatch m =
      mask_tokens(ids, masking, mask_seed, tok.mask_id(), static_cast<int32_t>(tok.vocab_size()),
                  {tok.cls_id(), tok.sep_id(), tok.pad_id()});
  Batch b;
  b.input_ids = torch::empty({static_cast<int64_t>(seqs.size()), L}, torch::kLong);
  std::copy(ids.begin(), ids.end(), b.input_ids.data_ptr<int64_t>());
  b.positions = torch::tensor(m.positions, torch::kLong);
  b.labels = torch::tensor(m.labels, torch::kLong);
  return b;
}

struct EvalResult {
  double loss = 0, accuracy = 0;
};

EvalResult evaluate(BertForMaskedLM& model, const PackedCorpus& corpus, std::size_t first,
                    std::size_t count, int64_t batch_size, const PretrainOptions& o,
                    const text::WordPieceTokenizer& tok) {
  torch::NoGradGuard no_grad;
  model->eval();
  double loss_sum = 0, correct = 0, n = 0;
  for (std::size_t s = 0; s < count; s += static_cast<std::size_t>(batch_size)) {
    std::vector<std::size_t> seqs;
    for (std::size_t j = s; j < std::min(count, s + static_cast<std::size_t>(batch_size)); ++j)
      seqs.push_back(first + j);
    Batch b = make_batch(corpus, seqs, o.masking, mix(o.seed ^ 0xE7A1ULL, s), tok);
    torch::Tensor logits = model(b.input_ids, b.positions);
    loss_sum += torch::nn::functional::cross_entropy(
                    logits, b.labels,
                    torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum))
                    .item<double>();
    correct += logits.argmax(1).eq(b.labels).sum().item<double>();
    n += static_cast<double>(b.labels.size(0));
  }
  model->train();
  return {loss_sum / n, correct / n};
}

nlohmann::json options_json(const PretrainOptions& o) {
  nlohmann::json corpus = nlohmann::json::array();
  for (const auto& f : o.corpus) corpus.push_back(f.string());
  return {{"corpus", corpus},
          {"vocab", o.vocab.string()},
          {"batch_size", o.batch_size},
          {"seq_len", o.seq_len},
          {"max_steps", o.max_steps},
          {"warmup_ratio", o.warmup_ratio},
          {"lr", o.adamw.lr},
          {"weight_decay", o.adamw.weight_decay},
          {"betas", {o.adamw.beta1, o.adamw.beta2}},
          {"adam_eps", o.adamw.eps},
          {"clip_norm", o.clip_norm},
          {"mask_prob", o.masking.mask_prob},
          {"seed", o.seed},
          {"threads", o.threads},
          {"matmul_precision", o.bf16 ? "bf16" : "f32"},
          {"position_init", position_init_name(o.position_init)},
          {"local_attention_gain",
           o.position_init == PositionInit::local ? o.local_attention_gain : 0.0},
          {"qk_identity_gain", o.qk_identity_gain},
          {"max_minutes", o.max_minutes},
          {"command", o.command_line}};
}

void write_json(const fs::path& path, const nlohmann::json& j) {
  io::AtomicFileWriter w(path);
  w.stream() << j.dump(2) << '\n';
  w.commit();
}

std::string format_duration(double seconds) {
  const auto s = static_cast<int64_t>(seconds);
  return fmt::format("{}:{:02}:{:02}", s / 3600, (s / 60) % 60, s % 60);
}

}  // namespace

namespace {
constexpr std::pair<PositionInit, const char*> kPositionInitNames[] = {
    {PositionInit::normal, "normal"},
    {PositionInit::sinusoidal, "sinusoidal"},
    {PositionInit::local, "local"}};
}  // namespace

const char* position_init_name(PositionInit p) {
  for (const auto& [value, name] : kPositionInitNames)
    if (value == p) return name;
  return "normal";
}

std::optional<PositionInit> parse_position_init(std::string_view name) {
  for (const auto& [value, n] : kPositionInitNames)
    if (name == n) return value;
  return std::nullopt;
}

PretrainResult pretrain(const PretrainOptions& o,
                        const std::function<void(const std::string&)>& log) {
  if (o.batch_size <= 0 || o.max_steps <= 0)
    throw InvalidArgument("pretrain: batch size and max steps must be positive");
  if (o.seq_len > o.config.max_position_embeddings)
    throw InvalidArgument(fmt::format("pretrain: sequence length {} > max_position_embeddings {}",
                                      o.seq_len, o.config.max_position_embeddings));
  set_torch_threads(o.threads);
  set_matmul_precision(o.bf16 ? MatmulPrecision::bf16 : MatmulPrecision::f32);
  torch::manual_seed(o.seed);

  const auto tok = text::WordPieceTokenizer::from_vocab_file(o.vocab);
  if (static_cast<int64_t>(tok.vocab_size()) != o.config.vocab_size)
    throw InvalidArgument(fmt::format("pretrain: {} has {} tokens, config vocab_size is {}",
                                      o.vocab.string(), tok.vocab_size(), o.config.vocab_size));
  const auto t_read = Clock::now();
  PackedCorpus corpus = pack_corpus(o.corpus, tok, o.seq_len);
  const std::size_t n_all = corpus.sequences();
  const std::size_t n_eval = std::min<std::size_t>(
      static_cast<std::size_t>(std::max<int64_t>(o.eval_sequences, 0)), n_all / 10);
  const std::size_t n_train = n_all - n_eval;
  log(fmt::format(
      "corpus: {} files, {} documents, {:.1f} MB, {} tokens -> {} sequences of {} "
      "({} for training, {} held out) in {:.1f} s",
      o.corpus.size(), corpus.documents, corpus.bytes / 1e6, corpus.stream.size(), n_all, o.seq_len,
      n_train, n_eval, std::chrono::duration<double>(Clock::now() - t_read).count()));

  BertForMaskedLM model(o.config);
  if (o.position_init == PositionInit::sinusoidal)
    init_sinusoidal_positions(model->bert->embeddings->position_embeddings->weight, o.config);
  if (o.position_init == PositionInit::local) {
    init_local_positions(model->bert->embeddings->position_embeddings->weight, o.config);
    add_local_attention(*model->bert, o.config, o.local_attention_gain);
  }
  if (o.qk_identity_gain > 0) add_identity_to_query_key(*model->bert, o.qk_identity_gain);
  model->train();
  auto optimizer = make_adamw(*model, o.adamw);
  const int64_t warmup = static_cast<int64_t>(o.warmup_ratio * static_cast<double>(o.max_steps));

  int64_t step = 0;
  double seconds_before = 0;
  nlohmann::json history = nlohmann::json::array(), evals = nlohmann::json::array();
  const fs::path ckpt = o.out / "checkpoint";
  if (o.resume && fs::exists(ckpt / "state.json") && o.benchmark_steps == 0) {
    std::ifstream in(ckpt / "state.json");
    nlohmann::json st = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
    if (st.is_discarded() || !st.contains("step"))
      throw IoError(
          fmt::format("{}: not a pretraining checkpoint", (ckpt / "state.json").string()));
    // The schedule's length (--max-steps) may change on resume: the learning rate continues from
    // the current step toward the new total. Everything that defines the data stream may not.
    for (const char* key : {"seed", "batch_size", "seq_len"}) {
      const nlohmann::json now = options_json(o)[key];
      if (st["options"][key] != now)
        throw InvalidArgument(fmt::format("--resume: checkpoint {} has {} = {}, this run {}",
                                          ckpt.string(), key, st["options"][key].dump(),
                                          now.dump()));
    }
    torch::load(model, (ckpt / "model.pt").string());
    torch::load(*optimizer, (ckpt / "optimizer.pt").string());
    step = st["step"].get<int64_t>();
    if (st["options"]["max_steps"] != o.max_steps)
      log(fmt::format("--max-steps changed from {} to {}: the schedule continues from step {}",
                      st["options"]["max_steps"].dump(), o.max_steps, step));
    if (step >= o.max_steps)
      throw InvalidArgument(fmt::format("--resume: the checkpoint is at step {} >= --max-steps {}",
                                        step, o.max_steps));
    seconds_before = st["train_seconds"].get<double>();
    history = st.value("history", nlohmann::json::array());
    evals = st.value("evals", nlohmann::json::array());
    log(fmt::format("resumed from {} at step {} ({} trained)", ckpt.string(), step,
                    format_duration(seconds_before)));
  }

  auto save_checkpoint = [&](double train_seconds) {
    const fs::path tmp = o.out / "checkpoint.tmp", old = o.out / "checkpoint.old";
    fs::remove_all(tmp);
    fs::create_directories(tmp);
    torch::save(model, (tmp / "model.pt").string());
    torch::save(*optimizer, (tmp / "optimizer.pt").string());
    write_json(tmp / "state.json", {{"step", step},
                                    {"train_seconds", train_seconds},
                                    {"options", options_json(o)},
                                    {"history", history},
                                    {"evals", evals}});
    fs::remove_all(old);
    if (fs::exists(ckpt)) fs::rename(ckpt, old);
    fs::rename(tmp, ckpt);
    fs::remove_all(old);
  };

  SequenceOrder order(n_train, o.seed);
  const int64_t tokens_per_step = o.batch_size * o.seq_len;
  const int64_t end_step =
      o.benchmark_steps > 0 ? std::min(o.max_steps, step + 2 + o.benchmark_steps) : o.max_steps;
  PretrainResult result;
  std::vector<double> step_seconds;
  const auto t_start = Clock::now();
  auto t_window = t_start;
  double loss_window = 0, acc_window = 0;
  int64_t window_steps = 0;
  if (o.benchmark_steps == 0) fs::create_directories(o.out);

  while (step < end_step) {
    const auto t_step = Clock::now();
    std::vector<std::size_t> seqs(static_cast<std::size_t>(o.batch_size));
    for (int64_t j = 0; j < o.batch_size; ++j)
      seqs[static_cast<std::size_t>(j)] =
          order.at(static_cast<uint64_t>(step) * static_cast<uint64_t>(o.batch_size) +
                   static_cast<uint64_t>(j));
    Batch b = make_batch(corpus, seqs, o.masking, mix(o.seed, static_cast<uint64_t>(step)), tok);
    torch::manual_seed(mix(o.seed ^ 0xD80FULL, static_cast<uint64_t>(step)));  // dropout

    const double lr = linear_warmup_decay(step, warmup, o.max_steps, o.adamw.lr);
    set_learning_rate(*optimizer, lr);
    torch::Tensor logits = model(b.input_ids, b.positions);
    torch::Tensor loss = torch::nn::functional::cross_entropy(logits, b.labels);
    optimizer->zero_grad();
    loss.backward();
    torch::nn::utils::clip_grad_norm_(model->parameters(), o.clip_norm);
    optimizer->step();
    ++step;

    const double l = loss.item<double>();
    if (!std::isfinite(l))
      throw Error(fmt::format("pretrain: loss is {} at step {} (lower --lr?)", l, step));
    loss_window += l;
    acc_window += logits.detach().argmax(1).eq(b.labels).to(torch::kFloat).mean().item<double>();
    ++window_steps;
    step_seconds.push_back(std::chrono::duration<double>(Clock::now() - t_step).count());

    const double elapsed = std::chrono::duration<double>(Clock::now() - t_start).count();
    const bool out_of_time =
        (o.max_minutes > 0 && seconds_before + elapsed >= o.max_minutes * 60) ||
        (o.stop_at_step > 0 && step >= o.stop_at_step);
    if (o.benchmark_steps == 0 && (step % o.log_every == 0 || step == o.max_steps || out_of_time)) {
      const double window = std::chrono::duration<double>(Clock::now() - t_window).count();
      PretrainStepLog e{step,
                        loss_window / static_cast<double>(window_steps),
                        acc_window / static_cast<double>(window_steps),
                        lr,
                        static_cast<double>(window_steps * tokens_per_step) / window,
                        seconds_before + elapsed};
      history.push_back({{"step", e.step},
                         {"loss", e.loss},
                         {"mlm_accuracy", e.mlm_accuracy},
                         {"lr", e.lr},
                         {"tokens_per_second", e.tokens_per_second},
                         {"elapsed_seconds", e.elapsed_seconds}});
      const double eta =
          static_cast<double>(o.max_steps - step) * window / static_cast<double>(window_steps);
      log(
          fmt::format("step {}/{}  loss {:.4f}  mlm acc {:.4f}  lr {:.2e}  {:.0f} tokens/s  "
                      "elapsed {}  eta {}",
                      step, o.max_steps, e.loss, e.mlm_accuracy, lr, e.tokens_per_second,
                      format_duration(e.elapsed_seconds), format_duration(eta)));
      t_window = Clock::now();
      loss_window = acc_window = 0;
      window_steps = 0;
    }
    if (o.benchmark_steps > 0) continue;
    const bool last = step == o.max_steps || out_of_time;
    if ((o.eval_every > 0 && step % o.eval_every == 0) || last) {
      EvalResult ev = evaluate(model, corpus, n_train, n_eval, o.batch_size, o, tok);
      evals.push_back({{"step", step}, {"loss", ev.loss}, {"mlm_accuracy", ev.accuracy}});
      log(fmt::format("eval at step {}: held-out MLM loss {:.4f}, accuracy {:.4f} ({} sequences)",
                      step, ev.loss, ev.accuracy, n_eval));
      result.eval_loss = ev.loss;
      result.eval_accuracy = ev.accuracy;
    }
    if ((o.save_every > 0 && step % o.save_every == 0) || last)
      save_checkpoint(seconds_before +
                      std::chrono::duration<double>(Clock::now() - t_start).count());
    if (out_of_time) {
      result.stopped_by_time = true;
      log(fmt::format("stopping at step {} of {}: {}", step, o.max_steps,
                      o.stop_at_step > 0 && step >= o.stop_at_step ? "--stop-at-step reached"
                                                                   : "--max-minutes reached"));
      break;
    }
  }

  const double run_seconds = std::chrono::duration<double>(Clock::now() - t_start).count();
  result.steps_done = step;
  result.tokens_seen = step * tokens_per_step;
  result.train_seconds = seconds_before + run_seconds;
  if (o.benchmark_steps > 0) {
    // Median step time after two warm-up steps.
    std::vector<double> t(
        step_seconds.begin() + std::min<std::ptrdiff_t>(2, std::ssize(step_seconds)),
        step_seconds.end());
    if (t.empty()) t = step_seconds;
    std::sort(t.begin(), t.end());
    const double median = t[t.size() / 2];
    result.tokens_per_second = static_cast<double>(tokens_per_step) / median;
    log(fmt::format("benchmark: {} steps of {} x {} tokens, median step {:.1f} ms, {:.0f} tokens/s",
                    t.size(), o.batch_size, o.seq_len, median * 1e3, result.tokens_per_second));
    return result;
  }
  result.tokens_per_second = static_cast<double>(result.tokens_seen) / result.train_seconds;

  io::BertConfig out_config = o.config;
  out_config.raw["architectures"] = {"BertForMaskedLM"};
  save_pretrained(*model, out_config, o.vocab, o.out, o.f16 ? SaveDType::F16 : SaveDType::F32, {});
  write_json(o.out / "pretrain_log.json",
             {{"options", options_json(o)},
              {"corpus",
               {{"documents", corpus.documents},
                {"bytes", corpus.bytes},
                {"tokens", corpus.stream.size()},
                {"sequences", n_all},
                {"train_sequences", n_train},
                {"heldout_sequences", n_eval}}},
              {"steps_done", result.steps_done},
              {"tokens_seen", result.tokens_seen},
              {"train_seconds", result.train_seconds},
              {"tokens_per_second", result.tokens_per_second},
              {"stopped_by_time", result.stopped_by_time},
              {"final_eval", {{"loss", result.eval_loss}, {"mlm_accuracy", result.eval_accuracy}}},
              {"threads", torch::get_num_threads()},
              {"history", history},
              {"evals", evals}});
  return result;
}

}  // namespace octet::train
