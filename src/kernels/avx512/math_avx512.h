// Vectorised elementwise math on __m512 (16 floats): exp, erf, tanh and the two GELU forms.
// Include only from files built with the AVX-512 flags (F, BW, VL, DQ).
//
// The same algorithms, coefficients and accuracy as kernels/avx2/math_avx2.h (see there):
// measured max relative error exp 1.2e-7, erf 4.4e-7, tanh 2.9e-7; GELU max absolute error
// 2.5e-7 * max(1, |x|). Lane-for-lane the results equal the AVX2 versions (same operation
// order, FMA everywhere), which tests check.
#pragma once

// GCC 12.2's AVX-512 intrinsics self-initialise their undefined operands (`__m512 __Y = __Y;`)
// and -Wuninitialized flags every inlined use (GCC bug 105593, fixed in 12.3). Silence it for
// the intrinsics header only: diagnostics are filtered by the location they point at.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop

namespace octet::kernels::avx512 {

// The NaN lanes of x copied into y (the clamps below would otherwise turn NaN into a number).
inline __m512 propagate_nan_ps(__m512 y, __m512 x) {
  return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q), y, x);
}

// exp(x) = y * 2^n for finite x: n = round(x log2 e), r = x - n ln 2 (Cody-Waite, two parts),
// y = 1 + r + r^2 p(r) with Cephes' degree-5 p. Shared by exp_ps and the attention softmax.
inline __m512 exp_reduced_ps(__m512 x, __m512* n_out) {
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);  // n * ln2_hi exact
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
  __m512 p = _mm512_set1_ps(1.9875691500e-4f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
  *n_out = n;
  return _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
}

inline __m512 exp_ps(__m512 x) {
  const __m512 kMax = _mm512_set1_ps(88.72283935546875f);   // ln(FLT_MAX)
  const __m512 kMin = _mm512_set1_ps(-87.33654022216797f);  // ln(FLT_MIN): below, denormal
  const __m512 xc = _mm512_min_ps(_mm512_max_ps(x, kMin), kMax);
  __m512 n;
  __m512 y = exp_reduced_ps(xc, &n);
  // 2^n as 2^n1 * 2^n2 with n1 = floor(n / 2): n ranges over [-126, 128], one factor would
  // overflow the 8-bit exponent field at n = 128.
  const __m512i ni = _mm512_cvtps_epi32(n);
  const __m512i n1 = _mm512_srai_epi32(ni, 1);
  const __m512i n2 = _mm512_sub_epi32(ni, n1);
  const __m512i bias = _mm512_set1_epi32(127);
  y = _mm512_mul_ps(y, _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(n1, bias), 23)));
  y = _mm512_mul_ps(y, _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(n2, bias), 23)));
  y = _mm512_maskz_mov_ps(
      _mm512_cmp_ps_mask(x, kMin, _CMP_GE_OQ) | _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q), y);
  y = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, kMax, _CMP_GT_OQ), y,
                           _mm512_set1_ps(__builtin_inff()));
  return propagate_nan_ps(y, x);
}

// exp(x) for softmax arguments: the range reduction and degree-6 polynomial of exp_ps, with 2^n
// applied by vscalefps, which rounds correctly into the denormal range and overflows to inf by
// itself (exp_ps needs two exponent-field multiplies and three fix-up blends for that). The
// clamp keeps n finite for x = -inf (result 0); max(lo, x) returns x when x is NaN. No upper
// clamp: softmax arguments are <= 0 for scale >= 0, and a large x gives inf through vscalefps
// (only x = +inf gives NaN instead of inf, where the reference's inf / inf is NaN as well).
inline __m512 softmax_exp_ps(__m512 x) {
  __m512 n;
  const __m512 y = exp_reduced_ps(_mm512_max_ps(_mm512_set1_ps(-104.0f), x), &n);
  return _mm512_scalef_ps(y, n);
}

