// `octet compare --model DIR --task T --data FILE --calibration CALIB [--modes a,b] [--per-layer]
// [--json FILE]`: evaluates the FP32 model and each quantization mode (built in memory from the
// same FP32 weights and calibration, exactly what `octet quantize` would write) on one labelled
// file and prints a Q8BERT-style table: metric, relative error against FP32, cosine of the logits,
// encoder weight size. `--per-layer` adds, for one mode, each quantized layer's output SQNR and
// cosine against FP32 on the same inputs (cumulative: layer i sees the INT8 graph's own inputs).
#include <fmt/format.h>

#include <chrono>
#include <cmath>
#include <map>
#include <memory>
#include <sstream>

#include "cli.h"
#include "io/atomic_file.h"
#include "io/model_dir.h"
#include "io/safetensors.h"
#include "json_out.h"
#include "octet/cpu.h"
#include "octet/error.h"
#include "quant/bert_quant.h"
#include "quant_common.h"

namespace octet::cli {
namespace {

using nlohmann::json;

struct Mode {
  const char* name;
  const char* config;  // quantization_config JSON (the calibrator's bins / decay filled in later)
  bool int8_attention = false;  // Q K^T and P V on int8 too (BertLoadOptions::int8_attention)
};

// The table's rows, in order: Q8BERT's DQ baseline first, then static calibrators, then the
// asymmetric scheme, then two modes with the attention matmuls on int8 (Bhandare et al.).
const Mode kModes[] = {
    {"dynamic-per-tensor", R"({"activations": "dynamic", "weights": "per_tensor"})"},
    {"dynamic", R"({"activations": "dynamic", "weights": "per_channel"})"},
    {"static-max", R"({"calibrator": {"kind": "max"}})"},
    {"static-max-per-tensor", R"({"calibrator": {"kind": "max"}, "weights": "per_tensor"})"},
    {"static-ema", R"({"calibrator": {"kind": "ema"}})"},
    {"static-percentile", R"({"calibrator": {"kind": "percentile", "percentile": 99.99}})"},
    {"static-kl", R"({"calibrator": {"kind": "kl", "kl_form": "abs"}})"},
    {"static-kl-per-tensor",
     R"({"calibrator": {"kind": "kl", "kl_form": "abs"}, "weights": "per_tensor"})"},
    {"static-kl-signed", R"({"calibrator": {"kind": "kl", "kl_form": "signed"}})"},
    {"static-mse", R"({"calibrator": {"kind": "mse"}})"},
    // Q8BERT's whole static graph: EMA ranges, per-tensor weights, 8-bit Q and K outputs.
    {"static-q8bert",
     R"({"calibrator": {"kind": "ema"}, "weights": "per_tensor", "quantize": {"attention_scores": true}})"},
    {"asym-max",
     R"({"scheme": "asymmetric", "threshold_mode": "independent", "calibrator": {"kind": "max"}})"},
    {"asym-percentile",
     R"({"scheme": "asymmetric", "threshold_mode": "independent", "calibrator": {"kind": "percentile"}})"},
    {"asym-kl",
     R"({"scheme": "asymmetric", "threshold_mode": "independent", "calibrator": {"kind": "kl"}})"},
    {"asym-mse",
     R"({"scheme": "asymmetric", "threshold_mode": "independent", "calibrator": {"kind": "mse"}})"},
    {"dynamic-int8-attention", R"({"activations": "dynamic", "weights": "per_channel"})", true},
    {"static-kl-int8-attention", R"({"calibrator": {"kind": "kl", "kl_form": "abs"}})", true},
};

std::vector<std::string> split_commas(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

const Mode* find_mode(const std::string& name) {
  for (const Mode& m : kModes) {
    if (name == m.name) return &m;
  }
  return nullptr;
}

std::string mode_names() {
  std::string s;
  for (const Mode& m : kModes) s += (s.empty() ? "" : ", ") + std::string(m.name);
  return s;
}

double cosine(std::span<const float> a, std::span<const float> b) {
  double dot = 0, na = 0, nb = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    dot += static_cast<double>(a[i]) * b[i];
    na += static_cast<double>(a[i]) * a[i];
    nb += static_cast<double>(b[i]) * b[i];
  }
  return na > 0 && nb > 0 ? dot / std::sqrt(na * nb) : (na == nb ? 1.0 : 0.0);
}

// Paired bootstrap of each mode against FP32.
constexpr int kResamples = 1000;
constexpr uint64_t kBootstrapSeed = 42;

// Per-layer error accumulators: sum x^2, sum (x - q)^2, sum x q, sum q^2 over every element.
struct LayerError {
  double xx = 0, ee = 0, xq = 0, qq = 0;
  int64_t count = 0;
  double sqnr_db() const { return ee > 0 ? 10.0 * std::log10(xx / ee) : INFINITY; }
  double cos() const { return xx > 0 && qq > 0 ? xq / std::sqrt(xx * qq) : 1.0; }
};

}  // namespace

Runner register_compare(CLI::App& app) {
  struct Options {
    std::string model, task, data, calibration, modes, per_layer_mode, json;
    bool per_layer = false;
    std::size_t per_layer_samples = 64, max_seq_len = 0, batch_size = 32;
    int threads = 0;
  };
  auto o = std::make_shared<Options>();
  CLI::App* sub = app.add_subcommand(
      "compare", "FP32 next to every quantization mode: metric, relative error, size");
  sub->add_option("--model", o->model, "FP32 model directory (with a fine-tuned head)")->required();
  sub->add_option("--task", o->task, "sst2 | mrpc | cola | stsb | rte | qnli | mnli")->required();
  sub->add_option("--data", o->data, "Labelled evaluation file (the dev split)")->required();
  sub->add_option("--calibration", o->calibration,
                  "Statistics from octet calibrate (static modes are skipped without it)");
  sub->add_option("--modes", o->modes, "Comma-separated subset of: " + mode_names());
  sub->add_flag("--per-layer", o->per_layer,
                "Also report each quantized layer's output SQNR (dB) and cosine vs FP32");
  sub->add_option("--per-layer-mode", o->per_layer_mode,
                  "Mode for --per-layer [static-kl with a calibration, else dynamic]");
  sub->add_option("--per-layer-samples", o->per_layer_samples,
                  "Examples (the first ones of --data) for --per-layer")
      ->capture_default_str();
  sub->add_option("--json", o->json, "Also write the results to this JSON file");
  sub->add_option("--max-seq-len", o->max_seq_len,
                  "Maximum tokens per example [default: 128, or max_position_embeddings]");
  sub->add_option("--batch-size", o->batch_size, "Examples per batch")->capture_default_str();
  sub->add_option("--threads", o->threads, "Threads (0 = all cores)")->capture_default_str();
  return [o]() -> int {
    // Flags first, before any file is read.
    std::vector<const Mode*> modes;
    const bool explicit_modes = !o->modes.empty();
    if (explicit_modes) {
      for (const std::string& name : split_commas(o->modes)) {
        const Mode* m = find_mode(name);
        if (m == nullptr) {
          throw InvalidArgument(
              fmt::format("--modes: unknown mode '{}'; expected some of {}", name, mode_names()));
        }
        modes.push_back(m);
      }
      if (modes.empty()) throw InvalidArgument("--modes is empty");
    } else {
      for (const Mode& m : kModes) modes.push_back(&m);
    }
    if (o->batch_size < 1 || o->batch_size > 65536) {
      throw InvalidArgument(
          fmt::format("--batch-size must be in [1, 65536], found {}", o->batch_size));
    }
    if (o->per_layer && o->per_layer_samples < 1) {
      throw InvalidArgument("--per-layer-samples must be at least 1");
    }
    if (!o->per_layer_mode.empty() && find_mode(o->per_layer_mode) == nullptr) {
      throw InvalidArgument(fmt::format("--per-layer-mode: unknown mode '{}'; expected one of {}",
                                        o->per_layer_mode, mode_names()));
    }
    set_threads(o->threads);

    const data::Task task = data::parse_task(o->task);
    const data::TaskSpec& spec = data::task_spec(task);
    const data::Dataset ds = data::read_glue(task, o->data);
    if (!ds.labeled()) {
      throw DataError(
          fmt::format("{} has no labels (a test split?): compare needs labels", o->data));
    }
    json calib;
    const bool have_calib = !o->calibration.empty();
    if (have_calib) calib = quant::load_calibration(o->calibration);

    BertModel fp32 = BertModel::load(o->model, {.threads = o->threads});
    if (fp32.precision() != Precision::fp32) {
      throw InvalidArgument(
          fmt::format("--model {} is quantized: compare starts from the FP32 "
                      "model",
                      o->model));
    }
    check_head(fp32, spec, o->model);
    const std::size_t max_len = resolve_max_seq_len(o->max_seq_len, fp32);
    const auto tok = text::WordPieceTokenizer::from_model_dir(o->model);
    const EncodedBatches batches = encode_batches(tok, ds.examples, max_len, o->batch_size);
    const int num_labels = static_cast<int>(fp32.config().num_labels);

    auto timed = [](auto&& f) {
      const auto t0 = std::chrono::steady_clock::now();
      f();
      return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    };
    std::vector<float> ref_logits;
    const double fp32_seconds = timed([&] { ref_logits = run_logits(fp32, batches, {}, "fp32"); });
    const eval::Predictions ref_pred =
        eval::predictions_from_logits(task, ref_logits, static_cast<std::size_t>(num_labels));
    const eval::MetricResult ref = eval::glue_metrics(task, ref_pred.labels, ref_pred.scores, ds);

    // Histogram bins and EMA decay come from the calibration, so every calibrator can use it.
    auto config_for = [&](const Mode& m) {
      json j = json::parse(m.config);
      if (j.contains("calibrator") && have_calib && calib.contains("statistics")) {
        const json& st = calib["statistics"];
        const std::string kind = j["calibrator"]["kind"];
        if (kind == "ema" && st.contains("ema_decay")) j["calibrator"]["decay"] = st["ema_decay"];
        if ((kind == "percentile" || kind == "kl" || kind == "mse") && st.contains("bins")) {
          j["calibrator"]["bins"] = st["bins"];
        }
      }
      return quant::parse_quantization_config(j, std::string("mode ") + m.name);
    };

    struct Row {
      std::string name;
      quant::QuantizationConfig cfg;
      eval::MetricResult metrics;
      // Against FP32, example by example: 1000 paired-bootstrap draws (eval/significance.h), the
      // same draws for every mode.
      eval::PairedComparison vs_fp32;
      double seconds = 0, logits_cos = 0;
      int64_t encoder_bytes = 0, fp32_encoder_bytes = 0, model_bytes = 0;
    };
    std::vector<Row> rows;
    std::vector<std::string> skipped;
    for (const Mode* m : modes) {
      const quant::QuantizationConfig cfg = config_for(*m);
      const bool is_static = cfg.activations == quant::ActivationMode::static_;
      if (is_static && !have_calib) {
        if (explicit_modes) {
          throw InvalidArgument(fmt::format("mode {} needs --calibration FILE", m->name));
        }
        skipped.push_back(fmt::format("{} (no --calibration)", m->name));
        continue;
      }
      quant::QuantizedBert q;
      try {
        q = quant::quantize_bert(o->model, cfg, is_static ? &calib : nullptr);
      } catch (const InvalidArgument& e) {
        if (explicit_modes) throw;
        skipped.push_back(fmt::format("{} ({})", m->name, e.what()));
        continue;
      }
      Row r;
      r.name = m->name;
      r.cfg = cfg;
      r.encoder_bytes = q.int8_encoder_bytes;
      r.fp32_encoder_bytes = q.fp32_encoder_bytes;
      for (const io::TensorInfo& t : q.tensors.tensors()) r.model_bytes += t.nbytes;
      const BertModel model = quant::load_in_memory(q, o->threads, true, m->int8_attention);
      std::vector<float> logits;
      r.seconds = timed([&] { logits = run_logits(model, batches, {}, m->name); });
      const eval::Predictions pred =
          eval::predictions_from_logits(task, logits, static_cast<std::size_t>(num_labels));
      r.metrics = eval::glue_metrics(task, pred.labels, pred.scores, ds);
      r.vs_fp32 = eval::paired_bootstrap(task, ref_pred, pred, ds, kResamples, kBootstrapSeed);
      r.logits_cos = cosine(ref_logits, logits);
      rows.push_back(std::move(r));
    }

    int64_t fp32_model_bytes = 0;
    {
      const io::SafetensorsReader reader(io::locate_model(o->model).weights);
      for (const io::TensorInfo& t : reader.tensors()) fp32_model_bytes += t.nbytes;
    }
    const double ref_main = ref.main_value();
    auto rel_err = [&](double v) {
      return ref_main != 0 ? 100.0 * (ref_main - v) / std::fabs(ref_main) : NAN;
    };
    const int64_t fp32_enc = rows.empty() ? 0 : rows[0].fp32_encoder_bytes;

    std::string out;
    out += fmt::format("task {} ({} examples of {}), model {}, kernels {}\n", spec.name,
                       ds.examples.size(), o->data, o->model, isa_name(active_isa()));
    // The relative error's 95% interval: rel_err is decreasing in the metric, so the interval of
    // the difference INT8 - FP32 maps to [rel_err(FP32 + hi), rel_err(FP32 + lo)].
    auto interval = [&](const eval::PairedComparison& c) {
      return std::isfinite(c.lo) ? fmt::format("[{:.2f}, {:.2f}]", rel_err(ref_main + c.hi),
                                               rel_err(ref_main + c.lo))
                                 : std::string("n/a");
    };
    auto differ = [&](const eval::PairedComparison& c) {
      return spec.regression ? std::string("-") : fmt::format("{}", c.disagree);
    };
    out += fmt::format("{:<22} {:>9} {:>9} {:>16} {:>6} {:>10} {:>11} {:>9} {:>8}\n", "mode",
                       ref.main, "rel.err%", "95% interval", "differ", "logit cos", "encoder MiB",
                       "% of FP32", "seconds");
    out +=
        fmt::format("{:<22} {:>9.4f} {:>9} {:>16} {:>6} {:>10} {:>11.2f} {:>9} {:>8.2f}\n", "fp32",
                    ref_main, "-", "-", "-", "-", fp32_enc / 1048576.0, "100.0", fp32_seconds);
    for (const Row& r : rows) {
      out += fmt::format(
          "{:<22} {:>9.4f} {:>9.2f} {:>16} {:>6} {:>10.6f} {:>11.2f} {:>9.1f} {:>8.2f}\n", r.name,
          r.metrics.main_value(), rel_err(r.metrics.main_value()), interval(r.vs_fp32),
          differ(r.vs_fp32), r.logits_cos, r.encoder_bytes / 1048576.0,
          100.0 * r.encoder_bytes / std::max<int64_t>(1, r.fp32_encoder_bytes), r.seconds);
    }
    out += fmt::format(
        "95% interval: of the relative error, from {} paired-bootstrap draws of the examples; "
        "differ: examples predicted differently from FP32\n",
        kResamples);
    for (const std::string& s : skipped) out += fmt::format("skipped: {}\n", s);
    std::fputs(out.c_str(), stdout);

    json per_layer = nullptr;
    if (o->per_layer) {
      std::string mode_name = o->per_layer_mode;
      if (mode_name.empty()) mode_name = have_calib ? "static-kl" : "dynamic";
      const Mode* m = find_mode(mode_name);
      const quant::QuantizationConfig cfg = config_for(*m);
      const bool is_static = cfg.activations == quant::ActivationMode::static_;
      if (is_static && !have_calib) {
        throw InvalidArgument(fmt::format("--per-layer-mode {} needs --calibration", mode_name));
      }
      const quant::QuantizedBert q =
          quant::quantize_bert(o->model, cfg, is_static ? &calib : nullptr);
      const BertModel model = quant::load_in_memory(q, o->threads, true, m->int8_attention);
      const std::size_t n = std::min(o->per_layer_samples, ds.examples.size());
      const EncodedBatches sample =
          encode_batches(tok, std::span(ds.examples).subspan(0, n), max_len, o->batch_size);
      std::vector<std::string> order;
      std::map<std::string, LayerError> errors;
      std::map<std::string, std::vector<float>> ref_out;
      auto key = [](std::string_view name) { return std::string(name); };
      const ActivationTap record = [&](std::string_view name, TapPoint p, const float* x, int64_t r,
                                       int64_t c, std::ptrdiff_t ld) {
        if (p != TapPoint::output) return;
        std::vector<float>& v = ref_out[key(name)];
        v.resize(static_cast<std::size_t>(r * c));
        for (int64_t i = 0; i < r; ++i) std::copy(x + i * ld, x + i * ld + c, v.begin() + i * c);
      };
      const ActivationTap compare = [&](std::string_view name, TapPoint p, const float* x,
                                        int64_t r, int64_t c, std::ptrdiff_t ld) {
        if (p != TapPoint::output) return;
        const std::string k = key(name);
        auto it = ref_out.find(k);
        if (it == ref_out.end() || it->second.size() != static_cast<std::size_t>(r * c)) return;
        if (!errors.contains(k)) order.push_back(k);
        LayerError& e = errors[k];
        for (int64_t i = 0; i < r; ++i) {
          for (int64_t j = 0; j < c; ++j) {
            const double a = it->second[i * c + j], b = x[i * ld + j];
            e.xx += a * a;
            e.ee += (a - b) * (a - b);
            e.xq += a * b;
            e.qq += b * b;
          }
        }
        e.count += r * c;
      };
      for (const std::vector<BertSequence>& batch : sample.batches) {
        fp32.forward(batch, BertOutputKind::logits, record);
        model.forward(batch, BertOutputKind::logits, compare);
      }
      std::string t = fmt::format("\nper-layer output error, mode {} ({} examples; cumulative):\n",
                                  mode_name, n);
      t +=
          fmt::format("{:<52} {:>9} {:>10} {:>6}\n", "layer (output)", "SQNR dB", "cosine", "int8");
      json layers = json::array();
      for (const std::string& name : order) {
        const LayerError& e = errors[name];
        const bool quantized = cfg.quantizes(name);
        t += fmt::format("{:<52} {:>9.2f} {:>10.6f} {:>6}\n", name, e.sqnr_db(), e.cos(),
                         name == "bert.embeddings" ? "-" : (quantized ? "yes" : "no"));
        layers.push_back({{"name", name},
                          {"sqnr_db", finite_or_null(e.sqnr_db())},
                          {"cosine", e.cos()},
                          {"quantized", quantized},
                          {"elements", e.count}});
      }
      std::fputs(t.c_str(), stdout);
      per_layer = {{"mode", mode_name}, {"examples", n}, {"layers", layers}};
    }

    if (!o->json.empty()) {
      json j;
      j["task"] = spec.name;
      j["model"] = o->model;
      j["data"] = o->data;
      j["calibration"] = have_calib ? json(o->calibration) : json(nullptr);
      j["examples"] = ds.examples.size();
      j["main_metric"] = ref.main;
      j["isa"] = isa_name(active_isa());
      j["fp32"] = {{"metrics", metrics_json(ref)},
                   {"seconds", fp32_seconds},
                   {"encoder_bytes", fp32_enc},
                   {"model_bytes", fp32_model_bytes}};
      json arr = json::array();
      for (const Row& r : rows) {
        arr.push_back({{"mode", r.name},
                       {"quantization_config", quant::to_json(r.cfg)},
                       {"metrics", metrics_json(r.metrics)},
                       {"relative_error_pct", finite_or_null(rel_err(r.metrics.main_value()))},
                       {"relative_error_interval_pct",
                        {finite_or_null(rel_err(ref_main + r.vs_fp32.hi)),
                         finite_or_null(rel_err(ref_main + r.vs_fp32.lo))}},
                       {"vs_fp32", comparison_json(r.vs_fp32, spec.regression, kBootstrapSeed,
                                                   /*with_replicates=*/false)},
                       {"logits_cosine", r.logits_cos},
                       {"encoder_bytes", r.encoder_bytes},
                       {"model_bytes", r.model_bytes},
                       {"seconds", r.seconds}});
      }
      j["modes"] = arr;
      j["skipped"] = skipped;
      j["per_layer"] = per_layer;
      io::write_file_atomic(o->json, j.dump(2) + "\n");
    }
    return kExitOk;
  };
}

}  // namespace octet::cli
