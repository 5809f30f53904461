#!/usr/bin/env node
// Issue 24's serving targets, as ratios of one run: `vgg-native serve` (a child
// process, the CLI as users run it) under 32 connections of real JPEGs against
// the library's own batch-8 forward() and classify() in this process, on the
// same weights and threads; and a soak (10,000 requests on a small model)
// for the server's RSS growth and its event loop's largest gap.
//
//   node bench/serve.js [--seconds N] [--warmup N] [--soak N] [--threads N] [--reps N] [--json]
//
// Also a section of bench/run.js (`--only serve`): serveSection(o, dir, report).
// The server exposes no RSS or event-loop metric, so RSS is read from
// /proc/<pid>/status and the loop's gaps by a probe preloaded with `node -r`
// (the 1 ms timer of run.js's withLoopGap, asked over IPC).
'use strict';
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const autocannon = require('autocannon');
const sharp = require('sharp');
const { vgg } = require('../dist');
const { delay, formatTarget, median, round, seededInput, settle, timed } = require('./common');

const CLI = path.resolve(__dirname, '..', 'dist', 'cli.js');
const SKI = '/usr/lib/python3/dist-packages/skimage/data';
const SKL = '/usr/lib/python3/dist-packages/sklearn/datasets/images';

/** Issue 24's targets: serve req/s over forward() b8 img/s, RSS after the soak over after its first 1,000, loop gap. */
const TARGETS = { serveVsForward: 0.8, rssGrowth: 1.05, loopGapMs: 20 };

/** Defaults of the options run.js does not pass (its `o` has threads and reps only). */
const DEFAULTS = { seconds: 30, warmup: 5, soak: 10000, connections: 32 };

/** The soak's baseline: RSS once this many requests are answered (the allocator and caches warm). */
const SOAK_FIRST = 1000;

/** Generous: at 32 connections on 2 cores a VGG-16 request waits several seconds for its batch. */
const REQUEST_TIMEOUT_S = 120;

/** The q-quantile (0..1) of unsorted numbers, nearest rank. */
function quantile(xs, q) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))];
}

function parseArgs(argv) {
  const o = { json: false, reps: 5, threads: os.cpus().length, ...DEFAULTS };
  const numeric = { '--seconds': 'seconds', '--warmup': 'warmup', '--soak': 'soak', '--threads': 'threads', '--reps': 'reps' };
  for (let i = 2; i < argv.length; i++) {
    const k = argv[i];
    if (k === '--json') o.json = true;
    else if (numeric[k]) o[numeric[k]] = Number(argv[++i]);
    else throw new Error(`unknown argument ${k}`);
  }
  return o;
}

/** Serve's options with the defaults run.js's `o` lacks; a soak shorter than twice its baseline measures no growth. */
function serveOptions(o) {
  const r = { ...DEFAULTS, ...o };
  if (!(r.soak >= 2 * SOAK_FIRST)) throw new Error(`--soak must be at least ${2 * SOAK_FIRST}, got ${r.soak}`);
  return r;
}

// ---------------------------------------------------------------------------
// Inputs

/** Five real JPEGs: sklearn's two photos as they are, and JPEG crops (central 80%) of three skimage PNGs. */
async function writeJpegs(dir) {
  const files = [`${SKL}/china.jpg`, `${SKL}/flower.jpg`];
  for (const name of ['chelsea', 'coffee', 'astronaut']) {
    const src = `${SKI}/${name}.png`;
    const { width, height } = await sharp(src).metadata();
    const [w, h] = [Math.round(width * 0.8), Math.round(height * 0.8)];
    const file = path.join(dir, `${name}.jpg`);
    await sharp(src)
      .extract({ left: (width - w) >> 1, top: (height - h) >> 1, width: w, height: h })
      .jpeg({ quality: 90 })
      .toFile(file);
    files.push(file);
  }
  return files.map((file) => ({ name: path.basename(file), file, body: fs.readFileSync(file) }));
}

