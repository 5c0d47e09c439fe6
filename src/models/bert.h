// The BERT encoder in FP32 or INT8 (Q8BERT dynamic quantization, see octet/model.h): weights loaded
// from a Hugging Face safetensors file and checked against config.json, and the forward pass over a
// packed batch (layers/bert_layers.h). The public entry point is octet::BertModel
// (include/octet/model.h), which validates inputs and owns the workspaces; this header is its
// implementation, also used by tests.
//
//   io::SafetensorsReader st(files.weights);
//   models::BertEncoder enc = models::load_bert_encoder(config, st, /*load_head=*/true);
//   models::BertWorkspace ws;
//   enc.forward(ids, types, offsets, what, ws, threads, outputs);
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
#include <span>
#include <string>
#include <vector>

#include "common/aligned_buffer.h"
#include "io/bert_config.h"
#include "io/safetensors.h"
#include "layers/bert_layers.h"
#include "layers/linear_int8.h"
#include "octet/model.h"
#include "ops/matmul_f32.h"

namespace octet::models {

// Reusable scratch for one forward pass at a time: grown on demand, never shrunk.
struct BertWorkspace {
  AlignedBuffer<float> arena;
  AlignedBuffer<std::byte> gemm_scratch;
  std::vector<int32_t> ids, types;
  std::vector<int64_t> offsets;
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
  // int8_dynamic: the head runs through these instead (pooler, classifier left empty).
  Precision precision = Precision::fp32;
  layers::LinearInt8 pooler_q, classifier_q;
  int64_t parameter_count = 0;

  // ids / types packed and validated (types may not be empty here); offsets: B + 1 entries.
  void forward(std::span<const int32_t> ids, std::span<const int32_t> types,
               std::span<const int64_t> offsets, BertOutputKind what, BertWorkspace& ws,
               int threads, BertOutputs& out) const;
};

// Throws ModelFormatError naming the file, the tensor, expected and found (shape, dtype), or
// the missing tensor.
BertEncoder load_bert_encoder(const io::BertConfig& config, const io::SafetensorsReader& weights,
                              bool load_head, Precision precision = Precision::fp32,
                              bool per_channel = true);

}  // namespace octet::models
