// Element types of tensors in model files, and exact conversions between the 16-bit float formats
// and float.
//
//   DType t = parse_dtype("BF16").value();        // safetensors spelling
//   std::vector<float> out(n);
//   bf16_to_f32(std::span(src_u16, n), out);      // bulk, vectorised
//
// Conversions are bit-exact and follow IEEE 754: widening (f16/bf16 -> f32) is exact for every
// pattern, subnormals included; narrowing (f32 -> f16/bf16) rounds to nearest, ties to even,
// overflows to infinity, keeps the sign of zero and maps NaN to a quiet NaN of the same sign
// (payload truncated, like the F16C and AVX512-BF16 instructions). The functions do not depend
// on FTZ/DAZ (they assume the default round-to-nearest mode). All functions are thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace octet::io {

enum class DType { F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL };

// "F64", "F32", "F16", "BF16", "I64", "I32", "I16", "I8", "U8", "BOOL" (safetensors spelling).
std::string_view dtype_name(DType t);
// The inverse of dtype_name; nullopt for any other string (case-sensitive, like safetensors).
std::optional<DType> parse_dtype(std::string_view name);
// Size of one element in bytes.
std::size_t dtype_size(DType t);
// "BF16, BOOL, F16, F32, F64, I16, I32, I64, I8, U8": for error messages.
std::string supported_dtype_names();

float f16_to_f32(uint16_t h);
float bf16_to_f32(uint16_t b);
uint16_t f32_to_f16(float f);
uint16_t f32_to_bf16(float f);

// Bulk versions: `out.size()` must equal `in.size()` (checked; InvalidArgument otherwise).
void f16_to_f32(std::span<const uint16_t> in, std::span<float> out);
void bf16_to_f32(std::span<const uint16_t> in, std::span<float> out);
void f32_to_f16(std::span<const float> in, std::span<uint16_t> out);
void f32_to_bf16(std::span<const float> in, std::span<uint16_t> out);

}  // namespace octet::io
