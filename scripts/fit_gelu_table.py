#!/usr/bin/env python3
"""Coefficients of the AVX-512 erf-GELU (kernels/avx512/math_avx512.h, gelu_erf_ps).

GELU(x) = x Phi(x) satisfies GELU(x) = max(x, 0) + g(|x|) with g(a) = GELU(-a) = -a Phi(-a), a
smooth bump on a >= 0 that is below 6e-9 in magnitude from a = 6 on. The kernel evaluates g from
a table: interval i = floor(4 a) (width 1/4, i < 24), a degree-4 polynomial in t = a - c_i with
c_i the interval's centre (c_0 = 0, so that g(a) = a (-1/2 + a (...)) keeps its relative accuracy
as a -> 0); i >= 24 gives g = 0. Each coefficient is looked up with one vpermt2ps from a 32-entry
table: 4 FMAs and ~16 other operations per 16 values instead of the ~17 multiplies and a division
of the rational erf.

Each interval is a least-squares fit in double precision on 600 Chebyshev nodes against
math.erfc (g(a) = -a erfc(a / sqrt 2) / 2); interval 0 fixes c0 = 0 and c1 = -1/2 (the exact
Taylor terms) and fits the rest to (g(a) + a / 2) / a^2. The script then evaluates the float32
coefficients by Horner in float32 on a dense grid of each interval and reports the largest
absolute error of g (1.8e-7, in interval 0; 6e-8 elsewhere).

    /usr/bin/python3 scripts/fit_gelu_table.py > /tmp/table.inc   # the C++ initialiser, then
    paste it into kGeluErfTable in src/kernels/avx512/math_avx512.h.
"""
import math
import sys

import numpy as np

WIDTH = 0.25
INTERVALS = 24
DEGREE = 4
ENTRIES = 32  # one vpermt2ps: two zmm of 16 floats


def g(a):
    return -a * 0.5 * math.erfc(a / math.sqrt(2.0))


def main():
    coef, centres, worst = [], [], 0.0
    for i in range(INTERVALS):
        lo, hi = i * WIDTH, (i + 1) * WIDTH
        c = 0.0 if i == 0 else lo + WIDTH / 2
        k = np.arange(600)
        xs = lo + (hi - lo) * (0.5 - 0.5 * np.cos(np.pi * (k + 0.5) / 600))
        ys = np.array([g(x) for x in xs])
        ts = xs - c
        if i == 0:
            a = np.stack([ts**p for p in range(DEGREE - 1)], 1)
            rest = np.linalg.lstsq(a, (ys + xs / 2) / xs**2, rcond=None)[0]
            cc = np.concatenate([[0.0, -0.5], rest])
        else:
            a = np.stack([ts**p for p in range(DEGREE + 1)], 1)
            cc = np.linalg.lstsq(a, ys, rcond=None)[0]
        cf = cc.astype(np.float32)
        coef.append(cf)
        centres.append(np.float32(c))
        xt = np.linspace(lo, hi, 20001).astype(np.float32)
        t = (xt - np.float32(c)).astype(np.float32)
        p = np.full_like(t, cf[DEGREE])
        for d in range(DEGREE - 1, -1, -1):
            p = (p * t + cf[d]).astype(np.float32)
        err = float(np.max(np.abs(p - np.array([g(float(x)) for x in xt]))))
        worst = max(worst, err)
    print(f"fit_gelu_table: largest absolute error of g in float32: {worst:.3g}", file=sys.stderr)
    rows = [centres] + [[c[d] for c in coef] for d in range(DEGREE + 1)]
    names = ["centre"] + [f"c{d}" for d in range(DEGREE + 1)]
    for name, row in zip(names, rows):
        vals = list(row) + [0.0] * (ENTRIES - len(row))
        print(f"    // {name}")
        print("    {" + ", ".join(f"{float(v):.9e}f" for v in vals) + "},")


if __name__ == "__main__":
    main()
