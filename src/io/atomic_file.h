// Writing files so that readers never see a half-written one.
//
//   octet::io::AtomicFileWriter w("out/model.safetensors");
//   w.stream() << ...;
//   w.commit();       // flush, check, fsync, rename over the destination
//
// The data goes to a temporary file "<path>.tmp.<pid>.<n>" in the destination's directory (so the
// final rename(2) stays on one file system and is atomic). commit() flushes, checks every write,
// fsyncs the file, renames it over `path` and fsyncs the directory. If commit() is never reached
// (an exception, an early return) or fails, the temporary file is removed and an existing file at
// `path` is left untouched. Failures throw IoError naming the path and the system's reason.
// One writer is used by one thread at a time.
#pragma once

#include <filesystem>
#include <memory>
#include <ostream>
#include <string_view>

namespace octet::io {

class AtomicFileWriter {
 public:
  explicit AtomicFileWriter(const std::filesystem::path& path);
  ~AtomicFileWriter();
  AtomicFileWriter(const AtomicFileWriter&) = delete;
  AtomicFileWriter& operator=(const AtomicFileWriter&) = delete;

  // Binary stream into the temporary file.
  std::ostream& stream();
  void commit();

  const std::filesystem::path& path() const { return path_; }
  const std::filesystem::path& temp_path() const { return temp_path_; }

 private:
  class FdBuf;
  void discard() noexcept;

  std::filesystem::path path_;
  std::filesystem::path temp_path_;
  std::unique_ptr<FdBuf> buf_;
  std::unique_ptr<std::ostream> stream_;
  bool committed_ = false;
};

// Writes `contents` to `path` through an AtomicFileWriter.
void write_file_atomic(const std::filesystem::path& path, std::string_view contents);

}  // namespace octet::io
