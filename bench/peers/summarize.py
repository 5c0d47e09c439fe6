#!/usr/bin/python3
"""Reads the JSON files bench/compare.sh leaves in its work directory, checks that every system
agrees with Octet FP32, prints one table and writes docs/results/speed.md.

  summarize.py --work DIR --check-only          exit 1 if any system disagrees (compare.sh step 2)
  summarize.py --work DIR --out FILE --model DIR --seq 128 --batches "1 8" --threads "1 2" ...

Agreement (on the check_* files: CHECK_BATCH random sequences, one thread): FP32 systems'
logits within 1e-3 of Octet FP32, relative to the largest |logit| (max |a - b| / max |b|);
INT8 systems' predicted labels agree with Octet FP32's on >= 99% of the sequences and their
logits have cosine >= 0.99 with Octet FP32's. Timing (time_* files): all timed passes of a
configuration pooled over the rounds; median and p90 milliseconds per call; sequences/s from
the median; peak RSS (max over rounds) of each fresh process.
"""
import argparse
import datetime
import glob
import json
import math
import os
import platform
import re
import statistics
import subprocess
import sys

# int8q: Octet INT8 loaded from a quantized model directory (octet quantize --activations dynamic).
# int8a: Octet INT8 with the attention matmuls on int8 too (--attention int8, Bhandare et al.).
SYSTEMS = [("octet", "fp32"), ("octet", "int8"), ("octet", "int8q"), ("octet", "int8a"),
           ("pytorch", "fp32"),
           ("pytorch", "int8"),
           ("onnxruntime", "fp32"), ("onnxruntime", "int8")]
LABEL = {"octet": "Octet", "pytorch": "PyTorch", "onnxruntime": "ONNX Runtime"}
PREC = {"fp32": "fp32", "int8": "int8", "int8q": "int8 (quantized dir)",
        "int8a": "int8, int8 attention"}
# The compute floor uses the single-core peaks bench/compare.sh measured in the same run
# (bench/peers/peak.cc, --peak FILE): the dense layers at the vpdpbusd peak (INT8) or the FP32
# FMA peak, the attention matmuls at the FMA peak where they run in FP32 (every system but
# int8a) and at the vpdpbusd peak where they run on int8 (int8a).
DENSE_PEAK = {"int8": "vpdpbusd_ops_per_s", "int8q": "vpdpbusd_ops_per_s",
              "int8a": "vpdpbusd_ops_per_s", "fp32": "fma_f32_flops_per_s"}
ATTN_PEAK = {"int8a": "vpdpbusd_ops_per_s"}


def load(path):
    with open(path) as f:
        return json.load(f)


def argmax_rows(v, labels):
    return [max(range(labels), key=lambda k: v[i * labels + k]) for i in range(len(v) // labels)]


def check(work):
    ref = load(os.path.join(work, "check_octet_fp32.logits.json"))
    labels = ref["num_labels"]
    r = ref["logits"]
    ids = ref["input_ids"]
    rows, ok = [], True
    scale = max(abs(x) for x in r) or 1.0
    ref_pred = argmax_rows(r, labels)
    for sys_, prec in SYSTEMS[1:]:
        d = load(os.path.join(work, f"check_{sys_}_{prec}.logits.json"))
        if sys_ == "octet" and d["input_ids"] != ids:
            sys.exit("summarize: Octet's FP32 and INT8 check runs saw different inputs")
        a = d["logits"]
        if len(a) != len(r):
            rows.append((sys_, prec, f"{len(a)} logits, expected {len(r)}", False))
            ok = False
            continue
        if prec == "fp32":
            rel = max(abs(x - y) for x, y in zip(a, r)) / scale
            good = rel <= 1e-3
            rows.append((sys_, prec, f"max |diff| / max |logit| = {rel:.2e} (<= 1e-3)", good))
        else:
            pred = argmax_rows(a, labels)
            agree = sum(p == q for p, q in zip(pred, ref_pred)) / len(pred)
            dot = sum(x * y for x, y in zip(a, r))
            cos = dot / (math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in r)) or 1)
            good = agree >= 0.99 and cos >= 0.99
            rows.append((sys_, prec, f"labels agree {agree:.1%} (>= 99%), cosine {cos:.5f} "
                         f"(>= 0.99)", good))
        ok &= good
    n = len(ids)
    lines = [f"Agreement with Octet FP32 on {n} random sequences of {len(ids[0])} tokens "
             f"(one thread):", "", "| system | precision | check | result |",
             "| --- | --- | --- | --- |"]
    for sys_, prec, text, good in rows:
        lines.append(f"| {LABEL[sys_]} | {PREC[prec]} | {text} | {'pass' if good else '**FAIL**'} |")
    return ok, lines


