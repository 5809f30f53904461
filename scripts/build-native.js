#!/usr/bin/env node
// `npm install` / `npm run build`: find LibTorch (installing it with apt-get
// on Debian as root when absent), say which one, and build with cmake-js.
// No Node headers are downloaded: package.json's binary.napi_versions makes
// cmake-js use node-api-headers.
'use strict';
const path = require('node:path');
const os = require('node:os');
const { spawnSync } = require('node:child_process');
const { findLibTorch, describe } = require('./libtorch');

const ROOT = path.resolve(__dirname, '..');
let torch;
try {
  torch = findLibTorch({ install: true });
} catch (e) {
  console.error(e.message);
  process.exit(1);
}
console.log(`vgg-native: building against ${describe(torch)}`);
const cmakeJs = require.resolve('cmake-js/bin/cmake-js');
const args = [
  cmakeJs,
  'build',
  '-d',
  ROOT,
  '-O',
  path.join(ROOT, 'build'),
  '-B',
  'Release',
  '--parallel',
  String(Math.max(1, os.cpus().length)),
  `--CDTorch_DIR=${torch.torchDir}`,
  '-l',
  'warn',
];
const r = spawnSync(process.execPath, args, { stdio: 'inherit', cwd: ROOT });
process.exit(r.status === null ? 1 : r.status);
