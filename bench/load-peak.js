// Child process: loads one checkpoint with vgg-native and prints JSON with
// the wall time and the peak RSS above the process's baseline (VmHWM).
'use strict';
const fs = require('node:fs');
const path = require('node:path');

function status(key) {
  const m = new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(fs.readFileSync('/proc/self/status', 'utf8'));
  return m ? Number(m[1]) * 1024 : NaN;
}

(async () => {
  const { vgg } = require(path.resolve(__dirname, '..', 'dist'));
  const file = process.argv[2];
  // Warm the addon and LibTorch so their own pages count as baseline.
  const warm = await vgg('vgg11', { numClasses: 0 });
  warm.dispose();
  const baseline = status('VmRSS');
  const t0 = process.hrtime.bigint();
  const model = await vgg({ weights: file });
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const peak = status('VmHWM');
  const out = { arch: model.arch, seconds, baseline, peak, above: peak - baseline, fileSize: fs.statSync(file).size };
  model.dispose();
  console.log(JSON.stringify(out));
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