/** Random weights saved as a .pth (what `serve -w` and `vgg({ weights })` both load); `meta` goes into the checkpoint's meta. */
async function writeWeights(file, arch, { numClasses, meta } = {}) {
  const model = await vgg(arch, { seed: 0, ...(numClasses ? { numClasses } : {}) });
  try {
    await model.save(file, meta ? { meta } : undefined);
  } finally {
    model.dispose();
  }
  return file;
}

// ---------------------------------------------------------------------------
// The server

/**
 * Preloaded into the server (`node -r`): the largest gap between 1 ms timer ticks since the last
 * question, as run.js's withLoopGap measures in-process, and how many gaps passed the target (a few:
 * the machine's scheduler; many: the server's own work). Its timer and IPC channel are unref'd.
 */
const PROBE = `'use strict';
const fs = require('node:fs');
// The main thread's ns on a CPU and waiting for one (the kernel's schedstat), as run.js's withLoopGap splits its gap.
const sched = () => {
  try {
    const [run, wait] = fs.readFileSync('/proc/self/task/' + process.pid + '/schedstat', 'utf8').split(' ').map(Number);
    return { run, wait };
  } catch {
    return undefined;
  }
};
let last = performance.now();
let lastSched = sched();
let gap = { ms: 0 };
let over = 0;
setInterval(() => {
  const now = performance.now();
  const s = sched();
  if (now - last > gap.ms) gap = { ms: now - last, runMs: s && (s.run - lastSched.run) / 1e6, waitMs: s && (s.wait - lastSched.wait) / 1e6 };
  if (now - last > ${TARGETS.loopGapMs}) over++;
  last = now;
  lastSched = s;
}, 1).unref();
process.on('message', (m) => {
  if (m !== 'loop-gap') return;
  const tail = performance.now() - last;
  process.send(tail > gap.ms ? { ms: tail, over } : { ...gap, over });
  gap = { ms: 0 };
  over = 0;
});
// The bench went away without stopping us (killed): drain and exit as on SIGTERM rather than outlive it.
process.on('disconnect', () => process.kill(process.pid, 'SIGTERM'));
process.channel.unref(); // the listeners above must not keep the server alive once it has drained
`;

/** The node flags of the CLI's `#!/usr/bin/env -S node ...` line: what users' `vgg-native` runs under. */
function shebangFlags(file) {
  const line = fs.readFileSync(file, 'utf8').split('\n', 1)[0];
  return line.split(/\s+/).slice(line.includes(' -S ') ? 3 : 2);
}

/** `vgg-native serve -w weights` on a free loopback port; resolves once /readyz answers 200. */
async function startServer(dir, weights, threads) {
  const probe = path.join(dir, 'loop-probe.js');
  fs.writeFileSync(probe, PROBE);
  const args = [...shebangFlags(CLI), '-r', probe, CLI, 'serve', '-w', weights, '--port', '0', '--threads', String(threads), '--log-level', 'silent'];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
  let err = '';
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal)));
  const server = { child, exited, stderr: () => err };
  try {
    server.url = await new Promise((resolve, reject) => {
      child.stderr.on('data', (d) => {
        err += d;
        const m = /listening on (http:\/\/[\d.]+:\d+)/.exec(err);
        if (m) resolve(m[1]);
      });
      exited.then((code) => reject(new Error(`serve exited with ${code}: ${err}`)));
    });
    await untilReady(server);
  } catch (e) {
    killServer(server);
    throw e;
  }
  return server;
}

async function untilReady(server) {
  for (;;) {
    const r = await fetch(`${server.url}/readyz`).catch(() => undefined);
    if (r?.status === 200) return;
    if (server.child.exitCode !== null) throw new Error(`serve exited with ${server.child.exitCode}: ${server.stderr()}`);
    await delay(100);
  }
}

/** SIGTERM, as an orchestrator stops it; resolves with its exit code (0 is the documented drain), or 'hung' after 60 s. */
async function stopServer(server) {
  server.child.kill('SIGTERM');
  const code = await Promise.race([server.exited, delay(60_000).then(() => 'hung')]);
  killServer(server);
  return code;
}

