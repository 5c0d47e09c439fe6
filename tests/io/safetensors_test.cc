#include "io/safetensors.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "common/test_support.h"
#include "io/dtype.h"
#include "octet/error.h"

namespace octet::io {
namespace {

using octet::test::TempDir;
using ::testing::AllOf;
using ::testing::HasSubstr;

// Assembles a safetensors file byte by byte, independently of write_safetensors: the 8-byte
// little-endian length (or `length_override`), the header text verbatim, then `data`.
std::string assemble(const std::string& header, const std::string& data,
                     std::optional<uint64_t> length_override = std::nullopt) {
  uint64_t n = length_override.value_or(header.size());
  std::string out;
  for (int i = 0; i < 8; ++i, n >>= 8) out.push_back(static_cast<char>(n & 0xff));
  return out + header + data;
}

template <typename T>
std::string raw_bytes(const std::vector<T>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T));
}

class SafetensorsTest : public ::testing::Test {
 protected:
  std::filesystem::path write(const std::string& contents) {
    const auto p = dir_ / "model.safetensors";
    std::filesystem::remove(p);  // a fresh file: truncating in place is slow on some file systems
    octet::test::write_file(p, contents);
    return p;
  }

  // The ModelFormatError message that reading `contents` must produce.
  std::string error_of(const std::string& contents) {
    const auto p = write(contents);
    try {
      SafetensorsReader r(p);
    } catch (const ModelFormatError& e) {
      return e.what();
    }
    ADD_FAILURE() << "expected a ModelFormatError";
    return "";
  }

  TempDir dir_;
};

// A valid two-tensor file: "a" F32 [2] at [0, 8), "b" I8 [3] at [8, 11).
const std::string kTwoTensorHeader = R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                                     R"("b":{"dtype":"I8","shape":[3],"data_offsets":[8,11]}})";

TEST_F(SafetensorsTest, ReadsHandAssembledFile) {
  const std::vector<float> a = {1.5f, -2.0f};
  const std::vector<int8_t> b = {-128, 0, 127};
  const auto p = write(assemble(kTwoTensorHeader, raw_bytes(a) + raw_bytes(b)));
  SafetensorsReader r(p);
  ASSERT_EQ(r.tensors().size(), 2u);
  EXPECT_EQ(r.tensors()[0].name, "a");
  EXPECT_EQ(r.tensors()[1].name, "b");
  EXPECT_EQ(r.get("a").shape, std::vector<int64_t>{2});
  EXPECT_EQ(r.get("b").dtype, DType::I8);
  EXPECT_EQ(r.get("b").offset, 8u);
  EXPECT_EQ(r.get("b").nbytes, 3u);
  EXPECT_EQ(r.read_f32(r.get("a")), a);
  EXPECT_EQ(r.read_exact<int8_t>(r.get("b")), b);
  EXPECT_EQ(r.data_start(), 8 + kTwoTensorHeader.size());
  EXPECT_EQ(r.file_size(), 8 + kTwoTensorHeader.size() + 11);
  EXPECT_TRUE(r.metadata().empty());
  EXPECT_EQ(r.find("c"), nullptr);
}

