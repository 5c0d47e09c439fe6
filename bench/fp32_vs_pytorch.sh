#!/usr/bin/env bash
# Octet FP32 vs PyTorch 1.13 FP32 on the same BERT-base-shaped weights, side by side.
#
#   bench/fp32_vs_pytorch.sh [BUILD_DIR]        (default: build; needs bench/bert_fp32_bench)
#   ROUNDS=5 THREADS=1 SEQ=128 bench/fp32_vs_pytorch.sh build
#
# Writes a random BERT-base-shaped model (12 layers, 768 hidden, 12 heads, FFN 3072, vocab 2000;
# scripts/make_golden.py --bench-model) to a temporary directory, then for ROUNDS rounds runs,
# alternately, Octet (bench/bert_fp32_bench) and PyTorch (bench/pytorch_bert.py) at batch 1
# and batch 8, so that machine noise hits both. Each process warms up once, then times
# several forward passes. Prints a table of medians and writes docs/results/fp32_speed.md.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-build}
build=$(cd "$build" && pwd)
rounds=${ROUNDS:-5}
threads=${THREADS:-1}
seq=${SEQ:-128}
bench="$build/bench/bert_fp32_bench"
[ -x "$bench" ] || { echo "fp32_vs_pytorch: $bench not built (ninja -C $build bert_fp32_bench)" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

/usr/bin/python3 "$here/scripts/make_golden.py" --bench-model "$work/bert-base" >&2
export OMP_NUM_THREADS=$threads
for r in $(seq "$rounds"); do
  for b in 1 8; do
    reps=$([ "$b" = 1 ] && echo 5 || echo 2)
    echo "round $r/$rounds, batch $b: octet" >&2
    OCTET_BERT_MODEL="$work/bert-base" OCTET_THREADS=$threads "$bench" \
      --benchmark_filter="batch:$b/seq:$seq/" --benchmark_repetitions="$reps" \
      --benchmark_min_time=0.000001 --benchmark_format=json >"$work/octet_b${b}_r$r.json"
    echo "round $r/$rounds, batch $b: pytorch" >&2
    /usr/bin/python3 "$here/bench/pytorch_bert.py" --model "$work/bert-base" --batch "$b" \
      --seq "$seq" --reps "$reps" --threads "$threads" >>"$work/pytorch.jsonl"
  done
done

/usr/bin/python3 - "$work" "$here" "$rounds" "$threads" "$seq" "$0 $*" <<'PY'
import glob, json, os, platform, statistics, subprocess, sys, datetime
work, here, rounds, threads, seq, cmd = sys.argv[1:]
octet, octet_cpu = {1: [], 8: []}, {1: [], 8: []}
for f in glob.glob(os.path.join(work, "octet_b*_r*.json")):
    b = int(os.path.basename(f).split("_")[1][1:])
    for run in json.load(open(f))["benchmarks"]:
        if run.get("run_type") == "iteration":
            assert run["time_unit"] == "ms"
            octet[b].append(run["real_time"])
            octet_cpu[b].append(run["cpu_time"])
torch_ms, torch_cpu = {1: [], 8: []}, {1: [], 8: []}
torch_version = "?"
for line in open(os.path.join(work, "pytorch.jsonl")):
    r = json.loads(line)
    torch_ms[r["batch"]] += r["ms"]
    torch_cpu[r["batch"]] += r["cpu_ms"]
    torch_version = r["version"]
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
def sh(c):
    try:
        return subprocess.run(c, shell=True, capture_output=True, text=True).stdout.strip()
    except Exception:
        return "?"
dnnl = sh("dpkg-query -W -f='${Version}' libdnnl2 2>/dev/null || dpkg-query -W -f='${Version}' libdnnl-dev")
blas = sh("update-alternatives --query libblas.so.3-x86_64-linux-gnu | sed -n 's/^Value: //p'")
commit = sh(f"git -C {here} rev-parse --short HEAD")
gcc = sh("c++ --version | head -1")
med = statistics.median
table = ["| batch x seq | Octet wall ms, median (min) | PyTorch wall ms, median (min) | PyTorch / Octet (wall) | Octet CPU ms | PyTorch CPU ms | PyTorch / Octet (CPU) | Octet ms per sequence (wall) | runs (Octet, PyTorch) |",
         "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
for b in (1, 8):
    o, p = med(octet[b]), med(torch_ms[b])
    oc, pc = med(octet_cpu[b]), med(torch_cpu[b])
    table.append(f"| {b} x {seq} | {o:.1f} ({min(octet[b]):.1f}) | {p:.1f} ({min(torch_ms[b]):.1f}) | "
                 f"**{p / o:.2f}x** | {oc:.1f} | {pc:.1f} | {pc / oc:.2f}x | {o / b:.1f} | "
                 f"{len(octet[b])}, {len(torch_ms[b])} |")
print("\n".join(table))
load = os.getloadavg()
md = f"""# FP32 speed: Octet vs PyTorch

BERT-base shape (12 layers, hidden 768, 12 heads, FFN 3072; vocab 2,000), random weights
(`scripts/make_golden.py --bench-model`), every sequence {seq} tokens, {threads} thread(s),
the same weights loaded by both engines. Median wall-clock milliseconds per forward pass,
Octet and PyTorch alternated over {rounds} rounds so that noise hits both. CPU time (process
CPU time of the single compute thread) is shown too: on a shared machine it is less sensitive
than wall-clock time to other processes taking the core.

{chr(10).join(table)}

- Octet: `bench/bert_fp32_bench` (oneDNN matmul for the dense layers, Octet kernels for
  attention, softmax, LayerNorm, GELU; ISA {json.load(open(glob.glob(os.path.join(work, "octet_b1_r*.json"))[0]))["benchmarks"][0].get("label", "?")}).
- PyTorch {torch_version} (Debian), `bench/pytorch_bert.py`: the plain BERT module of the golden
  reference, `torch.set_num_threads({threads})`, `torch.inference_mode()`; BLAS: {blas}.
- Compute floor: about 22.3 GFLOP per 128-token sequence.

Machine: {cpu}, {os.cpu_count()} logical CPUs (shared; load average {load[0]:.1f} at the end of
the run). Date: {datetime.datetime.utcnow().strftime('%Y-%m-%d %H:%M UTC')}. oneDNN {dnnl};
{gcc}; Octet commit {commit}.
Command: `{cmd}` (ROUNDS={rounds} THREADS={threads} SEQ={seq}).
"""
out = os.path.join(here, "docs", "results", "fp32_speed.md")
os.makedirs(os.path.dirname(out), exist_ok=True)
open(out, "w").write(md)
print(f"wrote {out}", file=sys.stderr)
PY
