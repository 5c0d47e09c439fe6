// `octet quantize --model DIR --out QDIR [--calibration CALIB] [config flags]`: writes a quantized
// model directory (config.json with quantization_config, model.safetensors with int8 weights,
// int32 biases and their scales; docs/model_format.md) that BertModel::load, `octet eval` and
// `octet predict` read as they read an FP32 one.
#include <fmt/format.h>

#include <memory>

#include "cli.h"
#include "octet/error.h"
#include "quant/bert_quant.h"
#include "quant/integer_quant.h"
#include "quant_common.h"

namespace octet::cli {

Runner register_quantize(CLI::App& app) {
  struct Options {
    std::string model, out, calibration, mode = "int8";
    QuantFlags flags;
  };
  auto o = std::make_shared<Options>();
  CLI::App* sub = app.add_subcommand("quantize", "Write an INT8 model directory from an FP32 one");
  sub->add_option("--model", o->model, "FP32 model directory")->required();
  sub->add_option("--out", o->out, "Directory to write the quantized model to")->required();
  sub->add_option("--calibration", o->calibration,
                  "Statistics from octet calibrate (needed for static activations)");
  sub->add_option("--mode", o->mode,
                  "int8 (static / dynamic INT8 graph, the flags below) | integer-only (I-BERT: "
                  "the encoder in integer arithmetic only; needs a calibration from octet "
                  "calibrate --calibrator ema-minmax)")
      ->capture_default_str();
  add_quant_flags(sub, o->flags);
  return [o]() -> int {
    if (o->mode == "integer-only" || o->mode == "integer_only") {
      const QuantFlags& f = o->flags;
      if (!f.config_file.empty() || !f.activations.empty() || !f.scheme.empty() ||
          !f.weights.empty() || !f.calibrator.empty() || !f.kl_form.empty() ||
          !f.threshold_mode.empty() || f.percentile != 0 || f.ema_decay != 0 || f.bins != 0 ||
          !f.keep_fp32.empty() || f.no_embeddings) {
        throw InvalidArgument(
            "--mode integer-only takes only --model, --out and --calibration: its scheme is fixed "
            "(I-BERT: symmetric, int8 weights per output channel, EMA min/max ranges as "
            "calibrated, 16-bit embedding sums, 22-bit residual sums, FP32 head)");
      }
      if (o->calibration.empty()) {
        throw InvalidArgument(
            "--mode integer-only needs --calibration FILE (from octet calibrate --calibrator "
            "ema-minmax)");
      }
      const nlohmann::json calib = quant::load_calibration(o->calibration);
      const quant::QuantizedBert q = quant::quantize_bert_integer(o->model, calib);
      quant::write_quantized_dir(q, o->out);
      std::printf("wrote %s (integer-only): encoder weights %.2f MiB (FP32 %.2f MiB, %.1f%%)\n",
                  o->out.c_str(), q.int8_encoder_bytes / 1048576.0,
                  q.fp32_encoder_bytes / 1048576.0,
                  100.0 * q.int8_encoder_bytes / std::max<int64_t>(1, q.fp32_encoder_bytes));
      std::printf("quantization_config %s\n", q.config_json["quantization_config"].dump().c_str());
      return kExitOk;
    }
    if (o->mode != "int8") {
      throw InvalidArgument(
          fmt::format("--mode must be int8 or integer-only, found '{}'", o->mode));
    }
    quant_config_from_flags(o->flags);  // flag errors before any file is read
    nlohmann::json calib;
    if (!o->calibration.empty()) calib = quant::load_calibration(o->calibration);
    const quant::QuantizationConfig cfg =
        quant_config_from_flags(o->flags, o->calibration.empty() ? nullptr : &calib);
    if (cfg.activations == quant::ActivationMode::static_ && o->calibration.empty()) {
      throw InvalidArgument(
          "static activations need --calibration FILE (from octet calibrate); or pass "
          "--activations dynamic");
    }
    const quant::QuantizedBert q =
        quant::quantize_bert(o->model, cfg, o->calibration.empty() ? nullptr : &calib);
    quant::write_quantized_dir(q, o->out);
    std::printf("wrote %s: encoder weights %.2f MiB (FP32 %.2f MiB, %.1f%%)\n", o->out.c_str(),
                q.int8_encoder_bytes / 1048576.0, q.fp32_encoder_bytes / 1048576.0,
                100.0 * q.int8_encoder_bytes / std::max<int64_t>(1, q.fp32_encoder_bytes));
    std::printf("quantization_config %s\n", quant::to_json(cfg).dump().c_str());
    return kExitOk;
  };
}

}  // namespace octet::cli
