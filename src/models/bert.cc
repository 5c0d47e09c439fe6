#include "models/bert.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <span>
#include <vector>

#include "common/check.h"
#include "models/bert_integer.h"
#include "octet/error.h"
#include "ops/fp32_ops.h"

namespace octet::models {
namespace {

// Resolves tensor names (with or without the "bert." prefix), checks dtype and shape against
// what config.json implies, converts to float and counts parameters.
class WeightLoader {
 public:
  WeightLoader(const io::SafetensorsReader& reader, std::string prefix)
      : reader_(reader), prefix_(std::move(prefix)) {}

  const io::TensorInfo* find(const std::string& name, bool prefixed = true) const {
    return reader_.find(prefixed ? prefix_ + name : name);
  }

  // `what` explains the expected shape in config.json terms, e.g. "[hidden_size, hidden_size]".
  std::vector<float> load(const std::string& name, std::vector<int64_t> shape,
                          const std::string& what, bool prefixed = true) {
    return read(require(name, shape, what, prefixed), shape, what);
  }

  // A [rows, cols] table quantized to int8 with one scale, bit for bit what
  // layers::quantize_symmetric_int8(per_row = false) gives on the FP32 table, but streamed from
  // the file row by row (two passes: max |w|, then codes), so that no FP32 copy of the table is
  // ever resident: the word embeddings of BERT-base are 94 MB in FP32, 23 MB in int8.
  layers::SymmetricInt8 load_int8_table(const std::string& name, std::vector<int64_t> shape,
                                        const std::string& what) {
    const io::TensorInfo& t = require(name, shape, what, true);
    check_float(t, shape, what);
    const int64_t rows = shape[0], cols = shape[1];
    io::TensorInfo row = t;
    row.shape = {cols};
    row.nbytes = t.nbytes / static_cast<uint64_t>(rows);
    std::vector<float> buf(static_cast<std::size_t>(cols));
    auto read_row = [&](int64_t r) {
      row.offset = t.offset + static_cast<uint64_t>(r) * row.nbytes;
      reader_.read_f32_into(row, buf);
    };
    float amax = 0.0f;
    for (int64_t r = 0; r < rows; ++r) {
      read_row(r);
      for (int64_t i = 0; i < cols; ++i) {
        const float v = buf[static_cast<std::size_t>(i)];
        if (!std::isfinite(v)) {
          throw ModelFormatError(fmt::format(
              "{}: tensor '{}' holds a non-finite value ({}) at flat index {}; expected finite "
              "weights",
              reader_.path().string(), t.name, v, r * cols + i));
        }
        amax = std::max(amax, std::fabs(v));
      }
    }
    layers::SymmetricInt8 out;
    out.scales = {amax > 0.0f ? amax / 127.0f : 1.0f};
    const float inv_scale = amax > 0.0f ? 127.0f / amax : 1.0f;
    out.q.resize(static_cast<std::size_t>(rows * cols));
    for (int64_t r = 0; r < rows; ++r) {
      read_row(r);
      int8_t* dst = out.q.data() + r * cols;
      for (int64_t i = 0; i < cols; ++i)
        dst[i] = layers::quantize_symmetric_one(buf[static_cast<std::size_t>(i)], inv_scale);
    }
    reader_.drop_pages(t);
    parameters_ += t.numel();
    return out;
  }

  const io::TensorInfo& require(const std::string& name, const std::vector<int64_t>& shape,
                                const std::string& what, bool prefixed) const {
    const std::string full = prefixed ? prefix_ + name : name;
    const io::TensorInfo* t = reader_.find(full);
    if (t == nullptr) {
      throw ModelFormatError(
          fmt::format("{}: missing tensor '{}' (expected shape {} = {} from "
                      "config.json)",
                      reader_.path().string(), full, shape, what));
    }
    return *t;
  }

  void check_float(const io::TensorInfo& t, const std::vector<int64_t>& shape,
                   const std::string& what) const {
    if (t.dtype != io::DType::F32 && t.dtype != io::DType::F16 && t.dtype != io::DType::BF16) {
      throw ModelFormatError(fmt::format("{}: tensor '{}' has dtype {}; expected F32, F16 or BF16",
                                         reader_.path().string(), t.name, io::dtype_name(t.dtype)));
    }
    if (t.shape != shape) {
      throw ModelFormatError(fmt::format(
          "{}: tensor '{}' has shape {}, expected {} = {} from config.json (config.json and the "
          "weights disagree)",
          reader_.path().string(), t.name, t.shape, shape, what));
    }
  }

