#!/usr/bin/env node
// `npm run robustness [-- --fuzz-minutes N] [--soak-calls N] [--no-asan]`:
// the issue-13 evidence in one command. Runs the fuzzer (scripts/fuzz.js),
// the security suite, the fuzz-corpus replay, the soak (scripts/soak.js) and
// the kill tests, then the sanitizer run (scripts/asan.sh, building the ASan
// addon into its private folder if absent), and prints the figures: fuzz
// iterations and corpus sizes, each security case and its code, soak calls,
// wrong answers and RSS start/end, the sanitizer verdict. Exit status 0 only
// when every part passed.
'use strict';
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawnSync } = require('node:child_process');

const ROOT = path.resolve(__dirname, '..');
const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : fallback;
};
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vgg-robustness-'));
const failures = [];
const run = (what, cmd, args, env = {}) => {
  console.error(`\n== ${what}: ${cmd} ${args.join(' ')}`);
  const r = spawnSync(cmd, args, { cwd: ROOT, stdio: ['ignore', 'inherit', 'inherit'], env: { ...process.env, ...env } });
  if (r.status !== 0) failures.push(`${what} (exit ${r.status ?? r.signal})`);
  return r.status;
};

// 1. Fuzzing.
const fuzzReport = path.join(tmp, 'fuzz.json');
run('fuzz', process.execPath, [path.join('scripts', 'fuzz.js'), '--minutes', arg('fuzz-minutes', '2')], { FUZZ_REPORT: fuzzReport });
// 2. Security suite, corpus replay, kill tests.
const mocharc = path.join(tmp, 'mocharc.json');
// The report hook goes in the same `require` list as tsx (a --require flag would replace the list).
fs.writeFileSync(
  mocharc,
  JSON.stringify({ require: ['tsx/cjs', 'test/helpers/robustness-report.ts'], extension: ['ts'], timeout: 600000, reporter: 'dot' }),
);
const testsReport = path.join(tmp, 'tests.json');
run(
  'security suite, corpus replay, kill tests, short soak',
  process.execPath,
  [
    require.resolve('mocha/bin/mocha.js'),
    '--config',
    mocharc,
    'test/security.test.ts',
    'test/fuzz-regressions.test.ts',
    'test/atomic-writes.test.ts',
    'test/soak.test.ts',
  ],
  { ROBUSTNESS_OUT: testsReport },
);
// 3. The full soak.
const soakReport = path.join(tmp, 'soak.json');
run('soak', process.execPath, [path.join('scripts', 'soak.js'), '--calls', arg('soak-calls', '10000')], { SOAK_REPORT: soakReport });
// 4. Sanitizers.
let asan = 'skipped (--no-asan)';
if (!process.argv.includes('--no-asan')) {
  const built = fs.existsSync(path.join(process.env.VGG_ASAN_BUILD || '/tmp/vgg-native-asan', 'Release', 'vgg_native.node'));
  asan = run('sanitizers', 'bash', [path.join('scripts', 'asan.sh'), ...(built ? ['--skip-build'] : [])]) === 0 ? 'clean' : 'FAILED';
}

const read = (f) => (fs.existsSync(f) ? JSON.parse(fs.readFileSync(f, 'utf8')) : undefined);
const fuzz = read(fuzzReport);
const tests = read(testsReport);
const soak = read(soakReport);
console.log('\n==== robustness (issue 13) ====');
if (fuzz) {
  console.log(
    `fuzz: ${fuzz.total} iterations in ${fuzz.minutes} min (${Object.entries(fuzz.iterations)
      .map(([t, n]) => `${t} ${n}`)
      .join(', ')}); findings ${fuzz.findings.length}`,
  );
  console.log(
    `  corpus: seeds ${JSON.stringify(fuzz.seeds)}, regressions ${JSON.stringify(fuzz.regressions)}, live ${JSON.stringify(fuzz.liveCorpus)}`,
  );
} else console.log('fuzz: no report');
if (tests) {
  const byCode = {};
  for (const c of tests.security) byCode[c.code] = (byCode[c.code] || 0) + 1;
  console.log(`security: ${tests.security.length} cases refused; by code ${JSON.stringify(byCode)}`);
  for (const c of tests.security) console.log(`  ${c.code.padEnd(18)} ${c.name}`);
  const s = tests.soak;
  if (s?.soak)
    console.log(
      `short soak: ${s.soak.calls} calls, ${s.soak.concurrency} callers, ${s.soak.wrong} wrong, ${s.soak.errors} errors, RSS ${s.soak.rssStartMiB} → ${s.soak.rssEndMiB} MiB`,
    );
  if (s?.workers) console.log(`worker_threads: ${s.workers.map((w) => `${w.calls} calls, ${w.wrong} wrong`).join('; ')}`);
  if (s?.disposed) console.log(`dispose() with work queued: ${JSON.stringify(s.disposed)}`);
  if (s && 'exitCode' in s) console.log(`exit with work in flight: exit code ${s.exitCode}`);
} else console.log('security/short soak: no report');
if (soak)
  console.log(
    `soak: ${soak.calls} calls, ${soak.concurrency} callers, ${soak.wrong} wrong, ${soak.errors} errors, RSS start ${soak.rssStartMiB} MiB, end ${soak.rssEndMiB} MiB, peak ${soak.rssPeakMiB} MiB, ${soak.seconds} s`,
  );
else console.log('soak: no report');
console.log(`sanitizers (ASan+UBSan): ${asan}`);
console.log(failures.length ? `FAILED: ${failures.join('; ')}` : 'all passed');
fs.rmSync(tmp, { recursive: true, force: true });
process.exit(failures.length ? 1 : 0);
