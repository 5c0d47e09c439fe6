#!/usr/bin/env node
// ONNX Runtime peer (npm onnxruntime-node, CPU provider): latency of an ONNX BERT graph written
// by bench/peers/export_onnx.py.
//
//   node bench/peers/ort_bench.js --graph int8.onnx [--inputs octet_dump.json | --batch 8
//        --seq 128 --vocab 30522 | --batches glue_batches.json] [--reps 10] [--warmup 1]
//        [--threads 1] [--dump FILE] [--label int8]
//
// Session: graph optimisations at ORT_ENABLE_ALL (DynamicQuantizeMatMul, attention and GELU
// fusions), intra-op threads = --threads, inter-op threads 1, sequential execution. Inputs: the
// input_ids of an `octet bench --dump` file, else a random batch ([CLS], uniform ids from a fixed
// LCG, [SEP]); token types 0, attention mask 1. --batches: the padded batches of a GLUE dev set
// written by bench/peers/glue_batches.py (real data, Octet's batching, padding to each batch's
// longest sequence with an attention mask), one pass over all of them timed as one call.
// `warmup` untimed runs (default 1), then `reps` timed runs.
// Prints one JSON line: {"system": "onnxruntime", "precision", "batch", "seq", "threads",
// "latency_ms": {"median", "p90", "min"}, "times_ms", "sequences_per_second",
// "tokens_per_second", "peak_rss_bytes" (process.resourceUsage().maxRSS: Node included),
// "version"}; --dump writes {"logits": [...]} for the agreement check.
'use strict';
const fs = require('fs');
const path = require('path');

function usage(msg) {
  process.stderr.write(`ort_bench: ${msg}\n`);
  process.exit(2);
}

function parseArgs(argv) {
  const a = {reps: 10, warmup: 1, threads: 1, batch: 1, seq: 128, vocab: 30522, label: ''};
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i];
    const v = argv[i + 1];
    if (!k.startsWith('--') || v === undefined) usage(`bad argument '${k}'`);
    const key = k.slice(2);
    if (['reps', 'warmup', 'threads', 'batch', 'seq', 'vocab'].includes(key)) {
      a[key] = Number(v);
      const least = key === 'warmup' ? 0 : 1;
      if (!Number.isInteger(a[key]) || a[key] < least) usage(`${k} must be an integer >= ${least}, found '${v}'`);
    } else if (['graph', 'inputs', 'dump', 'label', 'batches'].includes(key)) {
      a[key] = v;
    } else {
      usage(`unknown option '${k}'`);
    }
    i++;
  }
  if (!a.graph) usage('--graph FILE is required');
  return a;
}

function tensor2d(ort, rows) {
  const b = rows.length;
  const s = rows[0].length;
  const data = new BigInt64Array(b * s);
  rows.forEach((r, i) => r.forEach((x, t) => (data[i * s + t] = BigInt(x))));
  return new ort.Tensor('int64', data, [b, s]);
}

function ortVersion() {
  try {
    return require(path.join(__dirname, 'node_modules', 'onnxruntime-node', 'package.json')).version;
  } catch (e) {
    return '?';
  }
}

async function createSession(ort, a) {
  return ort.InferenceSession.create(a.graph, {
    executionProviders: ['cpu'],
    graphOptimizationLevel: 'all',
    intraOpNumThreads: a.threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
  });
}

