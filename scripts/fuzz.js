#!/usr/bin/env node
// `npm run fuzz -- [--minutes N] [--seed S] [--targets pth,pickle,onnx,model,image,safetensors]`
// Runs the mutation fuzzer (test/fuzz/worker.ts) in a child process and
// watches it: a child that dies (signal, native crash, out of memory) or
// stays on one input longer than 2 s has found something, which a watched
// child cannot report itself. A stalled input is replayed alone in a fresh
// process to confirm (a loaded machine can pause any process); only a replay
// that also takes over 2 s counts. Every finding is copied into
// test/fuzz/corpus/regressions/<target>/ (which `npm test` replays) and
// fails the run. Prints one JSON summary line last, and writes it to
// $FUZZ_REPORT (default <tmp>/vgg-native-fuzz.json) for `npm run robustness`.
'use strict';
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const crypto = require('node:crypto');
const { spawn } = require('node:child_process');

const ROOT = path.resolve(__dirname, '..');
const WORKER = path.join(ROOT, 'test', 'fuzz', 'worker.ts');
const REGRESSIONS = path.join(ROOT, 'test', 'fuzz', 'corpus', 'regressions');
const HANG_MS = 2000;
const REPLAY_KILL_MS = 30000;

function arg(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1] : fallback;
}
const minutes = Number(arg('minutes', '2'));
const seed = Number(arg('seed', String(Date.now() % 1e9)));
const targets = arg('targets', '');
// The fuzz targets (test/fuzz/targets.ts TARGETS; this script is plain JS and cannot import it).
const TARGET_NAMES = ['pth', 'pickle', 'onnx', 'model', 'image', 'safetensors'];
const reportFile = process.env.FUZZ_REPORT || path.join(os.tmpdir(), 'vgg-native-fuzz.json');
if (!(minutes > 0)) {
  console.error(`Expected a positive number for --minutes but received ${arg('minutes')}`);
  process.exit(2);
}

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'vgg-fuzz-work-'));
const deadline = Date.now() + minutes * 60000;
const findings = [];
const iterations = {};
let corpus = {};
let restarts = 0;
let slowUnconfirmed = 0;

function keep(kind, target, bytes, detail) {
  const hash = crypto.createHash('sha1').update(bytes).digest('hex').slice(0, 12);
  const dir = path.join(REGRESSIONS, target);
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${kind}-${hash}.bin`);
  fs.writeFileSync(file, bytes);
  findings.push({ kind, target, file: path.relative(ROOT, file), detail: String(detail).slice(0, 500) });
  console.error(`FINDING ${kind} in ${target}: ${path.relative(ROOT, file)}\n${String(detail).slice(0, 2000)}`);
}

function child(env) {
  return spawn(process.execPath, ['--import', 'tsx', WORKER], {
    cwd: ROOT,
    env: { ...process.env, FUZZ_WORK: work, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

function lines(stream, fn) {
  let buf = '';
  stream.on('data', (d) => {
    buf += d;
    for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
      fn(buf.slice(0, i));
      buf = buf.slice(i + 1);
    }
  });
}

/** Replays one stalled input alone; resolves to the time the input itself took (ms), or Infinity when it had to be killed. */
function replayTime(target, file) {
  return new Promise((resolve) => {
    const c = child({ FUZZ_REPLAY: `${target}:${file}`, FUZZ_WORK: fs.mkdtempSync(path.join(work, 'replay-')) });
    let ms = Infinity;
    lines(c.stdout, (l) => {
      try {
        ms = JSON.parse(l).replayMs ?? ms;
      } catch {}
    });
    const killer = setTimeout(() => c.kill('SIGKILL'), REPLAY_KILL_MS);
    c.on('exit', (_code, signal) => {
      clearTimeout(killer);
      resolve(signal ? Infinity : ms);
    });
    c.stderr.resume();
  });
}

async function session(n) {
  const c = child({ FUZZ_SECONDS: String(Math.max(1, (deadline - Date.now()) / 1000)), FUZZ_SEED: String(seed + n), FUZZ_TARGETS: targets });
  let stderr = '';
  let stalled;
  lines(c.stdout, (l) => {
    let m;
    try {
      m = JSON.parse(l);
    } catch {
      return;
    }
    if (m.summary) {
      for (const [t, k] of Object.entries(m.iterations)) iterations[t] = (iterations[t] || 0) + k;
      corpus = m.corpus;
    } else if (m.finding) {
      keep(m.finding, m.target, fs.readFileSync(path.join(work, m.file)), m.detail);
    }
  });
  c.stderr.on('data', (d) => {
    stderr = (stderr + d).slice(-4000);
  });
  const watch = setInterval(() => {
    let state;
    try {
      state = fs.readFileSync(path.join(work, 'state'), 'utf8').split(' ');
    } catch {
      return;
    }
    if (Date.now() - Number(state[2]) > HANG_MS) {
      stalled = { target: state[1], bytes: fs.readFileSync(path.join(work, 'current.bin')) };
      c.kill('SIGKILL');
    }
  }, 250);
  const [code, signal] = await new Promise((r) => c.on('exit', (...a) => r(a)));
  clearInterval(watch);
  let state;
  try {
    state = fs.readFileSync(path.join(work, 'state'), 'utf8').split(' ');
    fs.rmSync(path.join(work, 'state'));
  } catch {}
  if (stalled) {
    const file = path.join(work, 'stalled.bin');
    fs.writeFileSync(file, stalled.bytes);
    const ms = await replayTime(stalled.target, file);
    if (ms > HANG_MS) keep('hang', stalled.target, stalled.bytes, `replayed alone it ran ${ms} ms`);
    else slowUnconfirmed++;
    return true;
  }
  if (code !== 0) {
    if (state) keep('crash', state[1], fs.readFileSync(path.join(work, 'current.bin')), `exit ${code} signal ${signal}\n${stderr}`);
    else
      findings.push({
        kind: 'worker',
        detail: `the fuzz worker failed before its first input: exit ${code} signal ${signal}\n${stderr}`.slice(0, 2000),
      });
    return true;
  }
  return false;
}

(async () => {
  let n = 0;
  while (Date.now() < deadline - 1000) {
    const again = await session(n++);
    if (!again) break;
    restarts++;
  }
  fs.rmSync(work, { recursive: true, force: true });
  const countFiles = (d) => (fs.existsSync(d) ? fs.readdirSync(d).length : 0);
  const seedsDir = path.join(ROOT, 'test', 'fuzz', 'corpus', 'seeds');
  const summary = {
    minutes,
    seed,
    iterations,
    total: Object.values(iterations).reduce((a, b) => a + b, 0),
    liveCorpus: corpus,
    seeds: Object.fromEntries(TARGET_NAMES.map((t) => [t, countFiles(path.join(seedsDir, t))])),
    regressions: Object.fromEntries(TARGET_NAMES.map((t) => [t, countFiles(path.join(REGRESSIONS, t))])),
    restarts,
    slowUnconfirmed,
    findings,
  };
  fs.writeFileSync(reportFile, JSON.stringify(summary, null, 1));
  console.log(JSON.stringify(summary));
  process.exit(findings.length ? 1 : 0);
})();
