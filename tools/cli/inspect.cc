// `octet inspect --model DIR [--json]`: architecture, parameter count, dtypes, size on disk.
#include <fmt/format.h>

#include <cstdio>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>

#include "cli.h"
#include "io/bert_config.h"
#include "io/dtype.h"
#include "io/model_dir.h"
#include "io/safetensors.h"
#include "octet/cpu.h"

namespace octet::cli {

Runner register_inspect(CLI::App& app) {
  struct Options {
    std::string model;
    bool json = false;
  };
  auto opts = std::make_shared<Options>();
  CLI::App* sub = app.add_subcommand("inspect",
                                     "Describe a model directory: architecture, "
                                     "parameters, dtypes, size on disk");
  sub->add_option("--model", opts->model, "Model directory (config.json + model.safetensors)")
      ->required();
  sub->add_flag("--json", opts->json, "Print JSON instead of a table");
  return [opts]() -> int {
    io::ModelFiles files = io::locate_model(opts->model);
    io::BertConfig cfg = io::load_bert_config(files.config);
    io::SafetensorsReader weights(files.weights);

    std::map<std::string, std::pair<int64_t, uint64_t>> by_dtype;  // dtype -> (params, bytes)
    int64_t params = 0;
    // Encoder weights (embeddings + layers, as stored), the part quantization shrinks ~4x.
    uint64_t encoder_bytes = 0;
    for (const io::TensorInfo& t : weights.tensors()) {
      if (t.name.find("embeddings.") != std::string::npos ||
          t.name.find("encoder.layer.") != std::string::npos) {
        encoder_bytes += t.nbytes;
      }
      auto& e = by_dtype[std::string(io::dtype_name(t.dtype))];
      e.first += t.numel();
      e.second += t.nbytes;
      params += t.numel();
    }
    uint64_t disk = 0;
    for (const auto& entry : std::filesystem::directory_iterator(files.dir)) {
      if (entry.is_regular_file()) disk += entry.file_size();
    }
    const bool has_head = weights.find("classifier.weight") != nullptr;
    nlohmann::json quant =
        cfg.raw.contains("quantization_config") ? cfg.raw["quantization_config"] : nlohmann::json();
    if (opts->json) {
      nlohmann::json j;
      j["model"] = files.dir.string();
      j["architecture"] = {{"model_type", cfg.model_type},
                           {"layers", cfg.num_hidden_layers},
                           {"hidden_size", cfg.hidden_size},
                           {"attention_heads", cfg.num_attention_heads},
                           {"intermediate_size", cfg.intermediate_size},
                           {"hidden_act", cfg.hidden_act_name},
                           {"vocab_size", cfg.vocab_size},
                           {"max_position_embeddings", cfg.max_position_embeddings},
                           {"type_vocab_size", cfg.type_vocab_size}};
      j["head"] = has_head
                      ? nlohmann::json{{"problem_type", io::problem_type_name(cfg.problem_type)},
                                       {"num_labels", cfg.num_labels},
                                       {"labels", cfg.id2label}}
                      : nlohmann::json(nullptr);
      j["parameters"] = params;
      j["tensors"] = weights.tensors().size();
      for (const auto& [name, e] : by_dtype)
        j["dtypes"][name] = {{"parameters", e.first}, {"bytes", e.second}};
      j["size_on_disk_bytes"] = disk;
      j["encoder_weight_bytes"] = encoder_bytes;
      j["quantization_config"] = quant;
      std::printf("%s\n", j.dump(2).c_str());
      return kExitOk;
    }
    std::string out;
    out += fmt::format("model          {}\n", files.dir.string());
    out += fmt::format(
        "architecture   {} encoder: {} layers, hidden {}, {} heads (head dim {}), FFN {}, {}\n",
        cfg.model_type, cfg.num_hidden_layers, cfg.hidden_size, cfg.num_attention_heads,
        cfg.head_dim(), cfg.intermediate_size, cfg.hidden_act_name);
    out += fmt::format("vocabulary     {} tokens, {} positions, {} token types\n", cfg.vocab_size,
                       cfg.max_position_embeddings, cfg.type_vocab_size);
    if (has_head) {
      out += fmt::format("head           {}, {} label(s): {}\n",
                         io::problem_type_name(cfg.problem_type), cfg.num_labels,
                         fmt::join(cfg.id2label, ", "));
    } else {
      out += "head           none (raw outputs only: hidden states, pooled, mean-pooled)\n";
    }
    out += fmt::format("parameters     {} ({:.2f} M) in {} tensors\n", params, params / 1e6,
                       weights.tensors().size());
    for (const auto& [name, e] : by_dtype) {
      out +=
          fmt::format("  {:<12} {} parameters, {:.2f} MiB\n", name, e.first, e.second / 1048576.0);
    }
    out +=
        fmt::format("size on disk   {:.2f} MiB (encoder weights: embeddings + layers {:.2f} MiB)\n",
                    disk / 1048576.0, encoder_bytes / 1048576.0);
    out += fmt::format("quantization   {}\n", quant.is_null() ? "none (FP32 model)" : quant.dump());
    out += fmt::format("kernels        {} on {}\n", isa_name(active_isa()), cpu_description());
    std::fputs(out.c_str(), stdout);
    return kExitOk;
  };
}

}  // namespace octet::cli
