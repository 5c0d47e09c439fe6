// The integer-only (I-BERT) encoder: prepare, the integer forward pass and the loader of
// integer-only model directories. Contract in models/bert_integer.h.
#include "models/bert_integer.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <omp.h>

#include <cmath>
#include <cstring>
#include <exception>
#include <mutex>
#include <set>

#include "common/aligned_buffer.h"
#include "octet/error.h"

namespace octet::models {

IntegerBertEncoder IntegerBertEncoder::prepare(const IntegerBertWeights& w, Isa isa) {
  const int h = w.hidden;
  if (h <= 0 || w.word.empty() || w.position.empty() || w.token_type.empty() ||
      w.word.size() % h != 0 || w.position.size() % h != 0 || w.token_type.size() % h != 0) {
    throw InvalidArgument(fmt::format(
        "integer BERT: hidden {} with tables of {}, {}, {} values: expected non-empty multiples "
        "of hidden",
        h, w.word.size(), w.position.size(), w.token_type.size()));
  }
  if (w.layers.size() != w.scales.size() || w.layers.size() != w.ln1_shift.size() ||
      w.layers.size() != w.ln2_shift.size()) {
    throw InvalidArgument(fmt::format(
        "integer BERT: {} layers with {} scale sets and {} / {} LayerNorm shifts: expected equal",
        w.layers.size(), w.scales.size(), w.ln1_shift.size(), w.ln2_shift.size()));
  }
  IntegerBertEncoder e;
  e.hidden_ = h, e.isa_ = isa;
  e.word_ = w.word, e.position_ = w.position, e.token_type_ = w.token_type;
  const float sw[] = {w.emb.word}, st[] = {w.emb.token_type}, sp[] = {w.emb.position},
              ss[] = {w.emb.sum};
  e.word_type_ = ops::prepare_residual(sw, st, w.emb.sum, h);
  e.plus_position_ = ops::prepare_residual(ss, sp, w.emb.sum, h);
  e.norm_ = ops::prepare_ilayernorm(w.ln_gamma, w.ln_beta, w.ln_shift);
  if (!(w.emb.output > 0.0f) || !std::isfinite(w.emb.output)) {
    throw InvalidArgument(
        fmt::format("integer BERT: embedding output scale is {}: expected a positive finite value",
                    w.emb.output));
  }
  e.norm_m_.resize(h), e.norm_s_.resize(h);
  for (int c = 0; c < h; ++c) {
    const ops::Dyadic d = ops::dyadic(e.norm_.out_scale[c] / w.emb.output, kernels::kMaxWideShift);
    e.norm_m_[c] = d.multiplier, e.norm_s_[c] = d.shift;
  }
  for (std::size_t i = 0; i < w.layers.size(); ++i) {
    if (w.layers[i].hidden != h) {
      throw InvalidArgument(fmt::format("integer BERT: layer {} has hidden {}, expected {}", i,
                                        w.layers[i].hidden, h));
    }
    layers::IntegerLayerScales s = w.scales[i];
    if (i + 1 == w.layers.size()) s.output = 1.0f;  // unused: forward_ln
    e.layers_.push_back(layers::IntegerEncoderLayer::prepare_quantized(
        w.layers[i], s, w.ln1_shift[i], w.ln2_shift[i], isa));
  }
  return e;
}

const std::vector<double>& IntegerBertEncoder::output_scale() const {
  return layers_.empty() ? norm_.out_scale : layers_.back().output_ln_scale();
}

namespace {

// encode()'s per-thread scratch, grown on demand and reused (see the layer's Scratch in
// layers/integer_encoder_layer.cc): no allocation per sequence in the steady state. `out` is
// forward_dequantized's int64 output, separate because encode() writes into it.
struct EncodeScratch {
  AlignedBuffer<int32_t> a;
  AlignedBuffer<int8_t> r, x, y;
  AlignedBuffer<int16_t> sum16;
  AlignedBuffer<int64_t> ln, out;
};

EncodeScratch& encode_scratch() {
  thread_local EncodeScratch s;
  return s;
}

}  // namespace

void IntegerBertEncoder::encode(std::span<const int32_t> ids, std::span<const int32_t> types,
                                std::span<int64_t> out) const {
  const int h = hidden_;
  const int t = static_cast<int>(ids.size());
  const std::size_t th = ids.size() * h;
  if (t <= 0 || types.size() != ids.size() || out.size() != th) {
    throw InvalidArgument(
        fmt::format("integer BERT: {} ids, {} type ids, output of {} values: expected n > 0 ids, "
                    "n type ids and n x {}",
                    ids.size(), types.size(), out.size(), h));
  }
  const std::size_t words = word_.size() / h, positions = position_.size() / h,
                    type_rows = token_type_.size() / h;
  if (ids.size() > positions) {
    throw InvalidArgument(
        fmt::format("integer BERT: {} tokens, more than the {} positions", ids.size(), positions));
  }
  for (int i = 0; i < t; ++i) {
    if (ids[i] < 0 || std::size_t(ids[i]) >= words || types[i] < 0 ||
        std::size_t(types[i]) >= type_rows) {
      throw InvalidArgument(
          fmt::format("integer BERT: position {}: id {} / type {} outside [0, {}) / [0, {})", i,
                      ids[i], types[i], words, type_rows));
    }
  }
  // Word + token type -> 16 bits, then + position into the same 16-bit QuantAct.
  EncodeScratch& sc = encode_scratch();
  int32_t* a = sc.a.ensure_data(th);
  int8_t* r = sc.r.ensure_data(th);
  int16_t* sum16 = sc.sum16.ensure_data(th);
  for (int i = 0; i < t; ++i) {
    const int8_t* wr = word_.data() + std::size_t(ids[i]) * h;
    const int8_t* tr = token_type_.data() + std::size_t(types[i]) * h;
    for (int c = 0; c < h; ++c) {
      a[std::size_t(i) * h + c] = wr[c];
      r[std::size_t(i) * h + c] = tr[c];
    }
  }
  ops::residual_add(a, h, r, h, t, h, word_type_, kEmbeddingSumBits, sum16, h, isa_);
  for (std::size_t j = 0; j < th; ++j) a[j] = sum16[j];
  std::memcpy(r, position_.data(), th);  // positions 0 .. t - 1
  ops::residual_add(a, h, r, h, t, h, plus_position_, kEmbeddingSumBits, sum16, h, isa_);
  for (std::size_t j = 0; j < th; ++j) a[j] = sum16[j];
  if (layers_.empty()) {
    ops::ilayernorm(a, t, h, h, norm_, out.data(), h, isa_);
    return;
  }
  int64_t* ln = sc.ln.ensure_data(th);
  ops::ilayernorm(a, t, h, h, norm_, ln, h, isa_);
  int8_t* x = sc.x.ensure_data(th);
  int8_t* y = sc.y.ensure_data(th);
  ops::requantize_wide(ln, t, h, h, norm_m_, norm_s_, 8, x, h, isa_);
  for (std::size_t l = 0; l + 1 < layers_.size(); ++l) {
    layers_[l].forward({x, th}, t, {y, th});
    std::swap(x, y);
  }
  layers_.back().forward_ln({x, th}, t, out);
}

void IntegerBertEncoder::forward_dequantized(std::span<const int32_t> ids,
                                             std::span<const int32_t> types,
                                             std::span<const int64_t> offsets, float* hidden,
                                             int threads) const {
  const int64_t batch = static_cast<int64_t>(offsets.size()) - 1;
  const int h = hidden_;
  const std::vector<double>& scale = output_scale();
  std::exception_ptr error;
  std::mutex mu;
#pragma omp parallel for num_threads(std::max(1, threads)) schedule(dynamic, 1)
  for (int64_t b = 0; b < batch; ++b) {
    try {
      const std::size_t lo = offsets[b], n = offsets[b + 1] - offsets[b];
      const std::span<int64_t> out(encode_scratch().out.ensure_data(n * h), n * h);
      encode(ids.subspan(lo, n), types.subspan(lo, n), out);
      float* dst = hidden + lo * h;
      for (std::size_t i = 0; i < n; ++i) {
        for (int c = 0; c < h; ++c) {
          dst[i * h + c] = static_cast<float>(static_cast<double>(out[i * h + c]) * scale[c]);
        }
      }
    } catch (...) {
      std::lock_guard<std::mutex> lock(mu);
      if (!error) error = std::current_exception();
    }
  }
  if (error) std::rethrow_exception(error);
}

// ---------------------------------------------------------------------------------------------
// Loading

bool is_integer_only_config(const nlohmann::json& q) {
  return q.is_object() && q.contains("mode") && q["mode"] == kIntegerOnlyMode;
}

nlohmann::json integer_only_config(double ema_momentum) {
  return {{"mode", kIntegerOnlyMode},
          {"method", "I-BERT"},
          {"weights", "per_channel"},
          {"calibrator", {{"kind", "ema"}, {"decay", ema_momentum}}},
          {"bits",
           {{"weights", 8},
            {"activations", 8},
            {"embedding_sum", kEmbeddingSumBits},
            {"residual_sum", kResidualSumBits}}},
          {"head", "fp32"}};
}

namespace {

class Reader {
 public:
  explicit Reader(const TensorSource& src) : src_(src) {}