/** For the finally blocks: a server still running is killed outright. */
function killServer(server) {
  if (server && server.child.exitCode === null && server.child.signalCode === null) server.child.kill('SIGKILL');
}

/** 'ran 0.4 / waited 18.1': the server's main thread during its largest gap (running, or waiting for a CPU). */
const gapSplit = (gap) => (gap.runMs === undefined ? '' : `ran ${round(gap.runMs, 1)} / waited ${round(gap.waitMs, 1)}`);

/** The server's largest event-loop gap since the last call, `{ ms, over }` (over: gaps past the target). */
function loopGap(server) {
  return new Promise((resolve, reject) => {
    server.child.once('message', resolve);
    server.child.send('loop-gap', (e) => e && reject(e));
  });
}

/** The server's resident set in MB, from the kernel (the server has no RSS metric). */
function rssMB(server) {
  const status = fs.readFileSync(`/proc/${server.child.pid}/status`, 'utf8');
  return Number(/^VmRSS:\s+(\d+) kB/m.exec(status)[1]) / 1024;
}

/** The /metrics figures this bench reads: batch-size histogram sum and count, requests in flight, queue depth. */
async function scrape(server) {
  const text = await (await fetch(`${server.url}/metrics`)).text();
  const value = (name) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1] ?? Number.NaN);
  return {
    batchSum: value('vgg_serve_batch_size_sum'),
    batchCount: value('vgg_serve_batch_size_count'),
    inFlight: value('vgg_serve_requests_in_flight'),
    queued: value('vgg_serve_queue_depth'),
  };
}

/** Waits until the server has answered everything (the requests a finished load run left in flight). */
async function untilIdle(server) {
  for (let i = 0; i < 1200; i++) {
    const m = await scrape(server);
    if (m.inFlight === 0 && m.queued === 0) return;
    await delay(100);
  }
  throw new Error('the server still had requests in flight after 120 s');
}

const meanBatch = (a, b) => (b.batchSum - a.batchSum) / (b.batchCount - a.batchCount);

// ---------------------------------------------------------------------------
// Load

/**
 * One autocannon run of POST /v1/classify: each request takes the next JPEG from a counter shared
 * by all connections (the mix holds overall). Every response is recorded with the time it came back,
 * so a window can be cut out of a continuous run; `onResponse(n, stop)` is called with the running count.
 */
async function load(server, photos, { connections, duration, amount, onResponse }) {
  let next = 0;
  const responses = [];
  const errors = [];
  const run = autocannon({
    url: server.url,
    connections,
    ...(amount ? { amount } : { duration }),
    timeout: REQUEST_TIMEOUT_S,
    requests: [
      {
        method: 'POST',
        path: '/v1/classify',
        setupRequest: (req) => ({ ...req, body: photos[next++ % photos.length].body, headers: { 'content-type': 'image/jpeg' } }),
      },
    ],
  });
  run.on('response', (_client, status, _bytes, ms) => {
    responses.push({ at: performance.now(), status, ms });
    onResponse?.(responses.length, () => run.stop());
  });
  run.on('reqError', (e) => errors.push({ at: performance.now(), message: e.message }));
  const result = await run;
  return { result, responses, errors };
}

const isOk = (r) => r.status >= 200 && r.status < 300;

/** Answers, latency and errors of the responses that came back between `a` and `b` (performance.now() ms). */
function windowOf({ responses, errors }, a, b) {
  const inside = responses.filter((r) => r.at >= a && r.at <= b);
  const ms = inside.filter(isOk).map((r) => r.ms);
  return {
    perSecond: ms.length / ((b - a) / 1000),
    p50: quantile(ms, 0.5),
    p99: quantile(ms, 0.99),
    non2xx: inside.length - ms.length,
    errors: errors.filter((e) => e.at >= a && e.at <= b).length,
  };
}

// ---------------------------------------------------------------------------
// Throughput: VGG-16 fp32, serve against the library in the same run

