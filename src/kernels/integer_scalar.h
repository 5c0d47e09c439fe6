// Scalar integer helpers of the I-BERT kernels (kernels/integer.h), ISA-neutral and header-only:
// the reference kernels use them for every element, the vector kernels for their per-row steps
// (row mean, square root, softmax normaliser).
//
// Every function is `static inline` on purpose: each translation unit gets its own copy, compiled
// with that unit's flags. A plain `inline` function used by an AVX-512 file and by the reference
// would be merged by the linker into one copy, possibly the AVX-512 one, which the reference
// path must never run on a CPU without AVX-512.
#pragma once

#include <bit>
#include <cstdint>

#include "kernels/integer.h"

namespace octet::kernels::integer_scalar {

// floor(sqrt(n)) for every n in [0, 2^64): I-BERT's integer Newton iteration (paper Alg. 4).
// x0 = 2^ceil(bits(n) / 2) > sqrt(n); x_{i+1} = floor((x_i + floor(n / x_i)) / 2); stop as soon
// as x_{i+1} >= x_i and return x_i. Why it is exact: for any x > 0, (x + n / x) / 2 >= sqrt(n)
// (AM-GM) and flooring twice keeps floor((x + floor(n/x)) / 2) = floor((x + n/x) / 2) >=
// floor(sqrt(n)), so no iterate drops below floor(sqrt(n)); while x > floor(sqrt(n)), x^2 > n
// gives n / x < x and the iterate strictly decreases. It therefore stops exactly at floor(sqrt(n)).
// No overflow: every iterate x is in [floor(sqrt(n)), 2^32], so n / x < 2^33 and x + n / x < 2^34.
static inline uint64_t isqrt_u64(uint64_t n) {
  if (n == 0) return 0;
  const int bits = 64 - std::countl_zero(n);
  uint64_t x = uint64_t{1} << ((bits + 1) / 2);
  for (;;) {
    const uint64_t y = (x + n / x) >> 1;
    if (y >= x) return x;
    x = y;
  }
}

// round_half_even(v / 2^s) for s in [1, 126], exact for any 128-bit v whose magnitude is below
// 2^126 (floor + (rem > half - (floor & 1)): a tie rounds up exactly when floor is odd).
static inline __int128 rhe_i128(__int128 v, int s) {
  const __int128 fl = v >> s;  // arithmetic
  const __int128 rem = v - fl * (static_cast<__int128>(1) << s);
  const __int128 half = static_cast<__int128>(1) << (s - 1);
  return fl + (rem > half - (fl & 1) ? 1 : 0);
}

// round_half_even(v / 2^s), s in [1, 63], for |v| < 2^62.
static inline int64_t rhe_i64(int64_t v, int s) {
  const int64_t fl = v >> s;
  const int64_t rem = static_cast<int64_t>(static_cast<uint64_t>(v) & ((uint64_t{1} << s) - 1));
  const int64_t half = int64_t{1} << (s - 1);
  return fl + (rem > half - (fl & 1) ? 1 : 0);
}

static inline int64_t saturate_bits(__int128 v, int bits) {
  const __int128 hi = (static_cast<__int128>(1) << (bits - 1)) - 1;
  const __int128 lo = -hi - 1;
  return static_cast<int64_t>(v < lo ? lo : (v > hi ? hi : v));
}

// round_half_even(v * m / 2^s) exactly, m signed with |m| < 2^31, s in [1, 94], |v| < 2^63.
static inline __int128 requantize_wide_value(int64_t v, int32_t m, int s) {
  return rhe_i128(static_cast<__int128>(v) * m, s);
}

// i-exp of one value t = x - rowmax <= 0 given as int64 (kernels/integer.h).
static inline int32_t iexp_value(int64_t d, const IexpParams& p) {
  if (d > 0) d = 0;
  int64_t t = d >> p.input_shift;
  const int64_t lo = int64_t{kIexpMaxZ} * p.x0;
  if (t < lo) t = lo;
  const int64_t z = t / p.x0;  // t <= 0, x0 < 0: the quotient is >= 0, truncation is floor
  const int64_t r = t - z * p.x0;
  const int64_t poly = (r + p.b) * r + p.c;
  const int s = p.shift + static_cast<int>(z);
  if (s > 63) return 0;  // poly * multiplier < 2^62: the quotient is below 1/2
  return static_cast<int32_t>(rhe_i64(poly * p.multiplier, s));
}

// round_half_even(sum / n) for n > 0 (the row mean of i-LayerNorm, torch.round of the mean).
static inline int64_t rounded_mean(int64_t sum, int64_t n) {
  int64_t q = sum / n, r = sum % n;
  if (r < 0) {  // make it floor division: r in [0, n)
    r += n;
    --q;
  }
  if (2 * r > n || (2 * r == n && (q & 1))) ++q;
  return q;
}

// The per-row constant of i-LayerNorm: factor = floor(2^31 / std), std = max(isqrt(var), 1) *
// 2^shift.
static inline int64_t ilayernorm_factor(uint64_t var, int shift) {
  uint64_t sd = isqrt_u64(var);
  if (sd == 0) sd = 1;
  return static_cast<int64_t>((uint64_t{1} << 31) / (sd << shift));
}

}  // namespace octet::kernels::integer_scalar
