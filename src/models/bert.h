// The BERT encoder in FP32 or INT8 (Q8BERT dynamic quantization, see octet/model.h): weights loaded
// from a Hugging Face safetensors file and checked against config.json, and the forward pass over a
// packed batch (layers/bert_layers.h). The public entry point is octet::BertModel
// (include/octet/model.h), which validates inputs and owns the workspaces; this header is its
// implementation, also used by tests.
//
//   io::SafetensorsReader st(files.weights);
//   models::BertEncoder enc = models::load_bert_encoder(config, st, /*load_head=*/true);
//   models::BertWorkspace ws;
//   enc.forward(ids, types, offsets, /*valid=*/{}, what, ws, threads, outputs);
//
// Tensor names (prefix "bert." optional, detected from the word embeddings; "gamma"/"beta"
// accepted for LayerNorm weight/bias):
//   embeddings.{word,position,token_type}_embeddings.weight, embeddings.LayerNorm.*
//   encoder.layer.{i}.attention.self.{query,key,value}.{weight,bias}
//   encoder.layer.{i}.attention.output.dense.*, .attention.output.LayerNorm.*
//   encoder.layer.{i}.intermediate.dense.*, .output.dense.*, .output.LayerNorm.*
//   pooler.dense.*  (optional)      classifier.{weight,bias}  (optional, never prefixed)
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/aligned_buffer.h"
#include "io/bert_config.h"
#include "io/safetensors.h"
#include "layers/bert_layers.h"
#include "layers/linear_int8.h"
#include "octet/model.h"
#include "ops/matmul_f32.h"

namespace octet::models {

class IntegerBertEncoder;

// Reusable scratch for one forward pass at a time: grown on demand, never shrunk.
struct BertWorkspace {
  AlignedBuffer<float> arena;
  AlignedBuffer<std::byte> gemm_scratch;
  std::vector<int32_t> ids, types;
  std::vector<int64_t> offsets;
  std::vector<int64_t> valid;  // padded batches: valid tokens per sequence
};

struct BertEncoder {
  io::BertConfig config;
  std::string prefix;  // "bert." or ""
  layers::Embeddings embeddings;
  std::vector<layers::EncoderLayer> layers;
  bool has_pooler = false;
  ops::MatmulF32 pooler;  // [H, H], tanh
  bool has_classifier = false;
  ops::MatmulF32 classifier;  // [num_labels, H]
  // INT8: the head runs through these when set (n() > 0; pooler / classifier left empty).
  Precision precision = Precision::fp32;
  bool uses_int8 = false;  // any LinearInt8 in the graph (sizes the int8 activation scratch)
  layers::LinearInt8 pooler_q, classifier_q;
  int64_t parameter_count = 0;
  // Quantized directories: the parsed quantization_config (null for FP32 directories).
  nlohmann::json quantization_config;
  // Integer-only (I-BERT) models: the integer encoder replaces embeddings and layers (left
  // empty); the head above runs in FP32 on its dequantized output. models/bert_integer.h.
  std::shared_ptr<const IntegerBertEncoder> integer;

  // ids / types packed and validated (types may not be empty here); offsets: B + 1 entries.
  // valid: empty (packed: every row of every sequence is a token), or B entries for a batch
  // padded to its longest sequence (Padding::longest): sequence b's first valid[b] rows are its
  // tokens and the rest pad tokens, which run through every layer but are never attended to
  // and are left out of the outputs. Not supported by the integer-only encoder.
  // tap: optional (octet/model.h ActivationTap).
  void forward(std::span<const int32_t> ids, std::span<const int32_t> types,
               std::span<const int64_t> offsets, std::span<const int64_t> valid,
               BertOutputKind what, BertWorkspace& ws, int threads, BertOutputs& out,
               const ActivationTap* tap = nullptr) const;
};

// Throws ModelFormatError naming the file, the tensor, expected and found (shape, dtype), or
// the missing tensor.
BertEncoder load_bert_encoder(const io::BertConfig& config, const io::SafetensorsReader& weights,
                              bool load_head, Precision precision = Precision::fp32,
                              bool per_channel = true);

// Runs the attention matmuls of every layer on int8 (BertLoadOptions::int8_attention). Throws
// InvalidArgument unless the encoder is INT8 and not integer-only; `what` names the model.
void use_int8_attention(BertEncoder& encoder, std::string_view what);

// Overrides, on the calling thread and for this object's lifetime, the OpenMP thread count that
// BertModel::forward uses (BertLoadOptions::threads): the runtime (octet::Encoder) gives the
// threads of idle workers to the batches that run, so that one batch on a 2-thread Encoder runs
// with 2 intra-op threads. n <= 0 restores the model's own count. Nests (restores the previous
// override on destruction).
class ScopedForwardThreads {
 public:
  explicit ScopedForwardThreads(int n);
  ~ScopedForwardThreads();
  ScopedForwardThreads(const ScopedForwardThreads&) = delete;
  ScopedForwardThreads& operator=(const ScopedForwardThreads&) = delete;