/**
 * The library's rates: forward() of a random batch of 8, and classify() of the JPEGs at batchSize 8
 * (decode + forward, what serve also does): 40 files, the five in serve's order, so its batches
 * hold the same mix. Appends seconds per call to `t`.
 */
async function libraryRounds(model, photos, rounds, t) {
  const x = seededInput([8, 3, 224, 224], 1608);
  const files = Array.from({ length: 40 }, (_, i) => photos[i % photos.length].file);
  for (let r = 0; r < rounds; r++) {
    for (let k = 0; k < 2; k++) t.forward.push((await timed(() => model.forward(x))) / 8);
    t.classify.push((await timed(() => model.classify(files, { topK: 5, batchSize: 8 }))) / files.length);
  }
}

/** Past the warm-up, how long serve may take to answer its first rounds before the run gives up. */
const STEADY_CAP_S = 120;

/** /metrics and the loop gap (reset by the asking) at one moment; rejections are left to whoever awaits it. */
function mark(server) {
  const at = performance.now();
  const p = Promise.all([scrape(server), loopGap(server)]).then(([metrics, gap]) => ({ at, metrics, gap }));
  p.catch(() => undefined);
  return p;
}

/**
 * serve under o.connections connections, one continuous run: the window of o.seconds opens after
 * the warm-up once every connection has had two answers (the first forwards, oneDNN's primitives
 * and the allocator's first blocks, are slow, and on a busy machine they outlast a fixed warm-up),
 * and closes while the load is still on. Mean batch from /metrics at the window's ends.
 */
async function serveWindow(o, server, photos) {
  const marks = {};
  const t0 = performance.now();
  const onResponse = (n, stop) => {
    if (marks.start || n < 2 * o.connections || performance.now() - t0 < o.warmup * 1000) return;
    marks.start = mark(server);
    setTimeout(() => {
      marks.end = mark(server);
      marks.end.then(stop, stop);
    }, o.seconds * 1000);
  };
  const run = await load(server, photos, { connections: o.connections, duration: o.warmup + o.seconds + STEADY_CAP_S, onResponse });
  if (!marks.end) throw new Error(`serve answered ${run.responses.length} requests: no steady ${o.seconds} s window within the run`);
  const [a, b] = [await marks.start, await marks.end];
  await untilIdle(server);
  return { run, warmup: (a.at - t0) / 1000, window: windowOf(run, a.at, b.at), batch: meanBatch(a.metrics, b.metrics), gap: b.gap };
}

async function throughputRow(o, dir, photos) {
  const weights = await writeWeights(path.join(dir, 'vgg16.pth'), 'vgg16');
  let server;
  let model;
  try {
    server = await startServer(dir, weights, o.threads);
    model = await vgg({ weights, threads: o.threads });
    await model.forward(seededInput([8, 3, 224, 224], 1)); // warm-up: oneDNN's primitives, the allocator's caches
    await model.classify(photos[0].file);
    const rounds = Math.max(2, Math.ceil(o.reps / 2));
    const t = { forward: [], classify: [] };
    // Half the library's rounds before the serve window and half after, so a change in load hits both alike.
    await libraryRounds(model, photos, Math.ceil(rounds / 2), t);
    await settle();
    const s = await serveWindow(o, server, photos);
    await libraryRounds(model, photos, Math.floor(rounds / 2), t);
    const row = throughputFigures(o, t, s);
    row['exit code'] = await stopServer(server);
    return row;
  } finally {
    model?.dispose();
    killServer(server);
  }
}

function throughputFigures(o, t, s) {
  const forward = 1 / median(t.forward);
  const classify = 1 / median(t.classify);
  const w = s.window;
  return {
    arch: 'vgg16',
    threads: o.threads,
    connections: o.connections,
    'warm-up s': round(s.warmup, 1),
    'window s': o.seconds,
    'forward b8 img/s': round(forward),
    'classify b8 img/s': round(classify),
    'serve req/s': round(w.perSecond),
    'serve/forward': round(w.perSecond / forward),
    'serve/classify': round(w.perSecond / classify),
    'p50 ms': round(w.p50, 0),
    'p99 ms': round(w.p99, 0),
    'mean batch': round(s.batch),
    'non-2xx': w.non2xx,
    errors: w.errors,
    'run errors': s.run.result.errors,
    'run timeouts': s.run.result.timeouts,
    'server loop gap ms': round(s.gap.ms, 1),
    'main thread in that gap ms': gapSplit(s.gap),
    [`gaps > ${TARGETS.loopGapMs} ms`]: s.gap.over,
  };
}