def sh(cmd):
    try:
        return subprocess.run(cmd, shell=True, capture_output=True, text=True,
                              timeout=60).stdout.strip() or "?"
    except Exception:  # noqa: BLE001 - version strings are best effort
        return "?"


def ops_per_sequence(model_dir, seq):
    """(dense, attention) operations per sequence: the Linear layers, 2 x layers x seq x
    (4 H^2 + 2 H I), and the score and context matmuls, 4 x layers x seq^2 x H."""
    c = load(os.path.join(model_dir, "config.json"))
    h, i, n = c["hidden_size"], c["intermediate_size"], c["num_hidden_layers"]
    return 2 * n * seq * (4 * h * h + 2 * h * i), 4 * n * seq * seq * h


def skipped_per_sequence(model_dir, seq):
    """Dense operations per sequence Octet does not run when asked for logits: the last layer's
    FFN out (2 x H x I per token) on every row but the first of each sequence (layers::
    EncoderScratch::first_rows_only; the logits are bit-identical). Assumes what compare.sh
    times: a classifier (its random models have one), `octet bench` asking for logits."""
    c = load(os.path.join(model_dir, "config.json"))
    return 2 * c["hidden_size"] * c["intermediate_size"] * (seq - 1)


def floor_ms(dense, attn, peak, prec, b, t):
    """Milliseconds the operations of b sequences take at the measured peaks on t cores."""
    attn_peak = peak[ATTN_PEAK.get(prec, "fma_f32_flops_per_s")]
    return b * (dense / peak[DENSE_PEAK[prec]] + attn / attn_peak) / t * 1e3


def spread(values):
    """'; per round a-b' for the per-round values of a ratio (empty for fewer than 2 rounds)."""
    return f"; per round {min(values):.2f}-{max(values):.2f}x" if len(values) >= 2 else ""


def round_range(num, den):
    """The ratio num / den of the two systems' medians within each round where both ran. Rounds
    alternate the systems a few minutes apart, so this is the run's own spread of the ratio
    (slow drift of a shared machine moves both medians of a round together)."""
    rounds = set(num["by_round"]) & set(den["by_round"])
    return spread([num["by_round"][r] / den["by_round"][r] for r in rounds])


def floor_range(r, floor):
    """Each round's median of one system over the compute floor."""
    return spread([m / floor for m in r["by_round"].values()])