  [[noreturn]] void fail(const std::string& what) const {
    throw ModelFormatError(fmt::format("{}: {}", src_.where(), what));
  }

  const io::TensorInfo& get(const std::string& name, io::DType dtype,
                            const std::vector<int64_t>& shape, const std::string& why) const {
    const io::TensorInfo* t = src_.find(name);
    if (t == nullptr) {
      fail(fmt::format("missing tensor '{}' (expected {} {}: {})", name, io::dtype_name(dtype),
                       shape, why));
    }
    if (t->dtype != dtype || t->shape != shape) {
      fail(fmt::format("tensor '{}' is {}, expected {} {} ({})", name, t->describe(),
                       io::dtype_name(dtype), shape, why));
    }
    return *t;
  }

  template <typename T>
  std::vector<T> read(const std::string& name, io::DType dtype, const std::vector<int64_t>& shape,
                      const std::string& why) {
    const io::TensorInfo& t = get(name, dtype, shape, why);
    std::vector<T> out(static_cast<std::size_t>(t.numel()));
    const std::span<const std::byte> b = src_.bytes(t);
    if (b.size() != out.size() * sizeof(T)) {
      fail(fmt::format("tensor '{}': {} bytes, expected {}", name, b.size(),
                       out.size() * sizeof(T)));
    }
    if (!b.empty()) std::memcpy(out.data(), b.data(), b.size());
    src_.release(t);  // copied: the file's pages need not stay resident
    return out;
  }

