// Helpers shared by Octet's tests: locating shared data, golden fixtures and temporary files.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "data/glue.h"
#include "octet/encoder.h"

namespace octet::test {

// The shared data root: $OCTET_DATA, else <repo>/../shared/data.
std::filesystem::path data_dir();

// data_dir() / relative, or a fatal test failure (never a silent skip) naming what is missing and
// how to point OCTET_DATA at it. Throws std::runtime_error so that it stops the calling test.
std::filesystem::path require_data(const std::string& relative);

// Where scripts/make_golden.sh wrote the PyTorch reference fixtures: $OCTET_GOLDEN_DIR, else
// <build>/golden. Fails the test with a message if the directory is missing.
std::filesystem::path golden_dir();

// A fresh, empty temporary directory removed when the object goes out of scope.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

// Writes `contents` to `path` (binary), creating parent directories.
void write_file(const std::filesystem::path& path, const std::string& contents);
std::string read_file(const std::filesystem::path& path);

// Encoder inputs viewing `texts` (which must outlive them): every third one (index 2, 5, ...) a
// pair with the next text as its second segment, the others single texts.
std::vector<TextInput> text_inputs(const std::vector<std::string>& texts);

// A labelled dataset of `task` read from nowhere ("gold.tsv"): one example per label (class id,
// or stsb score), text "text", lines 2, 3, ...
data::Dataset labelled_dataset(data::Task task, const std::vector<float>& labels);

}  // namespace octet::test
