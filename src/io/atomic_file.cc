#include "io/atomic_file.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <streambuf>

#include "octet/error.h"

namespace octet::io {

namespace {

[[noreturn]] void throw_errno(const std::string& what, const std::filesystem::path& path, int err) {
  throw IoError(fmt::format("cannot {} {}: {}", what, path.string(), std::strerror(err)));
}

std::atomic<unsigned> g_temp_counter{0};

}  // namespace

// An unformatted, buffered streambuf over a file descriptor that remembers the first write error
// (errno), so commit() can report the system's reason instead of a bare failbit.
class AtomicFileWriter::FdBuf : public std::streambuf {
 public:
  explicit FdBuf(int fd) : fd_(fd) { setp(buf_, buf_ + sizeof(buf_)); }
  ~FdBuf() override { close_fd(); }

  int error() const { return error_; }
  int fd() const { return fd_; }
  int close_fd() {
    int rc = 0;
    if (fd_ >= 0) rc = ::close(fd_);
    fd_ = -1;
    return rc == 0 ? 0 : errno;
  }

 protected:
  int_type overflow(int_type ch) override {
    if (!flush_buffer()) return traits_type::eof();
    if (!traits_type::eq_int_type(ch, traits_type::eof())) {
      *pptr() = traits_type::to_char_type(ch);
      pbump(1);
    }
    return traits_type::not_eof(ch);
  }

  std::streamsize xsputn(const char* s, std::streamsize n) override {
    // Large writes bypass the buffer (tensor data is written in one call per tensor).
    if (n >= static_cast<std::streamsize>(sizeof(buf_))) {
      if (!flush_buffer() || !write_all(s, static_cast<std::size_t>(n))) return 0;
      return n;
    }
    return std::streambuf::xsputn(s, n);
  }

  int sync() override { return flush_buffer() ? 0 : -1; }

 private:
  bool flush_buffer() {
    const std::size_t n = static_cast<std::size_t>(pptr() - pbase());
    const bool ok = write_all(pbase(), n);
    setp(buf_, buf_ + sizeof(buf_));
    return ok;
  }

  bool write_all(const char* p, std::size_t n) {
    if (error_ != 0) return false;
    while (n > 0) {
      const ssize_t w = ::write(fd_, p, n);
      if (w < 0) {
        if (errno == EINTR) continue;
        error_ = errno;
        return false;
      }
      p += w;
      n -= static_cast<std::size_t>(w);
    }
    return true;
  }

  int fd_;
  int error_ = 0;
  char buf_[1 << 16];
};

AtomicFileWriter::AtomicFileWriter(const std::filesystem::path& path) : path_(path) {
  if (path.filename().empty()) {
    throw IoError(fmt::format("cannot write {}: not a file name", path.string()));
  }
  temp_path_ = path;
  temp_path_ += fmt::format(".tmp.{}.{}", ::getpid(), g_temp_counter.fetch_add(1));
  const int fd = ::open(temp_path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
  if (fd < 0) throw_errno("create", temp_path_, errno);
  buf_ = std::make_unique<FdBuf>(fd);
  stream_ = std::make_unique<std::ostream>(buf_.get());
}

AtomicFileWriter::~AtomicFileWriter() {
  if (!committed_) discard();
}

std::ostream& AtomicFileWriter::stream() {
  if (committed_) {
    throw IoError(fmt::format("write to {} after commit()", path_.string()));
  }
  return *stream_;
}

void AtomicFileWriter::commit() {
  if (committed_) throw IoError(fmt::format("{} committed twice", path_.string()));
  try {
    stream_->flush();
    if (buf_->error() != 0) throw_errno("write", temp_path_, buf_->error());
    if (!*stream_) {
      throw IoError(fmt::format("cannot write {}: the output stream failed", temp_path_.string()));
    }
    if (::fsync(buf_->fd()) != 0) throw_errno("fsync", temp_path_, errno);
    if (const int err = buf_->close_fd(); err != 0) throw_errno("close", temp_path_, err);
    if (::rename(temp_path_.c_str(), path_.c_str()) != 0) {
      throw_errno(fmt::format("rename {} to", temp_path_.string()), path_, errno);
    }
  } catch (...) {
    discard();
    throw;
  }
  committed_ = true;
  // Make the rename itself durable. Best effort: some file systems refuse fsync on directories.
  std::filesystem::path dir = path_.parent_path();
  if (dir.empty()) dir = ".";
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

void AtomicFileWriter::discard() noexcept {
  if (buf_) buf_->close_fd();
  if (!temp_path_.empty()) ::unlink(temp_path_.c_str());
}

void write_file_atomic(const std::filesystem::path& path, std::string_view contents) {
  AtomicFileWriter w(path);
  w.stream().write(contents.data(), static_cast<std::streamsize>(contents.size()));
  w.commit();
}

}  // namespace octet::io
