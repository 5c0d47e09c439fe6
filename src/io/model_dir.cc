#include "io/model_dir.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <system_error>
#include <vector>

#include "octet/error.h"

namespace octet::io {

ModelFiles locate_model(const std::filesystem::path& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::file_status st = fs::status(dir, ec);
  if (!fs::exists(st)) {
    throw IoError(
        fmt::format("model directory {} does not exist{}", dir.string(),
                    ec && ec != std::errc::no_such_file_or_directory ? ": " + ec.message() : ""));
  }
  if (!fs::is_directory(st)) {
    throw IoError(fmt::format("model directory {} is not a directory", dir.string()));
  }

  ModelFiles m;
  m.dir = dir;
  m.config = dir / "config.json";
  m.weights = dir / "model.safetensors";
  m.vocab = dir / "vocab.txt";
  if (fs::is_regular_file(dir / "tokenizer_config.json", ec)) {
    m.tokenizer_config = dir / "tokenizer_config.json";
  }

  std::vector<std::string> missing;
  if (!fs::is_regular_file(m.config, ec)) missing.push_back("config.json");
  if (!fs::is_regular_file(m.weights, ec)) missing.push_back("model.safetensors");
  if (!missing.empty()) {
    std::string hint;
    if (!fs::exists(m.weights, ec) && (fs::exists(dir / "pytorch_model.bin", ec) ||
                                       fs::exists(dir / "model.safetensors.index.json", ec))) {
      hint =
          "; Octet reads a single model.safetensors: convert the PyTorch or sharded checkpoint "
          "with transformers' save_pretrained(..., safe_serialization=True, "
          "max_shard_size=\"100GB\")";
    }
    throw ModelFormatError(fmt::format("model directory {} is missing {}{}", dir.string(),
                                       fmt::join(missing, " and "), hint));
  }
  return m;
}

}  // namespace octet::io