// Real-data mode: every padded batch of a glue_batches.py file, one timed pass per rep.
async function runBatches(a, ort) {
  const data = JSON.parse(fs.readFileSync(a.batches, 'utf8'));
  if (!Array.isArray(data.batches) || data.batches.length === 0) usage(`${a.batches}: no batches`);
  const feeds = data.batches.map((b) => ({
    index: b.index,
    feed: {
      input_ids: tensor2d(ort, b.input_ids),
      token_type_ids: tensor2d(ort, b.token_type_ids),
      attention_mask: tensor2d(ort, b.attention_mask),
    },
  }));
  const session = await createSession(ort, a);
  const pred = new Array(data.examples);
  const onePass = async () => {
    for (const {index, feed} of feeds) {
      const out = await session.run(feed);
      const labels = out.logits.data.length / index.length;
      index.forEach((i, j) => (pred[i] = Array.from(out.logits.data.slice(j * labels, (j + 1) * labels))));
    }
  };
  for (let i = 0; i < a.warmup; i++) await onePass();
  const times = [];
  for (let i = 0; i < a.reps; i++) {
    const t0 = process.hrtime.bigint();
    await onePass();
    times.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  if (a.dump) {
    const tmp = `${a.dump}.tmp.${process.pid}`;
    fs.writeFileSync(tmp, JSON.stringify({system: 'onnxruntime', precision: a.label, logits: pred}));
    fs.renameSync(tmp, a.dump);
  }
  const sorted = [...times].sort((x, y) => x - y);
  const med = percentile(sorted, 0.5);
  process.stdout.write(JSON.stringify({
    system: 'onnxruntime', version: ortVersion(), precision: a.label, graph: a.graph,
    threads: a.threads, task: data.task, sorted: data.sorted, sequences: data.examples,
    tokens: data.tokens, padded_tokens: data.padded_tokens, batches: feeds.length,
    latency_ms: {median: med, p90: percentile(sorted, 0.9), min: sorted[0]},
    times_ms: times,
    sequences_per_second: data.examples / (med / 1e3),
    tokens_per_second: data.tokens / (med / 1e3),
    peak_rss_bytes: process.resourceUsage().maxRSS * 1024,
  }) + '\n');
}

function percentile(sorted, p) {
  const pos = p * (sorted.length - 1);
  const lo = Math.floor(pos);
  const hi = Math.min(lo + 1, sorted.length - 1);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

async function main() {
  const a = parseArgs(process.argv.slice(2));
  let ort;
  try {
    ort = require(path.join(__dirname, 'node_modules', 'onnxruntime-node'));
  } catch (e) {
    usage(`onnxruntime-node is not installed in ${__dirname} (run: npm ci ` +
          `--onnxruntime-node-install=skip there; bench/compare.sh does): ${e.message}`);
  }
  if (a.batches) return runBatches(a, ort);
  let rows;
  if (a.inputs) {
    rows = JSON.parse(fs.readFileSync(a.inputs, 'utf8')).input_ids;
    if (!Array.isArray(rows) || rows.length === 0 || rows.some((r) => r.length !== rows[0].length)) {
      usage(`${a.inputs}: expected a non-empty input_ids of equal-length rows`);
    }
  } else {
    let s = 42;
    const next = () => (s = (s * 1103515245 + 12345) % 2147483648);
    rows = [];
    for (let b = 0; b < a.batch; b++) {
      const r = [];
      for (let t = 0; t < a.seq; t++) r.push(5 + (next() % (a.vocab - 5)));
      r[0] = 2;
      r[a.seq - 1] = 3;
      rows.push(r);
    }
  }
  const batch = rows.length;
  const seq = rows[0].length;
  const feeds = {
    input_ids: tensor2d(ort, rows),
    token_type_ids: tensor2d(ort, rows.map((r) => r.map(() => 0))),
    attention_mask: tensor2d(ort, rows.map((r) => r.map(() => 1))),
  };
  const session = await createSession(ort, a);
  let out;
  for (let i = 0; i < a.warmup; i++) out = await session.run(feeds);
  const times = [];
  for (let i = 0; i < a.reps; i++) {
    const t0 = process.hrtime.bigint();
    out = await session.run(feeds);
    times.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  const logits = Array.from(out.logits.data);
  if (a.dump) {
    const tmp = `${a.dump}.tmp.${process.pid}`;
    fs.writeFileSync(tmp, JSON.stringify({system: 'onnxruntime', precision: a.label, logits}));
    fs.renameSync(tmp, a.dump);
  }
  const sorted = [...times].sort((x, y) => x - y);
  const med = percentile(sorted, 0.5);
  process.stdout.write(JSON.stringify({
    system: 'onnxruntime', version: ortVersion(), precision: a.label, graph: a.graph, batch, seq,
    threads: a.threads,
    latency_ms: {median: med, p90: percentile(sorted, 0.9), min: sorted[0]},
    times_ms: times,
    sequences_per_second: batch / (med / 1e3),
    tokens_per_second: batch * seq / (med / 1e3),
    peak_rss_bytes: process.resourceUsage().maxRSS * 1024,
  }) + '\n');
}

main().catch((e) => {
  process.stderr.write(`ort_bench: ${e.message}\n`);
  process.exit(3);
});