// ---------------------------------------------------------------------------
// Soak: RSS and the event loop over o.soak requests, on a model small enough to run them in minutes

/**
 * VGG-11, 10 classes, whose checkpoint meta says its input pipeline is 32x32 'squash' (the keys
 * fineTune's model.save() writes), so serve preprocesses every upload to 32x32 as for a CIFAR-size
 * fine-tune.
 */
const SOAK_MODEL = { arch: 'vgg11', numClasses: 10, meta: { input_size: 32, input_resize: 'squash' } };

/** The input side the server actually feeds: stage1 (conv, pool /2) of one upload, from its X-Shape header. */
async function inputSide(server, photo) {
  const r = await fetch(`${server.url}/v1/features?layer=stage1`, { method: 'POST', body: photo.body, headers: { 'content-type': 'image/jpeg' } });
  await r.arrayBuffer();
  const shape = (r.headers.get('x-shape') ?? '').split(',').map(Number);
  return shape[2] * 2;
}

/** How long the soak's server is watched idle before the load, for the loop gap's control figure. */
const IDLE_PROBE_MS = 3000;

async function soakRow(o, dir, photos) {
  const weights = await writeWeights(path.join(dir, 'vgg11-32px.pth'), SOAK_MODEL.arch, SOAK_MODEL);
  let server;
  try {
    server = await startServer(dir, weights, o.threads);
    const side = await inputSide(server, photos[0]);
    const ready = rssMB(server);
    const startupGap = await loopGap(server); // model loading and the first request; the soak's gap starts here
    await delay(IDLE_PROBE_MS);
    const idleGap = await loopGap(server); // the control: what this machine's scheduling alone costs an idle server
    const before = await scrape(server);
    const rss = { first: Number.NaN, end: Number.NaN, max: ready };
    const t = { first: 0, end: 0 };
    const onResponse = (n) => {
      // Read on the response that completes each mark, while the load is still on: both marks see the same state.
      if (n % 100 !== 0 && n !== o.soak) return;
      const mb = rssMB(server);
      rss.max = Math.max(rss.max, mb);
      if (n === SOAK_FIRST) [rss.first, t.first] = [mb, performance.now()];
      if (n === o.soak) [rss.end, t.end] = [mb, performance.now()];
    };
    const run = await load(server, photos, { connections: o.connections, amount: o.soak, onResponse });
    const gap = await loopGap(server);
    const after = await scrape(server);
    const row = soakFigures(o, { side, ready, startupGap, idleGap, rss, t, run, gap, batch: meanBatch(before, after) });
    row['exit code'] = await stopServer(server);
    return row;
  } finally {
    killServer(server);
  }
}

function soakFigures(o, { side, ready, startupGap, idleGap, rss, t, run, gap, batch }) {
  const ms = run.responses.filter(isOk).map((r) => r.ms);
  return {
    arch: `${SOAK_MODEL.arch} (${SOAK_MODEL.numClasses} classes)`,
    input: `${side}x${side}`,
    threads: o.threads,
    connections: o.connections,
    requests: run.responses.length,
    [`req/s after ${SOAK_FIRST}`]: round((o.soak - SOAK_FIRST) / ((t.end - t.first) / 1000)),
    'RSS MB ready': round(ready, 1),
    [`RSS MB @${SOAK_FIRST}`]: round(rss.first, 1),
    'RSS MB @end': round(rss.end, 1),
    [`RSS end/${SOAK_FIRST}`]: round(rss.end / rss.first, 3),
    'RSS MB max': round(rss.max, 1),
    'server loop gap ms': round(gap.ms, 1),
    'main thread in that gap ms': gapSplit(gap),
    [`gaps > ${TARGETS.loopGapMs} ms`]: gap.over,
    'idle loop gap ms': round(idleGap.ms, 1),
    'startup loop gap ms': round(startupGap.ms, 1),
    'mean batch': round(batch),
    'p99 ms': round(quantile(ms, 0.99), 0),
    'non-2xx': run.responses.length - ms.length,
    errors: run.result.errors,
    timeouts: run.result.timeouts,
  };
}

