#include "io/atomic_file.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>

#include <filesystem>
#include <stdexcept>
#include <string>

#include "common/test_support.h"
#include "io/mapped_file.h"
#include "octet/error.h"

namespace octet::io {
namespace {

using octet::test::read_file;
using octet::test::TempDir;
using octet::test::write_file;
using ::testing::AllOf;
using ::testing::HasSubstr;

std::size_t count_entries(const std::filesystem::path& dir) {
  std::size_t n = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(dir)) ++n;
  return n;
}

TEST(AtomicFileWriterTest, CommitWritesExactBytes) {
  TempDir dir;
  const auto p = dir / "out.bin";
  const std::string payload("binary\0data\xff", 12);
  {
    AtomicFileWriter w(p);
    EXPECT_EQ(w.temp_path().parent_path(), p.parent_path());
    EXPECT_THAT(w.temp_path().filename().string(), HasSubstr("out.bin.tmp."));
    w.stream() << payload;
    const std::string big(300000, 'x');  // larger than the internal buffer: bypass path
    w.stream().write(big.data(), static_cast<std::streamsize>(big.size()));
    EXPECT_FALSE(std::filesystem::exists(p)) << "nothing visible before commit";
    w.commit();
  }
  EXPECT_EQ(read_file(p), payload + std::string(300000, 'x'));
  EXPECT_EQ(count_entries(dir.path()), 1u);
}

TEST(AtomicFileWriterTest, LeavesNoFileWhenNotCommitted) {
  TempDir dir;
  const auto p = dir / "out.txt";
  std::filesystem::path temp;
  {
    AtomicFileWriter w(p);
    temp = w.temp_path();
    w.stream() << "partial";
    EXPECT_TRUE(std::filesystem::exists(temp));
  }
  EXPECT_FALSE(std::filesystem::exists(p));
  EXPECT_FALSE(std::filesystem::exists(temp));
  EXPECT_EQ(count_entries(dir.path()), 0u);
}

TEST(AtomicFileWriterTest, ExceptionWhileWritingKeepsExistingFile) {
  TempDir dir;
  const auto p = dir / "config.json";
  write_file(p, "old contents");
  try {
    AtomicFileWriter w(p);
    w.stream() << "new, half-written";
    throw std::runtime_error("producer failed");
  } catch (const std::runtime_error&) {
  }
  EXPECT_EQ(read_file(p), "old contents");
  EXPECT_EQ(count_entries(dir.path()), 1u);
}

TEST(AtomicFileWriterTest, CommitReplacesExistingFile) {
  TempDir dir;
  const auto p = dir / "out.txt";
  write_file(p, "old contents, longer than the new ones");
  write_file_atomic(p, "new");
  EXPECT_EQ(read_file(p), "new");
  EXPECT_EQ(count_entries(dir.path()), 1u);
}

// Makes write(2) fail with EFBIG past `limit` bytes, for this process, while in scope.
class FileSizeLimit {
 public:
  explicit FileSizeLimit(rlim_t limit) {
    old_handler_ = ::signal(SIGXFSZ, SIG_IGN);  // otherwise the signal kills the process
    ::getrlimit(RLIMIT_FSIZE, &old_);
    rlimit r = old_;
    r.rlim_cur = limit;
    ok_ = ::setrlimit(RLIMIT_FSIZE, &r) == 0;
  }
  ~FileSizeLimit() {
    ::setrlimit(RLIMIT_FSIZE, &old_);
    ::signal(SIGXFSZ, old_handler_);
  }
  bool ok() const { return ok_; }

