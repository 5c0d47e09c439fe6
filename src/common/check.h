// Internal invariant checks. These are for bugs, not for bad input: user-facing validation throws
// an octet::Error at the boundary (see include/octet/error.h). A failed check prints the
// expression, the values and the location, then aborts.
#pragma once

#include <fmt/format.h>

#include <cstdio>
#include <cstdlib>
#include <string>

namespace octet::detail {

[[noreturn]] inline void check_failed(const char* file, int line, const char* expr,
                                      const std::string& detail) {
  std::fprintf(stderr, "octet: internal check failed at %s:%d: %s%s%s\n", file, line, expr,
               detail.empty() ? "" : " ", detail.c_str());
  std::fflush(stderr);
  std::abort();
}

}  // namespace octet::detail

#define OCTET_CHECK(cond)                                                      \
  do {                                                                         \
    if (!(cond)) ::octet::detail::check_failed(__FILE__, __LINE__, #cond, ""); \
  } while (0)

#define OCTET_CHECK_OP(a, op, b)                                                                \
  do {                                                                                          \
    const auto& octet_check_a_ = (a);                                                           \
    const auto& octet_check_b_ = (b);                                                           \
    if (!(octet_check_a_ op octet_check_b_))                                                    \
      ::octet::detail::check_failed(__FILE__, __LINE__, #a " " #op " " #b,                      \
                                    fmt::format("({} vs {})", octet_check_a_, octet_check_b_)); \
  } while (0)

#define OCTET_CHECK_EQ(a, b) OCTET_CHECK_OP(a, ==, b)
#define OCTET_CHECK_NE(a, b) OCTET_CHECK_OP(a, !=, b)
#define OCTET_CHECK_LT(a, b) OCTET_CHECK_OP(a, <, b)
#define OCTET_CHECK_LE(a, b) OCTET_CHECK_OP(a, <=, b)
#define OCTET_CHECK_GE(a, b) OCTET_CHECK_OP(a, >=, b)

#ifdef NDEBUG
#define OCTET_DCHECK(cond) \
  do {                     \
  } while (0)
#else
#define OCTET_DCHECK(cond) OCTET_CHECK(cond)
#endif