  std::vector<float> read(const io::TensorInfo& t, const std::vector<int64_t>& shape,
                          const std::string& what) {
    check_float(t, shape, what);
    std::vector<float> out(static_cast<std::size_t>(t.numel()));
    reader_.read_f32_into(t, out);
    reader_.drop_pages(t);  // converted: the mapping's pages need not stay resident
    // A NaN or Inf weight would silently poison every output: refuse it here, once.
    const auto bad =
        std::find_if(out.begin(), out.end(), [](float v) { return !std::isfinite(v); });
    if (bad != out.end()) {
      throw ModelFormatError(fmt::format(
          "{}: tensor '{}' holds a non-finite value ({}) at flat index {}; expected finite weights",
          reader_.path().string(), t.name, *bad, bad - out.begin()));
    }
    parameters_ += t.numel();
    return out;
  }

  // LayerNorm weight and bias under either naming: weight/bias or the TF-era gamma/beta.
  layers::LayerNorm layer_norm(const std::string& base, int64_t h, float eps) {
    layers::LayerNorm ln;
    ln.eps = eps;
    const bool old_names = find(base + ".weight") == nullptr && find(base + ".gamma") != nullptr;
    ln.gamma = load(base + (old_names ? ".gamma" : ".weight"), {h}, "[hidden_size]");
    ln.beta = load(base + (old_names ? ".beta" : ".bias"), {h}, "[hidden_size]");
    return ln;
  }

  ops::MatmulF32 linear(const std::string& base, int64_t n, int64_t k, const std::string& what_n,
                        const std::string& what_k, bool prefixed = true) {
    const std::vector<float> w =
        load(base + ".weight", {n, k}, "[" + what_n + ", " + what_k + "]", prefixed);
    const std::vector<float> b = load(base + ".bias", {n}, "[" + what_n + "]", prefixed);
    return ops::MatmulF32(w, n, k, b);
  }

  layers::LinearInt8 linear_int8(const std::string& base, int64_t n, int64_t k,
                                 const std::string& what_n, const std::string& what_k,
                                 bool per_channel, bool prefixed = true) {
    const std::vector<float> w =
        load(base + ".weight", {n, k}, "[" + what_n + ", " + what_k + "]", prefixed);
    const std::vector<float> b = load(base + ".bias", {n}, "[" + what_n + "]", prefixed);
    return layers::LinearInt8(w, n, k, b, per_channel);
  }

  int64_t parameters() const { return parameters_; }

