// `octet quantize --model DIR --out QDIR [--calibration CALIB] [config flags]`: writes a quantized
// model directory (config.json with quantization_config, model.safetensors with int8 weights,
// int32 biases and their scales; docs/model_format.md) that BertModel::load, `octet eval` and
// `octet predict` read as they read an FP32 one.
#include <fmt/format.h>

#include <memory>

#include "cli.h"
#include "octet/error.h"
#include "quant/bert_quant.h"
#include "quant_common.h"

namespace octet::cli {

Runner register_quantize(CLI::App& app) {
  struct Options {
    std::string model, out, calibration;
    QuantFlags flags;
  };
  auto o = std::make_shared<Options>();
  CLI::App* sub = app.add_subcommand("quantize", "Write an INT8 model directory from an FP32 one");
  sub->add_option("--model", o->model, "FP32 model directory")->required();
  sub->add_option("--out", o->out, "Directory to write the quantized model to")->required();
  sub->add_option("--calibration", o->calibration,
                  "Statistics from octet calibrate (needed for static activations)");
  add_quant_flags(sub, o->flags);
  return [o]() -> int {
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
