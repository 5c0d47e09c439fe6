#include "io/bert_config.h"

#include <fmt/format.h>

#include <cmath>
#include <fstream>
#include <limits>
#include <sstream>

#include "io/json_util.h"
#include "io/mapped_file.h"
#include "octet/error.h"

namespace octet::io {

namespace {

using nlohmann::json;

// Field readers: absent (or, for optional HF fields, null) keeps the default.
class Fields {
 public:
  Fields(const json& j, const std::string& where) : j_(j), where_(where) {}

  [[noreturn]] void fail(std::string_view field, std::string_view expected,
                         const std::string& what) const {
    throw ModelFormatError(
        fmt::format("{}: field \"{}\" is {}, expected {}", where_, field, what, expected));
  }

  const json* get(const char* field) const {
    const auto it = j_.find(field);
    return it == j_.end() ? nullptr : &*it;
  }

  // Sizes are capped at 2^31 - 1 so that they fit the kernels' int dimensions and a product of
  // two of them cannot overflow 64 bits.
  void integer(const char* field, int64_t min, int64_t* out) const {
    constexpr int64_t kMax = std::numeric_limits<int32_t>::max();
    const json* v = get(field);
    if (v == nullptr) return;
    const std::string expected = fmt::format("an integer in [{}, {}]", min, kMax);
    if (!v->is_number_integer()) fail(field, expected, detail::describe_json(*v));
    if (v->is_number_unsigned() && v->get<uint64_t>() > static_cast<uint64_t>(kMax)) {
      fail(field, expected, std::to_string(v->get<uint64_t>()));
    }
    const int64_t x = v->get<int64_t>();
    if (x < min || x > kMax) fail(field, expected, std::to_string(x));
    *out = x;
  }

  void string(const char* field, std::string* out) const {
    const json* v = get(field);
    if (v == nullptr) return;
    if (!v->is_string()) fail(field, "a string", detail::describe_json(*v));
    *out = v->get<std::string>();
  }

