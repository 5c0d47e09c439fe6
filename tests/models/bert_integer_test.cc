// The integer-only (I-BERT) model mode on a small random model (tests/common/tiny_bert): EMA
// min/max calibration (momentum 0.95) on random sequences, quantization, then on *other* random
// sequences of different lengths: agreement with the FP32 model (logits, pooled, last hidden),
// batch and thread-count independence (bit-identical), bit-identical reload from disk, and
// rejection of bad integer-only files and calibrations with clear messages. The compile-time proof
// that the encoder path carries integers only is the static_assert in models/bert_integer.h
// (repeated here so a change of signature fails this test's build).
#include "models/bert_integer.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <type_traits>
#include <vector>

#include "common/test_support.h"
#include "common/tiny_bert.h"
#include "io/bert_config.h"
#include "models/bert.h"
#include "octet/error.h"
#include "octet/model.h"
#include "quant/bert_quant.h"
#include "quant/integer_quant.h"

namespace octet {
namespace {

// No floating-point type anywhere in the integer encoder's signature.
template <typename T>
struct IntegerOnly : std::false_type {};
template <typename R, typename C, typename... A>
struct IntegerOnly<R (C::*)(A...) const>
    : std::bool_constant<(!std::is_floating_point_v<std::remove_cvref_t<A>> && ...)> {};
static_assert(IntegerOnly<decltype(&models::IntegerBertEncoder::encode)>::value);
static_assert(std::is_same_v<decltype(&layers::IntegerEncoderLayer::forward_ln),
                             void (layers::IntegerEncoderLayer::*)(std::span<const int8_t>, int,
                                                                   std::span<int64_t>) const>);

double cosine(const std::vector<float>& a, const std::vector<float>& b) {
  double ab = 0.0, aa = 0.0, bb = 0.0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    ab += double{a[i]} * b[i];
    aa += double{a[i]} * a[i];
    bb += double{b[i]} * b[i];
  }
  return ab / std::sqrt(aa * bb);
}

struct Sequences {
  std::vector<std::vector<int32_t>> ids, types;
  std::vector<BertSequence> batch;
};

// n random sequences of 2 .. 40 tokens, two segments.
Sequences random_sequences(int n, uint32_t seed, int vocab) {
  Sequences s;
  std::mt19937 rng(seed);
  for (int b = 0; b < n; ++b) {
    const int len = 2 + static_cast<int>(rng() % 39);
    std::vector<int32_t> ids(len), types(len);
    for (int i = 0; i < len; ++i) {
      ids[i] = static_cast<int32_t>(rng() % vocab);
      types[i] = i >= len / 2 ? 1 : 0;
    }
    s.ids.push_back(ids);
    s.types.push_back(types);
  }
  for (int b = 0; b < n; ++b) s.batch.push_back({s.ids[b], s.types[b]});
  return s;
}

constexpr BertOutputKind kAll =
    BertOutputKind::logits | BertOutputKind::last_hidden | BertOutputKind::pooled;

std::vector<float> flat(const std::vector<std::vector<float>>& v) {
  std::vector<float> out;
  for (const auto& x : v) out.insert(out.end(), x.begin(), x.end());
  return out;
}

void expect_identical(const BertOutputs& a, const BertOutputs& b) {
  ASSERT_EQ(a.logits.size(), b.logits.size());
  EXPECT_EQ(0, std::memcmp(a.logits.data(), b.logits.data(), a.logits.size() * sizeof(float)));
  EXPECT_EQ(a.pooled, b.pooled);
  EXPECT_EQ(a.last_hidden, b.last_hidden);
}

class BertInteger : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new test::TempDir();
    test::write_tiny_bert(dir_->path() / "fp32", {.hidden = 64,
                                                  .intermediate = 256,
                                                  .layers = 2,
                                                  .heads = 4,
                                                  .max_positions = 64,
                                                  .num_labels = 3});
    const BertModel fp32 = BertModel::load(dir_->path() / "fp32", {.threads = 1});
    vocab_ = static_cast<int>(fp32.config().vocab_size);
    quant::IntegerCalibrationCollector col(dir_->path() / "fp32");
    const ActivationTap tap = col.tap();
    for (uint32_t k = 0; k < 4; ++k) {  // 4 calibration batches of 8
      const Sequences s = random_sequences(8, 100 + k, vocab_);
      col.observe_embeddings(s.batch);
      fp32.forward(s.batch, BertOutputKind::logits, tap);
    }
    calib_ = new nlohmann::json;
    (*calib_)["format"] = quant::kCalibrationFormat;
    (*calib_)["version"] = quant::kCalibrationVersion;
    (*calib_)["model_weights"] =
        quant::file_fingerprint(dir_->path() / "fp32" / "model.safetensors");
    (*calib_)["tensors"] = col.to_json();
    q_ = new quant::QuantizedBert(quant::quantize_bert_integer(dir_->path() / "fp32", *calib_));
  }
  static void TearDownTestSuite() {
    delete q_;
    delete calib_;
    delete dir_;
  }

  // q_'s tensors with one tensor dropped or changed.
  static models::MemoryTensors edited(
      const std::string& name,
      const std::function<void(io::TensorInfo&, std::vector<std::byte>&)>& edit) {
    models::MemoryTensors out("edited");
    for (const io::TensorInfo& t : q_->tensors.tensors()) {
      const std::span<const std::byte> b = q_->tensors.bytes(t);
      io::TensorInfo info = t;
      std::vector<std::byte> bytes(b.begin(), b.end());
      if (t.name == name) {
        if (!edit) continue;
        edit(info, bytes);
      }
      out.add_bytes(info.name, info.dtype, info.shape, bytes);
    }
    return out;
  }

  static std::string load_error(const models::TensorSource& src,
                                const nlohmann::json& qc = models::integer_only_config(0.95)) {
    try {
      models::load_bert_integer(q_->config, qc, src, true);
    } catch (const ModelFormatError& e) {
      return e.what();
    }
    return "no error";
  }

  static test::TempDir* dir_;
  static nlohmann::json* calib_;
  static quant::QuantizedBert* q_;
  static int vocab_;
};
test::TempDir* BertInteger::dir_ = nullptr;
nlohmann::json* BertInteger::calib_ = nullptr;
quant::QuantizedBert* BertInteger::q_ = nullptr;
int BertInteger::vocab_ = 0;

