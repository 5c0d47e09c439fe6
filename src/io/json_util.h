// Internal helpers for JSON read from model files (not a public interface).
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace octet::io::detail {

// Parses `text` strictly: valid UTF-8 JSON, no duplicate key in any object (parsers usually keep
// the last one silently) and nesting at most `max_depth` deep (nlohmann's dump and comparison
// recurse, so an adversarial file could otherwise exhaust the stack). Errors are ModelFormatError
// "<where> ...", with byte positions reported as `byte_base` + offset in `text`, so a caller that
// parses a slice of a file can report file offsets.
nlohmann::json parse_json_strict(std::string_view text, const std::string& where,
                                 uint64_t byte_base, int max_depth);

// "string \"768\"", "number 12.5", "array [1, 2, ...]": the type and a short, shallow rendering
// of a value, for the "found ..." half of a message.
std::string describe_json(const nlohmann::json& v);

}  // namespace octet::io::detail
