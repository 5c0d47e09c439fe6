// Unicode character properties from the utf8proc tables Octet is built with. The tokenizer's
// golden test uses them to show that its differences from Python's unicodedata come from the two
// libraries' Unicode versions and nothing else.
#pragma once

#include <string_view>

namespace octet::text {

// The Unicode version of utf8proc's tables, e.g. "15.0.0".
std::string_view unicode_version();

// The two-letter general category of `cp` ("Lu", "Mn", "Cn" for unassigned, ...).
std::string_view general_category(char32_t cp);

}  // namespace octet::text