TEST_F(SafetensorsTest, ReadsFixtureWrittenByIndependentPythonWriter) {
  // tests/fixtures/io/make_fixture.py writes this with struct + json and torch's own f16/bf16
  // rounding; expected values are the ones the script documents.
  const auto p = std::filesystem::path(OCTET_SOURCE_DIR) / "tests/fixtures/io/small.safetensors";
  SafetensorsReader r(p);
  EXPECT_EQ(r.metadata().at("format"), "pt");
  EXPECT_EQ(r.metadata().at("made_by"), "tests/fixtures/io/make_fixture.py");
  const std::vector<float> want = {0.0f, -1.0f, 0.5f, 3.140625f, 65504.0f, -0.0f};
  EXPECT_EQ(r.read_f32(r.get("f32")),
            (std::vector<float>{0.0f, -1.0f, 0.5f, 3.14159274f, 65504.0f, -0.0f}));
  EXPECT_EQ(r.read_f32(r.get("f16")), want);
  EXPECT_EQ(r.get("f16").shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(r.read_f32(r.get("bf16")),
            (std::vector<float>{0.0f, -1.0f, 0.5f, 3.140625f, 65536.0f, -0.0f}));
  EXPECT_EQ(r.read_f32(r.get("f64")),
            (std::vector<float>{0.0f, -1.0f, 0.5f, 3.14159274f, 65504.0f, -0.0f}));
  EXPECT_EQ(r.read_exact<int8_t>(r.get("i8")), (std::vector<int8_t>{-128, -1, 0, 1, 127}));
  EXPECT_EQ(r.read_exact<uint8_t>(r.get("u8")), (std::vector<uint8_t>{0, 1, 128, 255}));
  EXPECT_EQ(r.read_exact<int32_t>(r.get("i32")),
            (std::vector<int32_t>{-2147483647 - 1, -1, 0, 2147483647}));
  EXPECT_EQ(r.read_exact<int64_t>(r.get("i64")), (std::vector<int64_t>{-5, 1LL << 40}));
  EXPECT_EQ(r.get("scalar").shape, std::vector<int64_t>{});
  EXPECT_EQ(r.read_f32(r.get("scalar")), std::vector<float>{7.0f});
  EXPECT_EQ(r.get("empty").numel(), 0);
  EXPECT_EQ(r.get("empty").shape, (std::vector<int64_t>{0, 4}));
}

TEST_F(SafetensorsTest, RoundTripsEveryDTypeWithMetadata) {
  const DType all[] = {DType::F64, DType::F32, DType::F16, DType::BF16, DType::I64,
                       DType::I32, DType::I16, DType::I8,  DType::U8,   DType::BOOL};
  std::vector<std::vector<std::byte>> storage;
  std::vector<TensorView> views;
  int k = 0;
  for (DType t : all) {
    const std::vector<int64_t> shape = {2, 3 + k % 3};
    const std::size_t nbytes = static_cast<std::size_t>(shape[0] * shape[1]) * dtype_size(t);
    std::vector<std::byte> data(nbytes);
    for (std::size_t i = 0; i < nbytes; ++i) data[i] = static_cast<std::byte>((i * 37 + k) & 0xff);
    if (t == DType::BOOL) {
      for (auto& b : data) b = static_cast<std::byte>(static_cast<int>(b) & 1);
    }
    storage.push_back(std::move(data));
    views.push_back({"t." + std::string(dtype_name(t)), t, shape, storage.back()});
    ++k;
  }
  views.push_back({"zero_sized", DType::F32, {0, 5}, {}});
  const std::map<std::string, std::string> meta = {{"format", "pt"}, {"octet", "é ✓ \"quoted\""}};
  const auto p = dir_ / "out.safetensors";
  write_safetensors(p, views, meta);

  SafetensorsReader r(p);
  EXPECT_EQ(r.metadata(), meta);
  ASSERT_EQ(r.tensors().size(), views.size());
  EXPECT_EQ(r.data_start() % 8, 0u) << "header padded to a multiple of 8";
  for (const TensorView& v : views) {
    const TensorInfo& t = r.get(v.name);
    EXPECT_EQ(t.dtype, v.dtype) << v.name;
    EXPECT_EQ(t.shape, v.shape) << v.name;
    const auto b = r.bytes(t);
    ASSERT_EQ(b.size(), v.data.size()) << v.name;
    EXPECT_TRUE(std::equal(b.begin(), b.end(), v.data.begin())) << v.name;
    // Laid out by decreasing element size: each tensor is aligned to its element size.
    EXPECT_EQ((r.data_start() + t.offset) % dtype_size(t.dtype), 0u) << v.name;
  }
  EXPECT_FALSE(std::filesystem::exists(p.string() + ".tmp")) << "no temporary file left";
  for (const auto& e : std::filesystem::directory_iterator(dir_.path())) {
    EXPECT_EQ(e.path().filename(), "out.safetensors");
  }
}

TEST_F(SafetensorsTest, ConvertsHalfPrecisionAndDoubleToFloat) {
  const std::vector<float> values = {0.0f, 1.0f, -2.5f, 1e-3f, 300.0f, -0.0f, 6e-8f};
  std::vector<uint16_t> h(values.size()), b(values.size());
  f32_to_f16(values, h);
  f32_to_bf16(values, b);
  std::vector<double> d(values.begin(), values.end());
  const std::vector<int64_t> shape = {static_cast<int64_t>(values.size())};
  const TensorView views[] = {
      {"h", DType::F16, shape, std::as_bytes(std::span(h))},
      {"b", DType::BF16, shape, std::as_bytes(std::span(b))},
      tensor_view<double>("d", shape, d),
  };
  const auto p = dir_ / "conv.safetensors";
  write_safetensors(p, views);
  SafetensorsReader r(p);
  const auto rh = r.read_f32(r.get("h"));
  const auto rb = r.read_f32(r.get("b"));
  for (std::size_t i = 0; i < values.size(); ++i) {
    EXPECT_EQ(rh[i], f16_to_f32(h[i])) << i;
    EXPECT_EQ(rb[i], bf16_to_f32(b[i])) << i;
  }
  EXPECT_EQ(r.read_f32(r.get("d")), values);
}

TEST_F(SafetensorsTest, ConvertsLargeF16TensorAcrossStagingChunks) {
  std::vector<uint16_t> h(20000);
  for (std::size_t i = 0; i < h.size(); ++i) h[i] = static_cast<uint16_t>(i * 3);
  const TensorView v[] = {{"h", DType::F16, {100, 200}, std::as_bytes(std::span(h))}};
  const auto p = dir_ / "big.safetensors";
  write_safetensors(p, v);
  SafetensorsReader r(p);
  const auto got = r.read_f32(r.get("h"));
  for (std::size_t i = 0; i < h.size(); ++i) {
    const float want = f16_to_f32(h[i]);
    if (std::isnan(want)) {
      ASSERT_TRUE(std::isnan(got[i])) << i;
    } else {
      ASSERT_EQ(got[i], want) << i;
    }
  }
}

TEST_F(SafetensorsTest, ReadF32RejectsIntegerDTypeAndWrongSize) {
  SafetensorsReader r(write(assemble(kTwoTensorHeader, std::string(11, '\0'))));
  try {
    r.read_f32(r.get("b"));
    FAIL();
  } catch (const ModelFormatError& e) {
    EXPECT_THAT(e.what(), AllOf(HasSubstr("model.safetensors"), HasSubstr("\"b\""),
                                HasSubstr("dtype I8"), HasSubstr("expected a floating-point")));
  }
  std::vector<float> out(3);
  try {
    r.read_f32_into(r.get("a"), out);
    FAIL();
  } catch (const ModelFormatError& e) {
    EXPECT_THAT(e.what(), AllOf(HasSubstr("\"a\""), HasSubstr("has 2 elements"),
                                HasSubstr("destination holds 3")));
  }
}

TEST_F(SafetensorsTest, ReadExactRejectsOtherDType) {
  SafetensorsReader r(write(assemble(kTwoTensorHeader, std::string(11, '\0'))));
  try {
    r.read_exact<uint8_t>(r.get("b"));
    FAIL();
  } catch (const ModelFormatError& e) {
    EXPECT_THAT(e.what(), AllOf(HasSubstr("model.safetensors"), HasSubstr("\"b\""),
                                HasSubstr("dtype I8, expected U8")));
  }
}

TEST_F(SafetensorsTest, GetNamesFileAndMissingTensor) {
  SafetensorsReader r(write(assemble(kTwoTensorHeader, std::string(11, '\0'))));
  try {
    r.get("bert.pooler.dense.weight");
    FAIL();
  } catch (const ModelFormatError& e) {
    EXPECT_THAT(e.what(),
                AllOf(HasSubstr("model.safetensors"), HasSubstr("bert.pooler.dense.weight")));
  }
}

TEST_F(SafetensorsTest, AcceptsEmptyHeaderWithNoTensors) {
  SafetensorsReader r(write(assemble("{}      ", "")));
  EXPECT_TRUE(r.tensors().empty());
}

TEST_F(SafetensorsTest, AcceptsZeroSizedTensorsSharingAnOffset) {
  SafetensorsReader r(write(assemble(R"({"e1":{"dtype":"F32","shape":[0],"data_offsets":[4,4]},)"
                                     R"("e2":{"dtype":"I8","shape":[3,0],"data_offsets":[4,4]},)"
                                     R"("x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                                     R"("y":{"dtype":"U8","shape":[1],"data_offsets":[4,5]}})",
                                     std::string(5, '\0'))));
  EXPECT_EQ(r.tensors().size(), 4u);
  EXPECT_TRUE(r.read_f32(r.get("e1")).empty());
}

// ---- Corrupt files: one test per rule, each checking the message names what and where. ----

TEST_F(SafetensorsTest, RejectsFileShorterThanHeaderLength) {
  EXPECT_THAT(error_of(std::string("\x10\0\0", 3)),
              AllOf(HasSubstr("model.safetensors"), HasSubstr("3 bytes"),
                    HasSubstr("expected at least 8")));
}

TEST_F(SafetensorsTest, RejectsEmptyFile) {
  EXPECT_THAT(error_of(""), AllOf(HasSubstr("model.safetensors"), HasSubstr("0 bytes")));
}

TEST_F(SafetensorsTest, RejectsHeaderLengthPastEndOfFile) {
  // The header claims 1000 bytes; the file holds 8 + header.size().
  EXPECT_THAT(error_of(assemble(kTwoTensorHeader, "", 1000)),
              AllOf(HasSubstr("model.safetensors"), HasSubstr("header length 1000"),
                    HasSubstr("past the end of the file"), HasSubstr("expected at most")));
}

TEST_F(SafetensorsTest, RejectsAbsurdHeaderLength) {
  EXPECT_THAT(error_of(assemble("{}", "", 0xffffffffffffff00ull)),
              AllOf(HasSubstr("model.safetensors"), HasSubstr("exceeds the limit")));
  EXPECT_THAT(error_of(assemble("{}", "", 100'000'001)), HasSubstr("exceeds the limit"));
}

TEST_F(SafetensorsTest, RejectsTruncatedTensorData) {
  // The data section should hold 11 bytes; the file was cut after 7.
  EXPECT_THAT(error_of(assemble(kTwoTensorHeader, std::string(7, '\0'))),
              AllOf(HasSubstr("model.safetensors"), HasSubstr("tensor \"a\""), HasSubstr("[0, 8]"),
                    HasSubstr("data section of 7 bytes"), HasSubstr("truncated")));
}

TEST_F(SafetensorsTest, RejectsHeaderThatIsNotJson) {
  EXPECT_THAT(
      error_of(assemble(R"({"a": {"dtype": "F32",)", "")),
      AllOf(HasSubstr("model.safetensors"), HasSubstr("not valid JSON"), HasSubstr("file byte")));
}

TEST_F(SafetensorsTest, RejectsNumberLiteralThatOverflows) {
  EXPECT_THAT(
      error_of(assemble(R"({"a":{"dtype":"F32","shape":[1e999],"data_offsets":[0,0]}})", "")),
      AllOf(HasSubstr("model.safetensors"), HasSubstr("not valid JSON"),
            HasSubstr("number overflow")));
}

TEST_F(SafetensorsTest, RejectsHeaderWithTrailingGarbage) {
  EXPECT_THAT(error_of(assemble("{} x", "")), HasSubstr("not valid JSON"));
}

TEST_F(SafetensorsTest, RejectsHeaderThatIsNotAnObject) {
  EXPECT_THAT(error_of(assemble("[1, 2]", "")),
              AllOf(HasSubstr("model.safetensors"), HasSubstr("starts with byte 0x5b"),
                    HasSubstr("expected '{'")));
}

TEST_F(SafetensorsTest, RejectsHeaderThatIsNotUtf8) {
  EXPECT_THAT(error_of(assemble("{\"a\xff\": 1}", "")),
              AllOf(HasSubstr("model.safetensors"), HasSubstr("not valid UTF-8"),
                    HasSubstr("file byte 11")));
}

TEST_F(SafetensorsTest, RejectsDuplicateTensorNames) {
  EXPECT_THAT(error_of(assemble(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                                R"("a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                                std::string(8, '\0'))),
              AllOf(HasSubstr("model.safetensors"), HasSubstr("\"a\" appears more than once")));
}

TEST_F(SafetensorsTest, RejectsDuplicateFieldInEntry) {
  EXPECT_THAT(
      error_of(assemble(R"({"a":{"dtype":"F32","dtype":"I8","shape":[4],"data_offsets":[0,4]}})",
                        std::string(4, '\0'))),
      HasSubstr("\"dtype\" appears more than once"));
}

TEST_F(SafetensorsTest, RejectsDeeplyNestedHeader) {
  // A million nested arrays would overflow the stack of any recursive walk over the JSON value.
  const std::string deep = std::string(1000000, '[') + std::string(1000000, ']');
  EXPECT_THAT(error_of(assemble(R"({"a":)" + deep + "}", "")),
              AllOf(HasSubstr("model.safetensors"), HasSubstr("nested more than 16 levels")));
  EXPECT_THAT(error_of(assemble(
                  R"({"a":{"dtype":"F32","shape":[)" + deep + R"(],"data_offsets":[0,0]}})", "")),
              HasSubstr("nested more than 16 levels"));
}

TEST_F(SafetensorsTest, RejectsEntryThatIsNotAnObject) {
  EXPECT_THAT(error_of(assemble(R"({"a":[1,2]})", "")),
              AllOf(HasSubstr("tensor \"a\""), HasSubstr("entry is array"),
                    HasSubstr("expected an object")));
}

TEST_F(SafetensorsTest, RejectsMissingDType) {
  EXPECT_THAT(error_of(assemble(R"({"a":{"shape":[1],"data_offsets":[0,4]}})", "abcd")),
              AllOf(HasSubstr("tensor \"a\""), HasSubstr("missing \"dtype\"")));
}

TEST_F(SafetensorsTest, RejectsUnknownDType) {
  EXPECT_THAT(
      error_of(assemble(R"({"w":{"dtype":"F8_E4M3","shape":[4],"data_offsets":[0,4]}})", "abcd")),
      AllOf(HasSubstr("model.safetensors"), HasSubstr("tensor \"w\""),
            HasSubstr("unsupported dtype \"F8_E4M3\""), HasSubstr("expected one of BF16"),
            HasSubstr("U8")));
}

TEST_F(SafetensorsTest, RejectsNegativeDimension) {
  EXPECT_THAT(
      error_of(assemble(R"({"a":{"dtype":"F32","shape":[2,-1],"data_offsets":[0,0]}})", "")),
      AllOf(HasSubstr("tensor \"a\""), HasSubstr("shape[1] is -1"),
            HasSubstr("expected a non-negative integer")));
}

TEST_F(SafetensorsTest, RejectsNonIntegerDimension) {
  EXPECT_THAT(error_of(assemble(R"({"a":{"dtype":"F32","shape":[2.5],"data_offsets":[0,0]}})", "")),
              AllOf(HasSubstr("shape[0] is number 2.5"), HasSubstr("expected")));
  EXPECT_THAT(error_of(assemble(R"({"a":{"dtype":"F32","shape":"2","data_offsets":[0,0]}})", "")),
              HasSubstr("\"shape\" is string"));
}

TEST_F(SafetensorsTest, RejectsHugeNumelOverflow) {
  // 2^32 * 2^32 elements overflows 64 bits; the byte size must never be computed from it.
  EXPECT_THAT(error_of(assemble(R"({"a":{"dtype":"F32","shape":[4294967296,4294967296],)"
                                R"("data_offsets":[0,4]}})",
                                "abcd")),
              AllOf(HasSubstr("tensor \"a\""), HasSubstr("overflows 64 bits")));
  // numel fits in 64 bits but numel * 8 bytes does not.
  EXPECT_THAT(error_of(assemble(R"({"a":{"dtype":"F64","shape":[4611686018427387904],)"
                                R"("data_offsets":[0,4]}})",
                                "abcd")),
              HasSubstr("overflows 64 bits"));
}

TEST_F(SafetensorsTest, RejectsShapeByteSizeMismatch) {
  EXPECT_THAT(error_of(assemble(R"({"w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,20]}})",
                                std::string(20, '\0'))),
              AllOf(HasSubstr("model.safetensors"), HasSubstr("tensor \"w\""),
                    HasSubstr("hold 20 bytes, expected 24"), HasSubstr("F32 [2, 3]")));
}