 private:
  int previous_;
};

// Tensors of a quantized model, from a safetensors file or from memory (quant::quantize_bert
// builds them before writing, so a model can be run before it is saved, with the same loader).
class TensorSource {
 public:
  virtual ~TensorSource() = default;
  virtual const io::TensorInfo* find(std::string_view name) const = 0;
  virtual std::span<const std::byte> bytes(const io::TensorInfo& t) const = 0;
  virtual std::string where() const = 0;  // the file, for messages
  // Called once a tensor's bytes have been copied or converted: a file-backed source gives the
  // tensor's resident pages back (io::SafetensorsReader::drop_pages), so that loading does not
  // keep the whole mapped file and the packed copy resident together. Bytes stay readable.
  virtual void release(const io::TensorInfo& /*t*/) const {}
};

class SafetensorsSource : public TensorSource {
 public:
  explicit SafetensorsSource(const io::SafetensorsReader& r) : r_(r) {}
  const io::TensorInfo* find(std::string_view name) const override { return r_.find(name); }
  std::span<const std::byte> bytes(const io::TensorInfo& t) const override { return r_.bytes(t); }
  std::string where() const override { return r_.path().string(); }
  void release(const io::TensorInfo& t) const override { r_.drop_pages(t); }

 private:
  const io::SafetensorsReader& r_;
};

// Owned tensors in memory (what `octet quantize` writes).
class MemoryTensors : public TensorSource {
 public:
  explicit MemoryTensors(std::string where = "quantized model (in memory)")
      : where_(std::move(where)) {}
  template <typename T>
  void add(std::string name, std::vector<int64_t> shape, std::span<const T> values) {
    add_bytes(std::move(name), io::dtype_of<T>(), std::move(shape), std::as_bytes(values));
  }
  void add_bytes(std::string name, io::DType dtype, std::vector<int64_t> shape,
                 std::span<const std::byte> data);
  const io::TensorInfo* find(std::string_view name) const override;
  std::span<const std::byte> bytes(const io::TensorInfo& t) const override;
  std::string where() const override { return where_; }
  // Views for io::write_safetensors (valid while this object lives and is not modified).
  std::vector<io::TensorView> views() const;
  const std::vector<io::TensorInfo>& tensors() const { return infos_; }

 private:
  std::string where_;
  std::vector<io::TensorInfo> infos_;
  std::vector<std::vector<std::byte>> data_;
};

// Builds the encoder of a quantized model directory: `qconfig` is config.json's
// quantization_config (parsed strictly), tensors as docs/model_format.md "Quantized models"
// describes. Throws ModelFormatError naming the source, the tensor, expected and found (missing
// scale, wrong dtype or shape, zero / negative / NaN scale, zero point out of range, Q/K/V
// scales that differ, a bias of the wrong dtype).
// `config_where` names config.json in messages about quantization_config.
BertEncoder load_bert_encoder_quantized(const io::BertConfig& config, const nlohmann::json& qconfig,
                                        const TensorSource& weights, bool load_head,
                                        const std::string& config_where = "config.json");

}  // namespace octet::models