  std::vector<float> f32(const std::string& name, const std::vector<int64_t>& shape,
                         const std::string& why, bool parameter = true) {
    std::vector<float> v = read<float>(name, io::DType::F32, shape, why);
    for (std::size_t i = 0; i < v.size(); ++i) {
      if (!std::isfinite(v[i])) {
        fail(fmt::format("tensor '{}' holds a non-finite value ({}) at flat index {}", name, v[i],
                         i));
      }
    }
    if (parameter) params_ += static_cast<int64_t>(v.size());
    return v;
  }

  std::vector<float> scales(const std::string& name, int64_t n, const std::string& why) {
    std::vector<float> v = f32(name, {n}, why, /*parameter=*/false);
    for (std::size_t i = 0; i < v.size(); ++i) {
      if (!(v[i] > 0.0f)) {
        fail(fmt::format("tensor '{}'[{}] is {}: expected a scale > 0", name, i, v[i]));
      }
    }
    return v;
  }
  float scale(const std::string& name, const std::string& why) { return scales(name, 1, why)[0]; }

  std::vector<int8_t> i8(const std::string& name, const std::vector<int64_t>& shape,
                         const std::string& why) {
    std::vector<int8_t> v = read<int8_t>(name, io::DType::I8, shape, why);
    for (std::size_t i = 0; i < v.size(); ++i) {
      if (v[i] == -128) {
        fail(fmt::format("tensor '{}' holds -128 at flat index {}: expected codes in [-127, 127]",
                         name, i));
      }
    }
    params_ += static_cast<int64_t>(v.size());
    return v;
  }

