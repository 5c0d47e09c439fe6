#include "quant/config.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cmath>

#include "octet/error.h"

namespace octet::quant {
namespace {

using nlohmann::json;

constexpr std::array<Site, kNumSites> kSites = {Site::query,
                                                Site::key,
                                                Site::value,
                                                Site::attention_output,
                                                Site::intermediate,
                                                Site::output,
                                                Site::pooler,
                                                Site::classifier,
                                                Site::word_embeddings,
                                                Site::position_embeddings,
                                                Site::attention_scores,
                                                Site::attention_context};

bool starts_with(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }

// Throws the configured error class with "<where>: key \"<key>\" ...".
class Reporter {
 public:
  Reporter(std::string_view where, bool model_file) : where_(where), model_file_(model_file) {}

  [[noreturn]] void fail(std::string_view key, const std::string& msg) const {
    const std::string text = fmt::format("{}: key \"{}\" {}", where_, key, msg);
    if (model_file_) throw ModelFormatError(text);
    throw InvalidArgument(text);
  }

  void object(const json& j, std::string_view key) const {
    if (!j.is_object()) fail(key, fmt::format("is {}: expected an object", j.dump()));
  }

  template <typename Enum, std::size_t N>
  Enum choice(const json& v, std::string_view key,
              const std::array<std::pair<const char*, Enum>, N>& options) const {
    std::string expected;
    for (const auto& [name, value] : options) {
      if (v.is_string() && v.get<std::string>() == name) return value;
      expected += fmt::format("{}\"{}\"", expected.empty() ? "" : " | ", name);
    }
    fail(key, fmt::format("is {}: expected {}", v.dump(), expected));
  }

  double number(const json& v, std::string_view key) const {
    if (!v.is_number() || !std::isfinite(v.get<double>())) {
      fail(key, fmt::format("is {}: expected a number", v.dump()));
    }
    return v.get<double>();
  }

  bool boolean(const json& v, std::string_view key) const {
    if (!v.is_boolean()) fail(key, fmt::format("is {}: expected true or false", v.dump()));
    return v.get<bool>();
  }

 private:
  std::string_view where_;
  bool model_file_;
};

constexpr std::array<std::pair<const char*, ActivationMode>, 2> kActivations = {
    {{"dynamic", ActivationMode::dynamic}, {"static", ActivationMode::static_}}};
constexpr std::array<std::pair<const char*, Scheme>, 2> kSchemes = {
    {{"symmetric", Scheme::symmetric}, {"asymmetric", Scheme::asymmetric}}};
constexpr std::array<std::pair<const char*, WeightGranularity>, 2> kWeights = {
    {{"per_tensor", WeightGranularity::per_tensor},
     {"per_channel", WeightGranularity::per_channel}}};
constexpr std::array<std::pair<const char*, ThresholdMode>, 3> kModes = {
    {{"symmetric", ThresholdMode::symmetric},
     {"independent", ThresholdMode::independent},
     {"conjugate", ThresholdMode::conjugate}}};
constexpr std::array<std::pair<const char*, CalibratorKind>, 5> kKinds = {
    {{"max", CalibratorKind::max},
     {"ema", CalibratorKind::ema},
     {"percentile", CalibratorKind::percentile},
     {"kl", CalibratorKind::kl},
     {"mse", CalibratorKind::mse}}};
constexpr std::array<std::pair<const char*, KlForm>, 2> kKlForms = {
    {{"abs", KlForm::abs}, {"signed", KlForm::signed_}}};

template <typename Enum, std::size_t N>
const char* name_of(Enum e, const std::array<std::pair<const char*, Enum>, N>& options) {
  for (const auto& [name, value] : options) {
    if (value == e) return name;
  }
  return "?";
}

CalibratorSpec parse_calibrator(const json& j, const Reporter& r) {
  r.object(j, "calibrator");
  CalibratorSpec c;
  auto kind = j.find("kind");
  if (kind == j.end()) r.fail("calibrator.kind", "is missing");
  c.kind = r.choice(*kind, "calibrator.kind", kKinds);
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& k = it.key();
    const std::string key = "calibrator." + k;
    const auto only_for = [&](CalibratorKind want) {
      if (c.kind != want &&
          !(k == "bins" && (c.kind == CalibratorKind::percentile || c.kind == CalibratorKind::kl ||
                            c.kind == CalibratorKind::mse))) {
        r.fail(key, fmt::format("does not apply to calibrator kind \"{}\"", to_string(c.kind)));
      }
    };
    if (k == "kind") continue;
    if (k == "decay") {
      only_for(CalibratorKind::ema);
      c.decay = r.number(*it, key);
      if (!(c.decay > 0.0 && c.decay < 1.0)) {
        r.fail(key, fmt::format("is {}: expected a value in (0, 1)", c.decay));
      }
    } else if (k == "percentile") {
      only_for(CalibratorKind::percentile);
      c.percentile = r.number(*it, key);
      if (!(c.percentile > 50.0 && c.percentile <= 100.0)) {
        r.fail(key, fmt::format("is {}: expected a value in (50, 100]", c.percentile));
      }
    } else if (k == "kl_form") {
      only_for(CalibratorKind::kl);
      c.kl_form = r.choice(*it, key, kKlForms);
    } else if (k == "bins") {
      only_for(CalibratorKind::percentile);
      if (!it->is_number_integer() || it->get<int64_t>() < 128 || it->get<int64_t>() > (1 << 20)) {
        r.fail(key, fmt::format("is {}: expected an integer in [128, 1048576]", it->dump()));
      }
      c.bins = it->get<int>();
    } else {
      r.fail(key, "is unknown: expected kind, decay, percentile, kl_form or bins");
    }
  }
  return c;
}

}  // namespace