TEST_F(BertInteger, AgreesWithFp32OnOtherInputs) {
  const BertModel fp32 = BertModel::load(dir_->path() / "fp32", {.threads = 1});
  const BertModel im = quant::load_integer_in_memory(*q_, 1);
  EXPECT_EQ(im.precision(), Precision::integer_only);
  const Sequences s = random_sequences(16, 7, vocab_);
  const BertOutputs f = fp32.forward(s.batch, kAll);
  const BertOutputs i = im.forward(s.batch, kAll);
  const double c_logits = cosine(f.logits, i.logits);
  const double c_pooled = cosine(f.pooled, i.pooled);
  const double c_hidden = cosine(flat(f.last_hidden), flat(i.last_hidden));
  int agree = 0;
  for (int b = 0; b < 16; ++b) {
    auto argmax = [&](const std::vector<float>& l) {
      return std::max_element(l.begin() + 3 * b, l.begin() + 3 * b + 3) - (l.begin() + 3 * b);
    };
    agree += argmax(f.logits) == argmax(i.logits);
  }
  std::printf(
      "integer-only vs FP32 (16 random sequences): cosine logits %.5f, pooled %.5f, "
      "last hidden %.5f; argmax agreement %d / 16\n",
      c_logits, c_pooled, c_hidden, agree);
  EXPECT_GE(c_logits, 0.98);
  EXPECT_GE(c_pooled, 0.98);
  EXPECT_GE(c_hidden, 0.98);
}

TEST_F(BertInteger, BatchAndThreadIndependent) {
  const BertModel one = quant::load_integer_in_memory(*q_, 1);
  const BertModel three = quant::load_integer_in_memory(*q_, 3);
  const Sequences s = random_sequences(9, 11, vocab_);
  const BertOutputs a = one.forward(s.batch, kAll);
  expect_identical(a, three.forward(s.batch, kAll));
  for (int b = 0; b < 9; ++b) {
    const BertOutputs single = one.forward(std::span(s.batch).subspan(b, 1), kAll);
    EXPECT_EQ(single.last_hidden[0], a.last_hidden[b]) << "sequence " << b;
    EXPECT_EQ(0, std::memcmp(single.logits.data(), a.logits.data() + 3 * b, 3 * sizeof(float)));
  }
  // One sequence at a time: there is nothing to pad, and asking for it is an error.
  EXPECT_THROW(one.forward(s.batch, kAll, Padding::longest), InvalidArgument);
}