 private:
  rlimit old_{};
  sighandler_t old_handler_;
  bool ok_ = false;
};

TEST(AtomicFileWriterTest, FailedWriteKeepsExistingFileAndReportsErrno) {
  TempDir dir;
  const auto p = dir / "model.safetensors";
  write_file(p, "the good model");
  const std::string big(1 << 20, 'z');
  try {
    FileSizeLimit limit(4096);
    ASSERT_TRUE(limit.ok());
    write_file_atomic(p, big);
    FAIL() << "expected IoError";
  } catch (const IoError& e) {
    EXPECT_THAT(e.what(), AllOf(HasSubstr("model.safetensors.tmp."), HasSubstr("write"),
                                HasSubstr("File too large")));
  }
  EXPECT_EQ(read_file(p), "the good model");
  EXPECT_EQ(count_entries(dir.path()), 1u) << "temporary file removed after the failure";
}

TEST(AtomicFileWriterTest, MissingDirectoryIsIoErrorNamingPath) {
  TempDir dir;
  try {
    write_file_atomic(dir / "no" / "such" / "out.txt", "x");
    FAIL();
  } catch (const IoError& e) {
    EXPECT_THAT(e.what(), AllOf(HasSubstr("no/such/out.txt"), HasSubstr("No such file")));
  }
}

TEST(AtomicFileWriterTest, DestinationThatIsADirectoryIsIoError) {
  TempDir dir;
  std::filesystem::create_directory(dir / "taken");
  try {
    write_file_atomic(dir / "taken", "x");
    FAIL();
  } catch (const IoError& e) {
    EXPECT_THAT(e.what(), AllOf(HasSubstr("rename"), HasSubstr("taken"), HasSubstr("directory")));
  }
  EXPECT_TRUE(std::filesystem::is_directory(dir / "taken"));
  EXPECT_EQ(count_entries(dir.path()), 1u);
}

TEST(AtomicFileWriterTest, WritersOfOneProcessUseDistinctTempFiles) {
  TempDir dir;
  AtomicFileWriter a(dir / "same.txt");
  AtomicFileWriter b(dir / "same.txt");
  EXPECT_NE(a.temp_path(), b.temp_path());
  a.stream() << "a";
  b.stream() << "b";
  a.commit();
  b.commit();
  EXPECT_EQ(read_file(dir / "same.txt"), "b");
  EXPECT_EQ(count_entries(dir.path()), 1u);
}

TEST(AtomicFileWriterTest, UseAfterCommitIsAnError) {
  TempDir dir;
  AtomicFileWriter w(dir / "x.txt");
  w.commit();
  EXPECT_TRUE(std::filesystem::exists(dir / "x.txt"));
  EXPECT_THROW(w.stream(), IoError);
  EXPECT_THROW(w.commit(), IoError);
}

TEST(MappedFileTest, MapsContentsAndMoves) {
  TempDir dir;
  write_file(dir / "f.bin", "hello");
  MappedFile a(dir / "f.bin");
  ASSERT_EQ(a.size(), 5u);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(a.bytes().data()), 5), "hello");
  MappedFile b(std::move(a));
  EXPECT_EQ(b.size(), 5u);
  EXPECT_EQ(static_cast<char>(b.bytes()[4]), 'o');
  EXPECT_EQ(b.path(), dir / "f.bin");
  write_file(dir / "g.bin", "xy");
  MappedFile c(dir / "g.bin");
  c = std::move(b);
  EXPECT_EQ(c.size(), 5u);
}

TEST(MappedFileTest, EmptyFileIsAnEmptySpan) {
  TempDir dir;
  write_file(dir / "empty", "");
  MappedFile f(dir / "empty");
  EXPECT_EQ(f.size(), 0u);
  EXPECT_TRUE(f.bytes().empty());
}

TEST(MappedFileTest, MissingFileIsIoErrorWithPathAndReason) {
  TempDir dir;
  try {
    MappedFile f(dir / "missing.safetensors");
    FAIL();
  } catch (const IoError& e) {
    EXPECT_THAT(e.what(),
                AllOf(HasSubstr("missing.safetensors"), HasSubstr("No such file or directory")));
  }
}

TEST(MappedFileTest, DirectoryIsIoError) {
  TempDir dir;
  try {
    MappedFile f(dir.path());
    FAIL();
  } catch (const IoError& e) {
    EXPECT_THAT(e.what(), AllOf(HasSubstr(dir.path().string()), HasSubstr("Is a directory")));
  }
}

}  // namespace
}  // namespace octet::io