TEST_F(SafetensorsTest, RejectsOffsetsPastEndOfData) {
  EXPECT_THAT(error_of(assemble(R"({"w":{"dtype":"U8","shape":[4],"data_offsets":[100,104]}})",
                                std::string(4, '\0'))),
              AllOf(HasSubstr("tensor \"w\""), HasSubstr("[100, 104]"),
                    HasSubstr("past the data section of 4 bytes")));
}

TEST_F(SafetensorsTest, RejectsBeginAfterEnd) {
  EXPECT_THAT(error_of(assemble(R"({"w":{"dtype":"U8","shape":[0],"data_offsets":[4,0]}})",
                                std::string(4, '\0'))),
              AllOf(HasSubstr("tensor \"w\""), HasSubstr("begin > end")));
}

TEST_F(SafetensorsTest, RejectsMalformedDataOffsets) {
  EXPECT_THAT(error_of(assemble(R"({"w":{"dtype":"U8","shape":[4],"data_offsets":[0,2,4]}})",
                                std::string(4, '\0'))),
              AllOf(HasSubstr("\"data_offsets\" is array"), HasSubstr("expected [begin, end]")));
  EXPECT_THAT(error_of(assemble(R"({"w":{"dtype":"U8","shape":[4],"data_offsets":[-4,0]}})",
                                std::string(4, '\0'))),
              HasSubstr("non-negative"));
  EXPECT_THAT(error_of(assemble(R"({"w":{"dtype":"U8","shape":[4]}})", std::string(4, '\0'))),
              HasSubstr("missing \"data_offsets\""));
}

