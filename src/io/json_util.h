// Internal helpers for error messages about JSON read from model files (not a public interface).
#pragma once

#include <fmt/format.h>

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace octet::io::detail {

// "string \"768\"", "number 12.5", "array [1,2]": the type and a short rendering of a value, for
// the "found ..." half of a message. Invalid UTF-8 is replaced, long values are cut.
inline std::string describe_json(const nlohmann::json& v) {
  std::string s = v.dump(-1, ' ', true, nlohmann::json::error_handler_t::replace);
  if (s.size() > 60) s = s.substr(0, 57) + "...";
  return fmt::format("{} {}", v.type_name(), s);
}

// nlohmann's reason without the "[json.exception.parse_error.101] " id, which means nothing to a
// user. With `drop_position`, also without "parse error at line 1, column 27: ", for callers that
// report the position themselves (as a file offset).
inline std::string json_reason(const nlohmann::json::exception& e, bool drop_position) {
  std::string_view m = e.what();
  if (m.starts_with("[json.exception.")) {
    if (const auto close = m.find("] "); close != std::string_view::npos)
      m.remove_prefix(close + 2);
  }
  if (drop_position) {
    if (const auto col = m.find(", column "); col != std::string_view::npos) {
      if (const auto colon = m.find(": ", col); colon != std::string_view::npos) {
        m.remove_prefix(colon + 2);
      }
    }
  }
  return std::string(m);
}

}  // namespace octet::io::detail