 private:
  const io::SafetensorsReader& reader_;
  std::string prefix_;
  int64_t parameters_ = 0;
};

}  // namespace

BertEncoder load_bert_encoder(const io::BertConfig& c, const io::SafetensorsReader& reader,
                              bool load_head, Precision precision, bool per_channel) {
  BertEncoder enc;
  enc.config = c;
  enc.precision = precision;
  const bool int8 = precision == Precision::int8_dynamic;
  enc.uses_int8 = int8;
  const std::string word = "embeddings.word_embeddings.weight";
  if (reader.find("bert." + word) != nullptr) {
    enc.prefix = "bert.";
  } else if (reader.find(word) == nullptr) {
    throw ModelFormatError(
        fmt::format("{}: missing tensor 'bert.{}' (also looked for '{}'): not a BERT checkpoint?",
                    reader.path().string(), word, word));
  }
  WeightLoader w(reader, enc.prefix);
  const int64_t h = c.hidden_size, inter = c.intermediate_size;
  const float eps = static_cast<float>(c.layer_norm_eps);

  enc.embeddings.hidden = h;
  if (int8) {
    // Weight-only, one scale per table (Q8BERT's QuantizedEmbedding), streamed from the file.
    layers::SymmetricInt8 q =
        w.load_int8_table(word, {c.vocab_size, h}, "[vocab_size, hidden_size]");
    enc.embeddings.word_q = std::move(q.q);
    enc.embeddings.word_scale = q.scales[0];
    q = w.load_int8_table("embeddings.position_embeddings.weight", {c.max_position_embeddings, h},
                          "[max_position_embeddings, hidden_size]");
    enc.embeddings.position_q = std::move(q.q);
    enc.embeddings.position_scale = q.scales[0];
  } else {
    enc.embeddings.word = w.load(word, {c.vocab_size, h}, "[vocab_size, hidden_size]");
    enc.embeddings.position =
        w.load("embeddings.position_embeddings.weight", {c.max_position_embeddings, h},
               "[max_position_embeddings, hidden_size]");
  }
  enc.embeddings.token_type = w.load("embeddings.token_type_embeddings.weight",
                                     {c.type_vocab_size, h}, "[type_vocab_size, hidden_size]");
  enc.embeddings.norm = w.layer_norm("embeddings.LayerNorm", h, eps);

  for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
    const std::string p = fmt::format("encoder.layer.{}.", i);
    layers::EncoderLayer& L = enc.layers.emplace_back();
    L.name = enc.prefix.empty() ? "bert." + p : enc.prefix + p;
    L.hidden = h;
    L.heads = c.num_attention_heads;
    L.head_dim = c.head_dim();
    L.intermediate = inter;
    L.act = c.hidden_act;
    // Q, K and V stacked into one [3H, H] GEMM: one pass over the activations instead of three.
    std::vector<float> wqkv, bqkv;
    wqkv.reserve(3 * h * h);
    bqkv.reserve(3 * h);
    for (const char* name : {"query", "key", "value"}) {
      const std::string base = p + "attention.self." + name;
      const std::vector<float> wt = w.load(base + ".weight", {h, h}, "[hidden_size, hidden_size]");
      const std::vector<float> bs = w.load(base + ".bias", {h}, "[hidden_size]");
      wqkv.insert(wqkv.end(), wt.begin(), wt.end());
      bqkv.insert(bqkv.end(), bs.begin(), bs.end());
    }
    if (int8) {
      L.int8 = true;
      if (per_channel) {
        L.qkv_q = layers::LinearInt8(wqkv, 3 * h, h, bqkv, /*per_channel=*/true);
      } else {
        // Per tensor is one scale per Linear (Q8BERT; `octet quantize --weights per-tensor`):
        // Q, K and V keep their own, given to the stacked GEMM as the scales of their rows.
        std::vector<int8_t> codes;
        std::vector<float> scales;
        codes.reserve(3 * h * h);
        scales.reserve(3 * h);
        for (int64_t part = 0; part < 3; ++part) {
          const layers::SymmetricInt8 one = layers::quantize_symmetric_int8(
              std::span<const float>(wqkv).subspan(part * h * h, h * h), h, h, /*per_row=*/false);
          codes.insert(codes.end(), one.q.begin(), one.q.end());
          scales.insert(scales.end(), h, one.scales[0]);
        }
        L.qkv_q = layers::LinearInt8::from_quantized(codes, 3 * h, h, scales, bqkv,
                                                     layers::ActivationQuant{});
      }
      L.attn_out_q = w.linear_int8(p + "attention.output.dense", h, h, "hidden_size", "hidden_size",
                                   per_channel);
      L.ffn_in_q = w.linear_int8(p + "intermediate.dense", inter, h, "intermediate_size",
                                 "hidden_size", per_channel);
      L.ffn_out_q = w.linear_int8(p + "output.dense", h, inter, "hidden_size", "intermediate_size",
                                  per_channel);
    } else {
      L.qkv = ops::MatmulF32(wqkv, 3 * h, h, bqkv);
      L.attn_out = w.linear(p + "attention.output.dense", h, h, "hidden_size", "hidden_size");
      L.ffn_in = w.linear(p + "intermediate.dense", inter, h, "intermediate_size", "hidden_size");
      L.ffn_out = w.linear(p + "output.dense", h, inter, "hidden_size", "intermediate_size");
    }
    L.attn_norm = w.layer_norm(p + "attention.output.LayerNorm", h, eps);
    L.ffn_norm = w.layer_norm(p + "output.LayerNorm", h, eps);
  }

