#!/usr/bin/python3
"""Independent float64 reference for Octet's integer-only (I-BERT) kernels (golden fixtures).

Restates, in numpy float64, the arithmetic of the I-BERT reference code (Hugging Face
transformers `models/ibert/quant_modules.py`: IntGELU, IntSoftmax, IntLayerNorm, QuantAct /
FixedPointMul with batch_frexp; the fairseq `ibert` branch computes the same), on integer inputs
and float32 scales drawn with a fixed seed. The reference simulates integers in floating point;
the inputs here are kept small enough that every intermediate stays below 2^53, where float64 is
exact, except where noted. Written from QUANT_SPEC section B, not copied.

Known, documented differences from Octet's kernels (docs/integer_only.md), which the golden test
(tests/golden/integer_golden_test.cc) checks with the stated tolerance:
  * softmax: the reference requantizes exp to 16 bits with a QuantAct whose scale is
    float32(max(exp_int) / 32767) and feeds integers through float multiplies; Octet uses the
    exact dyadic 32767 / c_int. exp16 and the softmax may differ by 1; Octet saturates 256 to 255.
  * LayerNorm: the reference uses floor(sqrt(var)) in floating point; exact here (var < 2^52),
    so Octet's integer square root must agree exactly. sqrt(C) is float64 here (float32 in HF).
  * i-GELU, residual requantization: expected to agree exactly (Octet's i-GELU output is the
    negation of the reference's, its scale positive).

Output: OUT/ibert_golden.json, one object per case:
  {"op": "igelu", "rows", "cols", "scale": [cols], "x": [...], "q": [...]}
  {"op": "softmax", "rows", "cols", "scale", "x": [...], "exp16": [...], "y": [...]}
  {"op": "layernorm", "rows", "cols", "shift", "gamma", "beta", "x", "y"}
  {"op": "residual", "rows", "cols", "bits", "scale_x": [cols], "scale_r" (or null), "scale_out",
   "x", "r", "y"}
Usage: ibert_reference.py --out DIR. Needs numpy only (Debian's /usr/bin/python3).
"""
import argparse
import decimal
import json
import math
import os

import numpy as np


def f32(v):
    return float(np.float32(v))


# ---- HF quant_modules.py, restated in float64 ----


def batch_frexp(x, max_bit=31):
    m, e = np.frexp(x)
    out_m = np.array([int(decimal.Decimal(float(v) * 2.0 ** max_bit).quantize(
        decimal.Decimal(1), rounding=decimal.ROUND_HALF_UP)) for v in np.ravel(m)], dtype=np.float64)
    return out_m.reshape(np.shape(x)), float(max_bit) - e


def fixedpoint_mul(z_int, pre_sf, bits, z_sf, identity=None, identity_sf=None):
    """FixedPointMul.forward on integer-valued inputs (z_int already = pre_act / pre_act_sf)."""
    n = 2 ** (bits - 1) - 1
    new_scale = np.asarray(pre_sf, dtype=np.float64) / float(np.float32(z_sf))
    m, e = batch_frexp(new_scale)
    out = np.round(z_int * m / 2.0 ** e)
    if identity is not None:
        new_scale1 = np.asarray(identity_sf, dtype=np.float64) / float(np.float32(z_sf))
        m1, e1 = batch_frexp(new_scale1)
        out = out + np.round(identity * m1 / 2.0 ** e1)
    return np.clip(out, -n - 1, n)


def int_gelu(x_int, scale):
    k, const = 1.4142, 14
    a, b, c = -0.2888, -1.769, 1.0
    c = c / a
    sf = scale / k
    b_int = np.floor(b / sf)
    c_int = np.floor(c / sf ** 2)
    sign = np.sign(x_int)
    abs_int = np.minimum(np.abs(x_int), -b_int)
    y_int = sign * ((abs_int + b_int) ** 2 + c_int)
    sig_sf = sf ** 2 * a
    y_int = np.floor(y_int / 2 ** const)
    sig_sf = sig_sf * 2 ** const
    shift_int = np.floor_divide(1.0, sig_sf)
    return x_int * (y_int + shift_int)


def int_softmax(x_int, scale):
    x0, const = -0.6931, 30
    coef = [0.35815147, 0.96963238, 1.0]
    coef[1] /= coef[0]
    coef[2] /= coef[0]
    x_int = x_int - x_int.max(axis=-1, keepdims=True)
    x0_int = np.floor(x0 / scale)
    x_int = np.maximum(x_int, const * x0_int)
    q = np.floor(x_int / x0_int)
    r = x_int - x0_int * q
    b_int = np.floor(coef[1] / scale)
    c_int = np.floor(coef[2] / scale ** 2)
    z = (r + b_int) * r + c_int
    exp_sf = coef[0] * scale ** 2
    exp_int = np.maximum(np.floor(z * 2.0 ** (const - q)), 0)
    exp_sf = exp_sf / 2 ** const
    # QuantAct(16) fed with exp_int as if it were a real value (HF #26767); its range is this
    # batch's (the EMA starts from it), so the scale is max|exp_int| / 32767 in float32.
    act_sf = f32(max(abs(exp_int.min()), abs(exp_int.max()), 1e-8) / 32767)
    z_int = np.round(exp_int / exp_sf)
    exp16 = fixedpoint_mul(z_int, exp_sf, 16, act_sf)
    exp = exp16 * act_sf
    exp_int = exp / act_sf
    s = exp_int.sum(axis=-1, keepdims=True)
    factor = np.floor(2.0 ** 32 / s)
    y = np.floor(exp_int * factor / 2.0 ** 24)
    return exp16, y


