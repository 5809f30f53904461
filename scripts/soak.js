#!/usr/bin/env node
// `npm run soak -- [--calls 10000] [--concurrency 16] [--minutes 60]`:
// classify() calls from concurrent callers (test/soak/soak.ts), every answer
// compared with a lone call's, RSS after warm-up and at the end. `--minutes`
// makes it a timed run (calls unbounded unless --calls is given too).
// Prints one JSON line; writes it to $SOAK_REPORT when set. Exit 1 on any
// wrong answer, error, or RSS growth over 256 MiB.
'use strict';
const { spawnSync } = require('node:child_process');
const path = require('node:path');

if (!process.env.VGG_SOAK_CHILD) {
  // Re-run under tsx with --expose-gc (the soak is TypeScript, and RSS is read after a GC).
  const r = spawnSync(process.execPath, ['--expose-gc', '--import', 'tsx', __filename, ...process.argv.slice(2)], {
    stdio: 'inherit',
    env: { ...process.env, VGG_SOAK_CHILD: '1' },
    cwd: path.resolve(__dirname, '..'),
  });
  process.exit(r.status ?? 1);
}
const fs = require('node:fs');
const { runSoak, soakModel } = require('../test/soak/soak.ts');

const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
};
const minutes = arg('minutes', 0);
const calls = arg('calls', minutes ? Number.MAX_SAFE_INTEGER : 10000);
const concurrency = arg('concurrency', 16);

(async () => {
  const model = await soakModel();
  const r = await runSoak(model, { calls, concurrency, minutes, onProgress: (n) => n % 2000 === 0 && process.stderr.write(`soak: ${n} calls\n`) });
  model.dispose();
  const line = JSON.stringify(r);
  console.log(line);
  if (process.env.SOAK_REPORT) fs.writeFileSync(process.env.SOAK_REPORT, line);
  process.exit(r.wrong || r.errors || r.rssEndMiB - r.rssStartMiB > 256 ? 1 : 0);
})();
