// Pieces shared by `octet calibrate`, `octet quantize` and `octet compare`: the quantization
// config flags, tokenized batches, and GLUE metrics from logits.
#pragma once

#include <CLI/CLI.hpp>
#include <cstddef>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <vector>

#include "data/glue.h"
#include "eval/metrics.h"
#include "octet/model.h"
#include "quant/config.h"
#include "text/wordpiece.h"

namespace octet::cli {

// Flags that build a QuantizationConfig (docs/quantization.md): a JSON file (--config) with the
// individual flags layered on top; every value is checked by quant::parse_quantization_config.
struct QuantFlags {
  std::string config_file;
  std::string activations, scheme, weights, calibrator, kl_form, threshold_mode;
  double percentile = 0, ema_decay = 0;
  int bins = 0;
  std::vector<std::string> keep_fp32;
  bool no_embeddings = false;
};
void add_quant_flags(CLI::App* sub, QuantFlags& f);
// Throws InvalidArgument naming the flag (or the --config file and key). With a calibration
// document, a histogram calibrator's `bins` and the EMA `decay` default to the values the
// statistics were recorded with (instead of 2048 / 0.9999) unless set explicitly.
quant::QuantizationConfig quant_config_from_flags(const QuantFlags& f,
                                                  const nlohmann::json* calibration = nullptr);

// Tokenized examples, grouped into batches of `batch_size` in input order.
struct EncodedBatches {
  std::vector<text::Encoding> encodings;
  std::vector<std::vector<BertSequence>> batches;
};
EncodedBatches encode_batches(const text::WordPieceTokenizer& tok,
                              std::span<const data::Example> examples, std::size_t max_seq_len,
                              std::size_t batch_size);

// The --max-seq-len default (128, or the model's max_position_embeddings if smaller) and range
// check; throws InvalidArgument.
std::size_t resolve_max_seq_len(std::size_t flag, const BertModel& model);

// Checks the model's head against the task (InvalidArgument, as `octet eval`).
void check_head(const BertModel& model, const data::TaskSpec& spec, const std::string& model_dir);

// Runs the model over the batches, returning the logits in input order (tap may be empty).
std::vector<float> run_logits(const BertModel& model, const EncodedBatches& b,
                              const ActivationTap& tap = {}, const char* label = "inference");

}  // namespace octet::cli
