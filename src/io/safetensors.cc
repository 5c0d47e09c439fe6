#include "io/safetensors.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>

#include "io/atomic_file.h"
#include "io/json_util.h"
#include "octet/error.h"
#include "text/utf8.h"

namespace octet::io {

namespace {

using nlohmann::json;

constexpr std::string_view kMetadataKey = "__metadata__";

// Every size below comes from an untrusted file: products and sums go through these, and a
// false return becomes a ModelFormatError before anything is allocated or dereferenced.
bool checked_mul(uint64_t a, uint64_t b, uint64_t* out) {
  return !__builtin_mul_overflow(a, b, out);
}

std::string shape_str(const std::vector<int64_t>& shape) {
  return fmt::format("[{}]", fmt::join(shape, ", "));
}

uint64_t read_le64(const std::byte* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<uint64_t>(p[i]);
  return v;
}

}  // namespace

int64_t TensorInfo::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;  // the reader validated that this cannot overflow
  return n;
}

std::string TensorInfo::describe() const {
  return fmt::format("{} {}", dtype_name(dtype), shape_str(shape));
}

SafetensorsReader::SafetensorsReader(const std::filesystem::path& path) : file_(path) {
  parse_header();
}

void SafetensorsReader::parse_header() {
  const std::string file = path().string();
  const auto bytes = file_.bytes();
  const uint64_t size = bytes.size();
  if (size < 8) {
    throw ModelFormatError(
        fmt::format("{}: not a safetensors file: {} bytes, expected at least 8 (the header length)",
                    file, size));
  }
  const uint64_t n = read_le64(bytes.data());
  if (n > kMaxSafetensorsHeaderBytes) {
    throw ModelFormatError(fmt::format(
        "{}: header length {} (bytes 0..8) exceeds the limit of {} bytes: not a safetensors file "
        "or corrupt",
        file, n, kMaxSafetensorsHeaderBytes));
  }
  if (n > size - 8) {
    throw ModelFormatError(fmt::format(
        "{}: header length {} (bytes 0..8) runs past the end of the file: expected at most {} "
        "(file size {} - 8); the file is truncated or not safetensors",
        file, n, size - 8, size));
  }
  if (n < 2) {
    throw ModelFormatError(fmt::format(
        "{}: header length {} is too short for a JSON object (expected at least 2, \"{{}}\")", file,
        n));
  }
  data_start_ = 8 + n;
  const uint64_t data_size = size - data_start_;
  const std::string_view header(reinterpret_cast<const char*>(bytes.data()) + 8, n);

  if (header.front() != '{') {
    throw ModelFormatError(
        fmt::format("{}: header (byte 8) starts with byte 0x{:02x}, expected '{{' (a JSON object)",
                    file, static_cast<unsigned char>(header.front())));
  }
  // A valid header nests three levels deep (header, entry, shape); allow some slack.
  const json h = detail::parse_json_strict(header, file + ": header", 8, /*max_depth=*/16);
  if (!h.is_object()) {
    throw ModelFormatError(
        fmt::format("{}: header is {}, expected a JSON object", file, detail::describe_json(h)));
  }

  for (auto it = h.begin(); it != h.end(); ++it) {
    const std::string& name = it.key();
    const json& v = it.value();
    if (name == kMetadataKey) {
      if (!v.is_object()) {
        throw ModelFormatError(
            fmt::format("{}: \"__metadata__\" is {}, expected an object of string values", file,
                        detail::describe_json(v)));
      }
      for (auto m = v.begin(); m != v.end(); ++m) {
        if (!m.value().is_string()) {
          throw ModelFormatError(
              fmt::format("{}: \"__metadata__\" entry \"{}\" is {}, expected a string", file,
                          m.key(), detail::describe_json(m.value())));
        }
        metadata_.emplace(m.key(), m.value().get<std::string>());
      }
      continue;
    }
    const std::string where = fmt::format("{}: tensor \"{}\"", file, name);
    if (!v.is_object()) {
      throw ModelFormatError(
          fmt::format("{}: entry is {}, expected an object with dtype, shape and data_offsets",
                      where, detail::describe_json(v)));
    }
    TensorInfo t;
    t.name = name;

    const auto dt = v.find("dtype");
    if (dt == v.end()) throw ModelFormatError(fmt::format("{}: missing \"dtype\"", where));
    if (!dt->is_string()) {
      throw ModelFormatError(
          fmt::format("{}: \"dtype\" is {}, expected a string", where, detail::describe_json(*dt)));
    }
    const auto parsed = parse_dtype(dt->get<std::string>());
    if (!parsed) {
      throw ModelFormatError(fmt::format("{}: unsupported dtype \"{}\", expected one of {}", where,
                                         dt->get<std::string>(), supported_dtype_names()));
    }
    t.dtype = *parsed;

    const auto sh = v.find("shape");
    if (sh == v.end()) throw ModelFormatError(fmt::format("{}: missing \"shape\"", where));
    if (!sh->is_array()) {
      throw ModelFormatError(
          fmt::format("{}: \"shape\" is {}, expected an array of non-negative integers", where,
                      detail::describe_json(*sh)));
    }
    uint64_t numel = 1;
    for (std::size_t i = 0; i < sh->size(); ++i) {
      const json& d = (*sh)[i];
      if (!d.is_number_integer() ||
          (d.is_number_unsigned() &&
           d.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))) {
        throw ModelFormatError(fmt::format("{}: shape[{}] is {}, expected a non-negative integer",
                                           where, i, detail::describe_json(d)));
      }
      const int64_t dim = d.get<int64_t>();
      if (dim < 0) {
        throw ModelFormatError(
            fmt::format("{}: shape[{}] is {}, expected a non-negative integer", where, i, dim));
      }
      if (!checked_mul(numel, static_cast<uint64_t>(dim), &numel) ||
          numel > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        throw ModelFormatError(
            fmt::format("{}: shape {} has an element count that overflows 64 bits", where,
                        detail::describe_json(*sh)));
      }
      t.shape.push_back(dim);
    }
    uint64_t expected_bytes = 0;
    if (!checked_mul(numel, dtype_size(t.dtype), &expected_bytes)) {
      throw ModelFormatError(
          fmt::format("{}: {} x {} bytes overflows 64 bits", where, numel, dtype_size(t.dtype)));
    }

    const auto off = v.find("data_offsets");
    if (off == v.end()) {
      throw ModelFormatError(fmt::format("{}: missing \"data_offsets\"", where));
    }
    if (!off->is_array() || off->size() != 2 || !(*off)[0].is_number_unsigned() ||
        !(*off)[1].is_number_unsigned()) {
      throw ModelFormatError(fmt::format(
          "{}: \"data_offsets\" is {}, expected [begin, end] with non-negative integers", where,
          detail::describe_json(*off)));
    }
    const uint64_t begin = (*off)[0].get<uint64_t>();
    const uint64_t end = (*off)[1].get<uint64_t>();
    if (begin > end) {
      throw ModelFormatError(fmt::format(
          "{}: data_offsets [{}, {}] has begin > end, expected begin <= end", where, begin, end));
    }
    if (end > data_size) {
      throw ModelFormatError(fmt::format(
          "{}: data_offsets [{}, {}] end past the data section of {} bytes (file bytes {}..{}, "
          "file size {}): the file is truncated",
          where, begin, end, data_size, data_start_, data_start_ + data_size, size));
    }
    if (end - begin != expected_bytes) {
      throw ModelFormatError(fmt::format(
          "{}: data_offsets [{}, {}] hold {} bytes, expected {} ({} {} = {} elements x {} bytes)",
          where, begin, end, end - begin, expected_bytes, dtype_name(t.dtype), shape_str(t.shape),
          numel, dtype_size(t.dtype)));
    }
    t.offset = begin;
    t.nbytes = end - begin;
    tensors_.push_back(std::move(t));
  }

  std::sort(tensors_.begin(), tensors_.end(), [](const TensorInfo& a, const TensorInfo& b) {
    if (a.offset != b.offset) return a.offset < b.offset;
    if (a.nbytes != b.nbytes) return a.nbytes < b.nbytes;
    return a.name < b.name;
  });
  // Like the reference library: the tensors tile the data section exactly, in offset order.
  uint64_t cursor = 0;
  const TensorInfo* prev = nullptr;
  for (const TensorInfo& t : tensors_) {
    if (t.offset < cursor) {
      throw ModelFormatError(
          fmt::format("{}: tensor \"{}\" at data bytes [{}, {}) overlaps tensor \"{}\" at [{}, {}) "
                      "(overlap at file "
                      "bytes [{}, {})); expected each tensor to start where the previous one ends",
                      file, t.name, t.offset, t.offset + t.nbytes, prev->name, prev->offset,
                      prev->offset + prev->nbytes, data_start_ + t.offset,
                      data_start_ + prev->offset + prev->nbytes));
    }
    if (t.offset > cursor) {
      throw ModelFormatError(fmt::format(
          "{}: data bytes [{}, {}) (file bytes [{}, {})) before tensor \"{}\" belong to no tensor; "
          "expected tensors to cover the data section without holes",
          file, cursor, t.offset, data_start_ + cursor, data_start_ + t.offset, t.name));
    }
    cursor = t.offset + t.nbytes;
    prev = &t;
  }
  if (cursor != data_size) {
    throw ModelFormatError(fmt::format(
        "{}: the data section has {} bytes but the tensors cover only {}; expected no trailing "
        "bytes (file bytes [{}, {}) belong to no tensor)",
        file, data_size, cursor, data_start_ + cursor, size));
  }
  for (std::size_t i = 0; i < tensors_.size(); ++i) index_.emplace(tensors_[i].name, i);
}