TEST_F(BertInteger, ReloadIsBitIdentical) {
  const auto out = dir_->path() / "ibert";
  quant::write_quantized_dir(*q_, out);
  const BertModel disk = BertModel::load(out, {.threads = 2});
  EXPECT_EQ(disk.precision(), Precision::integer_only);
  const BertModel mem = quant::load_integer_in_memory(*q_, 1);
  const Sequences s = random_sequences(5, 21, vocab_);
  expect_identical(mem.forward(s.batch, kAll), disk.forward(s.batch, kAll));
  // A quantized directory loads as stored: asking for another precision is an error.
  EXPECT_THROW(BertModel::load(out, {.precision = Precision::int8_dynamic}), InvalidArgument);
}

TEST_F(BertInteger, RejectsBadFiles) {
  auto has = [](const std::string& msg, const std::string& part) {
    EXPECT_NE(msg.find(part), std::string::npos) << msg << "\n  lacks: " << part;
  };
  const std::string l1 = "bert.encoder.layer.1.";
  has(load_error(edited(l1 + "output.dense.output_scale", nullptr)),
      "missing tensor 'bert.encoder.layer.1.output.dense.output_scale'");
  has(load_error(edited(l1 + "intermediate.dense.weight",
                        [](io::TensorInfo& t, std::vector<std::byte>& b) {
                          t.dtype = io::DType::F32;
                          t.shape = {t.shape[0], t.shape[1] / 4};
                          (void)b;
                        })),
      "tensor 'bert.encoder.layer.1.intermediate.dense.weight' is F32");
  has(load_error(edited(l1 + "attention.self.key.output_scale",
                        [](io::TensorInfo&, std::vector<std::byte>& b) {
                          const float v = -0.5f;
                          std::memcpy(b.data(), &v, 4);
                        })),
      "expected a scale > 0");
  has(load_error(
          edited("bert.embeddings.word_embeddings.weight",
                 [](io::TensorInfo&, std::vector<std::byte>& b) { b[17] = std::byte{0x80}; })),
      "holds -128 at flat index 17");
  has(load_error(edited(l1 + "output.LayerNorm.shift",
                        [](io::TensorInfo&, std::vector<std::byte>& b) {
                          const int32_t v = 31;
                          std::memcpy(b.data(), &v, 4);
                        })),
      "is 31: expected a shift in [0, 24]");
  has(load_error(edited("bert.embeddings.sum_scale",
                        [](io::TensorInfo&, std::vector<std::byte>& b) {
                          const float v = NAN;
                          std::memcpy(b.data(), &v, 4);
                        })),
      "non-finite");
  nlohmann::json qc = models::integer_only_config(0.95);
  qc["bits"]["residual_sum"] = 32;
  has(load_error(q_->tensors, qc), "key \"bits\" is");
  qc = models::integer_only_config(0.95);
  qc["scheme"] = "asymmetric";
  has(load_error(q_->tensors, qc), "unknown key \"scheme\"");

  // The same through config.json on disk: ModelFormatError naming the file.
  const auto out = dir_->path() / "bad";
  quant::write_quantized_dir(*q_, out);
  nlohmann::json cfg = q_->config_json;
  cfg["quantization_config"]["head"] = "int8";
  test::write_file(out / "config.json", cfg.dump());
  try {
    BertModel::load(out);
    ADD_FAILURE() << "loaded a config with head int8";
  } catch (const ModelFormatError& e) {
    has(e.what(), "config.json: quantization_config: key \"head\" is \"int8\"");
  }
}

TEST_F(BertInteger, RejectsCalibrationWithoutItsStatistics) {
  nlohmann::json c = *calib_;
  c["tensors"].erase("bert.encoder.layer.0.attention.self.key:output");
  try {
    quant::quantize_bert_integer(dir_->path() / "fp32", c);
    ADD_FAILURE() << "quantized without K statistics";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("'bert.encoder.layer.0.attention.self.key:output'"),
              std::string::npos)
        << e.what();
    EXPECT_NE(std::string(e.what()).find("--calibrator ema-minmax"), std::string::npos);
  }
  c = *calib_;
  c["model_weights"]["bytes"] = 1;
  EXPECT_THROW(quant::quantize_bert_integer(dir_->path() / "fp32", c), InvalidArgument);
  // A quantized source is refused.
  const auto out = dir_->path() / "twice";
  quant::write_quantized_dir(*q_, out);
  EXPECT_THROW(quant::quantize_bert_integer(out, *calib_), InvalidArgument);
}

}  // namespace
}  // namespace octet
