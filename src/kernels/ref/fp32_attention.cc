// Reference single-head self-attention, the specification of attention_head (kernels/fp32.h):
//   Q (rows, d), K and V (t, d)  ->  S = scale Q K^T  (rows, t)  ->  P = softmax(S)  ->
//   O = P V  (rows, d).
// Computed one query row at a time; the scratch holds one row of scores. Returns max |O|, NaN
// when an output is NaN.
#include <cmath>
#include <cstddef>
#include <limits>

#include "kernels/fp32.h"
#include "kernels/ref/fp32_ref.h"

namespace octet::kernels::ref {

float attention_head_f32(const float* q, const float* k, const float* v, std::size_t ld_qkv,
                         std::size_t rows, std::size_t t, std::size_t d, float scale, float* out,
                         std::size_t ld_out, float* scratch, const float* /*next_q*/) {
  float* s = scratch;
  float amax = 0.0f;
  bool nan = false;
  for (std::size_t i = 0; i < rows; ++i) {
    const float* qi = q + i * ld_qkv;
    float mx = -std::numeric_limits<float>::infinity();
    for (std::size_t j = 0; j < t; ++j) {
      const float* kj = k + j * ld_qkv;
      float dot = 0.0f;
      for (std::size_t c = 0; c < d; ++c) dot += qi[c] * kj[c];
      s[j] = dot;
      mx = std::fmax(mx, dot);
    }
    float sum = 0.0f;
    for (std::size_t j = 0; j < t; ++j) {
      s[j] = std::exp((s[j] - mx) * scale);
      sum += s[j];
    }
    const float inv = 1.0f / sum;
    float* oi = out + i * ld_out;
    for (std::size_t c = 0; c < d; ++c) oi[c] = 0.0f;
    for (std::size_t j = 0; j < t; ++j) {
      const float p = s[j] * inv;
      const float* vj = v + j * ld_qkv;
      for (std::size_t c = 0; c < d; ++c) oi[c] += p * vj[c];
    }
    for (std::size_t c = 0; c < d; ++c) {
      if (std::isnan(oi[c])) {
        nan = true;
      } else {
        amax = std::fmax(amax, std::fabs(oi[c]));
      }
    }
  }
  return nan ? std::numeric_limits<float>::quiet_NaN() : amax;
}

}  // namespace octet::kernels::ref