// ---------------------------------------------------------------------------

/** bench/run.js's section: report.serve (VGG-16 throughput) and report['serve-soak'] (RSS, loop gap). */
async function serveSection(o, dir, report) {
  const r = serveOptions(o);
  const sub = fs.mkdtempSync(path.join(dir, 'serve-')); // apart from run.js's vggN.pth, which the peer writes
  try {
    const photos = await writeJpegs(sub);
    const row = await throughputRow(r, sub, photos);
    report.serve = [row];
    console.error(
      `  serve vgg16: ${row['serve req/s']} req/s = ${row['serve/forward']}x forward b8 (${row['forward b8 img/s']} img/s), ` +
        `p50 ${row['p50 ms']} ms, p99 ${row['p99 ms']} ms, mean batch ${row['mean batch']}, exit ${row['exit code']}`,
    );
    const soak = await soakRow(r, sub, photos);
    report['serve-soak'] = [soak];
    console.error(
      `  serve soak ${soak.arch} ${soak.input}: ${soak.requests} requests, RSS end/${SOAK_FIRST} ${soak[`RSS end/${SOAK_FIRST}`]}, ` +
        `loop gap ${soak['server loop gap ms']} ms, ${soak[`req/s after ${SOAK_FIRST}`]} req/s, exit ${soak['exit code']}`,
    );
  } finally {
    fs.rmSync(sub, { recursive: true, force: true });
  }
}

/** Issue 24's targets this run measured, in run.js's shape: { what, value, target, unit, met }. */
function serveTargets(report) {
  const out = [];
  const add = (what, value, target, unit, met) => {
    if (Number.isFinite(value)) out.push({ what, value, target, unit, met: met(value, target) });
  };
  const atLeast = (v, t) => v >= t;
  const atMost = (v, t) => v <= t; // RSS growth: 'within 5%'
  const under = (v, t) => v < t; // the loop gap: 'under 20 ms'
  const s = report.serve?.[0];
  const k = report['serve-soak']?.[0];
  add(`serve VGG-16 ${s?.connections} connections / forward() b8`, s?.['serve/forward'], TARGETS.serveVsForward, 'x', atLeast);
  add(`serve RSS after ${k?.requests} / after ${SOAK_FIRST}`, k?.[`RSS end/${SOAK_FIRST}`], TARGETS.rssGrowth, 'x', atMost);
  add('serve largest loop gap (soak)', k?.['server loop gap ms'], TARGETS.loopGapMs, ' ms', under);
  add('serve largest loop gap (VGG-16 window)', s?.['server loop gap ms'], TARGETS.loopGapMs, ' ms', under);
  return out;
}

async function main() {
  const o = parseArgs(process.argv);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vgg-bench-serve-'));
  const report = {};
  try {
    await serveSection(o, dir, report);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  const targets = serveTargets(report);
  if (o.json) {
    console.log(JSON.stringify({ ...report, targets }, null, 2));
    return;
  }
  console.log(`vgg-native serve bench: ${os.cpus()[0].model.trim()}, ${os.cpus().length} CPUs, ${o.threads} threads, Node ${process.version}`);
  for (const name of ['serve', 'serve-soak']) {
    console.log(`\n${name}`);
    console.table(report[name]);
  }
  const load = os.loadavg().map((l) => round(l));
  console.log(`\ntargets: ${targets.map(formatTarget).join(', ')}; load average ${load.join(' ')}`);
}

module.exports = { serveSection, serveTargets, TARGETS };

if (require.main === module) {
  main().catch((e) => {
    console.error(e);
    process.exit(1);
  });
}