std::string_view to_string(Site s) {
  switch (s) {
    case Site::query:
      return "query";
    case Site::key:
      return "key";
    case Site::value:
      return "value";
    case Site::attention_output:
      return "attention_output";
    case Site::intermediate:
      return "intermediate";
    case Site::output:
      return "output";
    case Site::pooler:
      return "pooler";
    case Site::classifier:
      return "classifier";
    case Site::word_embeddings:
      return "word_embeddings";
    case Site::position_embeddings:
      return "position_embeddings";
    case Site::attention_scores:
      return "attention_scores";
    case Site::attention_context:
      return "attention_context";
  }
  return "?";
}

std::optional<Site> classify_prefix(std::string_view p) {
  if (p == "bert.embeddings.word_embeddings") return Site::word_embeddings;
  if (p == "bert.embeddings.position_embeddings") return Site::position_embeddings;
  if (p == "bert.pooler.dense") return Site::pooler;
  if (p == "classifier" || p == "qa_outputs") return Site::classifier;
  constexpr std::string_view kLayer = "bert.encoder.layer.";
  if (!starts_with(p, kLayer)) return std::nullopt;
  std::string_view rest = p.substr(kLayer.size());
  const std::size_t digits = rest.find_first_not_of("0123456789");
  if (digits == 0 || digits == std::string_view::npos || rest[digits] != '.') return std::nullopt;
  rest = rest.substr(digits + 1);
  if (rest == "attention.self.query") return Site::query;
  if (rest == "attention.self.key") return Site::key;
  if (rest == "attention.self.value") return Site::value;
  if (rest == "attention.output.dense") return Site::attention_output;
  if (rest == "intermediate.dense") return Site::intermediate;
  if (rest == "output.dense") return Site::output;
  return std::nullopt;
}

