#include "text/unicode.h"

#include <utf8proc.h>

namespace octet::text {

std::string_view unicode_version() { return utf8proc_unicode_version(); }

std::string_view general_category(char32_t cp) {
  return utf8proc_category_string(static_cast<utf8proc_int32_t>(cp));
}

}  // namespace octet::text
