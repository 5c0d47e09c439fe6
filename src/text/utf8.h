// UTF-8 validation and decoding. Octet rejects malformed text at the boundary with a DataError
// that names where it came from and the byte offset, instead of guessing.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace octet::text {

// Returns the byte offset of the first malformed UTF-8 sequence in `s` (overlong forms,
// surrogates, code points past U+10FFFF, truncated sequences), or std::string_view::npos.
std::size_t find_invalid_utf8(std::string_view s);

// Throws DataError("invalid UTF-8 in <where> at byte <offset>: found bytes 0x.. 0x..") when `s`
// is not valid UTF-8. `where` names the source, e.g. "input.tsv line 12, column 1".
void check_utf8(std::string_view s, const std::string& where);

// Decodes the code point starting at s[pos] (which must be valid UTF-8) and advances pos.
char32_t decode_utf8(std::string_view s, std::size_t& pos);

// Appends the UTF-8 encoding of `cp` to `out`.
void append_utf8(std::string& out, char32_t cp);

}  // namespace octet::text