bool glob_match(std::string_view pattern, std::string_view text) {
  // Iterative wildcard matching with one backtrack point: O(|pattern| * |text|) worst case.
  std::size_t p = 0, t = 0, star = std::string_view::npos, mark = 0;
  while (t < text.size()) {
    if (p < pattern.size() && (pattern[p] == '?' || pattern[p] == text[t])) {
      ++p;
      ++t;
    } else if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      mark = t;
    } else if (star != std::string_view::npos) {
      p = star + 1;
      t = ++mark;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

bool QuantizationConfig::quantizes(std::string_view prefix) const {
  const auto site = classify_prefix(prefix);
  if (!site || !enabled(*site)) return false;
  return std::none_of(keep_fp32.begin(), keep_fp32.end(),
                      [&](const std::string& g) { return glob_match(g, prefix); });
}

bool QuantizationConfig::quantizes_scores(std::string_view self_prefix) const {
  if (!enabled(Site::attention_scores)) return false;
  return std::none_of(keep_fp32.begin(), keep_fp32.end(),
                      [&](const std::string& g) { return glob_match(g, self_prefix); });
}

bool QuantizationConfig::operator==(const QuantizationConfig& o) const {
  const CalibratorSpec &a = calibrator, &b = o.calibrator;
  return activations == o.activations && scheme == o.scheme && weights == o.weights &&
         a.kind == b.kind && a.decay == b.decay && a.percentile == b.percentile &&
         a.kl_form == b.kl_form && a.bins == b.bins && threshold_mode == o.threshold_mode &&
         std::equal(std::begin(sites), std::end(sites), std::begin(o.sites)) &&
         keep_fp32 == o.keep_fp32;
}

void validate(const QuantizationConfig& c) {
  validate(c.calibrator);
  if (c.scheme == Scheme::symmetric && c.threshold_mode == ThresholdMode::independent) {
    throw InvalidArgument(
        "quantization_config: key \"threshold_mode\" is \"independent\" with scheme "
        "\"symmetric\": an independent range [T_min, T_max] needs scheme \"asymmetric\"; use "
        "\"symmetric\" or \"conjugate\"");
  }
}

void check_supported(const QuantizationConfig& c, std::string_view where) {
  if (c.enabled(Site::attention_context)) {
    throw Unsupported(fmt::format(
        "{}: quantize.attention_context is true, but Octet runs the attention context matmul "
        "(P V) in FP32, as Q8BERT (or on int8 with --attention int8); set it false",
        where));
  }
  if (c.enabled(Site::attention_scores) && c.activations != ActivationMode::static_) {
    throw Unsupported(fmt::format(
        "{}: quantize.attention_scores needs activations \"static\" (Q and K are quantized with "
        "calibrated output scales, Q8BERT's requantize_output); for dynamic int8 attention "
        "matmuls use --attention int8",
        where));
  }
}

QuantizationConfig parse_quantization_config(const json& j, std::string_view where,
                                             bool model_file) {
  const Reporter r(where, model_file);
  if (!j.is_object()) {
    const std::string text =
        fmt::format("{}: expected a JSON object, found {}", where, j.type_name());
    if (model_file) throw ModelFormatError(text);
    throw InvalidArgument(text);
  }
  QuantizationConfig c;
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& k = it.key();
    const json& v = *it;
    if (k == "activations") {
      c.activations = r.choice(v, k, kActivations);
    } else if (k == "scheme") {
      c.scheme = r.choice(v, k, kSchemes);
    } else if (k == "weights") {
      c.weights = r.choice(v, k, kWeights);
    } else if (k == "threshold_mode") {
      c.threshold_mode = r.choice(v, k, kModes);
    } else if (k == "calibrator") {
      c.calibrator = parse_calibrator(v, r);
    } else if (k == "quantize") {
      r.object(v, k);
      for (auto s = v.begin(); s != v.end(); ++s) {
        const auto site = std::find_if(kSites.begin(), kSites.end(),
                                       [&](Site x) { return to_string(x) == s.key(); });
        const std::string key = "quantize." + s.key();
        if (site == kSites.end()) {
          r.fail(key,
                 "is unknown: expected one of query, key, value, attention_output, "
                 "intermediate, output, pooler, classifier, word_embeddings, "
                 "position_embeddings, attention_scores, attention_context");
        }
        c.sites[static_cast<int>(*site)] = r.boolean(*s, key);
      }
    } else if (k == "keep_fp32") {
      if (!v.is_array()) r.fail(k, fmt::format("is {}: expected an array of strings", v.dump()));
      for (std::size_t i = 0; i < v.size(); ++i) {
        if (!v[i].is_string() || v[i].get<std::string>().empty()) {
          r.fail(fmt::format("keep_fp32[{}]", i),
                 fmt::format("is {}: expected a non-empty glob pattern string", v[i].dump()));
        }
        c.keep_fp32.push_back(v[i].get<std::string>());
      }
    } else {
      r.fail(k,
             "is unknown: expected activations, scheme, weights, calibrator, threshold_mode, "
             "quantize or keep_fp32");
    }
  }
  if (c.scheme == Scheme::symmetric && c.threshold_mode == ThresholdMode::independent) {
    r.fail("threshold_mode",
           "is \"independent\" with scheme \"symmetric\": an independent range needs scheme "
           "\"asymmetric\"; use \"symmetric\" or \"conjugate\"");
  }
  return c;
}

json to_json(const QuantizationConfig& c) {
  json cal = {{"kind", name_of(c.calibrator.kind, kKinds)}};
  switch (c.calibrator.kind) {
    case CalibratorKind::ema:
      cal["decay"] = c.calibrator.decay;
      break;
    case CalibratorKind::percentile:
      cal["percentile"] = c.calibrator.percentile;
      cal["bins"] = c.calibrator.bins;
      break;
    case CalibratorKind::kl:
      cal["kl_form"] = name_of(c.calibrator.kl_form, kKlForms);
      cal["bins"] = c.calibrator.bins;
      break;
    case CalibratorKind::mse:
      cal["bins"] = c.calibrator.bins;
      break;
    case CalibratorKind::max:
      break;
  }
  json sites = json::object();
  for (Site s : kSites) sites[std::string(to_string(s))] = c.enabled(s);
  return {{"activations", name_of(c.activations, kActivations)},
          {"scheme", name_of(c.scheme, kSchemes)},
          {"weights", name_of(c.weights, kWeights)},
          {"calibrator", cal},
          {"threshold_mode", name_of(c.threshold_mode, kModes)},
          {"quantize", sites},
          {"keep_fp32", c.keep_fp32}};
}

}  // namespace octet::quant