  std::vector<int32_t> i32(const std::string& name, const std::vector<int64_t>& shape,
                           const std::string& why) {
    std::vector<int32_t> v = read<int32_t>(name, io::DType::I32, shape, why);
    params_ += static_cast<int64_t>(v.size());
    return v;
  }

  int shift(const std::string& name) {
    const int32_t s =
        read<int32_t>(name, io::DType::I32, {1}, "the frozen i-LayerNorm overflow shift")[0];
    if (s < 0 || s > 24)
      fail(fmt::format("tensor '{}' is {}: expected a shift in [0, 24]", name, s));
    return s;
  }

  layers::QuantizedLinearWeights linear(const std::string& p, int64_t n, int64_t k) {
    layers::QuantizedLinearWeights l;
    l.w = i8(p + ".weight", {n, k}, "int8 weights, symmetric per output channel");
    l.scales = scales(p + ".weight_scale", n, "one scale per output channel");
    l.bias = i32(p + ".bias", {n}, "int32 bias at input_scale * weight_scale");
    return l;
  }

  int64_t parameters() const { return params_; }

 private:
  const TensorSource& src_;
  int64_t params_ = 0;
};

void check_qconfig(const nlohmann::json& q, const std::string& where) {
  auto fail = [&](const std::string& msg) {
    throw ModelFormatError(fmt::format("{}: quantization_config: {}", where, msg));
  };
  if (!q.is_object()) fail(fmt::format("expected an object, found {}", q.type_name()));
  const nlohmann::json expected = integer_only_config(0.95);
  for (const auto& [key, value] : q.items()) {
    if (!expected.contains(key)) {
      fail(fmt::format("unknown key \"{}\" for mode \"integer-only\" (expected {})", key,
                       fmt::join(std::vector<std::string>{"mode", "method", "weights", "calibrator",
                                                          "bits", "head"},
                                 ", ")));
    }
    if (key == "calibrator") {
      if (!value.is_object() || value.value("kind", nlohmann::json()) != "ema" ||
          !value.contains("decay") || !value["decay"].is_number()) {
        fail(fmt::format("key \"calibrator\" is {}: expected {{\"kind\": \"ema\", \"decay\": x}}",
                         value.dump()));
      }
    } else if (value != expected[key]) {
      fail(fmt::format("key \"{}\" is {}: expected {} (the only integer-only layout Octet runs)",
                       key, value.dump(), expected[key].dump()));
    }
  }
  for (const char* key : {"mode", "bits"}) {
    if (!q.contains(key)) fail(fmt::format("key \"{}\" is missing", key));
  }
}

}  // namespace

BertEncoder load_bert_integer(const io::BertConfig& c, const nlohmann::json& qconfig,
                              const TensorSource& src, bool load_head,
                              const std::string& config_where) {
  check_qconfig(qconfig, config_where);
  if (c.hidden_act != io::Activation::gelu) {
    throw Unsupported(fmt::format(
        "{}: hidden_act \"{}\": the integer-only mode approximates the erf GELU (i-GELU) only",
        config_where, c.hidden_act_name));
  }
  Reader r(src);
  const int64_t h = c.hidden_size, inter = c.intermediate_size;
  IntegerBertWeights w;
  w.hidden = static_cast<int>(h);
  const std::string e = "bert.embeddings.";
  w.word = r.i8(e + "word_embeddings.weight", {c.vocab_size, h}, "[vocab_size, hidden_size]");
  w.position = r.i8(e + "position_embeddings.weight", {c.max_position_embeddings, h},
                    "[max_position_embeddings, hidden_size]");
  w.token_type = r.i8(e + "token_type_embeddings.weight", {c.type_vocab_size, h},
                      "[type_vocab_size, hidden_size]");
  w.emb.word = r.scale(e + "word_embeddings.weight_scale", "one scale for the table");
  w.emb.position = r.scale(e + "position_embeddings.weight_scale", "one scale for the table");
  w.emb.token_type = r.scale(e + "token_type_embeddings.weight_scale", "one scale for the table");
  w.emb.sum = r.scale(e + "sum_scale", "the 16-bit embedding sum's step");
  w.ln_gamma = r.f32(e + "LayerNorm.weight", {h}, "[hidden_size]");
  w.ln_beta = r.f32(e + "LayerNorm.bias", {h}, "[hidden_size]");
  w.ln_shift = r.shift(e + "LayerNorm.shift");
  const std::string hh = "[hidden_size]";
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
    const std::string p = fmt::format("bert.encoder.layer.{}.", i);
    layers::QuantizedEncoderWeights& L = w.layers.emplace_back();
    layers::IntegerLayerScales& s = w.scales.emplace_back();
    L.hidden = static_cast<int>(h), L.heads = static_cast<int>(c.num_attention_heads);
    L.intermediate = static_cast<int>(inter);
    const std::string self = p + "attention.self.";
    L.q = r.linear(self + "query", h, h);
    L.k = r.linear(self + "key", h, h);
    L.v = r.linear(self + "value", h, h);
    L.o = r.linear(p + "attention.output.dense", h, h);
    L.fc1 = r.linear(p + "intermediate.dense", inter, h);
    L.fc2 = r.linear(p + "output.dense", h, inter);
    L.ln1_gamma = r.f32(p + "attention.output.LayerNorm.weight", {h}, hh);
    L.ln1_beta = r.f32(p + "attention.output.LayerNorm.bias", {h}, hh);
    L.ln2_gamma = r.f32(p + "output.LayerNorm.weight", {h}, hh);
    L.ln2_beta = r.f32(p + "output.LayerNorm.bias", {h}, hh);
    w.ln1_shift.push_back(r.shift(p + "attention.output.LayerNorm.shift"));
    w.ln2_shift.push_back(r.shift(p + "output.LayerNorm.shift"));
    s.input = r.scale(self + "query.input_scale", "the layer's 8-bit input step");
    s.q = r.scale(self + "query.output_scale", "the 8-bit Q step");
    s.k = r.scale(self + "key.output_scale", "the 8-bit K step");
    s.v = r.scale(self + "value.output_scale", "the 8-bit V step");
    s.context = r.scale(p + "attention.output.dense.input_scale", "the 8-bit context step");
    s.attn_sum = r.scale(p + "attention.output.dense.output_scale", "the 22-bit sum's step");
    s.ln1 = r.scale(p + "intermediate.dense.input_scale", "the 8-bit FFN input step");
    s.gelu = r.scale(p + "output.dense.input_scale", "the 8-bit i-GELU output step");
    s.ffn_sum = r.scale(p + "output.dense.output_scale", "the 22-bit sum's step");
    if (i > 0) w.scales[i - 1].output = s.input;
  }
  w.emb.output = w.scales.empty() ? 1.0f : w.scales[0].input;

