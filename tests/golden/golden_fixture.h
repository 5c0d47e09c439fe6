// A golden fixture written by scripts/make_golden.py: the model directory, its inputs (a batch
// of mixed lengths with token type ids) and the PyTorch reference outputs as raw float32 files.
#pragma once

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/test_support.h"

namespace octet::test {

struct Golden {
  std::filesystem::path dir;
  nlohmann::json meta;  // golden.json
  std::vector<std::vector<int32_t>> ids, types;

  // A reference output ("logits", "pooled", "last_hidden", "mean_pooled") as float32 values.
  std::vector<float> read(const std::string& output) const {
    const std::string bytes = read_file(dir / meta["outputs"][output].get<std::string>());
    std::vector<float> v(bytes.size() / sizeof(float));
    std::memcpy(v.data(), bytes.data(), v.size() * sizeof(float));
    return v;
  }
  bool has(const std::string& output) const { return meta["outputs"].contains(output); }
};

inline Golden load_golden(const std::string& name) {
  Golden g;
  g.dir = golden_dir() / name;
  g.meta = nlohmann::json::parse(read_file(g.dir / "golden.json"));
  g.ids = g.meta["input_ids"].get<std::vector<std::vector<int32_t>>>();
  g.types = g.meta["token_type_ids"].get<std::vector<std::vector<int32_t>>>();
  return g;
}

}  // namespace octet::test
