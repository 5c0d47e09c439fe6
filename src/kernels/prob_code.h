// The probability code of INT8 attention (kernels/int8.h, attention_head_s8): for a softmax
// argument x = s - max <= 0, code(x) = nearbyint(255 e(x)), where e is exp evaluated in a fixed
// sequence of IEEE operations that every ISA reproduces bit for bit:
//   x' = max(x, -17)                       (255 e^-17 = 1e-5: code 0 below)
//   n  = nearbyint(x' * log2(e))           (in [-25, 0])
//   r  = fma(n, -ln 2, x')                 (|r| <= ln 2 / 2)
//   p  = 255 P(r), P of degree 4 fitted to exp on [-ln 2 / 2, ln 2 / 2] (max relative error
//        8.4e-6: 0.002 of a code), evaluated by Horner's rule with fma
//   code = nearbyint(p * 2^n), at most 255
// A code needs 8 bits, so the polynomial is as short as that allows; the codes equal those of
// an exact exp except within 0.002 of a rounding boundary.
#pragma once

#include <cmath>
#include <cstdint>

namespace octet::kernels {

inline constexpr float kProbLog2e = 1.44269504f;
inline constexpr float kProbMinusLn2 = -0.693147182f;
inline constexpr float kProbMinArg = -17.0f;
// 255 x the coefficients of P, constant term first.
inline constexpr float kProbC0 = 254.999435f, kProbC1 = 254.993912f, kProbC2 = 127.545654f,
                       kProbC3 = 42.7694969f, kProbC4 = 10.2237997f;

inline int32_t prob_code(float x) {
  const float xc = x > kProbMinArg ? x : kProbMinArg;
  const float n = std::nearbyint(xc * kProbLog2e);
  const float r = std::fma(n, kProbMinusLn2, xc);
  float p = std::fma(kProbC4, r, kProbC3);
  p = std::fma(p, r, kProbC2);
  p = std::fma(p, r, kProbC1);
  p = std::fma(p, r, kProbC0);
  const float c = std::nearbyint(std::ldexp(p, static_cast<int>(n)));
  return static_cast<int32_t>(c < 255.0f ? c : 255.0f);
}

}  // namespace octet::kernels
