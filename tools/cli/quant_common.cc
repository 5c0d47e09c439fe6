#include "quant_common.h"

#include <fmt/format.h>

#include <fstream>
#include <sstream>

#include "cli.h"
#include "io/bert_config.h"
#include "octet/error.h"

namespace octet::cli {

using nlohmann::json;

void add_quant_flags(CLI::App* sub, QuantFlags& f) {
  sub->add_option("--config", f.config_file,
                  "quantization_config JSON file (docs/quantization.md); the flags below override "
                  "its keys");
  sub->add_option("--activations", f.activations, "static (calibrated) | dynamic [static]");
  sub->add_option("--scheme", f.scheme, "symmetric (s8) | asymmetric (u8 + zero point)");
  sub->add_option("--weights", f.weights, "per-channel | per-tensor [per-channel]");
  sub->add_option("--calibrator", f.calibrator, "max | ema | percentile | kl | mse [max]");
  sub->add_option("--percentile", f.percentile, "percentile calibrator: p in (50, 100] [99.99]");
  sub->add_option("--kl-form", f.kl_form, "kl calibrator: abs (TensorRT) | signed [abs]");
  sub->add_option("--bins", f.bins, "histogram bins per side (percentile, kl, mse) [2048]");
  sub->add_option("--ema-decay", f.ema_decay, "ema calibrator decay [0.9999]");
  sub->add_option("--threshold-mode", f.threshold_mode,
                  "symmetric | independent (asymmetric scheme) | conjugate [symmetric]");
  sub->add_option("--keep-fp32", f.keep_fp32,
                  "Glob over layer names kept in FP32, e.g. 'bert.encoder.layer.11.*' "
                  "(repeatable)");
  sub->add_flag("--no-embeddings", f.no_embeddings,
                "Keep the word and position embedding tables in FP32");
}

quant::QuantizationConfig quant_config_from_flags(const QuantFlags& f, const json* calibration) {
  json j = json::object();
  std::string where = "quantization flags";
  if (!f.config_file.empty()) {
    std::ifstream in(f.config_file);
    if (!in) throw InvalidArgument(fmt::format("--config {}: cannot read the file", f.config_file));
    std::stringstream ss;
    ss << in.rdbuf();
    try {
      j = json::parse(ss.str());
    } catch (const json::parse_error& e) {
      throw InvalidArgument(
          fmt::format("--config {}: not valid JSON: {}", f.config_file, e.what()));
    }
    if (j.is_object() && j.contains("quantization_config")) j = j["quantization_config"];
    where = "--config " + f.config_file;
  }
  auto dashed = [](std::string s) {
    for (char& c : s) {
      if (c == '-') c = '_';
    }
    return s;
  };
  if (!f.activations.empty()) j["activations"] = f.activations;
  if (!f.scheme.empty()) j["scheme"] = f.scheme;
  if (!f.weights.empty()) j["weights"] = dashed(f.weights);
  if (!f.threshold_mode.empty()) j["threshold_mode"] = f.threshold_mode;
  if (!f.calibrator.empty()) j["calibrator"] = json{{"kind", f.calibrator}};
  auto calib = [&](const char* key, const json& v) {
    if (!j.contains("calibrator")) j["calibrator"] = json{{"kind", "max"}};
    if (j["calibrator"].is_object()) j["calibrator"][key] = v;
  };
  if (f.percentile != 0) calib("percentile", f.percentile);
  if (!f.kl_form.empty()) calib("kl_form", f.kl_form);
  if (f.bins != 0) calib("bins", f.bins);
  if (f.ema_decay != 0) calib("decay", f.ema_decay);
  if (!f.keep_fp32.empty()) {
    if (!j.contains("keep_fp32")) j["keep_fp32"] = json::array();
    if (j["keep_fp32"].is_array()) {
      for (const std::string& g : f.keep_fp32) j["keep_fp32"].push_back(g);
    }
  }
  if (f.no_embeddings) {
    if (!j.contains("quantize")) j["quantize"] = json::object();
    if (j["quantize"].is_object()) {
      j["quantize"]["word_embeddings"] = false;
      j["quantize"]["position_embeddings"] = false;
    }
  }
  if (calibration != nullptr && calibration->contains("statistics") && j.contains("calibrator") &&
      j["calibrator"].is_object() && j["calibrator"].contains("kind")) {
    const json& st = (*calibration)["statistics"];
    json& c = j["calibrator"];
    const json kind = c["kind"];
    if ((kind == "percentile" || kind == "kl" || kind == "mse") && !c.contains("bins") &&
        st.contains("bins")) {
      c["bins"] = st["bins"];
    }
    if (kind == "ema" && !c.contains("decay") && st.contains("ema_decay")) {
      c["decay"] = st["ema_decay"];
    }
  }
  quant::QuantizationConfig cfg = quant::parse_quantization_config(j, where, false);
  quant::validate(cfg);
  return cfg;
}

EncodedBatches encode_batches(const text::WordPieceTokenizer& tok,
                              std::span<const data::Example> examples, std::size_t max_seq_len,
                              std::size_t batch_size) {
  EncodedBatches out;
  out.encodings.reserve(examples.size());
  for (const data::Example& ex : examples) {
    out.encodings.push_back(ex.text_b.empty() ? tok.encode(ex.text_a, max_seq_len)
                                              : tok.encode_pair(ex.text_a, ex.text_b, max_seq_len));
  }
  for (std::size_t start = 0; start < out.encodings.size(); start += batch_size) {
    std::vector<BertSequence>& b = out.batches.emplace_back();
    for (std::size_t i = start; i < std::min(out.encodings.size(), start + batch_size); ++i) {
      b.push_back({out.encodings[i].input_ids, out.encodings[i].token_type_ids});
    }
  }
  return out;
}

std::size_t resolve_max_seq_len(std::size_t flag, const BertModel& model) {
  const auto max_pos = static_cast<std::size_t>(model.config().max_position_embeddings);
  const std::size_t v = flag == 0 ? std::min<std::size_t>(128, max_pos) : flag;
  if (v < 3 || v > max_pos) {
    throw InvalidArgument(fmt::format(
        "--max-seq-len must be in [3, {}] (the model's max_position_embeddings), found {}", max_pos,
        v));
  }
  return v;
}

void check_head(const BertModel& model, const data::TaskSpec& spec, const std::string& model_dir) {
  const io::BertConfig& cfg = model.config();
  if (!model.has_classifier()) {
    throw InvalidArgument(fmt::format(
        "model {} has no classification head (classifier.weight absent): a fine-tuned classifier "
        "is needed",
        model_dir));
  }
  const bool regression = cfg.problem_type == io::ProblemType::regression;
  if (regression != spec.regression || (!spec.regression && cfg.num_labels != spec.num_labels)) {
    throw InvalidArgument(
        fmt::format("model {} has a {} head with {} label(s), but task {} expects {}", model_dir,
                    io::problem_type_name(cfg.problem_type), cfg.num_labels, spec.name,
                    spec.regression ? std::string("a regression head (num_labels 1)")
                                    : fmt::format("{} labels", spec.num_labels)));
  }
}

std::vector<float> run_logits(const BertModel& model, const EncodedBatches& b,
                              const ActivationTap& tap, const char* label) {
  const auto num_labels = static_cast<std::size_t>(model.config().num_labels);
  std::vector<float> logits;
  logits.reserve(b.encodings.size() * num_labels);
  Progress progress(label, b.encodings.size());
  for (const std::vector<BertSequence>& batch : b.batches) {
    BertOutputs out = tap ? model.forward(batch, BertOutputKind::logits, tap)
                          : model.forward(batch, BertOutputKind::logits);
    logits.insert(logits.end(), out.logits.begin(), out.logits.end());
    progress.advance(batch.size());
  }
  progress.finish();
  return logits;
}

}  // namespace octet::cli