 private:
  const json& j_;
  const std::string& where_;
};

struct ActivationName {
  std::string_view name;
  Activation act;
};
constexpr ActivationName kActivations[] = {
    {"gelu", Activation::gelu},
    {"gelu_new", Activation::gelu_tanh},
    {"gelu_pytorch_tanh", Activation::gelu_tanh},
    {"gelu_fast", Activation::gelu_tanh},
    {"relu", Activation::relu},
};
constexpr std::string_view kSupportedActivations =
    "\"gelu\", \"gelu_new\", \"gelu_pytorch_tanh\", \"gelu_fast\" or \"relu\"";

struct ProblemTypeName {
  std::string_view name;
  ProblemType type;
};
constexpr ProblemTypeName kProblemTypes[] = {
    {"single_label_classification", ProblemType::single_label_classification},
    {"multi_label_classification", ProblemType::multi_label_classification},
    {"regression", ProblemType::regression},
};

}  // namespace

std::string_view activation_name(Activation a) {
  switch (a) {
    case Activation::gelu:
      return "gelu";
    case Activation::gelu_tanh:
      return "gelu_tanh";
    case Activation::relu:
      return "relu";
  }
  return "?";
}

std::string_view problem_type_name(ProblemType p) {
  for (const auto& e : kProblemTypes) {
    if (e.type == p) return e.name;
  }
  return "?";
}

BertConfig parse_bert_config(const json& j, const std::string& where) {
  if (!j.is_object()) {
    throw ModelFormatError(
        fmt::format("{}: config is {}, expected a JSON object", where, detail::describe_json(j)));
  }
  const Fields f(j, where);
  BertConfig c;
  c.raw = j;

  f.string("model_type", &c.model_type);
  if (c.model_type != "bert") {
    const std::string hint =
        c.model_type == "roberta"
            ? " (RoBERTa is not supported: its position ids start after the padding index and it "
              "has no token type embeddings)"
            : "";
    f.fail("model_type", "\"bert\" (Octet runs BERT encoders only)",
           fmt::format("\"{}\"{}", c.model_type, hint));
  }
  if (const json* v = f.get("position_embedding_type"); v != nullptr && !v->is_null()) {
    if (!v->is_string() || v->get<std::string>() != "absolute") {
      f.fail("position_embedding_type",
             "\"absolute\" (relative position embeddings are not supported)",
             detail::describe_json(*v));
    }
  }

  f.integer("vocab_size", 1, &c.vocab_size);
  f.integer("hidden_size", 1, &c.hidden_size);
  f.integer("num_hidden_layers", 1, &c.num_hidden_layers);
  f.integer("num_attention_heads", 1, &c.num_attention_heads);
  f.integer("intermediate_size", 1, &c.intermediate_size);
  f.integer("max_position_embeddings", 1, &c.max_position_embeddings);
  f.integer("type_vocab_size", 1, &c.type_vocab_size);
  if (const json* v = f.get("pad_token_id"); v != nullptr && !v->is_null()) {
    f.integer("pad_token_id", 0, &c.pad_token_id);
  }
  if (c.pad_token_id >= c.vocab_size) {
    f.fail("pad_token_id", fmt::format("an id below vocab_size {}", c.vocab_size),
           std::to_string(c.pad_token_id));
  }
  if (c.hidden_size % c.num_attention_heads != 0) {
    f.fail("hidden_size",
           fmt::format("a multiple of num_attention_heads ({})", c.num_attention_heads),
           std::to_string(c.hidden_size));
  }

  if (const json* v = f.get("layer_norm_eps")) {
    if (!v->is_number())
      f.fail("layer_norm_eps", "a finite positive number", detail::describe_json(*v));
    c.layer_norm_eps = v->get<double>();
    if (!std::isfinite(c.layer_norm_eps) || c.layer_norm_eps <= 0) {
      f.fail("layer_norm_eps", "a finite positive number", detail::describe_json(*v));
    }
  }

  f.string("hidden_act", &c.hidden_act_name);
  bool act_known = false;
  for (const auto& e : kActivations) {
    if (e.name == c.hidden_act_name) {
      c.hidden_act = e.act;
      act_known = true;
    }
  }
  if (!act_known) {
    f.fail("hidden_act", fmt::format("one of {}", kSupportedActivations),
           fmt::format("\"{}\"", c.hidden_act_name));
  }

  // Labels. Hugging Face derives num_labels from id2label when both are present; a disagreement
  // means the file was edited by hand and the classifier shape is ambiguous.
  const json* num_labels = f.get("num_labels");
  int64_t n_labels = 2;
  if (num_labels != nullptr) f.integer("num_labels", 1, &n_labels);
  if (const json* v = f.get("id2label"); v != nullptr && !v->is_null()) {
    if (!v->is_object() || v->empty()) {
      f.fail("id2label", "a non-empty object {\"0\": label, \"1\": label, ...}",
             detail::describe_json(*v));
    }
    const auto n = static_cast<int64_t>(v->size());
    std::vector<std::string> labels(static_cast<std::size_t>(n));
    std::vector<bool> seen(static_cast<std::size_t>(n), false);
    for (auto it = v->begin(); it != v->end(); ++it) {
      const std::string& key = it.key();
      int64_t id = -1;
      const bool numeric = !key.empty() && key.size() <= 18 &&
                           key.find_first_not_of("0123456789") == std::string::npos &&
                           (key == "0" || key[0] != '0');
      if (numeric) id = std::stoll(key);
      if (id < 0 || id >= n) {
        f.fail("id2label", fmt::format("keys \"0\"..\"{}\" (one per label)", n - 1),
               fmt::format("the key \"{}\"", key));
      }
      if (!it.value().is_string()) {
        f.fail("id2label", "string labels",
               fmt::format("{} for key \"{}\"", detail::describe_json(it.value()), key));
      }
      labels[static_cast<std::size_t>(id)] = it.value().get<std::string>();
      seen[static_cast<std::size_t>(id)] = true;
    }
    // n distinct keys, each in [0, n): all of 0..n-1 are present (checked anyway for clarity).
    for (int64_t i = 0; i < n; ++i) {
      if (!seen[static_cast<std::size_t>(i)]) {
        f.fail("id2label", fmt::format("a label for id {}", i), "none");
      }
    }
    if (num_labels != nullptr && n_labels != n) {
      f.fail("num_labels", fmt::format("{} (the size of id2label)", n), std::to_string(n_labels));
    }
    n_labels = n;
    c.id2label = std::move(labels);
  } else {
    c.id2label.clear();
    for (int64_t i = 0; i < n_labels; ++i) c.id2label.push_back(fmt::format("LABEL_{}", i));
  }
  c.num_labels = n_labels;

  c.problem_type =
      c.num_labels == 1 ? ProblemType::regression : ProblemType::single_label_classification;
  if (const json* v = f.get("problem_type"); v != nullptr && !v->is_null()) {
    constexpr std::string_view expected =
        "\"single_label_classification\", \"multi_label_classification\" or \"regression\"";
    if (!v->is_string()) f.fail("problem_type", expected, detail::describe_json(*v));
    bool known = false;
    for (const auto& e : kProblemTypes) {
      if (e.name == v->get<std::string>()) {
        c.problem_type = e.type;
        known = true;
      }
    }
    if (!known) f.fail("problem_type", expected, detail::describe_json(*v));
  }
  return c;
}

BertConfig load_bert_config(const std::filesystem::path& config_json) {
  const MappedFile file(config_json);
  const auto b = file.bytes();
  const std::string_view text(reinterpret_cast<const char*>(b.data()), b.size());
  const json j = detail::parse_json_strict(text, config_json.string(), 0, /*max_depth=*/64);
  return parse_bert_config(j, config_json.string());
}

json to_json(const BertConfig& c) {
  json j = c.raw.is_object() ? c.raw : json::object();
  j["model_type"] = c.model_type;
  j["vocab_size"] = c.vocab_size;
  j["hidden_size"] = c.hidden_size;
  j["num_hidden_layers"] = c.num_hidden_layers;
  j["num_attention_heads"] = c.num_attention_heads;
  j["intermediate_size"] = c.intermediate_size;
  j["max_position_embeddings"] = c.max_position_embeddings;
  j["type_vocab_size"] = c.type_vocab_size;
  j["pad_token_id"] = c.pad_token_id;
  j["layer_norm_eps"] = c.layer_norm_eps;
  j["hidden_act"] = c.hidden_act_name;
  j["num_labels"] = c.num_labels;
  json id2label = json::object();
  json label2id = json::object();
  for (std::size_t i = 0; i < c.id2label.size(); ++i) {
    id2label[std::to_string(i)] = c.id2label[i];
    label2id[c.id2label[i]] = i;
  }
  j["id2label"] = id2label;
  j["label2id"] = label2id;
  j["problem_type"] = problem_type_name(c.problem_type);
  return j;
}

}  // namespace octet::io