TEST_F(SafetensorsTest, RejectsOverlappingTensors) {
  EXPECT_THAT(error_of(assemble(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                                R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                                std::string(12, '\0'))),
              AllOf(HasSubstr("model.safetensors"), HasSubstr("\"b\" at data bytes [4, 12)"),
                    HasSubstr("overlaps tensor \"a\" at [0, 8)")));
}

TEST_F(SafetensorsTest, RejectsHoleBetweenTensors) {
  EXPECT_THAT(error_of(assemble(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                                R"("b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})",
                                std::string(12, '\0'))),
              AllOf(HasSubstr("data bytes [4, 8)"), HasSubstr("before tensor \"b\""),
                    HasSubstr("belong to no tensor")));
}

TEST_F(SafetensorsTest, RejectsTrailingBytesAfterLastTensor) {
  EXPECT_THAT(error_of(assemble(kTwoTensorHeader, std::string(15, '\0'))),
              AllOf(HasSubstr("data section has 15 bytes"), HasSubstr("cover only 11")));
}

TEST_F(SafetensorsTest, RejectsMetadataThatIsNotStringMap) {
  EXPECT_THAT(error_of(assemble(R"({"__metadata__":{"epochs":3}})", "")),
              AllOf(HasSubstr("\"__metadata__\" entry \"epochs\" is number"),
                    HasSubstr("expected a string")));
  EXPECT_THAT(error_of(assemble(R"({"__metadata__":["pt"]})", "")),
              HasSubstr("\"__metadata__\" is array"));
}