def int_layernorm(x_int, gamma, beta, shift):
    c = x_int.shape[-1]
    dim_sqrt = math.sqrt(c)
    mean_int = np.round(x_int.mean(axis=-1, keepdims=True))
    y_int = x_int - mean_int
    y_sh = np.floor(y_int / 2 ** shift)
    var_int = (y_sh ** 2).sum(axis=-1, keepdims=True)
    assert var_int.max() < 2.0 ** 52
    std_int = np.floor(np.sqrt(var_int)) * 2 ** shift
    factor = np.floor(2 ** 31 / std_int)
    y_int = np.floor(y_int * factor / 2)
    sf = dim_sqrt / 2 ** 30
    bias_int = np.floor((beta.astype(np.float64) / gamma.astype(np.float64)) / sf)
    return y_int + bias_int


def set_shift(x_int):
    """IntLayerNorm.set_shift (training-time overflow fallback) on the unshifted data."""
    mean_int = np.round(x_int.mean(axis=-1, keepdims=True))
    y = x_int - mean_int
    var = (y ** 2).sum(axis=-1, keepdims=True)
    if var.max() < 2.0 ** 32:
        return 0
    return int(max(0.0, np.ceil(np.log2(np.sqrt(var / 2 ** 32))).max()))


# ---- Cases ----


def ints(a):
    return [int(v) for v in np.ravel(a)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    rng = np.random.default_rng(20210101)
    cases = []

    # i-GELU: FC1 accumulators with per-channel scales; real inputs within +-6.
    for rows, cols in ((37, 16), (8, 771)):
        scale = np.exp(rng.uniform(math.log(1e-4), math.log(2e-2), cols)).astype(np.float32)
        lim = np.floor(6.0 / scale.astype(np.float64))
        x = np.floor(rng.uniform(-1, 1, (rows, cols)) * lim)
        x[0, :] = 0
        x[1, :] = np.floor(1.769 * 1.4142 / scale)  # at the erf clip boundary
        q = int_gelu(x, scale.astype(np.float64))
        assert np.abs(q).max() < 2.0 ** 53
        cases.append({"op": "igelu", "rows": rows, "cols": cols,
                      "scale": [float(s) for s in scale], "x": ints(x), "q": ints(q)})

    # i-softmax: attention scores with a per-tensor scale.
    for scale, rows, cols, spread in ((5e-4, 24, 40, 8.0), (2e-3, 16, 128, 12.0),
                                      (1e-2, 16, 33, 20.0), (5e-2, 8, 17, 4.0)):
        s = f32(scale)
        x = np.floor(rng.normal(0, spread / 3, (rows, cols)) / s)
        x[0, :] = 7  # a constant row
        x[1, 3] = x[1].max() + np.floor(30 / s)  # a nearly one-hot row
        exp16, y = int_softmax(x, s)
        cases.append({"op": "softmax", "rows": rows, "cols": cols, "scale": s, "x": ints(x),
                      "exp16": ints(exp16), "y": ints(y)})

    # i-LayerNorm: residual sums (22-bit in I-BERT; kept within +-2^20 here).
    for rows, cols, mag in ((12, 64, 2 ** 12), (6, 768, 2 ** 19), (4, 768, 2 ** 20)):
        x = np.floor(rng.normal(0, mag / 3, (rows, cols))).clip(-2 ** 20, 2 ** 20)
        x[-1, :] = 1234  # a constant row (Octet guards std = 0; HF would divide by zero)
        gamma = rng.uniform(0.5, 1.5, cols).astype(np.float32)
        beta = rng.uniform(-0.5, 0.5, cols).astype(np.float32)
        shift = set_shift(x[:-1])
        y = int_layernorm(x[:-1], gamma, beta, shift)
        cases.append({"op": "layernorm", "rows": rows - 1, "cols": cols, "shift": shift,
                      "gamma": [float(v) for v in gamma], "beta": [float(v) for v in beta],
                      "x": ints(x[:-1]), "y": ints(y)})

    # Residual additions (QuantAct with identity) and plain requantization.
    for rows, cols, bits, with_r in ((9, 20, 8, True), (7, 33, 16, True), (5, 768, 22, True),
                                     (6, 17, 8, False)):
        scale_x = np.exp(rng.uniform(math.log(1e-5), math.log(1e-3), cols)).astype(np.float32)
        scale_out = f32(rng.uniform(0.01, 0.05) if bits == 8 else rng.uniform(1e-4, 1e-3))
        x = np.floor(rng.uniform(-2 ** 20, 2 ** 20, (rows, cols)))
        r = np.floor(rng.uniform(-128, 128, (rows, cols))) if with_r else None
        s_r = f32(rng.uniform(0.02, 0.1)) if with_r else None
        y = fixedpoint_mul(x, scale_x.astype(np.float64), bits, scale_out,
                           identity=r, identity_sf=s_r)
        cases.append({"op": "residual", "rows": rows, "cols": cols, "bits": bits,
                      "scale_x": [float(v) for v in scale_x], "scale_r": s_r,
                      "scale_out": scale_out, "x": ints(x),
                      "r": ints(r) if with_r else None, "y": ints(y)})

    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "ibert_golden.json")
    with open(path + ".tmp", "w") as f:
        json.dump({"cases": cases}, f)
    os.replace(path + ".tmp", path)
    print(f"ibert_reference: {len(cases)} cases -> {path}")


if __name__ == "__main__":
    main()
