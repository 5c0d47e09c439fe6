// A read-only memory map of a whole file (RAII, movable, not copyable).
//
//   octet::io::MappedFile f("model.safetensors");
//   std::span<const std::byte> b = f.bytes();      // valid while `f` lives
//
// An empty file maps to an empty span. Opening a missing, unreadable or directory path throws
// IoError naming the path and the system's reason. The mapping is MAP_PRIVATE: if another process
// truncates the file while it is mapped, reads past the new end fault (SIGBUS); Octet never writes
// a model file in place (see atomic_file.h), so its own outputs cannot cause this.
// A const MappedFile may be read from any number of threads.
#pragma once

#include <cstddef>
#include <filesystem>
#include <span>

namespace octet::io {

class MappedFile {
 public:
  explicit MappedFile(const std::filesystem::path& path);
  ~MappedFile();
  MappedFile(MappedFile&& other) noexcept;
  MappedFile& operator=(MappedFile&& other) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  std::span<const std::byte> bytes() const { return {data_, size_}; }
  std::size_t size() const { return size_; }
  const std::filesystem::path& path() const { return path_; }

  // Drops this process's resident pages of bytes [offset, offset + length) (the whole pages
  // inside the range) with madvise(MADV_DONTNEED): a loader that has converted a tensor gives its
  // pages back, so peak resident memory does not hold the whole file. The bytes stay readable
  // (read again from the file on the next access). Best effort: errors are ignored.
  void drop_pages(std::size_t offset, std::size_t length) const noexcept;

 private:
  void release() noexcept;

  std::filesystem::path path_;
  const std::byte* data_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace octet::io