  BertEncoder enc;
  enc.config = c;
  enc.prefix = "bert.";
  enc.precision = Precision::integer_only;
  enc.quantization_config = qconfig;
  try {
    enc.integer = std::make_shared<const IntegerBertEncoder>(IntegerBertEncoder::prepare(w));
  } catch (const InvalidArgument& ex) {
    throw ModelFormatError(fmt::format("{}: {}", src.where(), ex.what()));
  }
  if (load_head) {
    if (src.find("bert.pooler.dense.weight") != nullptr) {
      const std::vector<float> pw = r.f32("bert.pooler.dense.weight", {h, h}, "FP32 pooler");
      const std::vector<float> pb = r.f32("bert.pooler.dense.bias", {h}, "FP32 pooler bias");
      enc.pooler = ops::MatmulF32(pw, h, h, pb);
      enc.has_pooler = true;
    }
    if (src.find("classifier.weight") != nullptr) {
      if (!enc.has_pooler) {
        r.fail(
            "has 'classifier.weight' but no 'bert.pooler.dense.weight'; the classifier reads "
            "the pooled vector");
      }
      const int64_t nl = c.num_labels;
      const std::vector<float> cw = r.f32("classifier.weight", {nl, h}, "FP32 classifier");
      const std::vector<float> cb = r.f32("classifier.bias", {nl}, "FP32 classifier bias");
      enc.classifier = ops::MatmulF32(cw, nl, h, cb);
      enc.has_classifier = true;
    }
  }
  enc.parameter_count = r.parameters();
  return enc;
}

}  // namespace octet::models
