// The Hugging Face BertConfig (config.json of a BERT model directory).
//
//   BertConfig c = octet::io::load_bert_config(dir / "config.json");
//   int64_t d = c.head_dim();                          // hidden_size / num_attention_heads
//   const nlohmann::json& q = c.raw["quantization_config"];   // sections other layers own
//
// Fields absent from the file take Hugging Face's BertConfig defaults (below). Present fields are
// checked: JSON type, positive sizes, hidden_size divisible by num_attention_heads, a supported
// hidden_act, finite positive layer_norm_eps, pad_token_id within the vocabulary, id2label keys
// exactly "0".."n-1" and agreeing with num_labels, a known problem_type, model_type "bert" and
// position_embedding_type "absolute". Anything else is a ModelFormatError naming the file, the
// field, expected vs found. Unknown fields are kept in `raw` and otherwise ignored.
// Plain value type; thread-compatible.
#pragma once

#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace octet::io {

// "gelu" (erf form); "gelu_new", "gelu_pytorch_tanh", "gelu_fast" -> gelu_tanh (tanh
// approximation); "relu".
enum class Activation { gelu, gelu_tanh, relu };

// Hugging Face's rule when "problem_type" is absent: regression if num_labels == 1, else
// single-label classification.
enum class ProblemType { single_label_classification, multi_label_classification, regression };

std::string_view activation_name(Activation a);     // "gelu", "gelu_tanh", "relu"
std::string_view problem_type_name(ProblemType p);  // Hugging Face spelling

struct BertConfig {
  int64_t vocab_size = 30522;
  int64_t hidden_size = 768;
  int64_t num_hidden_layers = 12;
  int64_t num_attention_heads = 12;
  int64_t intermediate_size = 3072;
  int64_t max_position_embeddings = 512;
  int64_t type_vocab_size = 2;
  int64_t pad_token_id = 0;
  double layer_norm_eps = 1e-12;
  Activation hidden_act = Activation::gelu;
  std::string hidden_act_name = "gelu";  // as spelled in the file
  int64_t num_labels = 2;
  std::vector<std::string> id2label = {"LABEL_0", "LABEL_1"};  // size num_labels, by id
  ProblemType problem_type = ProblemType::single_label_classification;
  std::string model_type = "bert";
  nlohmann::json raw = nlohmann::json::object();  // the whole file as read

  int64_t head_dim() const { return hidden_size / num_attention_heads; }
};

// Reads and parses `config_json` (IoError if unreadable; ModelFormatError if malformed).
BertConfig load_bert_config(const std::filesystem::path& config_json);
// `where` names the source in messages (usually the file path).
BertConfig parse_bert_config(const nlohmann::json& j, const std::string& where);
// Every field above in Hugging Face spelling, on top of `c.raw` so that sections owned by other
// layers survive; parse_bert_config(to_json(c), ...) reproduces c.
nlohmann::json to_json(const BertConfig& c);

}  // namespace octet::io