  if (load_head) {
    if (w.find("pooler.dense.weight") != nullptr) {
      if (int8) {
        enc.pooler_q =
            w.linear_int8("pooler.dense", h, h, "hidden_size", "hidden_size", per_channel);
      } else {
        enc.pooler = w.linear("pooler.dense", h, h, "hidden_size", "hidden_size");
      }
      enc.has_pooler = true;
    }
    if (reader.find("classifier.weight") != nullptr) {
      if (!enc.has_pooler) {
        throw ModelFormatError(
            fmt::format("{}: has 'classifier.weight' but no '{}pooler.dense."
                        "weight'; the classifier reads the pooled vector",
                        reader.path().string(), enc.prefix));
      }
      if (int8) {
        enc.classifier_q = w.linear_int8("classifier", c.num_labels, h, "num_labels", "hidden_size",
                                         per_channel, /*prefixed=*/false);
      } else {
        enc.classifier = w.linear("classifier", c.num_labels, h, "num_labels", "hidden_size",
                                  /*prefixed=*/false);
      }
      enc.has_classifier = true;
    }
  }
  enc.parameter_count = w.parameters();
  return enc;
}

void BertEncoder::forward(std::span<const int32_t> ids, std::span<const int32_t> types,
                          std::span<const int64_t> offsets, std::span<const int64_t> valid,
                          BertOutputKind what, BertWorkspace& ws, int threads, BertOutputs& out,
                          const ActivationTap* tap) const {
  const int64_t batch = static_cast<int64_t>(offsets.size()) - 1;
  OCTET_CHECK(valid.empty() || static_cast<int64_t>(valid.size()) == batch);
  OCTET_CHECK(valid.empty() || integer == nullptr);
  // End of sequence b's tokens (its pad rows, if any, follow).
  auto token_end = [&](int64_t b) {
    return valid.empty() ? offsets[b + 1] : offsets[b] + valid[b];
  };
  const int64_t tokens = offsets.back();
  const int64_t h = config.hidden_size, inter = config.intermediate_size;
  int64_t max_len = 0;
  for (int64_t b = 0; b < batch; ++b) max_len = std::max(max_len, offsets[b + 1] - offsets[b]);

  // Arena layout, each piece rounded to 16 floats (64 bytes):
  //   hidden [tokens, H] | qkv [tokens, 3H] | ctx [tokens, H] | mid [tokens, I] |
  //   attention scratch [threads, per_thread] | head [B, H] x 2 |
  //   INT8 only: quantized activations [tokens, max(H, I)] int8
  auto round16 = [](int64_t n) { return static_cast<std::size_t>((n + 15) / 16 * 16); };
  const bool int8 = uses_int8;
  const std::size_t per_thread = ops::attention_scratch_per_thread(max_len, config.head_dim());
  const std::size_t sizes[] = {round16(tokens * h),
                               round16(tokens * 3 * h),
                               round16(tokens * h),
                               round16(tokens * inter),
                               per_thread * std::max(1, threads),
                               round16(batch * h),
                               round16(batch * h),
                               int8 ? round16((tokens * std::max(h, inter) + 3) / 4) : 0};
  std::size_t total = 0;
  for (std::size_t s : sizes) total += s;
  ws.arena.ensure(total);
  float* p = ws.arena.data();
  float* ptrs[8];
  for (int i = 0; i < 8; ++i) {
    ptrs[i] = p;
    p += sizes[i];
  }
  float* hidden = ptrs[0];
  int8_t* q8 = int8 ? reinterpret_cast<int8_t*>(ptrs[7]) : nullptr;
  layers::EncoderScratch s{.qkv = ptrs[1],
                           .ctx = ptrs[2],
                           .mid = ptrs[3],
                           .attention = ptrs[4],
                           .attention_per_thread = per_thread,
                           .gemm = &ws.gemm_scratch,
                           .q8 = q8,
                           .tap = tap,
                           .x_abs_max = nullptr,
                           .valid = valid};
  float* cls = ptrs[5];
  float* pooled = ptrs[6];

  if (integer != nullptr) {
    integer->forward_dequantized(ids, types, offsets, hidden, threads);
  } else {
    // Dynamic INT8: each LayerNorm that feeds a QKV GEMM takes max |x| in its own pass, so the
    // activation quantization needs no range pass (layers::EncoderScratch::x_abs_max).
    float x_abs_max = -1.0f;
    const bool dynamic_qkv = !layers.empty() && layers.front().qkv_q.n() > 0 &&
                             layers.front().qkv_q.activation_quant().dynamic;
    if (dynamic_qkv) s.x_abs_max = &x_abs_max;
    embeddings.forward(ids, types, offsets, hidden, threads, s.x_abs_max);
    if (tap != nullptr) (*tap)("bert.embeddings", TapPoint::output, hidden, tokens, h, h);
    // After the last layer only the rows the pooler reads are needed, unless every row is.
    bool first_rows = tap == nullptr && !has(what, BertOutputKind::last_hidden) &&
                      !has(what, BertOutputKind::mean_pooled);
    for (int64_t b = 0; b < batch; ++b) first_rows = first_rows && offsets[b + 1] > offsets[b];
    for (const layers::EncoderLayer& layer : layers) {
      s.first_rows_only = first_rows && &layer == &layers.back();
      layer.forward(hidden, offsets, s, threads);
    }
  }

  out.batch = batch;
  out.hidden_size = h;
  out.num_labels = has_classifier ? config.num_labels : 0;
  // `out` may be a caller's, reused across calls: what is not requested is emptied (capacity
  // kept), what is requested is overwritten in place.
  if (!has(what, BertOutputKind::last_hidden)) out.last_hidden.clear();
  if (!has(what, BertOutputKind::mean_pooled)) out.mean_pooled.clear();
  if (!has(what, BertOutputKind::pooled)) out.pooled.clear();
  if (!has(what, BertOutputKind::logits)) out.logits.clear();
  if (has(what, BertOutputKind::last_hidden)) {
    out.last_hidden.resize(batch);
    for (int64_t b = 0; b < batch; ++b) {
      out.last_hidden[b].assign(hidden + offsets[b] * h, hidden + token_end(b) * h);
    }
  }
  if (has(what, BertOutputKind::mean_pooled)) {
    out.mean_pooled.assign(batch * h, 0.0f);
    for (int64_t b = 0; b < batch; ++b) {
      float* m = out.mean_pooled.data() + b * h;
      for (int64_t i = offsets[b]; i < token_end(b); ++i) {
        for (int64_t c = 0; c < h; ++c) m[c] += hidden[i * h + c];
      }
      const float inv = 1.0f / static_cast<float>(token_end(b) - offsets[b]);
      for (int64_t c = 0; c < h; ++c) m[c] *= inv;
    }
  }
  if (has(what, BertOutputKind::pooled) || has(what, BertOutputKind::logits)) {
    OCTET_CHECK(has_pooler);
    for (int64_t b = 0; b < batch; ++b) {
      std::memcpy(cls + b * h, hidden + offsets[b] * h, sizeof(float) * h);
    }
    if (tap != nullptr) (*tap)("bert.pooler.dense", TapPoint::input, cls, batch, h, h);
    if (pooler_q.n() > 0) {
      pooler_q.forward(cls, batch, h, pooled, h, q8, {}, threads);
    } else {
      pooler.run(cls, batch, pooled, /*accumulate=*/false, ws.gemm_scratch);
    }
    ops::tanh_inplace(pooled, batch * h, threads);
    if (tap != nullptr) (*tap)("bert.pooler.dense", TapPoint::output, pooled, batch, h, h);
    if (has(what, BertOutputKind::pooled)) out.pooled.assign(pooled, pooled + batch * h);
    if (has(what, BertOutputKind::logits)) {
      OCTET_CHECK(has_classifier);
      out.logits.resize(batch * config.num_labels);
      if (tap != nullptr) (*tap)("classifier", TapPoint::input, pooled, batch, h, h);
      if (classifier_q.n() > 0) {
        classifier_q.forward(pooled, batch, h, out.logits.data(), config.num_labels, q8, {},
                             threads);
      } else {
        classifier.run(pooled, batch, out.logits.data(), /*accumulate=*/false, ws.gemm_scratch);
      }
      if (tap != nullptr) {
        (*tap)("classifier", TapPoint::output, out.logits.data(), batch, config.num_labels,
               config.num_labels);
      }
    }
  }
}

}  // namespace octet::models
