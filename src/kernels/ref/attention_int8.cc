// Reference INT8 single-head self-attention, the specification of attention_head_s8
// (kernels/int8.h): dynamic symmetric codes for Q (per row), K (per key) and V (per channel),
// int32 scores, softmax probabilities as u8 codes of 255 exp(s - max) (kernels/prob_code.h),
// int32 context, each
// step in the order the contract gives so that every ISA computes the same integers.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>

#include "kernels/int8.h"
#include "kernels/prob_code.h"
#include "kernels/ref/int8_ref.h"

namespace octet::kernels::ref {

namespace {

// Code of x for the inverse step inv (127 / a, or 0 for a = 0): nearbyint then clamp.
inline int32_t code(float x, float inv) {
  const float r = std::nearbyint(x * inv);
  return static_cast<int32_t>(r < -127.0f ? -127.0f : (r > 127.0f ? 127.0f : r));
}

inline float inverse_step(float a) { return a > 0.0f ? 127.0f / a : 0.0f; }

}  // namespace

float attention_head_s8(const float* q, const float* k, const float* v, std::size_t ld_qkv,
                        std::size_t rows, std::size_t t, std::size_t d, float scale, float* out,
                        std::size_t ld_out, float* scratch, const float* /*next_q*/) {
  const std::size_t n = rows > t ? rows : t;
  // Byte codes (3 n d), then 64-byte aligned steps, one row of scores and of probability codes:
  // within attention_s8_scratch_floats(n, d).
  int8_t* qq = reinterpret_cast<int8_t*>(scratch);
  int8_t* kq = qq + n * d;
  int8_t* vq = kq + n * d;
  float* sq = reinterpret_cast<float*>(vq + n * d + (64 - (3 * n * d) % 64) % 64);
  float* sk = sq + n;
  float* sv = sk + n;
  float* s = sv + d;
  int32_t* p = reinterpret_cast<int32_t*>(s + n);
  static_assert(sizeof(float) == sizeof(int32_t));

  bool finite = true;
  auto row_codes = [&](const float* x, int8_t* c, float* step) {
    float a = 0.0f;
    for (std::size_t i = 0; i < d; ++i) {
      finite &= std::isfinite(x[i]);
      a = std::fmax(a, std::fabs(x[i]));
    }
    const float inv = inverse_step(a);
    for (std::size_t i = 0; i < d; ++i) c[i] = static_cast<int8_t>(code(x[i], inv));
    *step = a / 127.0f;
  };
  for (std::size_t i = 0; i < rows; ++i) row_codes(q + i * ld_qkv, qq + i * d, sq + i);
  for (std::size_t j = 0; j < t; ++j) row_codes(k + j * ld_qkv, kq + j * d, sk + j);
  for (std::size_t c = 0; c < d; ++c) {
    float a = 0.0f;
    for (std::size_t j = 0; j < t; ++j) {
      const float x = v[j * ld_qkv + c];
      finite &= std::isfinite(x);
      a = std::fmax(a, std::fabs(x));
    }
    const float inv = inverse_step(a);
    for (std::size_t j = 0; j < t; ++j) {
      vq[j * d + c] = static_cast<int8_t>(code(v[j * ld_qkv + c], inv));
    }
    sv[c] = a / 127.0f;
  }
  if (!finite) {
    const float nan = std::numeric_limits<float>::quiet_NaN();
    for (std::size_t i = 0; i < rows; ++i)
      for (std::size_t c = 0; c < d; ++c) out[i * ld_out + c] = nan;
    return rows > 0 ? nan : 0.0f;
  }

  float amax = 0.0f;
  for (std::size_t i = 0; i < rows; ++i) {
    const int8_t* qi = qq + i * d;
    const float row_scale = sq[i] * scale;
    float mx = -std::numeric_limits<float>::infinity();
    for (std::size_t j = 0; j < t; ++j) {
      const int8_t* kj = kq + j * d;
      int32_t acc = 0;
      for (std::size_t c = 0; c < d; ++c) acc += int32_t{qi[c]} * int32_t{kj[c]};
      s[j] = (static_cast<float>(acc) * row_scale) * sk[j];
      mx = std::fmax(mx, s[j]);
    }
    int32_t total = 0;
    for (std::size_t j = 0; j < t; ++j) {
      p[j] = prob_code(s[j] - mx);
      total += p[j];
    }
    const float inv_total = 1.0f / static_cast<float>(total);
    float* oi = out + i * ld_out;
    for (std::size_t c = 0; c < d; ++c) {
      int32_t acc = 0;
      for (std::size_t j = 0; j < t; ++j) acc += p[j] * int32_t{vq[j * d + c]};
      oi[c] = (static_cast<float>(acc) * inv_total) * sv[c];
      amax = std::fmax(amax, std::fabs(oi[c]));
    }
  }
  return amax;
}

}  // namespace octet::kernels::ref
