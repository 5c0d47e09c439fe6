// `octet finetune --model DIR --task T --train FILE --dev FILE --out DIR [...]`: fine-tunes a BERT
// on a GLUE task (src/train/finetune.h), printing progress lines on stderr and a summary on
// stdout; the best epoch's model and train_log.json are written to --out.
#include "train/finetune.h"

#include <fmt/format.h>

#include <cmath>
#include <cstdio>
#include <memory>

#include "cli.h"
#include "octet/error.h"

namespace octet::cli {
namespace {

std::string format_duration(double seconds) {
  const auto s = static_cast<long long>(std::max(0.0, std::round(seconds)));
  if (s >= 3600) return fmt::format("{}h{:02}m{:02}s", s / 3600, s / 60 % 60, s % 60);
  if (s >= 60) return fmt::format("{}m{:02}s", s / 60, s % 60);
  return fmt::format("{}s", s);
}

std::string format_metrics(const eval::MetricResult& m) {
  std::string out;
  for (const auto& [name, value] : m.values) {
    if (!out.empty()) out += "  ";
    out += fmt::format("{} {:.4f}", name, value);
  }
  return out;
}

}  // namespace

Runner register_finetune(CLI::App& app) {
  struct Options {
    train::FinetuneOptions ft;
    std::string task, init = "pretrained", dtype = "f32";
    std::string model, config, vocab, train, dev, out;
    int64_t log_every = 50;
    std::string qat_mode = "q8bert", qat_scheme = "symmetric", qat_weights = "per-tensor",
                qat_ste = "identity";
  };
  auto opts = std::make_shared<Options>();
  train::FinetuneOptions& ft = opts->ft;
  CLI::App* sub = app.add_subcommand("finetune", "Fine-tune a BERT on a GLUE task (libtorch)");
  sub->add_option("--model", opts->model,
                  "Starting model directory: a pretrained encoder or a classifier (with --init "
                  "random: only its config.json and vocab.txt are used)");
  sub->add_option("--init", opts->init,
                  "pretrained (load --model's weights) or random (same architecture, random "
                  "initialisation: the baseline)")
      ->capture_default_str();
  sub->add_option("--config", opts->config,
                  "With --init random and no --model: the architecture's config.json");
  sub->add_option("--vocab", opts->vocab, "With --config: the vocab.txt to tokenize with");
  sub->add_option("--task", opts->task, "sst2 | mrpc | cola | stsb | rte | qnli | mnli")
      ->required();
  sub->add_option("--train", opts->train, "Labelled training file (GLUE TSV or jsonl)")->required();
  sub->add_option("--dev", opts->dev, "Labelled dev file, evaluated after each epoch")->required();
  sub->add_option("--out", opts->out, "Output directory: the best epoch's model and train_log.json")
      ->required();
  sub->add_flag("--overwrite", ft.overwrite, "Replace a model already in --out");
  sub->add_flag("--new-head", ft.new_head,
                "Discard --model's classifier and start a fresh head of the task's size");
  sub->add_option("--epochs", ft.epochs, "Passes over the training set")->capture_default_str();
  sub->add_option("--batch-size", ft.batch_size, "Training examples per step")
      ->capture_default_str();
  sub->add_option("--eval-batch-size", ft.eval_batch_size, "Dev examples per batch")
      ->capture_default_str();
  sub->add_option("--lr", ft.lr,
                  "Peak learning rate (1e-4 suits small BERTs; 2e-5..5e-5 for BERT-base)")
      ->capture_default_str();
  sub->add_option("--warmup-ratio", ft.warmup_ratio,
                  "Fraction of the steps with a linear warm-up, then linear decay to 0")
      ->capture_default_str();
  sub->add_option("--weight-decay", ft.weight_decay,
                  "AdamW weight decay (not on biases and LayerNorm)")
      ->capture_default_str();
  sub->add_option("--max-grad-norm", ft.max_grad_norm, "Gradient clipping by global norm (0: off)")
      ->capture_default_str();
  sub->add_option("--max-seq-len", ft.max_seq_len, "Tokens per example, specials included")
      ->capture_default_str();
  sub->add_option("--seed", ft.seed, "Seed of the initialisation, dropout and example order")
      ->capture_default_str();
  sub->add_option("--threads", ft.threads, "Threads (0 = all cores)")->capture_default_str();
  sub->add_option("--max-train-examples", ft.max_train_examples,
                  "Train on the first N examples of --train only (0: all)")
      ->capture_default_str();
  sub->add_option("--dtype", opts->dtype, "Saved weights: f32 or f16")->capture_default_str();
  sub->add_option("--log-every", opts->log_every, "Print a progress line every N steps (0: off)")
      ->capture_default_str();
  sub->add_flag("--qat", ft.qat.enabled,
                "Quantization-aware fine-tuning (Q8BERT): --out receives the INT8 model (the "
                "format of octet quantize) and the FP32 weights in --out/fp32 (docs/qat.md)");
  sub->add_option("--qat-mode", opts->qat_mode,
                  "QAT graph: q8bert (fake-quantized INT8 graph, static INT8 model in --out) or "
                  "integer-only (I-BERT: the integer-only engine's forward pass, integer-only "
                  "model in --out, the format of octet quantize --mode integer-only; "
                  "docs/training.md)")
      ->capture_default_str();
  CLI::Option* scheme_flag =
      sub->add_option("--qat-scheme", opts->qat_scheme,
                      "QAT activations: symmetric (s8, Q8BERT) or asymmetric (u8 + zero point)")
          ->capture_default_str();
  CLI::Option* weights_flag =
      sub->add_option("--qat-weights", opts->qat_weights,
                      "QAT weight scales: per-tensor (Q8BERT) or per-channel")
          ->capture_default_str();
  CLI::Option* ste_flag =
      sub->add_option(
             "--qat-ste", opts->qat_ste,
             "QAT gradient: identity straight-through (Q8BERT) or clipped (zero outside the "
             "range)")
          ->capture_default_str();
  CLI::Option* decay_flag = sub->add_option(
      "--qat-ema-decay", ft.qat.ema_decay,
      "QAT activation range EMA decay [default: 0.9999 (Q8BERT); 0.95 with --qat-mode "
      "integer-only (I-BERT's momentum)]");
  CLI::Option* start_flag =
      sub->add_option("--qat-start-step", ft.qat.start_step,
                      "QAT: step from which the encoder, pooler and embeddings are quantized")
          ->capture_default_str();
  CLI::Option* head_flag =
      sub->add_option("--qat-head-start-step", ft.qat.head_start_step,
                      "QAT: step from which the classifier is quantized (Q8BERT: 200)")
          ->capture_default_str();

  CLI::Option* qk_flag =
      sub->add_flag("!--qat-fp32-qk", ft.qat.quantize_qk_outputs,
                    "QAT: leave the Q and K outputs in FP32 (Q8BERT fake-quantizes them, and the "
                    "exported model quantizes them: quantize.attention_scores)");

  return [opts, scheme_flag, weights_flag, ste_flag, decay_flag, start_flag, head_flag,
          qk_flag]() -> int {
    train::FinetuneOptions& o = opts->ft;
    if (opts->qat_mode == "integer-only") {
      o.qat.mode = train::QatMode::integer_only;
      if (!o.qat.enabled)
        throw InvalidArgument("--qat-mode integer-only needs --qat (quantization-aware training)");
      // The I-BERT scheme is fixed, as for octet quantize --mode integer-only.
      for (const CLI::Option* f :
           {scheme_flag, weights_flag, ste_flag, start_flag, head_flag, qk_flag}) {
        if (f->count() > 0)
          throw InvalidArgument(fmt::format(
              "{} does not apply to --qat-mode integer-only: its scheme is fixed (symmetric "
              "int8, per-channel weights, identity straight-through gradients, every site "
              "quantized from the first step, FP32 head)",
              f->get_name()));
      }
      if (decay_flag->count() > 0) o.qat.integer_momentum = o.qat.ema_decay;
    } else if (opts->qat_mode != "q8bert") {
      throw InvalidArgument(
          fmt::format("--qat-mode must be q8bert or integer-only, found '{}'", opts->qat_mode));
    }
    o.task = data::parse_task(opts->task);
    if (opts->init == "pretrained")
      o.init = train::InitMode::pretrained;
    else if (opts->init == "random")
      o.init = train::InitMode::random;
    else
      throw InvalidArgument(
          fmt::format("--init must be pretrained or random, found '{}'", opts->init));
    if (opts->dtype == "f32")
      o.dtype = train::SaveDType::F32;
    else if (opts->dtype == "f16")
      o.dtype = train::SaveDType::F16;
    else
      throw InvalidArgument(fmt::format("--dtype must be f32 or f16, found '{}'", opts->dtype));
    if (opts->qat_scheme == "symmetric")
      o.qat.scheme = quant::Scheme::symmetric;
    else if (opts->qat_scheme == "asymmetric")
      o.qat.scheme = quant::Scheme::asymmetric;
    else
      throw InvalidArgument(fmt::format("--qat-scheme must be symmetric or asymmetric, found '{}'",
                                        opts->qat_scheme));
    if (opts->qat_weights == "per-tensor")
      o.qat.weights = quant::WeightGranularity::per_tensor;
    else if (opts->qat_weights == "per-channel")
      o.qat.weights = quant::WeightGranularity::per_channel;
    else
      throw InvalidArgument(fmt::format(
          "--qat-weights must be per-tensor or per-channel, found '{}'", opts->qat_weights));
    if (opts->qat_ste == "identity")
      o.qat.ste = train::SteMode::identity;
    else if (opts->qat_ste == "clipped")
      o.qat.ste = train::SteMode::clipped;
    else
      throw InvalidArgument(
          fmt::format("--qat-ste must be identity or clipped, found '{}'", opts->qat_ste));
    if (opts->log_every < 0)
      throw InvalidArgument(fmt::format("--log-every must be >= 0, found {}", opts->log_every));
    o.model_dir = opts->model;
    o.config_file = opts->config;
    o.vocab_file = opts->vocab;
    o.train_file = opts->train;
    o.dev_file = opts->dev;
    o.out_dir = opts->out;
    train::check_finetune_options(o);

    const int64_t log_every = opts->log_every;
    auto on_progress = [log_every](const train::FinetuneProgress& p) {
      if (p.kind == train::FinetuneProgress::Kind::step) {
        if (log_every == 0 || (p.step % log_every != 0 && p.step != p.total_steps)) return;
        std::fprintf(stderr,
                     "finetune: epoch %d/%d  step %lld/%lld  loss %.4f  lr %.2e  %.1f examples/s  "
                     "ETA %s\n",
                     p.epoch, p.epochs, static_cast<long long>(p.step),
                     static_cast<long long>(p.total_steps), p.loss, p.lr, p.examples_per_second,
                     format_duration(p.eta_seconds).c_str());
        return;
      }
      const train::EpochRecord& r = *p.record;
      std::fprintf(stderr,
                   "finetune: epoch %d/%d done  train loss %.4f  dev %s  (%s + eval %s)%s\n",
                   p.epoch, p.epochs, r.train_loss, format_metrics(r.dev).c_str(),
                   format_duration(r.seconds).c_str(), format_duration(r.eval_seconds).c_str(),
                   r.saved ? "  saved (best so far)" : "");
    };

    train::FinetuneResult r = train::finetune(o, on_progress);

    const auto& spec = data::task_spec(o.task);
    std::string table;
    table += fmt::format("task        {}\n", spec.name);
    table += fmt::format("init        {} {}\n", opts->init,
                         o.model_dir.empty() ? o.config_file.string() : o.model_dir.string());
    table += fmt::format("train       {} ({} examples, {} steps of {}, warm-up {})\n",
                         o.train_file.string(), r.train_examples, r.total_steps, o.batch_size,
                         r.warmup_steps);
    table += fmt::format("dev         {} ({} examples)\n", o.dev_file.string(), r.dev_examples);
    for (const train::EpochRecord& e : r.epochs) {
      table += fmt::format("epoch {:<5} loss {:.4f}  dev {}  {:.1f} examples/s{}\n", e.epoch,
                           e.train_loss, format_metrics(e.dev), e.examples_per_second,
                           e.epoch == r.best_epoch ? "  (best)" : "");
    }
    if (!r.engine_dev.values.empty())
      table += fmt::format(
          "best        epoch {}: {} {:.4f} (Octet engine on the saved model; "
          "libtorch {:.4f})\n",
          r.best_epoch, r.engine_dev.main, r.engine_dev.main_value(), r.best_dev.main_value());
    if (r.engine_parity.examples > 0) {
      const train::EngineParity& p = r.engine_parity;
      table += fmt::format("parity      engine against libtorch on dev: ");
      if (p.predictions_agree >= 0)
        table += fmt::format("predictions agree on {} / {} ({:.2f}%), ", p.predictions_agree,
                             p.examples, 100.0 * double(p.predictions_agree) / double(p.examples));
      table += fmt::format("logits max |diff| {:.3g}, mean {:.3g}", p.max_abs_logit_diff,
                           p.mean_abs_logit_diff);
      if (p.predictions_agree >= 0 && p.predictions_agree < p.examples)
        table += fmt::format(" (the differing examples' libtorch margins are at most {:.3g})",
                             p.max_disagreeing_margin);
      table += "\n";
    }
    if (o.qat.enabled && o.qat.mode == train::QatMode::integer_only)
      table += fmt::format(
          "saved       {} (integer-only, I-BERT-aware; FP32 weights in fp32/; train_log.json)\n",
          o.out_dir.string());
    else if (o.qat.enabled)
      table += fmt::format(
          "saved       {} (INT8, quantization-aware; FP32 weights in fp32/; train_log.json)\n",
          o.out_dir.string());
    else
      table += fmt::format("saved       {} (train_log.json)\n", o.out_dir.string());
    table += fmt::format("seconds     {:.1f}\n", r.seconds);
    std::fputs(table.c_str(), stdout);
    return kExitOk;
  };
}

}  // namespace octet::cli
