// `octet calibrate --model DIR --task T --data FILE --out CALIB [--samples 600] ...`: runs the FP32
// model over calibration examples (a training file, never dev or test) and records, at the input
// of every quantizable layer, the statistics the calibrators need (quant/bert_quant.h). The
// output is a JSON document {"format": "octet-calibration", "version": 1, "model",
// "model_weights": {bytes, fnv1a64}, "task", "data", "samples", "seed", "max_seq_len",
// "batch_size", "statistics": {...}, "tensors": {...}}, written atomically.
#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <memory>
#include <numeric>
#include <random>

#include "cli.h"
#include "io/atomic_file.h"
#include "io/model_dir.h"
#include "octet/error.h"
#include "quant/bert_quant.h"
#include "quant/integer_quant.h"
#include "quant_common.h"

namespace octet::cli {
namespace {

// A file named like an evaluation split ("dev.tsv", "val.superglue.jsonl", "test_matched.tsv").
bool looks_like_eval_split(const std::filesystem::path& p) {
  std::string stem = p.filename().string();
  std::string token;
  for (std::size_t i = 0; i <= stem.size(); ++i) {
    const char c = i < stem.size() ? static_cast<char>(std::tolower(stem[i])) : '.';
    if (std::isalnum(static_cast<unsigned char>(c))) {
      token += c;
      continue;
    }
    if (token == "dev" || token == "test" || token == "val" || token == "validation" ||
        token == "eval") {
      return true;
    }
    token.clear();
  }
  return false;
}

}  // namespace

Runner register_calibrate(CLI::App& app) {
  struct Options {
    std::string model, task, data, out, calibrator = "all";
    std::size_t samples = 600, max_seq_len = 0, batch_size = 32;
    uint64_t seed = 42;
    int bins = 2048, threads = 0;
    double ema_decay = 0.9999;
  };
  auto o = std::make_shared<Options>();
  CLI::App* sub = app.add_subcommand(
      "calibrate", "Record activation statistics of an FP32 model for static quantization");
  sub->add_option("--model", o->model, "FP32 model directory")->required();
  sub->add_option("--task", o->task, "sst2 | mrpc | cola | stsb | rte | qnli | mnli")->required();
  sub->add_option("--data", o->data, "Calibration file: the task's TRAINING split")->required();
  sub->add_option("--out", o->out, "Calibration JSON to write")->required();
  sub->add_option("--samples", o->samples, "Examples drawn at random (seeded) from --data")
      ->capture_default_str();
  sub->add_option("--seed", o->seed, "Random seed of the sample")->capture_default_str();
  sub->add_option("--calibrator", o->calibrator,
                  "Statistics to record: all | max | ema | percentile | kl | mse (the last three "
                  "share one histogram) | ema-minmax (I-BERT: EMA min/max, momentum 0.95, at the "
                  "inputs and outputs of every layer and the embedding sums; for quantize --mode "
                  "integer-only)")
      ->capture_default_str();
  sub->add_option("--bins", o->bins, "Histogram bins per side")->capture_default_str();
  CLI::Option* decay_flag = sub->add_option("--ema-decay", o->ema_decay,
                                            "EMA decay [default: 0.9999; 0.95 with ema-minmax]");
  sub->add_option("--max-seq-len", o->max_seq_len,
                  "Maximum tokens per example [default: 128, or max_position_embeddings]");
  sub->add_option("--batch-size", o->batch_size, "Examples per forward pass")
      ->capture_default_str();
  sub->add_option("--threads", o->threads, "Threads (0 = all cores)")->capture_default_str();
  return [o, decay_flag]() -> int {
    const std::string& k = o->calibrator;
    const bool ibert = k == "ema-minmax";
    if (ibert && decay_flag->count() == 0) o->ema_decay = quant::kIbertEmaMomentum;
    quant::CalibrationOptions copt{.ema_decay = o->ema_decay, .bins = o->bins};
    if (ibert) {
      copt.max = copt.histogram = false;
    } else if (k != "all") {
      copt.max = k == "max";
      copt.ema = k == "ema";
      copt.histogram = k == "percentile" || k == "kl" || k == "mse";
      if (!copt.max && !copt.ema && !copt.histogram) {
        throw InvalidArgument(fmt::format(
            "--calibrator must be all, max, ema, percentile, kl, mse or ema-minmax, found '{}'",
            k));
      }
    }
    if (o->samples < 1) throw InvalidArgument("--samples must be at least 1, found 0");
    if (o->batch_size < 1 || o->batch_size > 65536) {
      throw InvalidArgument(
          fmt::format("--batch-size must be in [1, 65536], found {}", o->batch_size));
    }
    quant::CalibrationCollector collector(copt);  // checks --bins and --ema-decay
    set_threads(o->threads);
    if (looks_like_eval_split(o->data)) {
      throw InvalidArgument(fmt::format(
          "--data {} looks like an evaluation split: calibrate on the training split (e.g. "
          "train.tsv) so that the dev metrics stay unbiased",
          o->data));
    }
    const data::Task task = data::parse_task(o->task);
    const data::TaskSpec& spec = data::task_spec(task);
    data::Dataset ds = data::read_glue(task, o->data);
    if (ds.examples.empty()) throw DataError(fmt::format("{} holds no examples", o->data));

    BertModel model = BertModel::load(o->model, {.threads = o->threads});
    if (model.precision() != Precision::fp32) {
      throw InvalidArgument(
          fmt::format("--model {} is quantized: calibrate the FP32 model", o->model));
    }
    check_head(model, spec, o->model);
    const std::size_t max_len = resolve_max_seq_len(o->max_seq_len, model);
    const auto tok = text::WordPieceTokenizer::from_model_dir(o->model);

    std::vector<std::size_t> order(ds.examples.size());
    std::iota(order.begin(), order.end(), std::size_t{0});
    std::mt19937_64 rng(o->seed);
    std::shuffle(order.begin(), order.end(), rng);
    const std::size_t n = std::min(o->samples, order.size());
    std::vector<data::Example> chosen;
    for (std::size_t i = 0; i < n; ++i) chosen.push_back(ds.examples[order[i]]);
    if (n < o->samples) {
      std::fprintf(stderr, "octet calibrate: --data has %zu examples; using all of them\n", n);
    }

    const EncodedBatches batches = encode_batches(tok, chosen, max_len, o->batch_size);
    std::size_t recorded = 0;
    nlohmann::json tensors;
    if (ibert) {
      // I-BERT: every activation of the integer-only graph, one EMA update per batch.
      quant::IntegerCalibrationCollector icol(o->model, o->ema_decay);
      const ActivationTap itap = icol.tap();
      for (const auto& batch : batches.batches) icol.observe_embeddings(batch);
      run_logits(model, batches, itap, "calibration");
      recorded = icol.tensors();
      tensors = icol.to_json();
    } else {
      run_logits(model, batches, collector.tap(), "calibration");
      recorded = collector.tensors();
      tensors = collector.to_json();
    }

    const io::ModelFiles files = io::locate_model(o->model);
    nlohmann::json doc;
    doc["format"] = quant::kCalibrationFormat;
    doc["version"] = quant::kCalibrationVersion;
    doc["model"] = files.dir.string();
    doc["model_weights"] = quant::file_fingerprint(files.weights);
    doc["task"] = spec.name;
    doc["data"] = o->data;
    doc["samples"] = n;
    doc["seed"] = o->seed;
    doc["max_seq_len"] = max_len;
    doc["batch_size"] = o->batch_size;
    doc["statistics"] = {{"max", copt.max},
                         {"ema", copt.ema},
                         {"histogram", copt.histogram},
                         {"ema_decay", copt.ema_decay},
                         {"bins", copt.bins}};
    if (ibert) doc["calibrator"] = "ema-minmax";
    doc["tensors"] = std::move(tensors);
    io::write_file_atomic(o->out, doc.dump() + "\n");
    std::printf("calibrated %zu examples of %s (%s) on %zu tensors -> %s\n", n, o->data.c_str(),
                std::string(spec.name).c_str(), recorded, o->out.c_str());
    return kExitOk;
  };
}

}  // namespace octet::cli