TEST_F(SafetensorsTest, RejectsDirectoryAndMissingFileWithIoError) {
  try {
    SafetensorsReader r(dir_ / "absent.safetensors");
    FAIL();
  } catch (const IoError& e) {
    EXPECT_THAT(e.what(), AllOf(HasSubstr("absent.safetensors"), HasSubstr("No such file")));
  }
  try {
    SafetensorsReader r(dir_.path());
    FAIL();
  } catch (const IoError& e) {
    EXPECT_THAT(e.what(), HasSubstr("Is a directory"));
  }
}

// Every truncation and thousands of random byte corruptions of a valid file: the reader either
// accepts the file (then every tensor reads within bounds) or throws ModelFormatError; nothing
// else escapes and nothing reads out of bounds (run under the sanitizer build to check the latter).
TEST_F(SafetensorsTest, NeverCrashesOnTruncatedOrCorruptedFiles) {
  const std::string good = octet::test::read_file(std::filesystem::path(OCTET_SOURCE_DIR) /
                                                  "tests/fixtures/io/small.safetensors");
  auto try_read = [&](const std::string& contents, const std::string& what) -> bool {
    const auto p = write(contents);
    try {
      SafetensorsReader r(p);
      for (const TensorInfo& t : r.tensors()) {
        const auto b = r.bytes(t);
        EXPECT_EQ(b.size(), t.nbytes) << what;
        if (t.dtype == DType::F32 || t.dtype == DType::F16 || t.dtype == DType::BF16 ||
            t.dtype == DType::F64) {
          EXPECT_EQ(r.read_f32(t).size(), static_cast<std::size_t>(t.numel())) << what;
        }
      }
      return true;
    } catch (const ModelFormatError& e) {
      EXPECT_THAT(e.what(), HasSubstr("model.safetensors")) << what;
      return false;
    }
  };
  for (std::size_t n = 0; n < good.size(); ++n) {
    EXPECT_FALSE(try_read(good.substr(0, n), "truncated to " + std::to_string(n)))
        << "a truncated file was accepted: " << n << " bytes";
  }
  std::mt19937 rng(42);
  const std::size_t header_end = 8 + 665;  // corrupt mostly the length and the header
  int accepted = 0;
  for (int i = 0; i < 3000; ++i) {
    std::string bad = good;
    const int flips = 1 + static_cast<int>(rng() % 3);
    for (int f = 0; f < flips; ++f) {
      const std::size_t at = rng() % header_end;
      bad[at] = static_cast<char>(rng() % 4 == 0 ? "0123456789,[]{}\":-e"[rng() % 19] : rng());
    }
    accepted += try_read(bad, "corruption #" + std::to_string(i)) ? 1 : 0;
  }
  EXPECT_LT(accepted, 3000 / 2) << "most corruptions of the header must be refused";
}

