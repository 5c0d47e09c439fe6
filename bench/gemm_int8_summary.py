#!/usr/bin/python3
"""Summarises gemm_int8_bench JSON output as the table docs/kernels.md shows.

  build/bench/gemm_int8_bench --benchmark_out=gemm.json --benchmark_out_format=json
  /usr/bin/python3 bench/gemm_int8_summary.py gemm.json

Per entry the fastest single call is used (single thread: thread CPU time, which survives other
load on a shared machine; two threads: wall time), for oneDNN and Octet alike. With --median,
each entry is instead the median over the benchmark's repetitions (--benchmark_repetitions) of
its mean time per call (the same clocks), the peak likewise. Columns: GOP/s of each entry, Octet
u8_f32 (the dequantize epilogue) over oneDNN, and its fraction of the vpdpbusd peak times the
thread count.
"""
import collections
import json
import statistics
import sys


def main(path, median=False):
    data = json.load(open(path))
    peak = None
    amx_peak = None
    best = collections.OrderedDict()
    reps = collections.defaultdict(list)  # --median: (key, kind) or peak name -> GOP/s per repetition
    speedup = {}
    for b in data['benchmarks']:
        if b.get('error_occurred'):
            print('ERROR', b['name'], b.get('error_message'))
            continue
        if b.get('run_type') == 'aggregate':
            continue
        name = b['name']
        if name.startswith('Peak'):
            if median:
                reps[name.split('/')[0]].append(b['ops'])
                continue
            rate = b['ops_per_call'] / (b['best_us'] * 1e-6) if 'best_us' in b else b['ops']
            if name.startswith('PeakAmx'):
                amx_peak = max(amx_peak or 0.0, rate)
            else:
                peak = max(peak or 0.0, rate)
            continue
        m, n, k, t = (int(b[c]) for c in ('M', 'N', 'K', 'threads'))
        if 'best_us' in b and not median:  # fastest single call (see timed_loop in the benchmark)
            seconds = b['best_us'] * 1e-6
        else:
            seconds = (b['real_time'] if t > 1 else b['cpu_time']) * 1e-6  # microseconds
        kind = name.split('/M:')[0]
        key = (t, k, n, m)
        gops = 2.0 * m * n * k / seconds / 1e9
        best.setdefault(key, {})
        if median:
            reps[(key, kind)].append(gops)
        else:
            best[key][kind] = max(best[key].get(kind, 0.0), gops)
        if 'busiest_thread_speedup' in b:
            speedup[key] = max(speedup.get(key, 0.0), b['busiest_thread_speedup'])
    if median:  # one median per entry and per peak, over all its repetitions
        for r, values in reps.items():
            if r == 'PeakAmx':
                amx_peak = statistics.median(values)
            elif isinstance(r, str):
                peak = statistics.median(values)
            else:
                best[r[0]][r[1]] = statistics.median(values)
    kinds = []
    for v in best.values():
        kinds += [k for k in v if k not in kinds]
    print('vpdpbusd peak, one core: %.0f GOP/s' % (peak / 1e9 if peak else float('nan')))
    if amx_peak:
        print('tdpbusd peak (AMX), one core: %.0f GOP/s' % (amx_peak / 1e9))
    both = 'Octet/amx/u8_f32' in kinds and 'Octet/avx512_vnni/u8_f32' in kinds
    print('| threads | K | N | M | ' + ' | '.join(k.replace('Octet/', '') for k in kinds) +
          ' | u8_f32 / oneDNN | of peak |' + (' amx / vnni (u8_f32) |' if both else '') +
          ' busiest-thread speed-up |')
    print('|' + ' --- |' * (len(kinds) + 7 + (1 if both else 0)))
    for (t, k, n, m), v in best.items():
        onednn = v.get('oneDNN/u8s8s32')
        ours = next((x for kk, x in v.items() if kk.endswith('u8_f32')), None)
        ratio = ours / onednn if ours and onednn else float('nan')
        # The AMX entries against the AMX peak, the others against the vpdpbusd peak.
        top = amx_peak if both or (amx_peak and 'Octet/amx/u8_f32' in v) else peak
        frac = ours / (top / 1e9 * t) if ours and top else float('nan')
        amx_vnni = ''
        if both:
            a, w = v.get('Octet/amx/u8_f32'), v.get('Octet/avx512_vnni/u8_f32')
            amx_vnni = ' %.2f |' % (a / w) if a and w else ' - |'
        sp = speedup.get((t, k, n, m))
        print('| %d | %d | %d | %d | ' % (t, k, n, m) +
              ' | '.join('%.0f' % v[kk] if kk in v else '-' for kk in kinds) +
              ' | %.2f | %.2f |%s %s |' % (ratio, frac, amx_vnni, '%.2f' % sp if sp else '-'))


if __name__ == '__main__':
    args = [a for a in sys.argv[1:] if a != '--median']
    if len(args) != 1:
        sys.exit('usage: gemm_int8_summary.py [--median] GEMM_JSON')
    main(args[0], median='--median' in sys.argv[1:])
