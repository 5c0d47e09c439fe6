#include "common/test_support.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>

namespace octet::test {

std::filesystem::path data_dir() {
  if (const char* env = std::getenv("OCTET_DATA"); env != nullptr && *env != '\0') return env;
  return std::filesystem::path(OCTET_SOURCE_DIR) / ".." / "shared" / "data";
}

std::filesystem::path require_data(const std::string& relative) {
  auto p = data_dir() / relative;
  if (!std::filesystem::exists(p)) {
    std::string msg =
        "missing shared data: " + p.string() +
        " (set OCTET_DATA to the shared data directory; see ../shared/data/README.md)";
    ADD_FAILURE() << msg;
    throw std::runtime_error(msg);
  }
  return p;
}

std::filesystem::path golden_dir() {
  std::filesystem::path p;
  if (const char* env = std::getenv("OCTET_GOLDEN_DIR"); env != nullptr && *env != '\0') {
    p = env;
  } else {
    p = std::filesystem::path(OCTET_BINARY_DIR) / "golden";
  }
  if (!std::filesystem::exists(p / "DONE")) {
    std::string msg = "missing golden fixtures in " + p.string() + ": run scripts/make_golden.sh " +
                      p.string() +
                      " (needs Debian's python3-torch), or run ctest, which does it first";
    ADD_FAILURE() << msg;
    throw std::runtime_error(msg);
  }
  return p;
}

TempDir::TempDir() {
  std::random_device rd;
  auto base = std::filesystem::temp_directory_path();
  for (int attempt = 0; attempt < 100; ++attempt) {
    auto p = base / ("octet-test-" + std::to_string(rd()));
    if (std::filesystem::create_directory(p)) {
      path_ = p;
      return;
    }
  }
  throw std::runtime_error("could not create a temporary directory");
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

void write_file(const std::filesystem::path& path, const std::string& contents) {
  if (path.has_parent_path()) std::filesystem::create_directories(path.parent_path());
  std::ofstream out(path, std::ios::binary);
  out.write(contents.data(), static_cast<std::streamsize>(contents.size()));
  if (!out) throw std::runtime_error("could not write " + path.string());
}

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("could not read " + path.string());
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<TextInput> text_inputs(const std::vector<std::string>& texts) {
  std::vector<TextInput> in;
  for (std::size_t i = 0; i < texts.size(); ++i) {
    if (i % 3 == 2) {
      in.push_back({texts[i], texts[(i + 1) % texts.size()]});
    } else {
      in.push_back({texts[i]});
    }
  }
  return in;
}

data::Dataset labelled_dataset(data::Task task, const std::vector<float>& labels) {
  data::Dataset ds{task, "gold.tsv", {}, 0};
  for (std::size_t i = 0; i < labels.size(); ++i) {
    data::Example ex;
    ex.text_a = "text";
    ex.label = labels[i];
    ex.has_label = true;
    ex.line = i + 2;
    ds.examples.push_back(ex);
  }
  return ds;
}

}  // namespace octet::test
