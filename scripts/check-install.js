#!/usr/bin/env node
// `node scripts/check-install.js PROJECT [PHOTO]`: what a user who ran
// `npm install vgg-native` in PROJECT gets, checked the way they would use it.
// vgg-native and its platform package are installed with no install script,
// the addon that loads is the prebuilt one inside node_modules, every library
// it needs resolves inside node_modules (ldd), runtime() reports the official
// LibTorch 2.x and the oneDNN engine, and a photo is classified and one
// fine-tuning step runs. Prints one JSON line; exits 1 on the first failure.
'use strict';
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { execFileSync } = require('node:child_process');

const project = path.resolve(process.argv[2] || '.');
const photo = process.argv[3] || '/usr/lib/python3/dist-packages/skimage/data/chelsea.png';

function check(ok, what) {
  if (!ok) {
    console.error(`check-install: FAILED: ${what}`);
    process.exit(1);
  }
}

async function main() {
  const modules = path.join(project, 'node_modules');
  for (const name of ['vgg-native', '@vgg-native/linux-x64-gnu']) {
    const manifest = JSON.parse(fs.readFileSync(path.join(modules, name, 'package.json'), 'utf8'));
    const scripts = Object.keys(manifest.scripts || {}).filter((s) => ['preinstall', 'install', 'postinstall'].includes(s));
    check(scripts.length === 0, `${name} declares install scripts: ${scripts.join(', ')}`);
  }
  // npm runs `node-gyp rebuild` at install for a package with a binding.gyp and no install script of its own.
  check(!fs.existsSync(path.join(modules, 'vgg-native', 'binding.gyp')), 'vgg-native ships binding.gyp: npm would compile it at install');
  check(!fs.existsSync(path.join(modules, 'vgg-native', 'build')), 'vgg-native/build exists: something compiled at install');

  // By path: from inside this repository, require('vgg-native') would resolve to the repository itself.
  const vgg = require(path.join(modules, 'vgg-native'));
  const r = vgg.runtime();
  check(r.addon.kind === 'prebuilt' && r.addon.path.startsWith(modules), `the loaded addon is ${r.addon.kind} ${r.addon.path}`);
  check(/^2\./.test(r.torchVersion), `LibTorch ${r.torchVersion}, expected 2.x`);
  check(r.onednn.built && r.onednn.enabled, `oneDNN engine ${JSON.stringify(r.onednn)}`);

  // Every library the addon loads, as the dynamic linker resolves it.
  const ldd = execFileSync('ldd', [r.addon.path], { encoding: 'utf8' });
  check(!/not found/.test(ldd), `unresolved libraries:\n${ldd}`);
  const bundled = ['libtorch.so', 'libtorch_cpu.so', 'libc10.so', 'libgomp.so.1', 'libdnnl.so'];
  for (const lib of bundled) {
    const line = ldd.split('\n').find((l) => l.trim().startsWith(lib));
    check(line?.includes(modules), `${lib} resolves outside node_modules: ${line}`);
  }

  // The command as npm links it: its `#!/usr/bin/env -S node --single-threaded-gc` line must run here.
  const bin = path.join(modules, '.bin', 'vgg-native');
  const version = execFileSync(bin, ['--version'], { encoding: 'utf8' }).trim();
  const expected = JSON.parse(fs.readFileSync(path.join(modules, 'vgg-native', 'package.json'), 'utf8')).version;
  check(version === expected, `${bin} --version printed ${JSON.stringify(version)}, expected ${expected}`);

  const model = await vgg.vgg('vgg16', { numClasses: 1000, seed: 1 });
  const top = await model.classify(photo, { topK: 5 });
  check(Array.isArray(top) && top.length === 5, `classify gave ${JSON.stringify(top)}`);

  // One fine-tuning step on two tiny classes.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vgg-check-install-'));
  const sharp = require(require.resolve('sharp', { paths: [path.join(modules, 'vgg-native')] }));
  for (const [cls, colour] of [
    ['red', { r: 220, g: 20, b: 20 }],
    ['blue', { r: 20, g: 20, b: 220 }],
  ]) {
    fs.mkdirSync(path.join(dir, cls));
    for (let i = 0; i < 2; i++) {
      await sharp({ create: { width: 40, height: 40, channels: 3, background: colour } })
        .png()
        .toFile(path.join(dir, cls, `${i}.png`));
    }
  }
  const small = await vgg.vgg('vgg11', { numClasses: 2, seed: 1 });
  const report = await small.fineTune({ train: dir, epochs: 1, batchSize: 4, imageSize: 32, valFraction: 0 });
  fs.rmSync(dir, { recursive: true, force: true });
  check(report && Number.isFinite(report.epochs[0].trainLoss), `fineTune gave ${JSON.stringify(report).slice(0, 300)}`);
  const sizeMiB = (dirPath) => Number(execFileSync('du', ['-sm', dirPath], { encoding: 'utf8' }).split('\t')[0]);
  console.log(
    JSON.stringify({
      ok: true,
      libtorch: r.torchVersion,
      onednn: r.onednn.version,
      isa: r.onednn.isa,
      addon: r.addon.path,
      top1: top[0].label,
      trainLoss: report.epochs[0].trainLoss,
      installedMiB: { vggNative: sizeMiB(path.join(modules, 'vgg-native')), platform: sizeMiB(path.join(modules, '@vgg-native')) },
    }),
  );
}

main().catch((e) => {
  console.error(`check-install: FAILED: ${e.stack || e.message}`);
  process.exit(1);
});
