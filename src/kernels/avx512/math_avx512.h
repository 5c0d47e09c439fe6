// Vectorised elementwise math on __m512 (16 floats): exp, erf, tanh and the two GELU forms.
// Include only from files built with the AVX-512 flags (F, BW, VL, DQ).
//
// The same algorithms, coefficients and accuracy as kernels/avx2/math_avx2.h (see there):
// measured max relative error exp 1.2e-7, erf 4.4e-7, tanh 2.9e-7. Lane-for-lane exp, erf, tanh
// and the tanh GELU equal the AVX2 versions (same operation order, FMA everywhere). The erf GELU
// is this file's own (a table of polynomials, see gelu_erf_ps; the AVX2 one is the rational
// erf's): max absolute error 1.8e-7 * max(1, |x|), the AVX2 one 2.5e-7.
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

// GELU(x) = max(x, 0) + g(|x|) with g(a) = GELU(-a) = -a Phi(-a), g from a table of degree-4
// polynomials on intervals of width 1/4 (scripts/fit_gelu_table.py made the coefficients and
// explains the fit): row 0 the intervals' centres, rows 1-5 the coefficients c0..c4 of
// p(t) = c0 + c1 t + ... + c4 t^4, t = a - centre; entry 24 (a >= 6, where |g| < 6e-9) is all
// zeros, so g = 0 there. 32 entries: one vpermt2ps per row.
alignas(64) inline constexpr float kGeluErfTable[6][32] = {
    // centre
    {0.000000000e+00f, 3.750000000e-01f, 6.250000000e-01f, 8.750000000e-01f, 1.125000000e+00f,
     1.375000000e+00f, 1.625000000e+00f, 1.875000000e+00f, 2.125000000e+00f, 2.375000000e+00f,
     2.625000000e+00f, 2.875000000e+00f, 3.125000000e+00f, 3.375000000e+00f, 3.625000000e+00f,
     3.875000000e+00f, 4.125000000e+00f, 4.375000000e+00f, 4.625000000e+00f, 4.875000000e+00f,
     5.125000000e+00f, 5.375000000e+00f, 5.625000000e+00f, 5.875000000e+00f, 0.000000000e+00f,
     0.000000000e+00f, 0.000000000e+00f, 0.000000000e+00f, 0.000000000e+00f, 0.000000000e+00f,
     0.000000000e+00f, 0.000000000e+00f},
    // c0
    {0.000000000e+00f,  -1.326863319e-01f, -1.662409604e-01f, -1.669385880e-01f, -1.465813369e-01f,
     -1.162778661e-01f, -8.463207632e-02f, -5.699317902e-02f, -3.568577766e-02f, -2.083937824e-02f,
     -1.137267705e-02f, -5.807895213e-03f, -2.778203925e-03f, -1.245639753e-03f, -5.237426376e-04f,
     -2.065853769e-04f, -7.646405720e-05f, -2.656336437e-05f, -8.662593245e-06f, -2.652208650e-06f,
     -7.624415730e-07f, -2.058163915e-07f, -5.217427201e-08f, -1.242107395e-08f, 0.000000000e+00f,
     0.000000000e+00f,  0.000000000e+00f,  0.000000000e+00f,  0.000000000e+00f,  0.000000000e+00f,
     0.000000000e+00f,  0.000000000e+00f},
    // c1
    {-5.000000000e-01f, -2.143860310e-01f, -6.088672578e-02f, 4.725963622e-02f, 1.080658510e-01f,
     1.285760403e-01f,  1.210438535e-01f,  9.857858717e-02f,  7.186441869e-02f, 4.768422991e-02f,
     2.906874754e-02f,  1.637451351e-02f,  8.555496112e-03f,  4.157133400e-03f, 1.882057986e-03f,
     7.950055297e-04f,  3.136671439e-04f,  1.156887738e-04f,  3.991388803e-05f, 1.288841668e-05f,
     3.896798262e-06f,  1.103587465e-06f,  2.928386493e-07f,  7.282572057e-08f, 0.000000000e+00f,
     0.000000000e+00f,  0.000000000e+00f,  0.000000000e+00f,  0.000000000e+00f, 0.000000000e+00f,
     0.000000000e+00f,  0.000000000e+00f},
    // c2
    {3.989443779e-01f,  3.457082510e-01f,  2.640669942e-01f,  1.679095775e-01f,  7.779937983e-02f,
     8.478059433e-03f,  -3.412505984e-02f, -5.212700740e-02f, -5.247734860e-02f, -4.327255860e-02f,
     -3.111484088e-02f, -2.004426345e-02f, -1.173492707e-02f, -6.296981592e-03f, -3.114130581e-03f,
     -1.424744143e-03f, -6.046650233e-04f, -2.385351690e-04f, -8.760448691e-05f, -2.998946366e-05f,
     -9.578685422e-06f, -2.856838819e-06f, -7.961517099e-07f, -2.074326346e-07f, 0.000000000e+00f,
     0.000000000e+00f,  0.000000000e+00f,  0.000000000e+00f,  0.000000000e+00f,  0.000000000e+00f,
     0.000000000e+00f,  0.000000000e+00f},
    // c3
    {-1.350208331e-04f, -8.932256699e-02f, -1.229193211e-01f, -1.279296726e-01f, -1.084079221e-01f,
     -7.490536571e-02f, -3.933782130e-02f, -1.058601774e-02f, 7.456426509e-03f,  1.532545034e-02f,
     1.603543945e-02f,  1.306350622e-02f,  9.084669873e-03f,  5.591819528e-03f,  3.102593124e-03f,
     1.568348962e-03f,  7.272120565e-04f,  3.107418597e-04f,  1.227750618e-04f,  4.496511610e-05f,
     1.529432302e-05f,  4.838731911e-06f,  1.425637038e-06f,  3.915580749e-07f,  0.000000000e+00f,
     0.000000000e+00f,  0.000000000e+00f,  0.000000000e+00f,  0.000000000e+00f,  0.000000000e+00f,
     0.000000000e+00f,  0.000000000e+00f},
    // c4
    {-6.540843844e-02f, -4.689574242e-02f, -1.938674040e-02f, 8.657660335e-03f,  2.860055864e-02f,
     3.641548753e-02f,  3.326261044e-02f,  2.362880483e-02f,  1.257802453e-02f,  3.679123707e-03f,
     -1.680127927e-03f, -3.829171648e-03f, -3.893471090e-03f, -3.016623901e-03f, -1.975691412e-03f,
     -1.138166757e-03f, -5.883322447e-04f, -2.760530624e-04f, -1.184498760e-04f, -4.671514398e-05f,
     -1.699636414e-05f, -5.720389254e-06f, -1.784807523e-06f, -5.171145858e-07f, 0.000000000e+00f,
     0.000000000e+00f,  0.000000000e+00f,  0.000000000e+00f,  0.000000000e+00f,  0.000000000e+00f,
     0.000000000e+00f,  0.000000000e+00f},
};

