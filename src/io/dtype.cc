#include "io/dtype.h"

#include <fmt/format.h>

#include <bit>
#include <cstring>

#include "octet/error.h"

namespace octet::io {

static_assert(std::endian::native == std::endian::little,
              "safetensors data is little-endian; Octet reads it in place");

namespace {

struct DTypeEntry {
  DType type;
  std::string_view name;
  std::size_t size;
};

// Alphabetical by name, so supported_dtype_names() lists them in a stable, readable order.
constexpr DTypeEntry kDTypes[] = {
    {DType::BF16, "BF16", 2}, {DType::BOOL, "BOOL", 1}, {DType::F16, "F16", 2},
    {DType::F32, "F32", 4},   {DType::F64, "F64", 8},   {DType::I16, "I16", 2},
    {DType::I32, "I32", 4},   {DType::I64, "I64", 8},   {DType::I8, "I8", 1},
    {DType::U8, "U8", 1},
};

const DTypeEntry& entry(DType t) {
  for (const auto& e : kDTypes) {
    if (e.type == t) return e;
  }
  throw InvalidArgument(fmt::format("invalid DType value {}", static_cast<int>(t)));
}

// The scalar conversions below are branch-free (all-ones/all-zeros masks rather than ternaries,
// which GCC turns into branches) so that the bulk loops vectorise with baseline SSE2. Float
// arithmetic is used in two places only, on operands and results that are normal numbers, so
// FTZ/DAZ cannot change the results; they do assume the default round-to-nearest mode.

inline uint32_t f32_bits(float f) { return std::bit_cast<uint32_t>(f); }
inline float bits_f32(uint32_t u) { return std::bit_cast<float>(u); }
// All ones when `cond`, else zero.
inline uint32_t mask(bool cond) { return 0u - static_cast<uint32_t>(cond); }
inline uint32_t select(uint32_t m, uint32_t if_set, uint32_t if_clear) {
  return (if_set & m) | (if_clear & ~m);
}

// f16: 1 sign, 5 exponent (bias 15), 10 mantissa bits.
inline float f16_to_f32_inline(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t em = h & 0x7fffu;
  // Normal numbers: re-bias the exponent from 15 to 127 (add 112 << 23).
  const uint32_t normal = (em << 13) + (112u << 23);
  // Infinity and NaN (exponent 31): exponent 255, mantissa (payload) kept.
  const uint32_t infnan = (em << 13) | 0x7f800000u;
  // Zero and subnormals (exponent 0): value = mantissa * 2^-24, exact (a product of normals).
  const uint32_t sub = f32_bits(static_cast<float>(static_cast<int32_t>(em)) * 0x1p-24f);
  uint32_t r = select(mask(em >= 0x7c00u), infnan, normal);
  r = select(mask(em < 0x0400u), sub, r);
  return bits_f32(sign | r);
}

inline uint16_t f32_to_f16_inline(float f) {
  const uint32_t u = f32_bits(f);
  const uint32_t sign = (u >> 16) & 0x8000u;
  const uint32_t a = u & 0x7fffffffu;
  // NaN: quiet bit set, top 9 payload bits kept (like vcvtps2ph).
  const uint32_t nan = 0x7e00u | ((a >> 13) & 0x3ffu);
  // Normal range, a in [2^-14, 65520): re-bias and round to nearest even on the 13 dropped bits.
  // A carry out of the mantissa bumps the exponent, which is the correct rounded result and
  // reaches 0x7c00 (infinity) exactly at 65520.
  const uint32_t normal = (a - (112u << 23) + 0xfffu + ((a >> 13) & 1u)) >> 13;
  // Subnormal range, a < 2^-14: the result is round(a * 2^24). Adding 0.5 (whose ulp is 2^-24)
  // makes the FPU round to that grid, ties to even; the low bits of the sum are the count. The
  // sum is normal, and an input that DAZ would flush is below 2^-126 and rounds to 0 anyway.
  const uint32_t sub = f32_bits(bits_f32(a) + 0.5f) - f32_bits(0.5f);
  uint32_t r = select(mask(a < 0x38800000u), sub, normal);
  r = select(mask(a >= 0x47800000u), 0x7c00u, r);  // >= 65536: infinity
  r = select(mask(a > 0x7f800000u), nan, r);
  return static_cast<uint16_t>(sign | r);
}

inline float bf16_to_f32_inline(uint16_t b) { return bits_f32(static_cast<uint32_t>(b) << 16); }

inline uint16_t f32_to_bf16_inline(float f) {
  const uint32_t u = f32_bits(f);
  // Round to nearest even on the 16 dropped bits; a carry into the exponent is the correct
  // rounded result and saturates to infinity at the top of the range.
  const uint32_t rounded = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
  const uint32_t nan = (u >> 16) | 0x40u;
  return static_cast<uint16_t>(select(mask((u & 0x7fffffffu) > 0x7f800000u), nan, rounded));
}

void check_sizes(std::size_t in, std::size_t out, const char* what) {
  if (in != out) {
    throw InvalidArgument(
        fmt::format("{}: output holds {} elements, expected {} (the input size)", what, out, in));
  }
}

}  // namespace

std::string_view dtype_name(DType t) { return entry(t).name; }

std::optional<DType> parse_dtype(std::string_view name) {
  for (const auto& e : kDTypes) {
    if (e.name == name) return e.type;
  }
  return std::nullopt;
}

std::size_t dtype_size(DType t) { return entry(t).size; }

std::string supported_dtype_names() {
  std::string s;
  for (const auto& e : kDTypes) {
    if (!s.empty()) s += ", ";
    s += e.name;
  }
  return s;
}

float f16_to_f32(uint16_t h) { return f16_to_f32_inline(h); }
float bf16_to_f32(uint16_t b) { return bf16_to_f32_inline(b); }
uint16_t f32_to_f16(float f) { return f32_to_f16_inline(f); }
uint16_t f32_to_bf16(float f) { return f32_to_bf16_inline(f); }

void f16_to_f32(std::span<const uint16_t> in, std::span<float> out) {
  check_sizes(in.size(), out.size(), "f16_to_f32");
  const uint16_t* __restrict src = in.data();
  float* __restrict dst = out.data();
  for (std::size_t i = 0, n = in.size(); i < n; ++i) dst[i] = f16_to_f32_inline(src[i]);
}

void bf16_to_f32(std::span<const uint16_t> in, std::span<float> out) {
  check_sizes(in.size(), out.size(), "bf16_to_f32");
  const uint16_t* __restrict src = in.data();
  float* __restrict dst = out.data();
  for (std::size_t i = 0, n = in.size(); i < n; ++i) dst[i] = bf16_to_f32_inline(src[i]);
}

void f32_to_f16(std::span<const float> in, std::span<uint16_t> out) {
  check_sizes(in.size(), out.size(), "f32_to_f16");
  const float* __restrict src = in.data();
  uint16_t* __restrict dst = out.data();
  for (std::size_t i = 0, n = in.size(); i < n; ++i) dst[i] = f32_to_f16_inline(src[i]);
}

void f32_to_bf16(std::span<const float> in, std::span<uint16_t> out) {
  check_sizes(in.size(), out.size(), "f32_to_bf16");
  const float* __restrict src = in.data();
  uint16_t* __restrict dst = out.data();
  for (std::size_t i = 0, n = in.size(); i < n; ++i) dst[i] = f32_to_bf16_inline(src[i]);
}

}  // namespace octet::io