const TensorInfo* SafetensorsReader::find(std::string_view name) const {
  const auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

const TensorInfo& SafetensorsReader::get(std::string_view name) const {
  if (const TensorInfo* t = find(name)) return *t;
  throw ModelFormatError(fmt::format("{}: no tensor named \"{}\" ({} tensors in the file)",
                                     path().string(), name, tensors_.size()));
}

std::span<const std::byte> SafetensorsReader::bytes(const TensorInfo& t) const {
  // A TensorInfo from another reader (or edited by the caller) must not read out of bounds.
  const uint64_t data_size = file_size() - data_start_;
  if (t.offset > data_size || t.nbytes > data_size - t.offset) {
    throw InvalidArgument(fmt::format("{}: tensor \"{}\" data [{}, +{}) is not in this file",
                                      path().string(), t.name, t.offset, t.nbytes));
  }
  return file_.bytes().subspan(data_start_ + t.offset, t.nbytes);
}

void SafetensorsReader::check_dtype(const TensorInfo& t, DType expected) const {
  if (t.dtype != expected) {
    throw ModelFormatError(fmt::format("{}: tensor \"{}\" has dtype {}, expected {}",
                                       path().string(), t.name, dtype_name(t.dtype),
                                       dtype_name(expected)));
  }
}

void SafetensorsReader::read_f32_into(const TensorInfo& t, std::span<float> out) const {
  const auto n = static_cast<std::size_t>(t.numel());
  if (out.size() != n) {
    throw ModelFormatError(
        fmt::format("{}: tensor \"{}\" ({}) has {} elements, the destination holds {}",
                    path().string(), t.name, t.describe(), n, out.size()));
  }
  const std::span<const std::byte> b = bytes(t);
  if (n == 0) return;
  switch (t.dtype) {
    case DType::F32:
      std::memcpy(out.data(), b.data(), b.size());
      return;
    case DType::F16:
    case DType::BF16: {
      // The data section need not be 2-byte aligned in a foreign file; convert in cache-sized
      // chunks through an aligned staging buffer.
      constexpr std::size_t kChunk = 8192;
      uint16_t stage[kChunk];
      for (std::size_t i = 0; i < n; i += kChunk) {
        const std::size_t m = std::min(kChunk, n - i);
        std::memcpy(stage, b.data() + 2 * i, 2 * m);
        if (t.dtype == DType::F16) {
          f16_to_f32(std::span<const uint16_t>(stage, m), out.subspan(i, m));
        } else {
          bf16_to_f32(std::span<const uint16_t>(stage, m), out.subspan(i, m));
        }
      }
      return;
    }
    case DType::F64:
      for (std::size_t i = 0; i < n; ++i) {
        double d;
        std::memcpy(&d, b.data() + 8 * i, 8);
        out[i] = static_cast<float>(d);
      }
      return;
    default:
      throw ModelFormatError(fmt::format(
          "{}: tensor \"{}\" has dtype {}, expected a floating-point dtype (F32, F16, BF16, F64)",
          path().string(), t.name, dtype_name(t.dtype)));
  }
}

std::vector<float> SafetensorsReader::read_f32(const TensorInfo& t) const {
  std::vector<float> out(static_cast<std::size_t>(t.numel()));
  read_f32_into(t, out);
  return out;
}

void write_safetensors(const std::filesystem::path& path, std::span<const TensorView> tensors,
                       const std::map<std::string, std::string>& metadata) {
  const std::string file = path.string();
  std::vector<const TensorView*> order;
  std::set<std::string_view> names;
  for (const TensorView& t : tensors) {
    if (t.name.empty() || t.name == kMetadataKey) {
      throw InvalidArgument(fmt::format("writing {}: invalid tensor name \"{}\"", file, t.name));
    }
    if (text::find_invalid_utf8(t.name) != std::string_view::npos) {
      throw InvalidArgument(fmt::format("writing {}: tensor name is not valid UTF-8", file));
    }
    if (!names.insert(t.name).second) {
      throw InvalidArgument(
          fmt::format("writing {}: tensor name \"{}\" appears twice", file, t.name));
    }
    uint64_t numel = 1;
    for (int64_t d : t.shape) {
      if (d < 0 || !checked_mul(numel, static_cast<uint64_t>(d), &numel)) {
        throw InvalidArgument(fmt::format("writing {}: tensor \"{}\" has invalid shape {}", file,
                                          t.name, shape_str(t.shape)));
      }
    }
    uint64_t nbytes = 0;
    if (!checked_mul(numel, dtype_size(t.dtype), &nbytes) || nbytes != t.data.size()) {
      throw InvalidArgument(fmt::format(
          "writing {}: tensor \"{}\" ({} {}) has {} bytes of data, expected {} x {}", file, t.name,
          dtype_name(t.dtype), shape_str(t.shape), t.data.size(), numel, dtype_size(t.dtype)));
    }
    order.push_back(&t);
  }
  for (const auto& [k, v] : metadata) {
    if (text::find_invalid_utf8(k) != std::string_view::npos ||
        text::find_invalid_utf8(v) != std::string_view::npos) {
      throw InvalidArgument(fmt::format("writing {}: metadata entry is not valid UTF-8", file));
    }
  }
  // Largest elements first, so that with an 8-byte-aligned data section every tensor is aligned
  // to its element size (the reference writer's order).
  std::stable_sort(order.begin(), order.end(), [](const TensorView* a, const TensorView* b) {
    const std::size_t sa = dtype_size(a->dtype), sb = dtype_size(b->dtype);
    if (sa != sb) return sa > sb;
    return a->name < b->name;
  });

  json h = json::object();
  if (!metadata.empty()) h[std::string(kMetadataKey)] = metadata;
  uint64_t offset = 0;
  for (const TensorView* t : order) {
    h[t->name] = {{"dtype", dtype_name(t->dtype)},
                  {"shape", t->shape},
                  {"data_offsets", {offset, offset + t->data.size()}}};
    offset += t->data.size();
  }
  std::string header = h.dump();
  header.append((8 - header.size() % 8) % 8, ' ');

  AtomicFileWriter w(path);
  std::ostream& os = w.stream();
  char len[8];
  uint64_t n = header.size();
  for (int i = 0; i < 8; ++i, n >>= 8) len[i] = static_cast<char>(n & 0xff);
  os.write(len, 8);
  os.write(header.data(), static_cast<std::streamsize>(header.size()));
  for (const TensorView* t : order) {
    os.write(reinterpret_cast<const char*>(t->data.data()),
             static_cast<std::streamsize>(t->data.size()));
  }
  w.commit();
}

}  // namespace octet::io