// 0.5 x (1 + erf(x / sqrt(2))): Hugging Face "gelu", PyTorch F.gelu(approximate="none"), as
// max(x, 0) + g(|x|) (kGeluErfTable). About 20 operations per 16 values, of which 4 FMAs on the
// multiply pipes, against ~17 multiplies and a division for the rational erf: 13.3-13.7 against
// 19.2 cycles per 16 values with the data in L1 (Zen 4, one core). The interval index
// (vscalefps, vcvttps2dq, vpminud) runs on the other pipes (bench/pipes.cc); vpermt2ps costs ~0.8
// of a multiply-pipe slot there, and 16-entry vpermps lookups (free) with intervals of 1/2 and
// degree 5 measured slower (14.3): one more FMA and lookup. Absolute error 1.8e-7 at most
// (max(1, |x|) relative: 1.8e-7, the rational's 2.1e-7). Special values as the reference's
// formula: +inf -> +inf, -inf -> NaN (-inf * 0), NaN -> NaN.
inline __m512 gelu_erf_ps(__m512 x) {
  const float(&tab)[6][32] = kGeluErfTable;
  const __m512 a = _mm512_abs_ps(x);
  // floor(4 a), at most 24 (vcvttps2dq gives 0x80000000 for a >= 2^31, inf and NaN).
  const __m512i i = _mm512_min_epu32(_mm512_cvttps_epi32(_mm512_scalef_ps(a, _mm512_set1_ps(2.0f))),
                                     _mm512_set1_epi32(24));
  const auto lookup = [&](int row) {
    return _mm512_permutex2var_ps(_mm512_load_ps(tab[row]), i, _mm512_load_ps(tab[row] + 16));
  };
  // min(8, a): finite t for a = inf (entry 24: 0 * t = 0); a NaN a stays NaN (vminps returns
  // its second operand when one is NaN) and makes the result NaN.
  const __m512 t = _mm512_sub_ps(_mm512_min_ps(_mm512_set1_ps(8.0f), a), lookup(0));
  __m512 p = _mm512_fmadd_ps(lookup(5), t, lookup(4));
  p = _mm512_fmadd_ps(p, t, lookup(3));
  p = _mm512_fmadd_ps(p, t, lookup(2));
  p = _mm512_fmadd_ps(p, t, lookup(1));
  const __m512 y = _mm512_add_ps(p, _mm512_max_ps(x, _mm512_setzero_ps()));
  return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, _mm512_set1_ps(-__builtin_inff()), _CMP_EQ_OQ),
                              y, _mm512_set1_ps(__builtin_nanf("")));
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
