// Reading and writing the safetensors format (https://github.com/huggingface/safetensors):
//
//   bytes [0, 8)        N, the header length, unsigned 64-bit little-endian
//   bytes [8, 8 + N)    a UTF-8 JSON object: {"<name>": {"dtype": "F32", "shape": [2, 3],
//                       "data_offsets": [begin, end]}, ..., "__metadata__": {"k": "v"}}
//   bytes [8 + N, end)  the data section; each tensor's bytes are [begin, end) within it,
//                       row-major, little-endian
//
//   octet::io::SafetensorsReader r("model/model.safetensors");
//   const TensorInfo& t = r.get("bert.embeddings.word_embeddings.weight");
//   std::vector<float> w = r.read_f32(t);                // F32, F16, BF16 or F64 -> float
//   std::vector<int8_t> q = r.read_exact<int8_t>(r.get("...weight_int8"));
//
// The reader maps the file and validates the whole header before returning (see
// docs/model_format.md for the rules); after that, every TensorInfo it hands out describes bytes
// that lie inside the file and match dtype x shape, so reads cannot fail except on a caller's
// size or dtype mismatch. Errors are ModelFormatError naming the file, the tensor, the byte offsets
// and expected vs found. The reader owns the mapping; spans from bytes() live as long as it.
// A constructed reader is immutable and may be used from any number of threads.
#pragma once

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "io/dtype.h"
#include "io/mapped_file.h"

namespace octet::io {

// The safetensors reference library's cap on the header length.
inline constexpr uint64_t kMaxSafetensorsHeaderBytes = 100'000'000;

struct TensorInfo {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  uint64_t offset = 0;  // offset of the first byte within the data section
  uint64_t nbytes = 0;
  int64_t numel() const;
  // "F32 [768, 3072]", for messages.
  std::string describe() const;
};

// The DType whose elements are exactly T.
template <typename T>
constexpr DType dtype_of() {
  if constexpr (std::is_same_v<T, double>)
    return DType::F64;
  else if constexpr (std::is_same_v<T, float>)
    return DType::F32;
  else if constexpr (std::is_same_v<T, int64_t>)
    return DType::I64;
  else if constexpr (std::is_same_v<T, int32_t>)
    return DType::I32;
  else if constexpr (std::is_same_v<T, int16_t>)
    return DType::I16;
  else if constexpr (std::is_same_v<T, int8_t>)
    return DType::I8;
  else if constexpr (std::is_same_v<T, uint8_t>)
    return DType::U8;
  else
    static_assert(sizeof(T) == 0, "no safetensors dtype for this type");
}

class SafetensorsReader {
 public:
  explicit SafetensorsReader(const std::filesystem::path& path);

  const std::filesystem::path& path() const { return file_.path(); }
  // Sorted by offset (then name).
  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  // nullptr if absent.
  const TensorInfo* find(std::string_view name) const;
  // ModelFormatError naming the file and the tensor if absent.
  const TensorInfo& get(std::string_view name) const;
  // The tensor's bytes (little-endian, row-major), inside the mapping; no alignment promised.
  std::span<const std::byte> bytes(const TensorInfo& t) const;
  // Gives the tensor's resident pages back (MappedFile::drop_pages) once it has been converted;
  // its bytes stay readable.
  void drop_pages(const TensorInfo& t) const noexcept {
    file_.drop_pages(static_cast<std::size_t>(data_start_ + t.offset),
                     static_cast<std::size_t>(t.nbytes));
  }

  // Converts an F32, F16, BF16 or F64 tensor to float (F64 rounds to nearest). `out.size()` must
  // equal t.numel(); otherwise, or for another dtype, ModelFormatError naming file and tensor.
  void read_f32_into(const TensorInfo& t, std::span<float> out) const;
  std::vector<float> read_f32(const TensorInfo& t) const;

  // Copies the elements of a tensor whose dtype is exactly dtype_of<T>() (ModelFormatError
  // naming file, tensor, expected and found dtype otherwise).
  template <typename T>
  std::vector<T> read_exact(const TensorInfo& t) const {
    check_dtype(t, dtype_of<T>());
    std::vector<T> out(static_cast<std::size_t>(t.numel()));
    if (t.nbytes != 0) std::memcpy(out.data(), bytes(t).data(), t.nbytes);
    return out;
  }

  // The "__metadata__" map (empty if absent).
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  uint64_t file_size() const { return file_.size(); }
  // Absolute file offset of the data section (8 + header length).
  uint64_t data_start() const { return data_start_; }

 private:
  void parse_header();
  void check_dtype(const TensorInfo& t, DType expected) const;

  MappedFile file_;
  uint64_t data_start_ = 0;
  std::vector<TensorInfo> tensors_;
  std::map<std::string, std::size_t, std::less<>> index_;
  std::map<std::string, std::string> metadata_;
};

// A tensor to write: `data` holds numel(shape) * dtype_size(dtype) bytes, row-major,
// little-endian, and must stay valid during the call.
struct TensorView {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  std::span<const std::byte> data;
};

// Writes a safetensors file through AtomicFileWriter (a temporary file in the same directory,
// then a rename): never a half-written file. Like the reference writer, tensors are laid out by
// decreasing element size, then by name, so each is aligned to its element size, and the header
// is padded with spaces to a multiple of 8 bytes. Names must be non-empty, unique, valid UTF-8
// and not "__metadata__"; dims non-negative; data sizes must match; else InvalidArgument.
void write_safetensors(const std::filesystem::path& path, std::span<const TensorView> tensors,
                       const std::map<std::string, std::string>& metadata = {});

// Convenience for writers: a view of a contiguous array of T.
template <typename T>
TensorView tensor_view(std::string name, std::vector<int64_t> shape, std::span<const T> values) {
  return TensorView{std::move(name), dtype_of<T>(), std::move(shape), std::as_bytes(values)};
}

}  // namespace octet::io
