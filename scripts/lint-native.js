#!/usr/bin/env node
// clang-format check of native/ (style in .clang-format). CI installs
// clang-format; elsewhere a missing clang-format skips the check with a note.
'use strict';
const { execFileSync, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');
const files = fs
  .readdirSync(path.join(root, 'native'))
  .filter((f) => /\.(cc|h)$/.test(f))
  .map((f) => path.join('native', f));
const found = spawnSync('clang-format', ['--version'], { encoding: 'utf8' });
if (found.error) {
  if (process.env.CI) {
    console.error('lint-native: clang-format is not installed (apt-get install clang-format)');
    process.exit(1);
  }
  console.error('lint-native: clang-format not found, native/ style not checked');
  process.exit(0);
}
try {
  execFileSync('clang-format', ['--dry-run', '--Werror', ...files], { cwd: root, stdio: 'inherit' });
} catch {
  console.error('lint-native: run `clang-format -i native/*.h native/*.cc`');
  process.exit(1);
}