def paired_floor(r, floor_of, peaks):
    """Each round's median over the floor from the peaks measured right before it in that round
    (compare.sh's peak_b<B>_t<T>_r<round>.json; `peaks` maps round -> peak JSON): a machine whose
    core another tenant shares slows the peak and the timing alike, which the run-start floor
    does not see. Empty when no round has its own peaks."""
    rounds = sorted(k for k in r["by_round"] if k in peaks)
    if not rounds:
        return ""
    vals = [r["by_round"][k] / floor_of(peaks[k]) for k in rounds]
    gops = [peaks[k]["vpdpbusd_ops_per_s"] / 1e9 for k in rounds]
    return (f"; paired with the peaks measured in each round (vpdpbusd {min(gops):.0f}-"
            f"{max(gops):.0f} GOP/s): median **{statistics.median(vals):.3f}x**, rounds "
            f"{min(vals):.2f}-{max(vals):.2f}x")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", required=True)
    ap.add_argument("--check-only", action="store_true")
    ap.add_argument("--out")
    ap.add_argument("--model")
    ap.add_argument("--model-desc", default="")
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--batches", default="1 8")
    ap.add_argument("--threads", default="1 2")
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--command", default="bench/compare.sh")
    ap.add_argument("--octet", default="octet")
    ap.add_argument("--peak", help="JSON of bench/peers/peak.cc (measured in the same run)")
    args = ap.parse_args()
    ok, check_lines = check(args.work)
    if args.check_only:
        print("\n".join(check_lines), file=sys.stderr)
        if not ok:
            print("summarize: a system disagrees with Octet FP32: timing skipped", file=sys.stderr)
        return 0 if ok else 1

    batches = [int(b) for b in args.batches.split()]
    threads = [int(t) for t in args.threads.split()]
    dense, attn = ops_per_sequence(args.model, args.seq)
    skipped = skipped_per_sequence(args.model, args.seq)
    ops = dense + attn
    if not args.peak:
        sys.exit("summarize: --peak FILE (bench/peers/peak.cc's output) is required for the floor")
    def load_peak(path):
        p = load(path)
        for key in ("vpdpbusd_ops_per_s", "fma_f32_flops_per_s"):
            if not isinstance(p.get(key), (int, float)) or p[key] <= 0:
                sys.exit(f"summarize: {path}: {key} is {p.get(key)!r}; expected a measured "
                         f"rate > 0 (this CPU cannot run that stream?)")
        return p

    peak = load_peak(args.peak)
    # Peaks measured in each round: (batch, threads) -> {round: peak JSON}.
    round_peaks = {}
    for f in glob.glob(os.path.join(args.work, "peak_b*_t*_r*.json")):
        m = re.search(r"peak_b(\d+)_t(\d+)_r(\d+)\.json$", f)
        round_peaks.setdefault((int(m[1]), int(m[2])), {})[int(m[3])] = load_peak(f)
    res = {}
    for sys_, prec in SYSTEMS:
        for b in batches:
            for t in threads:
                files = glob.glob(os.path.join(args.work, f"time_{sys_}_{prec}_b{b}_t{t}_r*.json"))
                # By round number (time_..._r<round>.json).
                by_file = {int(re.search(r"_r(\d+)\.json$", f).group(1)): load(f)
                           for f in files if not f.endswith(".logits.json")}
                runs = list(by_file.values())
                if not runs:
                    continue
                times = [x for r in runs for x in r["times_ms"]]
                med = statistics.median(times)
                p90 = sorted(times)[min(len(times) - 1, int(round(0.9 * (len(times) - 1))))]
                by_round = {k: statistics.median(r["times_ms"]) for k, r in by_file.items()}
                res[(sys_, prec, b, t)] = {
                    "median": med, "p90": p90, "seq_s": b / (med / 1e3),
                    "rss": max(r["peak_rss_bytes"] for r in runs), "runs": runs, "n": len(times),
                    "by_round": by_round}

    table = ["| threads | batch | system | precision | median ms | p90 ms | sequences/s | GOP/s | "
             "x floor | peak RSS MiB | Octet speed-up (same precision) |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for t in threads:
        for b in batches:
            for sys_, prec in SYSTEMS:
                r = res.get((sys_, prec, b, t))
                if r is None:
                    continue
                o = res.get(("octet", prec, b, t))
                speed = "" if sys_ == "octet" or o is None else f"{r['median'] / o['median']:.2f}x"
                gops = ops * b / (r["median"] / 1e3) / 1e9
                fl = floor_ms(dense, attn, peak, prec, b, t)
                table.append(
                    f"| {t} | {b} | {LABEL[sys_]} | {PREC[prec]} | {r['median']:.1f} | {r['p90']:.1f} | "
                    f"{r['seq_s']:.2f} | {gops:.0f} | {r['median'] / fl:.2f} | "
                    f"{r['rss'] / 2**20:.0f} | {speed} |")

    # The targets, as measured.
    targets = []
    for t in threads:
        for b in batches:
            oi, of = res.get(("octet", "int8", b, t)), res.get(("octet", "fp32", b, t))
            oa = res.get(("octet", "int8a", b, t))
            ort = res.get(("onnxruntime", "int8", b, t))
            if oi and ort:
                targets.append(f"- {t} thread(s), batch {b}: Octet INT8 vs ONNX Runtime INT8: "
                               f"**{ort['median'] / oi['median']:.3f}x** (target >= 1.3x"
                               f"{round_range(ort, oi)})")
            if oa and ort:
                targets.append(f"- {t} thread(s), batch {b}: Octet INT8 with int8 attention vs "
                               f"ONNX Runtime INT8: **{ort['median'] / oa['median']:.3f}x** "
                               f"(target >= 1.3x{round_range(ort, oa)})")
            peers = [res.get((s, "fp32", b, t)) for s in ("pytorch", "onnxruntime")]
            peers = [p for p in peers if p]
            if of and peers:
                best = min(peers, key=lambda p: p["median"])
                targets.append(f"- {t} thread(s), batch {b}: fastest FP32 peer / Octet FP32: "
                               f"**{best['median'] / of['median']:.3f}x** (target >= 1.0x"
                               f"{round_range(best, of)})")
            rp = round_peaks.get((b, t), {})

            def over_floor(r, prec):
                """(floor ms, "**ratio** (target ...; per round, paired, over the floor of the
                operations run)") for Octet configuration r of precision prec."""
                fl = floor_ms(dense, attn, peak, prec, b, t)
                paired = paired_floor(r, lambda p: floor_ms(dense, attn, p, prec, b, t), rp)
                run = floor_ms(dense - skipped, attn, peak, prec, b, t)
                return fl, (f"**{r['median'] / fl:.3f}x** (target <= 1.2x{floor_range(r, fl)}"
                            f"{paired}; over the floor of the operations it runs: "
                            f"{r['median'] / run:.3f}x)")

            if oi:
                fl, text = over_floor(oi, "int8")
                targets.append(f"- {t} thread(s), batch {b}: Octet INT8 / compute floor "
                               f"({fl:.1f} ms: dense at {peak['vpdpbusd_ops_per_s'] / 1e9:.0f} "
                               f"GOP/s, attention at {peak['fma_f32_flops_per_s'] / 1e9:.0f} "
                               f"GFLOP/s per core, measured): {text}")
            if oa:
                fl, text = over_floor(oa, "int8a")
                fl_fma = floor_ms(dense, attn, peak, "int8", b, t)
                targets.append(f"- {t} thread(s), batch {b}: Octet INT8 with int8 attention / "
                               f"compute floor with every matmul at the vpdpbusd peak ({fl:.1f} "
                               f"ms): {text}; over the floor above with FP32 attention "
                               f"({fl_fma:.1f} ms): {oa['median'] / fl_fma:.2f}x")
    if 1 in threads and 2 in threads:
        for prec in ("fp32", "int8"):
            for b in batches:
                a, c = res.get(("octet", prec, b, 1)), res.get(("octet", prec, b, 2))
                if a and c:
                    targets.append(f"- Octet {prec}, batch {b}: two threads / one thread "
                                   f"throughput: **{c['seq_s'] / a['seq_s']:.2f}x** "
                                   f"(target >= 1.8x at batch 8)")
    for t in threads:
        a = res.get(("octet", "fp32", batches[0], t))
        c, cq = res.get(("octet", "int8", batches[0], t)), res.get(("octet", "int8q", batches[0], t))
        if a and cq:
            targets.append(
                f"- Octet peak RSS, {t} thread(s), batch {batches[0]}: INT8 from the quantized "
                f"directory {cq['rss'] / 2**20:.0f} MiB / FP32 {a['rss'] / 2**20:.0f} MiB = "
                f"**{cq['rss'] / a['rss']:.0%}** (target <= 35%)")
        if a and c:
            ra, rc = a["runs"][0], c["runs"][0]
            targets.append(
                f"- Octet peak RSS, {t} thread(s), batch {batches[0]}: INT8 {c['rss'] / 2**20:.0f} "
                f"MiB / FP32 {a['rss'] / 2**20:.0f} MiB = **{c['rss'] / a['rss']:.0%}** (target <= "
                f"35%); resident after load: {rc['rss_after_load_bytes'] / 2**20:.0f} / "
                f"{ra['rss_after_load_bytes'] / 2**20:.0f} MiB = "
                f"{rc['rss_after_load_bytes'] / ra['rss_after_load_bytes']:.0%}")

    data_lines, data_notes = [], []
    data_files = sorted(glob.glob(os.path.join(args.work, "data_*.json")))
    if data_files:
        data_lines = ["| task | system | precision | threads | order | seconds | examples/s | tokens | "
                      "tokens run (padded) | batches | metrics | sorted speed-up |",
                      "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
        runs = {}
        for f in data_files:
            m = re.match(r"data_(octet|octet-padded|pytorch|onnxruntime)_(\w+?)_(fp32|int8)_"
                         r"(sorted|unsorted)_t(\d+)\.json", os.path.basename(f))
            runs[(m[2], m[4] == "unsorted", m[3], int(m[5]), m[1])] = load(f)
        rank = {"octet": 0, "octet-padded": 1, "pytorch": 2, "onnxruntime": 3}
        for (task, unsorted, prec, t, sys_), r in sorted(
                runs.items(), key=lambda kv: (kv[0][0], kv[0][2], kv[0][3], rank[kv[0][4]], kv[0][1])):
            order = "unsorted" if unsorted else "sorted"
            sec = r["latency_ms"]["median"] / 1e3
            other = runs.get((task, True, prec, t, sys_))
            sp = ""
            if not unsorted and other:
                sp = f"**{other['latency_ms']['median'] / r['latency_ms']['median']:.2f}x**"
            metrics = ", ".join(f"{k} {v:.3f}" for k, v in r.get("metrics", {}).items())
            ran = r.get("run_tokens", r["tokens"] if sys_ == "octet" else r["padded_tokens"])
            data_lines.append(f"| {task} | {sys_} | {prec} | {t} | {order} | {sec:.2f} | "
                              f"{r['sequences'] / sec:.1f} | {r['tokens']} | {ran} | "
                              f"{r['batches']} | {metrics} | {sp} |")
        # Inside Octet: what sorting buys the padded layout, and what packing buys over it.
        for (task, unsorted, prec, t, sys_), r in sorted(runs.items()):
            if sys_ != "octet" or unsorted:
                continue
            ps, pu = (runs.get((task, u, prec, t, "octet-padded")) for u in (False, True))
            ou = runs.get((task, True, prec, t, "octet"))
            if ps and pu and ou:
                med = lambda x: x["latency_ms"]["median"]
                data_notes.append(
                    f"- {task} {prec}, {t} thread(s): Octet padded, sorted vs input order "
                    f"**{med(pu) / med(ps):.2f}x**; packed vs padded sorted {med(ps) / med(r):.2f}x, "
                    f"packed in input order vs padded in input order {med(pu) / med(ou):.2f}x")
        # Octet in input order against each peer's best (sorted) run.
        for (task, unsorted, prec, t, sys_), r in sorted(runs.items()):
            if sys_ != "octet" or not unsorted:
                continue
            peers_sorted = {p: runs[(task, False, prec, t, p)] for p in ("pytorch", "onnxruntime")
                            if (task, False, prec, t, p) in runs}
            if peers_sorted:
                p, best = min(peers_sorted.items(), key=lambda kv: kv[1]["latency_ms"]["median"])
                data_notes.append(
                    f"- {task} {prec}, {t} thread(s): Octet in input order "
                    f"{best['latency_ms']['median'] / r['latency_ms']['median']:.2f}x the fastest "
                    f"peer sorted ({p})")

    print("\n".join(check_lines + [""] + table + [""] + targets + [""] + data_lines + [""]
                    + data_notes))

    octet_run = next(iter(res.values()))["runs"][0] if res else {}
    # The split each Octet configuration ran with (workers with a batch x intra-op threads).
    split = "; ".join(
        f"batch {b}, {t} thread(s): {r['runs'][0].get('workers_used', '?')} worker(s) x "
        f"{r['runs'][0].get('intra_threads_used', '?')} intra-op"
        for (s_, p_, b, t), r in sorted(res.items()) if s_ == "octet" and p_ == "int8")
    torch_v = next((r["runs"][0].get("version") for k, r in res.items() if k[0] == "pytorch"), "?")
    ort_v = next((r["runs"][0].get("version") for k, r in res.items() if k[0] == "onnxruntime"),
                 "?")
    here = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo")
                if l.startswith("model name")), "?")
    load_avg = os.getloadavg()
    md = f"""# Speed: Octet next to PyTorch and ONNX Runtime

Written by `bench/compare.sh` ({datetime.datetime.utcnow().strftime('%Y-%m-%d %H:%M UTC')}).
Model: {args.model_desc}; every sequence {args.seq} tokens; the same weights (one model
directory) and the same token ids (dumped by `octet bench`, read by the peers) for every system;
one fresh process per system, precision, batch size and thread count; {args.rounds} round(s)
alternating the systems, {args.reps} timed calls per process after one warm-up call.

{chr(10).join(check_lines)}

## Latency and throughput

Median and p90 wall-clock milliseconds per call (a call = one batch); GOP/s counts
{ops / 1e9:.2f} GOP per sequence ({dense / 1e9:.2f} in the dense layers, {attn / 1e9:.2f} in the
attention matmuls); "x floor" is the median over the compute floor: the dense operations at the
single-core `vpdpbusd` peak (INT8 rows) or FP32 FMA peak (FP32 rows) and the attention matmuls
at the FMA peak where they run in FP32 (every row but Octet's "int8, int8 attention") or at the
`vpdpbusd` peak where they run on int8, per thread. The peaks were measured in this run by
`bench/peers/peak.cc` (24 independent register-only chains, best of {peak.get('trials', '?')}
runs by thread CPU time): **vpdpbusd {peak['vpdpbusd_ops_per_s'] / 1e9:.0f} GOP/s, FP32 FMA
({peak.get('fma_isa', '?')}) {peak['fma_f32_flops_per_s'] / 1e9:.0f} GFLOP/s** per core (PEERS.md
quotes 450 and 112, about one instruction per cycle where this core issues two); peak RSS is the process's ru_maxrss (for the peers: the interpreter and
its libraries included). Octet speed-up = peer median / Octet median at the same precision.
In the targets below, "per round a-b" is the same ratio taken within each round (the two
systems' processes a few minutes apart) as its smallest and largest value: the run's own spread,
which on a shared machine can be as wide as the margins. The floor ratios are given twice: over
the floor from the peaks measured at the start of the run (the table's "x floor"), and "paired"
over the floor from the peaks measured again right before Octet's INT8 processes in each round
(median and range over the rounds). The targets' headline ratios carry three decimals, so that a
ratio that would round to its bar shows on which side of it it is. Asked for logits, Octet runs
the last layer's FFN out and LayerNorm on each sequence's first row only (the row the pooler
reads; the logits are bit-identical, `tests/models/bert_model_test.cc`): {skipped / dense:.1%} fewer
dense operations than the floor counts, so each Octet INT8 floor ratio is also given over the
floor of the operations it runs.

{chr(10).join(table)}

{chr(10).join(targets)}

- Octet: `octet bench` (the runtime, `octet::Encoder`, automatic thread split: {split}; ISA
  {octet_run.get('isa', '?')}); INT8 = dynamic INT8 (per-channel int8 weights, activations
  quantized per call), the attention matmuls in FP32 as Q8BERT keeps them; "int8, int8
  attention" = the same with `--attention int8` (Q K^T and P V on int8 with int32 accumulation,
  Bhandare et al.; accuracy in docs/results/accuracy.md).
- PyTorch {torch_v} (Debian python3-torch): `bench/peers/pytorch_bert.py`, plain nn.Linear BERT;
  INT8 = `quantize_dynamic` (qint8, per-tensor weights) on the onednn engine. BLAS:
  {sh("update-alternatives --query libblas.so.3-x86_64-linux-gnu | sed -n 's/^Value: //p'")}.
- ONNX Runtime {ort_v} (npm onnxruntime-node, CPU provider, all graph optimisations):
  `bench/peers/ort_bench.js` on graphs from `bench/peers/export_onnx.py` (python3-onnx
  {sh("/usr/bin/python3 -c 'import onnx; print(onnx.__version__)'")}); INT8 =
  DynamicQuantizeLinear + MatMulInteger with per-channel int8 weights.
"""
    if data_lines:
        md += f"""
## Real data: raw text to predictions

Octet: `octet bench --task T --data FILE` (tokenization included; one call over the whole dev
set; max {args.seq} tokens). Peers: the same examples tokenized by the reference tokenizer
(`scripts/tokenizer_reference.py`) and batched as Octet's runtime batches them
(`bench/peers/glue_batches.py`), each batch padded to its longest sequence with an attention mask,
one timed pass over all batches (tokenization not timed). "sorted" batches by token length,
"unsorted" in input order, both under the same token budget (4,096 = sequences x longest, at most
64 sequences). "tokens run" is what each system computes: the peers pad; Octet by default packs
(its attention runs per sequence on its own length and its GEMMs on the concatenated tokens), so
sorting changes its work by nothing; "octet-padded" is Octet with `--padding longest`, each batch
padded to its longest sequence like the peers (pad rows through every layer, masked out of
attention), which shows inside one engine what sorting buys a padded layout and what packing buys
over both. With random weights the metrics are at chance: they show the pipeline runs, not
accuracy.

{chr(10).join(data_lines)}

{chr(10).join(data_notes)}
"""
    md += f"""
Machine: {cpu}, {os.cpu_count()} logical CPUs, load average {load_avg[0]:.1f} at the end of the
run (shared machine: compare ratios within this run, not absolute figures across runs).
{platform.platform()}; {sh("c++ --version | head -1")}; oneDNN
{sh("dpkg-query -W -f='${Version}' libdnnl2 2>/dev/null || dpkg-query -W -f='${Version}' libdnnl-dev")};
node {sh("node --version")}; Octet commit {sh(f"git -C {here} rev-parse --short HEAD")}.

Command: `{args.command}`
"""
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        tmp = f"{args.out}.tmp.{os.getpid()}"
        with open(tmp, "w") as f:
            f.write(md)
        os.replace(tmp, args.out)
        print(f"summarize: wrote {args.out}", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
