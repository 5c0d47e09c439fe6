// Vectorised elementwise math on __m256 (8 floats): exp, erf, tanh and the two GELU forms.
// Include only from files built with the AVX2 flags (-mavx2 -mfma -mf16c).
//
// Accuracy, measured against double-precision libm over the stated ranges
// (tests/ops/fp32_kernels_test.cc, VectorMathIsAccurate; 4M points per range plus a
// log sweep of small magnitudes):
//   exp_ps   max relative error 1.2e-7 (~1 ulp) on [-87.3, 88.7]; 0 below -87.34 (the true
//            value is denormal), +inf above 88.72.
//   erf_ps   max relative error 4.4e-7 (~4 ulp) on [-6, 6] (exactly +/-1 beyond |x| = 4).
//   tanh_ps  max relative error 2.9e-7 (~2-3 ulp) on [-10, 10] (exactly +/-1 beyond |x| = 9).
//   gelu_*   max relative error 9e-5 on [-3, 10], max absolute error 2.5e-7 * max(1, |x|)
//            everywhere; below -3 the result is 1 - erf cancellation noise of absolute size
//            ~1e-7 |x| (PyTorch's float GELU computes the same 1 + erf and shares it).
// NaN inputs give NaN. Algorithms:
//   exp: Cody-Waite range reduction x = n ln2 + r, |r| <= ln2/2, with ln2 split in a part
//        exact in float plus a correction, a degree-6 polynomial for exp(r) (Cephes expf
//        coefficients), and 2^n built in the exponent field in two halves so n = 128 works.
//   erf: odd/even rational approximation x P(x^2) / Q(x^2) on [-4, 4] (degree 13/8 minimax,
//        the coefficients used by Eigen and XLA).
//   tanh: odd/even rational approximation (degree 13/6, same provenance) on [-7.9, 7.9];
//        returns x itself for |x| < 4e-4 where tanh(x) = x in float.
#pragma once

#include <immintrin.h>

namespace octet::kernels::avx2 {

// The NaN lanes of x copied into y (the clamps below would otherwise turn NaN into a number).
inline __m256 propagate_nan_ps(__m256 y, __m256 x) {
  return _mm256_blendv_ps(y, x, _mm256_cmp_ps(x, x, _CMP_UNORD_Q));
}

inline __m256 exp_ps(__m256 x) {
  const __m256 kMax = _mm256_set1_ps(88.72283935546875f);   // ln(FLT_MAX)
  const __m256 kMin = _mm256_set1_ps(-87.33654022216797f);  // ln(FLT_MIN): below, denormal
  const __m256 kLog2e = _mm256_set1_ps(1.44269504088896341f);
  const __m256 kLn2Hi = _mm256_set1_ps(0.693359375f);  // 8 significant bits: n * kLn2Hi exact
  const __m256 kLn2Lo = _mm256_set1_ps(-2.12194440e-4f);
  const __m256 xc = _mm256_min_ps(_mm256_max_ps(x, kMin), kMax);
  const __m256 n =
      _mm256_round_ps(_mm256_mul_ps(xc, kLog2e), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, kLn2Hi, xc);
  r = _mm256_fnmadd_ps(n, kLn2Lo, r);
  __m256 p = _mm256_set1_ps(1.9875691500e-4f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
  __m256 y = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
  // 2^n as 2^n1 * 2^n2 with n1 = floor(n / 2): n ranges over [-126, 128], one factor would
  // overflow the 8-bit exponent field at n = 128.
  const __m256i ni = _mm256_cvtps_epi32(n);
  const __m256i n1 = _mm256_srai_epi32(ni, 1);
  const __m256i n2 = _mm256_sub_epi32(ni, n1);
  const __m256i bias = _mm256_set1_epi32(127);
  y = _mm256_mul_ps(y, _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n1, bias), 23)));
  y = _mm256_mul_ps(y, _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n2, bias), 23)));
  y = _mm256_andnot_ps(_mm256_cmp_ps(x, kMin, _CMP_LT_OQ), y);
  y = _mm256_blendv_ps(y, _mm256_set1_ps(__builtin_inff()), _mm256_cmp_ps(x, kMax, _CMP_GT_OQ));
  return propagate_nan_ps(y, x);
}

