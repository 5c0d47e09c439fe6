// Loading a quantized model directory (written by `octet quantize`, layout in
// docs/model_format.md "Quantized models") into the INT8 graph of models::BertEncoder, and the
// in-memory tensor store the quantizer fills before writing.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cmath>
#include <cstring>
#include <set>

#include "models/bert.h"
#include "octet/error.h"
#include "quant/config.h"

namespace octet::models {

void MemoryTensors::add_bytes(std::string name, io::DType dtype, std::vector<int64_t> shape,
                              std::span<const std::byte> data) {
  io::TensorInfo t;
  t.name = std::move(name);
  t.dtype = dtype;
  t.shape = std::move(shape);
  t.offset = 0;
  t.nbytes = data.size();
  if (static_cast<uint64_t>(t.numel()) * io::dtype_size(dtype) != t.nbytes) {
    throw InvalidArgument(
        fmt::format("MemoryTensors: tensor '{}' {} has {} bytes", t.name, t.describe(), t.nbytes));
  }
  if (find(t.name) != nullptr) {
    throw InvalidArgument(fmt::format("MemoryTensors: tensor '{}' added twice", t.name));
  }
  t.offset = data_.size();  // index into data_
  data_.emplace_back(data.begin(), data.end());
  infos_.push_back(std::move(t));
}

const io::TensorInfo* MemoryTensors::find(std::string_view name) const {
  for (const io::TensorInfo& t : infos_) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

std::span<const std::byte> MemoryTensors::bytes(const io::TensorInfo& t) const {
  return data_.at(t.offset);
}

std::vector<io::TensorView> MemoryTensors::views() const {
  std::vector<io::TensorView> out;
  for (const io::TensorInfo& t : infos_) {
    out.push_back(io::TensorView{t.name, t.dtype, t.shape, bytes(t)});
  }
  return out;
}

namespace {

using quant::QuantizationConfig;

class QuantLoader {
 public:
  QuantLoader(const TensorSource& src, const QuantizationConfig& cfg) : src_(src), cfg_(cfg) {}

  [[noreturn]] void fail(const std::string& what) const {
    throw ModelFormatError(fmt::format("{}: {}", src_.where(), what));
  }

  const io::TensorInfo& get(const std::string& name, io::DType dtype, std::vector<int64_t> shape,
                            const std::string& why) const {
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
  std::vector<T> read(const io::TensorInfo& t) const {
    std::vector<T> out(static_cast<std::size_t>(t.numel()));
    const std::span<const std::byte> b = src_.bytes(t);
    if (b.size() != out.size() * sizeof(T)) {
      fail(fmt::format("tensor '{}': {} bytes, expected {}", t.name, b.size(),
                       out.size() * sizeof(T)));
    }
    if (!b.empty()) std::memcpy(out.data(), b.data(), b.size());
    src_.release(t);  // copied: the file's pages need not stay resident
    return out;
  }

  std::vector<float> f32(const std::string& name, std::vector<int64_t> shape,
                         const std::string& why) {
    const io::TensorInfo& t = get(name, io::DType::F32, std::move(shape), why);
    std::vector<float> v = read<float>(t);
    for (std::size_t i = 0; i < v.size(); ++i) {
      if (!std::isfinite(v[i])) {
        fail(
            fmt::format("tensor '{}' holds a non-finite value ({}) at flat index {}; expected "
                        "finite values",
                        name, v[i], i));
      }
    }
    params_ += t.numel();
    return v;
  }

  std::vector<float> scales(const std::string& name, std::vector<int64_t> shape,
                            const std::string& why) {
    std::vector<float> v = f32(name, std::move(shape), why);
    params_ -= static_cast<int64_t>(v.size());  // metadata, not parameters
    for (std::size_t i = 0; i < v.size(); ++i) {
      if (!(v[i] > 0.0f)) {
        fail(fmt::format("tensor '{}'[{}] is {}: expected a scale > 0", name, i, v[i]));
      }
    }
    return v;
  }

  std::vector<int8_t> i8(const std::string& name, std::vector<int64_t> shape,
                         const std::string& why) {
    const io::TensorInfo& t = get(name, io::DType::I8, std::move(shape), why);
    params_ += t.numel();
    std::vector<int8_t> v = read<int8_t>(t);
    for (std::size_t i = 0; i < v.size(); ++i) {
      if (v[i] == -128) {
        fail(
            fmt::format("tensor '{}' holds -128 at flat index {}: expected codes in [-127, 127] "
                        "(symmetric restricted range)",
                        name, i));
      }
    }
    return v;
  }

  layers::LayerNorm layer_norm(const std::string& base, int64_t h, float eps) {
    layers::LayerNorm ln;
    ln.eps = eps;
    ln.gamma = f32(base + ".weight", {h}, "[hidden_size]");
    ln.beta = f32(base + ".bias", {h}, "[hidden_size]");
    return ln;
  }

  // Activation parameters of a static layer: <p>.<which>_scale F32 [1] and
  // <p>.<which>_zero_point I32 [1], which = "input" (a Linear's input) or "output" (the Q and K
  // outputs of quantize.attention_scores).
  layers::ActivationQuant activation(const std::string& p, const char* which = "input") {
    layers::ActivationQuant a;
    if (cfg_.activations == quant::ActivationMode::dynamic) return a;
    a.dynamic = false;
    const bool asym = cfg_.scheme == quant::Scheme::asymmetric;
    a.dtype = asym ? kernels::ActDtype::u8 : kernels::ActDtype::s8;
    const std::string base = p + "." + which;
    a.scale = scales(base + "_scale", {1}, "the calibrated activation step")[0];
    const io::TensorInfo& z =
        get(base + "_zero_point", io::DType::I32, {1}, "the activation zero point");
    a.zero_point = read<int32_t>(z)[0];
    if (asym ? (a.zero_point < 0 || a.zero_point > 255) : a.zero_point != 0) {
      fail(fmt::format("tensor '{}_zero_point' is {}: expected {} for the {} scheme", base,
                       a.zero_point, asym ? "a value in [0, 255]" : "0",
                       asym ? "asymmetric" : "symmetric"));
    }
    return a;
  }

  std::vector<int64_t> scale_shape(int64_t n) const {
    return {cfg_.weights == quant::WeightGranularity::per_channel ? n : 1};
  }

  // One quantized Linear's tensors; `stack` receives the pieces when Q, K and V are fused.
  struct Pieces {
    std::vector<int8_t> w;
    std::vector<float> w_scales;  // expanded to n entries
    std::vector<float> bias;      // FP32 (dequantized from int32 for static layers)
    layers::ActivationQuant act;
  };

  Pieces pieces(const std::string& p, int64_t n, int64_t k, const std::string& what) {
    Pieces out;
    out.w = i8(p + ".weight", {n, k}, what);
    std::vector<float> s = scales(p + ".weight_scale", scale_shape(n),
                                  cfg_.weights == quant::WeightGranularity::per_channel
                                      ? "one scale per output channel (weights: per_channel)"
                                      : "one scale for the matrix (weights: per_tensor)");
    out.w_scales.resize(n);
    for (int64_t j = 0; j < n; ++j) out.w_scales[j] = s[s.size() == 1 ? 0 : j];
    out.act = activation(p);
    if (out.act.dynamic) {
      out.bias = f32(p + ".bias", {n}, "FP32 bias (dynamic activations)");
    } else {
      const io::TensorInfo& b =
          get(p + ".bias", io::DType::I32, {n}, "int32 bias at scale input_scale * weight_scale");
      params_ += n;
      out.bias = layers::dequantize_static_bias(read<int32_t>(b), out.act.scale, out.w_scales);
    }
    return out;
  }

  layers::LinearInt8 build(const Pieces& q, int64_t n, int64_t k) const {
    // Per-tensor weights keep one scale: the kernels treat 1 and n equal scales identically.
    return layers::LinearInt8::from_quantized(q.w, n, k, q.w_scales, q.bias, q.act);
  }

  layers::LinearInt8 linear_int8(const std::string& p, int64_t n, int64_t k,
                                 const std::string& what) {
    return build(pieces(p, n, k, what), n, k);
  }

  ops::MatmulF32 linear_f32(const std::string& p, int64_t n, int64_t k, const std::string& what) {
    const std::vector<float> w = f32(p + ".weight", {n, k}, what + " (kept in FP32)");
    const std::vector<float> b = f32(p + ".bias", {n}, "FP32 bias (kept in FP32)");
    return ops::MatmulF32(w, n, k, b);
  }

  int64_t parameters() const { return params_; }
  const TensorSource& source() const { return src_; }

 private:
  const TensorSource& src_;
  const QuantizationConfig& cfg_;
  int64_t params_ = 0;
};

}  // namespace

BertEncoder load_bert_encoder_quantized(const io::BertConfig& c, const nlohmann::json& qjson,
                                        const TensorSource& src, bool load_head,
                                        const std::string& config_where) {
  const QuantizationConfig cfg = quant::parse_quantization_config(
      qjson, config_where + ": quantization_config", /*model_file=*/true);
  quant::check_supported(cfg, config_where + ": quantization_config");
  QuantLoader w(src, cfg);
  BertEncoder enc;
  enc.config = c;
  enc.prefix = "bert.";
  enc.precision = cfg.activations == quant::ActivationMode::static_ ? Precision::int8_static
                                                                    : Precision::int8_dynamic;
  enc.quantization_config = quant::to_json(cfg);
  const int64_t h = c.hidden_size, inter = c.intermediate_size;
  const float eps = static_cast<float>(c.layer_norm_eps);

  auto table = [&](const std::string& p, int64_t rows, const std::string& what,
                   std::vector<float>& f, std::vector<int8_t>& q, float& scale) {
    if (cfg.quantizes(p)) {
      q = w.i8(p + ".weight", {rows, h}, what);
      scale = w.scales(p + ".weight_scale", {1}, "one scale for the table")[0];
    } else {
      f = w.f32(p + ".weight", {rows, h}, what);
    }
  };
  enc.embeddings.hidden = h;
  table("bert.embeddings.word_embeddings", c.vocab_size, "[vocab_size, hidden_size]",
        enc.embeddings.word, enc.embeddings.word_q, enc.embeddings.word_scale);
  table("bert.embeddings.position_embeddings", c.max_position_embeddings,
        "[max_position_embeddings, hidden_size]", enc.embeddings.position,
        enc.embeddings.position_q, enc.embeddings.position_scale);
  enc.embeddings.token_type = w.f32("bert.embeddings.token_type_embeddings.weight",
                                    {c.type_vocab_size, h}, "[type_vocab_size, hidden_size]");
  enc.embeddings.norm = w.layer_norm("bert.embeddings.LayerNorm", h, eps);

  for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
    const std::string p = fmt::format("bert.encoder.layer.{}.", i);
    layers::EncoderLayer& L = enc.layers.emplace_back();
    L.name = p;
    L.hidden = h;
    L.heads = c.num_attention_heads;
    L.head_dim = c.head_dim();
    L.intermediate = inter;
    L.act = c.hidden_act;
    const std::string self = p + "attention.self.";
    const bool q8 = cfg.quantizes(self + "query"), k8 = cfg.quantizes(self + "key"),
               v8 = cfg.quantizes(self + "value");
    if (q8 != k8 || q8 != v8) {
      w.fail(
          fmt::format("quantization_config quantizes {}query / key / value as {} / {} / {}: "
                      "they share one fused GEMM, so keep all three or none in FP32",
                      self, q8, k8, v8));
    }
    const std::string hh = "[hidden_size, hidden_size]";
    if (q8) {
      QuantLoader::Pieces all;
      for (const char* name : {"query", "key", "value"}) {
        QuantLoader::Pieces one = w.pieces(self + name, h, h, hh);
        if (!all.w.empty() &&
            (one.act.scale != all.act.scale || one.act.zero_point != all.act.zero_point)) {
          w.fail(fmt::format(
              "'{}{}.input_scale' / zero point ({}, {}) differ from query's ({}, "
              "{}): Q, K and V read the same input and must share its scale",
              self, name, one.act.scale, one.act.zero_point, all.act.scale, all.act.zero_point));
        }
        all.act = one.act;
        all.w.insert(all.w.end(), one.w.begin(), one.w.end());
        all.w_scales.insert(all.w_scales.end(), one.w_scales.begin(), one.w_scales.end());
        all.bias.insert(all.bias.end(), one.bias.begin(), one.bias.end());
      }
      L.qkv_q = w.build(all, 3 * h, h);
    } else {
      std::vector<float> wqkv, bqkv;
      for (const char* name : {"query", "key", "value"}) {
        const std::vector<float> wt = w.f32(self + name + ".weight", {h, h}, hh);
        const std::vector<float> bs = w.f32(self + name + ".bias", {h}, "[hidden_size]");
        wqkv.insert(wqkv.end(), wt.begin(), wt.end());
        bqkv.insert(bqkv.end(), bs.begin(), bs.end());
      }
      L.qkv = ops::MatmulF32(wqkv, 3 * h, h, bqkv);
    }
    if (cfg.quantizes_scores(self.substr(0, self.size() - 1))) {
      L.quantize_qk = true;
      L.q_out = w.activation(self + "query", "output");
      L.k_out = w.activation(self + "key", "output");
      enc.uses_int8 = true;  // the int8 scratch of ops::fake_quantize_static
    }
    auto lin = [&](const std::string& name, int64_t n, int64_t k, const std::string& what,
                   layers::LinearInt8& q, ops::MatmulF32& f) {
      if (cfg.quantizes(p + name)) {
        q = w.linear_int8(p + name, n, k, what);
      } else {
        f = w.linear_f32(p + name, n, k, what);
      }
    };
    lin("attention.output.dense", h, h, hh, L.attn_out_q, L.attn_out);
    lin("intermediate.dense", inter, h, "[intermediate_size, hidden_size]", L.ffn_in_q, L.ffn_in);
    lin("output.dense", h, inter, "[hidden_size, intermediate_size]", L.ffn_out_q, L.ffn_out);
    L.int8 = L.qkv_q.n() > 0 || L.attn_out_q.n() > 0 || L.ffn_in_q.n() > 0 || L.ffn_out_q.n() > 0;
    enc.uses_int8 = enc.uses_int8 || L.int8;
    L.attn_norm = w.layer_norm(p + "attention.output.LayerNorm", h, eps);
    L.ffn_norm = w.layer_norm(p + "output.LayerNorm", h, eps);
  }

  if (load_head) {
    auto head = [&](const std::string& p, int64_t n, const std::string& what, layers::LinearInt8& q,
                    ops::MatmulF32& f) {
      if (cfg.quantizes(p)) {
        q = w.linear_int8(p, n, h, what);
        enc.uses_int8 = true;
      } else {
        f = w.linear_f32(p, n, h, what);
      }
    };
    if (src.find("bert.pooler.dense.weight") != nullptr) {
      head("bert.pooler.dense", h, "[hidden_size, hidden_size]", enc.pooler_q, enc.pooler);
      enc.has_pooler = true;
    }
    if (src.find("classifier.weight") != nullptr) {
      if (!enc.has_pooler) {
        w.fail(
            "has 'classifier.weight' but no 'bert.pooler.dense.weight'; the classifier reads "
            "the pooled vector");
      }
      head("classifier", c.num_labels, "[num_labels, hidden_size]", enc.classifier_q,
           enc.classifier);
      enc.has_classifier = true;
    }
  }
  enc.parameter_count = w.parameters();
  return enc;
}

}  // namespace octet::models
