#include "io/json_util.h"

#include <fmt/format.h>

#include <algorithm>
#include <set>
#include <vector>

#include "octet/error.h"
#include "text/utf8.h"

namespace octet::io::detail {

namespace {

using nlohmann::json;

// nlohmann's reason without "[json.exception.parse_error.101] parse error at line 1, column 27: ";
// the caller reports the position as a byte offset instead.
std::string json_reason(const json::exception& e) {
  std::string_view m = e.what();
  if (m.starts_with("[json.exception.")) {
    if (const auto close = m.find("] "); close != std::string_view::npos)
      m.remove_prefix(close + 2);
  }
  if (const auto col = m.find(", column "); col != std::string_view::npos) {
    if (const auto colon = m.find(": ", col); colon != std::string_view::npos) {
      m.remove_prefix(colon + 2);
    }
  }
  return std::string(m);
}

std::string describe_scalar(const json& v) {
  std::string s = v.dump(-1, ' ', true, json::error_handler_t::replace);
  if (s.size() > 40) s = s.substr(0, 37) + "...";
  return s;
}

}  // namespace

json parse_json_strict(std::string_view text, const std::string& where, uint64_t byte_base,
                       int max_depth) {
  if (const auto bad = text::find_invalid_utf8(text); bad != std::string_view::npos) {
    throw ModelFormatError(
        fmt::format("{}: not valid UTF-8 at file byte {}", where, byte_base + bad));
  }
  // One key set per open object; nullptr marks an open array.
  std::vector<std::set<std::string>> keys;
  int depth = 0;
  std::string duplicate;
  const json::parser_callback_t cb = [&](int, json::parse_event_t ev, json& parsed) {
    switch (ev) {
      case json::parse_event_t::object_start:
      case json::parse_event_t::array_start:
        if (++depth > max_depth) {
          throw ModelFormatError(fmt::format(
              "{}: JSON nested more than {} levels deep; expected a flat model description", where,
              max_depth));
        }
        if (ev == json::parse_event_t::object_start) keys.emplace_back();
        break;
      case json::parse_event_t::object_end:
        --depth;
        keys.pop_back();
        break;
      case json::parse_event_t::array_end:
        --depth;
        break;
      case json::parse_event_t::key:
        if (!keys.back().insert(parsed.get<std::string>()).second && duplicate.empty()) {
          duplicate = parsed.get<std::string>();
        }
        break;
      default:
        break;
    }
    return true;
  };
  json j;
  try {
    j = json::parse(text, cb);
  } catch (const json::parse_error& e) {
    // e.byte is the 1-based position of the offending character within `text`.
    const uint64_t at = std::min<uint64_t>(e.byte > 0 ? e.byte - 1 : 0, text.size());
    std::string line;
    if (byte_base == 0) {  // a whole text file: its editor's line and column help most
      const std::string_view before = text.substr(0, at);
      const auto nl = before.rfind('\n');
      line =
          fmt::format(" (line {}, column {})", 1 + std::count(before.begin(), before.end(), '\n'),
                      nl == std::string_view::npos ? at + 1 : at - nl);
    }
    throw ModelFormatError(fmt::format("{}: not valid JSON at file byte {}{}: {}", where,
                                       byte_base + at, line, json_reason(e)));
  } catch (const json::exception& e) {  // e.g. out_of_range: a number literal overflows
    throw ModelFormatError(fmt::format("{}: not valid JSON: {}", where, json_reason(e)));
  }
  if (!duplicate.empty()) {
    throw ModelFormatError(
        fmt::format("{}: the key \"{}\" appears more than once in one object; expected unique keys",
                    where, duplicate));
  }
  return j;
}

std::string describe_json(const json& v) {
  if (v.is_array() || v.is_object()) {
    std::string s;
    std::size_t shown = 0;
    for (auto it = v.begin(); it != v.end() && shown < 4; ++it, ++shown) {
      if (shown > 0) s += ", ";
      if (v.is_object()) s += fmt::format("\"{}\": ", it.key());
      s += it->is_structured() ? (it->is_array() ? "[...]" : "{...}") : describe_scalar(*it);
    }
    if (v.size() > shown) s += ", ...";
    return fmt::format("{} {}{}{}", v.type_name(), v.is_array() ? '[' : '{', s,
                       v.is_array() ? ']' : '}');
  }
  return fmt::format("{} {}", v.type_name(), describe_scalar(v));
}

}  // namespace octet::io::detail