inline __m256 erf_ps(__m256 x) {
  const __m256 xc = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-4.0f)), _mm256_set1_ps(4.0f));
  const __m256 x2 = _mm256_mul_ps(xc, xc);
  __m256 p = _mm256_set1_ps(-2.72614225801306e-10f);
  p = _mm256_fmadd_ps(p, x2, _mm256_set1_ps(2.77068142495902e-08f));
  p = _mm256_fmadd_ps(p, x2, _mm256_set1_ps(-2.10102402082508e-06f));
  p = _mm256_fmadd_ps(p, x2, _mm256_set1_ps(-5.69250639462346e-05f));
  p = _mm256_fmadd_ps(p, x2, _mm256_set1_ps(-7.34990630326855e-04f));
  p = _mm256_fmadd_ps(p, x2, _mm256_set1_ps(-2.95459980854025e-03f));
  p = _mm256_fmadd_ps(p, x2, _mm256_set1_ps(-1.60960333262415e-02f));
  p = _mm256_mul_ps(p, xc);
  __m256 q = _mm256_set1_ps(-1.45660718464996e-05f);
  q = _mm256_fmadd_ps(q, x2, _mm256_set1_ps(-2.13374055278905e-04f));
  q = _mm256_fmadd_ps(q, x2, _mm256_set1_ps(-1.68282697438203e-03f));
  q = _mm256_fmadd_ps(q, x2, _mm256_set1_ps(-7.37332916720468e-03f));
  q = _mm256_fmadd_ps(q, x2, _mm256_set1_ps(-1.42647390514189e-02f));
  return propagate_nan_ps(_mm256_div_ps(p, q), x);
}

inline __m256 tanh_ps(__m256 x) {
  const __m256 kClamp = _mm256_set1_ps(7.90531110763549805f);
  const __m256 xc =
      _mm256_min_ps(_mm256_max_ps(x, _mm256_sub_ps(_mm256_setzero_ps(), kClamp)), kClamp);
  const __m256 x2 = _mm256_mul_ps(xc, xc);
  __m256 p = _mm256_set1_ps(-2.76076847742355e-16f);
  p = _mm256_fmadd_ps(p, x2, _mm256_set1_ps(2.00018790482477e-13f));
  p = _mm256_fmadd_ps(p, x2, _mm256_set1_ps(-8.60467152213735e-11f));
  p = _mm256_fmadd_ps(p, x2, _mm256_set1_ps(5.12229709037114e-08f));
  p = _mm256_fmadd_ps(p, x2, _mm256_set1_ps(1.48572235717979e-05f));
  p = _mm256_fmadd_ps(p, x2, _mm256_set1_ps(6.37261928875436e-04f));
  p = _mm256_fmadd_ps(p, x2, _mm256_set1_ps(4.89352455891786e-03f));
  p = _mm256_mul_ps(p, xc);
  __m256 q = _mm256_set1_ps(1.19825839466702e-06f);
  q = _mm256_fmadd_ps(q, x2, _mm256_set1_ps(1.18534705686654e-04f));
  q = _mm256_fmadd_ps(q, x2, _mm256_set1_ps(2.26843463243900e-03f));
  q = _mm256_fmadd_ps(q, x2, _mm256_set1_ps(4.89352518554385e-03f));
  const __m256 abs_x = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), x);
  const __m256 tiny = _mm256_cmp_ps(abs_x, _mm256_set1_ps(4e-4f), _CMP_LT_OQ);
  // Beyond |x| = 9, tanh(x) rounds to +/-1 in float; the clamped rational stops 1 ulp short.
  const __m256 one = _mm256_or_ps(_mm256_set1_ps(1.0f), _mm256_and_ps(_mm256_set1_ps(-0.0f), x));
  __m256 y = _mm256_blendv_ps(_mm256_div_ps(p, q), x, tiny);
  y = _mm256_blendv_ps(y, one, _mm256_cmp_ps(abs_x, _mm256_set1_ps(9.0f), _CMP_GE_OQ));
  return propagate_nan_ps(y, x);
}

// 0.5 x (1 + erf(x / sqrt(2))): Hugging Face "gelu", PyTorch F.gelu(approximate="none").
inline __m256 gelu_erf_ps(__m256 x) {
  const __m256 half_x = _mm256_mul_ps(x, _mm256_set1_ps(0.5f));
  const __m256 e = erf_ps(_mm256_mul_ps(x, _mm256_set1_ps(0.70710678118654752440f)));
  return _mm256_fmadd_ps(half_x, e, half_x);
}

// 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))): Hugging Face "gelu_new" / "gelu_pytorch_tanh".
inline __m256 gelu_tanh_ps(__m256 x) {
  const __m256 x2 = _mm256_mul_ps(x, x);
  const __m256 inner =
      _mm256_mul_ps(_mm256_mul_ps(x, _mm256_set1_ps(0.79788456080286535588f)),
                    _mm256_fmadd_ps(x2, _mm256_set1_ps(0.044715f), _mm256_set1_ps(1.0f)));
  const __m256 half_x = _mm256_mul_ps(x, _mm256_set1_ps(0.5f));
  return _mm256_fmadd_ps(half_x, tanh_ps(inner), half_x);
}

inline __m256 relu_ps(__m256 x) { return _mm256_max_ps(x, _mm256_setzero_ps()); }

}  // namespace octet::kernels::avx2
