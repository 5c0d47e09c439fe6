// `octet pretrain`: masked-language-model pretraining of a BERT on a gzipped text corpus.
// See docs/training.md.
#include "train/pretrain.h"

#include <fmt/format.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <nlohmann/json.hpp>

#include "cli.h"
#include "io/bert_config.h"
#include "octet/error.h"

namespace octet::cli {
namespace {

std::filesystem::path data_root() {
  const char* env = std::getenv("OCTET_DATA");
  return env && *env ? std::filesystem::path(env) : std::filesystem::path("../shared/data");
}

}  // namespace

Runner register_pretrain(CLI::App& app) {
  struct Options {
    train::PretrainOptions run;
    std::string corpus, vocab, config, out;
    int64_t layers = 4, hidden = 256, heads = 4, intermediate = 1024, max_position = 512;
    std::string dtype = "f32";
    std::string position_init = "normal";
  };
  auto o = std::make_shared<Options>();
  CLI::App* sub = app.add_subcommand(
      "pretrain", "Masked-language-model pretraining of a BERT on a text corpus (libtorch)");
  sub->add_option("--corpus", o->corpus,
                  "A .txt.gz file (one document per line) or a directory of them "
                  "[default: $OCTET_DATA/corpus]");
  sub->add_option("--vocab", o->vocab,
                  "WordPiece vocab.txt [default: $OCTET_DATA/vocab/vocab.txt]");
  sub->add_option("--out", o->out, "Output model directory (also holds checkpoint/)")->required();
  sub->add_option("--config", o->config,
                  "Architecture from a config.json (otherwise the flags below)");
  sub->add_option("--layers", o->layers, "Encoder layers")->capture_default_str();
  sub->add_option("--hidden", o->hidden, "Hidden size")->capture_default_str();
  sub->add_option("--heads", o->heads, "Attention heads")->capture_default_str();
  sub->add_option("--intermediate", o->intermediate, "FFN size")->capture_default_str();
  sub->add_option("--max-position", o->max_position, "Position embeddings")->capture_default_str();
  auto& r = o->run;
  sub->add_option("--batch-size", r.batch_size, "Sequences per step")->capture_default_str();
  sub->add_option("--seq-len", r.seq_len, "Tokens per packed sequence")->capture_default_str();
  sub->add_option("--max-steps", r.max_steps, "Optimizer steps (sets the LR schedule)")
      ->capture_default_str();
  sub->add_option("--max-minutes", r.max_minutes,
                  "Stop after this much training time (0 = no limit); the model is saved")
      ->capture_default_str();
  sub->add_option("--lr", r.adamw.lr, "Peak learning rate")->capture_default_str();
  sub->add_option("--warmup-ratio", r.warmup_ratio, "Share of steps of linear warm-up")
      ->capture_default_str();
  sub->add_option("--weight-decay", r.adamw.weight_decay, "AdamW weight decay")
      ->capture_default_str();
  sub->add_option("--clip-norm", r.clip_norm, "Gradient clipping (global L2 norm)")
      ->capture_default_str();
  sub->add_option("--mask-prob", r.masking.mask_prob, "Share of tokens masked")
      ->capture_default_str();
  sub->add_option("--seed", r.seed, "Random seed (data order, masking, init, dropout)")
      ->capture_default_str();
  sub->add_option("--threads", r.threads, "libtorch threads (0 = all cores)")
      ->capture_default_str();
  sub->add_option("--log-every", r.log_every, "Progress line every N steps")->capture_default_str();
  sub->add_option("--eval-every", r.eval_every, "Held-out MLM evaluation every N steps")
      ->capture_default_str();
  sub->add_option("--save-every", r.save_every, "Resumable checkpoint every N steps")
      ->capture_default_str();
  sub->add_option("--eval-sequences", r.eval_sequences, "Held-out sequences")
      ->capture_default_str();
  sub->add_option("--stop-at-step", r.stop_at_step,
                  "Stop after this step, checkpoint saved (to split a run; resume with --resume)");
  sub->add_flag("--resume", r.resume, "Continue from <out>/checkpoint");
  sub->add_flag(
      "--bf16", r.bf16,
      "Matrix products in bfloat16 (mixed precision: parameters, optimizer, LayerNorm, "
      "softmax and loss stay FP32); several times faster on CPUs with AMX / AVX-512 BF16");
  sub->add_option("--position-init", o->position_init,
                  "Initial position embeddings: normal (Hugging Face's) | sinusoidal (Vaswani et "
                  "al.'s, scaled to the same std) | local (a Fourier band plus query and key "
                  "weights with which head h starts attending to offset -1, +1, -2, +2, ...)")
      ->check(CLI::IsMember({"normal", "sinusoidal", "local"}))
      ->capture_default_str();
  sub->add_option("--local-attention-gain", r.local_attention_gain,
                  "With --position-init local: the gain of the initial local attention form "
                  "(q.k = gain^2 x a sum of cosines)")
      ->check(CLI::Range(0.1, 8.0))
      ->capture_default_str();
  sub->add_option("--qk-identity-init", r.qk_identity_gain,
                  "Add GAIN x identity to each layer's query and key weights at the start (0 = "
                  "Hugging Face's initialisation)")
      ->check(CLI::Range(0.0, 4.0))
      ->capture_default_str();
  sub->add_option("--dtype", o->dtype, "Saved weights: f32 | f16")
      ->check(CLI::IsMember({"f32", "f16"}))
      ->capture_default_str();
  sub->add_option("--benchmark-steps", r.benchmark_steps,
                  "Only time this many steps (after 2 warm-up steps), print tokens/s, write "
                  "nothing");
  return [o, sub]() -> int {
    auto& r = o->run;
    const std::filesystem::path root = data_root();
    r.corpus =
        train::corpus_files(o->corpus.empty() ? root / "corpus" : std::filesystem::path(o->corpus));
    r.vocab = o->vocab.empty() ? root / "vocab" / "vocab.txt" : std::filesystem::path(o->vocab);
    if (!std::filesystem::is_regular_file(r.vocab))
      throw DataError(fmt::format("vocabulary {} not found", r.vocab.string()));
    r.out = o->out;
    r.f16 = o->dtype == "f16";
    r.position_init = *train::parse_position_init(o->position_init);  // IsMember-checked
    if (!o->config.empty()) {
      r.config = io::load_bert_config(o->config);
    } else {
      std::size_t vocab_size = 0;
      {
        std::FILE* f = std::fopen(r.vocab.c_str(), "rb");
        if (!f) throw IoError(fmt::format("cannot read {}", r.vocab.string()));
        for (int c; (c = std::fgetc(f)) != EOF;) vocab_size += c == '\n';
        std::fclose(f);
      }
      if (o->layers <= 0 || o->hidden <= 0 || o->heads <= 0 || o->intermediate <= 0 ||
          o->hidden % o->heads != 0)
        throw InvalidArgument(fmt::format(
            "bad architecture: layers {}, hidden {}, heads {} (must divide hidden), FFN {}",
            o->layers, o->hidden, o->heads, o->intermediate));
      nlohmann::json j = {{"model_type", "bert"},
                          {"vocab_size", vocab_size},
                          {"hidden_size", o->hidden},
                          {"num_hidden_layers", o->layers},
                          {"num_attention_heads", o->heads},
                          {"intermediate_size", o->intermediate},
                          {"max_position_embeddings", o->max_position},
                          {"type_vocab_size", 2},
                          {"hidden_act", "gelu"},
                          {"hidden_dropout_prob", 0.1},
                          {"attention_probs_dropout_prob", 0.1},
                          {"initializer_range", 0.02},
                          {"layer_norm_eps", 1e-12},
                          {"pad_token_id", 0}};
      r.config = io::parse_bert_config(j, "pretrain flags");
    }
    r.command_line = sub->config_to_str(/*default_also=*/false);
    train::PretrainResult res = train::pretrain(r, [](const std::string& line) {
      std::fprintf(stderr, "%s\n", line.c_str());
      std::fflush(stderr);
    });
    if (r.benchmark_steps > 0) {
      std::printf("tokens_per_second %.1f\n", res.tokens_per_second);
      return kExitOk;
    }
    std::printf(
        "steps %lld, tokens seen %lld, %.1f min, %.0f tokens/s, held-out MLM loss %.4f, "
        "accuracy %.4f%s\nmodel written to %s\n",
        static_cast<long long>(res.steps_done), static_cast<long long>(res.tokens_seen),
        res.train_seconds / 60, res.tokens_per_second, res.eval_loss, res.eval_accuracy,
        res.stopped_by_time ? " (stopped by --max-minutes)" : "", r.out.c_str());
    return kExitOk;
  };
}

}  // namespace octet::cli
