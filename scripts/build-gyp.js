#!/usr/bin/env node
// `npm run build:gyp`: builds the addon with node-gyp into build-gyp/ (for
// users whose toolchain is node-gyp), from binding.gyp, which takes its
// sources and LibTorch flags from scripts/libtorch.js. `npm test` builds
// nothing: test/gyp-build.test.ts runs when build-gyp/ holds this build (CI
// makes it its Debian LibTorch build) and says it is skipped otherwise.
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const os = require('node:os');
const { spawnSync } = require('node:child_process');

const ROOT = path.resolve(__dirname, '..');
const OUT = path.join(ROOT, 'build-gyp', 'Release', 'vgg_native.node');
const npmBin = path.dirname(process.execPath);
const gyp = [
  path.join(npmBin, '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
  path.join(ROOT, 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
].find((p) => fs.existsSync(p));
if (!gyp) {
  console.error('node-gyp not found (it ships with npm)');
  process.exit(1);
}
// node-gyp always writes to ./build: build in a scratch copy so the cmake-js build stays.
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'vgg-native-gyp-'));
for (const f of ['binding.gyp', 'package.json']) fs.copyFileSync(path.join(ROOT, f), path.join(work, f));
fs.cpSync(path.join(ROOT, 'native'), path.join(work, 'native'), { recursive: true });
fs.cpSync(path.join(ROOT, 'scripts'), path.join(work, 'scripts'), { recursive: true });
fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(work, 'node_modules'));
const r = spawnSync(process.execPath, [gyp, 'rebuild', `--jobs=${os.cpus().length}`], { cwd: work, stdio: 'inherit' });
if (r.status !== 0) process.exit(r.status ?? 1);
fs.mkdirSync(path.join(ROOT, 'build-gyp', 'Release'), { recursive: true });
fs.copyFileSync(path.join(work, 'build', 'Release', 'vgg_native.node'), OUT);
fs.rmSync(work, { recursive: true, force: true });
console.log('vgg-native: node-gyp build at build-gyp/Release/vgg_native.node');