inline __m512 erf_ps(__m512 x) {
  const __m512 xc = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-4.0f)), _mm512_set1_ps(4.0f));
  const __m512 x2 = _mm512_mul_ps(xc, xc);
  __m512 p = _mm512_set1_ps(-2.72614225801306e-10f);
  p = _mm512_fmadd_ps(p, x2, _mm512_set1_ps(2.77068142495902e-08f));
  p = _mm512_fmadd_ps(p, x2, _mm512_set1_ps(-2.10102402082508e-06f));
  p = _mm512_fmadd_ps(p, x2, _mm512_set1_ps(-5.69250639462346e-05f));
  p = _mm512_fmadd_ps(p, x2, _mm512_set1_ps(-7.34990630326855e-04f));
  p = _mm512_fmadd_ps(p, x2, _mm512_set1_ps(-2.95459980854025e-03f));
  p = _mm512_fmadd_ps(p, x2, _mm512_set1_ps(-1.60960333262415e-02f));
  p = _mm512_mul_ps(p, xc);
  __m512 q = _mm512_set1_ps(-1.45660718464996e-05f);
  q = _mm512_fmadd_ps(q, x2, _mm512_set1_ps(-2.13374055278905e-04f));
  q = _mm512_fmadd_ps(q, x2, _mm512_set1_ps(-1.68282697438203e-03f));
  q = _mm512_fmadd_ps(q, x2, _mm512_set1_ps(-7.37332916720468e-03f));
  q = _mm512_fmadd_ps(q, x2, _mm512_set1_ps(-1.42647390514189e-02f));
  return propagate_nan_ps(_mm512_div_ps(p, q), x);
}

inline __m512 tanh_ps(__m512 x) {
  const __m512 kClamp = _mm512_set1_ps(7.90531110763549805f);
  const __m512 xc =
      _mm512_min_ps(_mm512_max_ps(x, _mm512_sub_ps(_mm512_setzero_ps(), kClamp)), kClamp);
  const __m512 x2 = _mm512_mul_ps(xc, xc);
  __m512 p = _mm512_set1_ps(-2.76076847742355e-16f);
  p = _mm512_fmadd_ps(p, x2, _mm512_set1_ps(2.00018790482477e-13f));
  p = _mm512_fmadd_ps(p, x2, _mm512_set1_ps(-8.60467152213735e-11f));
  p = _mm512_fmadd_ps(p, x2, _mm512_set1_ps(5.12229709037114e-08f));
  p = _mm512_fmadd_ps(p, x2, _mm512_set1_ps(1.48572235717979e-05f));
  p = _mm512_fmadd_ps(p, x2, _mm512_set1_ps(6.37261928875436e-04f));
  p = _mm512_fmadd_ps(p, x2, _mm512_set1_ps(4.89352455891786e-03f));
  p = _mm512_mul_ps(p, xc);
  __m512 q = _mm512_set1_ps(1.19825839466702e-06f);
  q = _mm512_fmadd_ps(q, x2, _mm512_set1_ps(1.18534705686654e-04f));
  q = _mm512_fmadd_ps(q, x2, _mm512_set1_ps(2.26843463243900e-03f));
  q = _mm512_fmadd_ps(q, x2, _mm512_set1_ps(4.89352518554385e-03f));
  const __m512 abs_x = _mm512_abs_ps(x);
  const __mmask16 tiny = _mm512_cmp_ps_mask(abs_x, _mm512_set1_ps(4e-4f), _CMP_LT_OQ);
  // Beyond |x| = 9, tanh(x) rounds to +/-1 in float; the clamped rational stops 1 ulp short.
  const __m512 one = _mm512_or_ps(_mm512_set1_ps(1.0f), _mm512_and_ps(_mm512_set1_ps(-0.0f), x));
  __m512 y = _mm512_mask_blend_ps(tiny, _mm512_div_ps(p, q), x);
  y = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(abs_x, _mm512_set1_ps(9.0f), _CMP_GE_OQ), y, one);
  return propagate_nan_ps(y, x);
}

// 0.5 x (1 + erf(x / sqrt(2))): Hugging Face "gelu", PyTorch F.gelu(approximate="none").
inline __m512 gelu_erf_ps(__m512 x) {
  const __m512 half_x = _mm512_mul_ps(x, _mm512_set1_ps(0.5f));
  const __m512 e = erf_ps(_mm512_mul_ps(x, _mm512_set1_ps(0.70710678118654752440f)));
  return _mm512_fmadd_ps(half_x, e, half_x);
}

// 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))): Hugging Face "gelu_new" / "gelu_pytorch_tanh".
inline __m512 gelu_tanh_ps(__m512 x) {
  const __m512 x2 = _mm512_mul_ps(x, x);
  const __m512 inner =
      _mm512_mul_ps(_mm512_mul_ps(x, _mm512_set1_ps(0.79788456080286535588f)),
                    _mm512_fmadd_ps(x2, _mm512_set1_ps(0.044715f), _mm512_set1_ps(1.0f)));
  const __m512 half_x = _mm512_mul_ps(x, _mm512_set1_ps(0.5f));
  return _mm512_fmadd_ps(half_x, tanh_ps(inner), half_x);
}

inline __m512 relu_ps(__m512 x) { return _mm512_max_ps(x, _mm512_setzero_ps()); }

}  // namespace octet::kernels::avx512
