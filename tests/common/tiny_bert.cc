#include "common/tiny_bert.h"

#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <vector>

#include "io/safetensors.h"

namespace octet::test {

int64_t write_tiny_vocab(const std::filesystem::path& vocab_txt) {
  static const char* kTokens[] = {
      "[PAD]", "[UNK]", "[CLS]",  "[SEP]", "[MASK]",   ".",        ",",    "!",    "?",
      "'",     "the",   "a",      "an",    "is",       "was",      "it",   "this", "that",
      "movie", "film",  "good",   "great", "bad",      "terrible", "not",  "and",  "but",
      "very",  "story", "acting", "fun",   "boring",   "i",        "love", "hate", "##s",
      "##ed",  "##ing", "##ly",   "un",    "##believ", "##able"};
  std::ofstream out(vocab_txt, std::ios::binary);
  for (const char* t : kTokens) out << t << "\n";
  return static_cast<int64_t>(std::size(kTokens));
}

void write_tiny_bert(const std::filesystem::path& dir, const TinyBertOptions& o) {
  std::filesystem::create_directories(dir);
  const int64_t vocab = write_tiny_vocab(dir / "vocab.txt");
  nlohmann::json config = {{"model_type", "bert"},
                           {"hidden_size", o.hidden},
                           {"num_hidden_layers", o.layers},
                           {"num_attention_heads", o.heads},
                           {"intermediate_size", o.intermediate},
                           {"vocab_size", vocab},
                           {"max_position_embeddings", o.max_positions},
                           {"type_vocab_size", 2},
                           {"hidden_act", "gelu"},
                           {"layer_norm_eps", 1e-12},
                           {"num_labels", o.num_labels}};
  if (o.num_labels == 1) config["problem_type"] = "regression";
  std::ofstream(dir / "config.json") << config.dump(2);

  std::mt19937 rng(o.seed);
  std::normal_distribution<float> normal(0.0f, 0.5f);
  std::vector<std::string> names;
  std::vector<std::vector<int64_t>> shapes;
  std::vector<std::vector<float>> values;
  auto add = [&](const std::string& name, std::vector<int64_t> shape) {
    int64_t n = 1;
    for (int64_t s : shape) n *= s;
    std::vector<float> v(static_cast<std::size_t>(n));
    const bool norm_weight = name.find("LayerNorm.weight") != std::string::npos;
    for (float& x : v) x = norm_weight ? 1.0f + 0.1f * normal(rng) : normal(rng);
    names.push_back(name);
    shapes.push_back(std::move(shape));
    values.push_back(std::move(v));
  };
  const int64_t h = o.hidden, i = o.intermediate;
  add("bert.embeddings.word_embeddings.weight", {vocab, h});
  add("bert.embeddings.position_embeddings.weight", {o.max_positions, h});
  add("bert.embeddings.token_type_embeddings.weight", {2, h});
  add("bert.embeddings.LayerNorm.weight", {h});
  add("bert.embeddings.LayerNorm.bias", {h});
  for (int64_t l = 0; l < o.layers; ++l) {
    const std::string p = "bert.encoder.layer." + std::to_string(l) + ".";
    for (const char* n : {"attention.self.query", "attention.self.key", "attention.self.value",
                          "attention.output.dense"}) {
      add(p + n + ".weight", {h, h});
      add(p + n + ".bias", {h});
    }
    add(p + "attention.output.LayerNorm.weight", {h});
    add(p + "attention.output.LayerNorm.bias", {h});
    add(p + "intermediate.dense.weight", {i, h});
    add(p + "intermediate.dense.bias", {i});
    add(p + "output.dense.weight", {h, i});
    add(p + "output.dense.bias", {h});
    add(p + "output.LayerNorm.weight", {h});
    add(p + "output.LayerNorm.bias", {h});
  }
  add("bert.pooler.dense.weight", {h, h});
  add("bert.pooler.dense.bias", {h});
  if (o.classifier) {
    add("classifier.weight", {o.num_labels, h});
    add("classifier.bias", {o.num_labels});
  }
  std::vector<io::TensorView> views;
  for (std::size_t k = 0; k < names.size(); ++k) {
    views.push_back(io::tensor_view<float>(names[k], shapes[k], values[k]));
  }
  io::write_safetensors(dir / "model.safetensors", views);
}

}  // namespace octet::test