// ---- Writer argument checks. ----

TEST_F(SafetensorsTest, WriterRejectsDataSizeMismatch) {
  const std::vector<float> v(5);
  const TensorView views[] = {tensor_view<float>("w", {2, 3}, v)};
  try {
    write_safetensors(dir_ / "w.safetensors", views);
    FAIL();
  } catch (const InvalidArgument& e) {
    EXPECT_THAT(e.what(), AllOf(HasSubstr("w.safetensors"), HasSubstr("\"w\""),
                                HasSubstr("20 bytes of data, expected 6 x 4")));
  }
  EXPECT_FALSE(std::filesystem::exists(dir_ / "w.safetensors"));
}

TEST_F(SafetensorsTest, WriterRejectsDuplicateAndReservedNames) {
  const std::vector<float> v(1);
  const TensorView dup[] = {tensor_view<float>("w", {1}, v), tensor_view<float>("w", {1}, v)};
  EXPECT_THROW(write_safetensors(dir_ / "d.safetensors", dup), InvalidArgument);
  const TensorView reserved[] = {tensor_view<float>("__metadata__", {1}, v)};
  EXPECT_THROW(write_safetensors(dir_ / "r.safetensors", reserved), InvalidArgument);
  const TensorView neg[] = {tensor_view<float>("n", {-1}, v)};
  EXPECT_THROW(write_safetensors(dir_ / "n.safetensors", neg), InvalidArgument);
  EXPECT_TRUE(std::filesystem::is_empty(dir_.path()));
}

}  // namespace
}  // namespace octet::io
