#include "io/model_dir.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/test_support.h"
#include "octet/error.h"

namespace octet::io {
namespace {

using octet::test::TempDir;
using octet::test::write_file;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;

TEST(ModelDirTest, LocatesRequiredAndOptionalFiles) {
  TempDir dir;
  write_file(dir / "config.json", "{}");
  write_file(dir / "model.safetensors", "");
  ModelFiles m = locate_model(dir.path());
  EXPECT_EQ(m.dir, dir.path());
  EXPECT_EQ(m.config, dir / "config.json");
  EXPECT_EQ(m.weights, dir / "model.safetensors");
  EXPECT_EQ(m.vocab, dir / "vocab.txt");  // reported by the tokenizer if missing
  EXPECT_TRUE(m.tokenizer_config.empty());
  write_file(dir / "tokenizer_config.json", "{}");
  EXPECT_EQ(locate_model(dir.path()).tokenizer_config, dir / "tokenizer_config.json");
}

TEST(ModelDirTest, NamesEveryMissingRequiredFile) {
  TempDir dir;
  try {
    locate_model(dir.path());
    FAIL();
  } catch (const ModelFormatError& e) {
    EXPECT_THAT(e.what(), AllOf(HasSubstr(dir.path().string()),
                                HasSubstr("missing config.json and model.safetensors")));
  }
  write_file(dir / "config.json", "{}");
  try {
    locate_model(dir.path());
    FAIL();
  } catch (const ModelFormatError& e) {
    EXPECT_THAT(e.what(), AllOf(HasSubstr("missing model.safetensors"),
                                Not(HasSubstr("config.json")), Not(HasSubstr("convert"))));
  }
}

TEST(ModelDirTest, HintsAtConversionWhenOnlyPytorchWeightsExist) {
  TempDir dir;
  write_file(dir / "config.json", "{}");
  write_file(dir / "pytorch_model.bin", "");
  try {
    locate_model(dir.path());
    FAIL();
  } catch (const ModelFormatError& e) {
    EXPECT_THAT(e.what(), AllOf(HasSubstr("missing model.safetensors"),
                                HasSubstr("safe_serialization=True")));
  }
}

TEST(ModelDirTest, MissingOrNonDirectoryIsIoError) {
  TempDir dir;
  try {
    locate_model(dir / "nope");
    FAIL();
  } catch (const IoError& e) {
    EXPECT_THAT(e.what(), AllOf(HasSubstr("nope"), HasSubstr("does not exist")));
  }
  write_file(dir / "file", "x");
  try {
    locate_model(dir / "file");
    FAIL();
  } catch (const IoError& e) {
    EXPECT_THAT(e.what(), HasSubstr("is not a directory"));
  }
}

}  // namespace
}  // namespace octet::io
