// Locating the files of a model directory (Hugging Face layout):
//
//   <dir>/config.json             required (BertConfig, see bert_config.h)
//   <dir>/model.safetensors       required (weights, see safetensors.h)
//   <dir>/vocab.txt               WordPiece vocabulary; its absence is reported by the tokenizer
//   <dir>/tokenizer_config.json   optional (e.g. do_lower_case)
//
//   ModelFiles f = octet::io::locate_model("models/sst2");
//   BertConfig c = load_bert_config(f.config);
//
// IoError if `dir` does not exist or is not a directory; ModelFormatError naming the directory and
// every missing required file (with a hint when only pytorch_model.bin is present).
#pragma once

#include <filesystem>

namespace octet::io {

struct ModelFiles {
  std::filesystem::path dir;
  std::filesystem::path config;            // dir/config.json
  std::filesystem::path weights;           // dir/model.safetensors
  std::filesystem::path vocab;             // dir/vocab.txt, whether or not it exists
  std::filesystem::path tokenizer_config;  // dir/tokenizer_config.json, or empty if absent
};

ModelFiles locate_model(const std::filesystem::path& dir);

}  // namespace octet::io
