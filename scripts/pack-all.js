#!/usr/bin/env node
// `npm run pack:all -- DIR [--libtorch DIR] [--skip-build]`: writes every
// tarball a release publishes into DIR: the main package (vgg-native, no
// install script) and the prebuilt platform package @vgg-native/linux-x64-gnu,
// sharp's way (per-platform optional dependency with `os`, `cpu`, `libc`).
//
// The platform package holds the addon compiled against the official LibTorch
// CPU build (default: the torch 2.x +cpu wheel found on disk, whose torch/lib,
// torch/include and torch/share are the LibTorch layout) and, in lib/, what it
// loads: libtorch, libtorch_cpu, libc10, the wheel's OpenMP runtime, and the
// oneDNN the engine links (the system's libdnnl, with its OpenCL ICD loader),
// found through an $ORIGIN-relative RUNPATH. Not libtorch_python or test libraries.
'use strict';
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { execFileSync, spawnSync } = require('node:child_process');
const { findLibTorch, oneDnnLib } = require('./libtorch');

const ROOT = path.resolve(__dirname, '..');
const WORK = path.join(ROOT, 'build-prebuilt');
const PLATFORM = { name: '@vgg-native/linux-x64-gnu', dir: 'linux-x64-gnu', os: 'linux', cpu: 'x64', libc: 'glibc' };
/** Where the machines of this project keep wheels; $VGG_NATIVE_WHEELS first. */
const WHEEL_DIRS = [process.env.VGG_NATIVE_WHEELS, '/opt/wheels', '/opt/pypi/files', '/opt/pypi-more/files'].filter(Boolean);
/** LibTorch's libraries the addon needs (by soname); the wheel's others (python, tests, AOTI) stay out. */
const TORCH_LIBS = ['libtorch.so', 'libtorch_cpu.so', 'libc10.so', 'libgomp.so.1'];

function usage(msg) {
  console.error(`pack:all: ${msg}\nusage: npm run pack:all -- DIR [--libtorch DIR] [--skip-build]`);
  process.exit(2);
}

function arg(name) {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { stdio: 'inherit', cwd: ROOT, ...opts });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status ?? r.signal})`);
}

/** The newest torch-2.*+cpu wheel on disk. */
function findCpuWheel() {
  const wheels = WHEEL_DIRS.flatMap((d) => {
    try {
      return fs.readdirSync(d).map((f) => path.join(d, f));
    } catch {
      return [];
    }
  }).filter((f) => /\/torch-2\.[\d.]+\+cpu-.*\.whl$/.test(f));
  wheels.sort();
  return wheels.pop();
}

/** A LibTorch folder: --libtorch, or the CPU wheel unpacked (once) into build-prebuilt/. */
function libTorchDir() {
  const given = arg('libtorch') || process.env.VGG_NATIVE_PREBUILT_LIBTORCH;
  if (given) return path.resolve(given);
  const wheel = findCpuWheel();
  if (!wheel) throw new Error(`no torch-2.*+cpu wheel in ${WHEEL_DIRS.join(', ')}; pass --libtorch DIR`);
  const dest = path.join(WORK, path.basename(wheel, '.whl'));
  if (!fs.existsSync(path.join(dest, 'torch', 'lib', 'libtorch_cpu.so'))) {
    console.log(`pack:all: unpacking ${wheel}`);
    fs.rmSync(dest, { recursive: true, force: true });
    fs.mkdirSync(dest, { recursive: true });
    execFileSync('unzip', ['-q', '-o', wheel, 'torch/lib/*', 'torch/include/*', 'torch/share/*', '-d', dest], { stdio: 'inherit' });
  }
  return path.join(dest, 'torch');
}

function buildAddon(libtorch) {
  const env = { ...process.env, LIBTORCH: libtorch };
  const torch = findLibTorchWith(env);
  if (!torch.onednn) throw new Error('no oneDNN for the engine (install libdnnl-dev or set VGG_NATIVE_ONEDNN): a prebuilt without it would be slow');
  const cmakeJs = require.resolve('cmake-js/bin/cmake-js');
  const out = path.join(WORK, 'addon');
  run(
    process.execPath,
    [
      cmakeJs,
      'build',
      '-d',
      ROOT,
      '-O',
      out,
      '-B',
      'Release',
      '--parallel',
      String(os.cpus().length),
      `--CDTorch_DIR=${torch.torchDir}`,
      '--CDVGG_RPATH_ORIGIN=ON',
      '-l',
      'warn',
    ],
    { env },
  );
  return { addon: path.join(out, 'Release', 'vgg_native.node'), torch };
}

function findLibTorchWith(env) {
  const saved = process.env.LIBTORCH;
  process.env.LIBTORCH = env.LIBTORCH;
  try {
    return findLibTorch();
  } finally {
    if (saved === undefined) delete process.env.LIBTORCH;
    else process.env.LIBTORCH = saved;
  }
}

/** The real file behind a library name (Debian's libdnnl.so -> libdnnl.so.2.6). */
const realFile = (f) => fs.realpathSync(f);

function neededOf(file) {
  const out = execFileSync('readelf', ['-d', file], { encoding: 'utf8' });
  return [...out.matchAll(/\(NEEDED\)\s+Shared library: \[([^\]]+)\]/g)].map((m) => m[1]);
}

/** The system library a soname resolves to (ldconfig's cache). */
function systemLib(soname) {
  const line = execFileSync('ldconfig', ['-p'], { encoding: 'utf8' })
    .split('\n')
    .find((l) => l.includes(`${soname} (`) && l.includes('x86-64'));
  if (!line) throw new Error(`${soname} is not installed`);
  return line.split('=>')[1].trim();
}

function assemblePlatform(addon, torch, version) {
  const pkg = path.join(WORK, 'pkg', PLATFORM.dir);
  const lib = path.join(pkg, 'lib');
  fs.rmSync(pkg, { recursive: true, force: true });
  fs.mkdirSync(lib, { recursive: true });
  fs.copyFileSync(addon, path.join(pkg, 'vgg_native.node'));
  for (const name of TORCH_LIBS) fs.copyFileSync(path.join(torch.libDir, name), path.join(lib, name));
  // oneDNN for the engine, under its soname, and what it loads that a bare system lacks (the OpenCL ICD loader).
  const dnnl = realFile(oneDnnLib(torch));
  const dnnlSoname = neededOf(addon).find((n) => n.startsWith('libdnnl.so'));
  fs.copyFileSync(dnnl, path.join(lib, dnnlSoname));
  for (const dep of neededOf(dnnl).filter((n) => n.startsWith('libOpenCL'))) fs.copyFileSync(realFile(systemLib(dep)), path.join(lib, dep));
  // libdnnl's own dependencies resolve beside it (RUNPATH applies to an object's own NEEDED only).
  run('patchelf', ['--set-rpath', '$ORIGIN', path.join(lib, dnnlSoname)]);
  // Debug symbols are most of libtorch_cpu's size; the registry refuses tarballs past ~200 MB.
  run('strip', ['--strip-unneeded', ...fs.readdirSync(lib).map((f) => path.join(lib, f)), path.join(pkg, 'vgg_native.node')]);
  const manifest = {
    name: PLATFORM.name,
    version,
    description: `vgg-native's addon prebuilt for ${PLATFORM.os}-${PLATFORM.cpu} (glibc), with LibTorch ${torch.version} (CPU) and oneDNN`,
    license: 'MIT (vgg-native); LibTorch: BSD-3-Clause; oneDNN: Apache-2.0; libgomp: GPL-3.0 with the GCC Runtime Library Exception',
    os: [PLATFORM.os],
    cpu: [PLATFORM.cpu],
    libc: [PLATFORM.libc],
    files: ['vgg_native.node', 'lib/'],
    vggNative: { libtorch: torch.version, onednn: dnnlSoname },
  };
  fs.writeFileSync(path.join(pkg, 'package.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  fs.writeFileSync(
    path.join(pkg, 'README.md'),
    `# ${PLATFORM.name}\n\nThe prebuilt native addon of [vgg-native](https://www.npmjs.com/package/vgg-native) for ${PLATFORM.os}-${PLATFORM.cpu} with glibc: LibTorch ${torch.version} (CPU) and oneDNN in \`lib/\`. Installed by vgg-native as an optional dependency; not for direct use.\n`,
  );
  return pkg;
}

function npmPack(folder, dest) {
  const out = execFileSync('npm', ['pack', '--silent', '--ignore-scripts', '--pack-destination', dest], { cwd: folder, encoding: 'utf8' })
    .trim()
    .split('\n')
    .pop();
  return path.join(dest, out);
}

/**
 * The main package as published: this repository's files (what `npm pack` would take, with a
 * fresh dist/) and a package.json that adds the platform package as an optional dependency.
 * The repository's own package.json does not list it: until it is on the registry, `npm ci`
 * would find it missing from the lockfile.
 */
function stageMain(version) {
  run('npm', ['run', '--silent', 'build:ts']);
  const [listing] = JSON.parse(execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: ROOT, encoding: 'utf8' }));
  const stage = path.join(WORK, 'pkg', 'vgg-native');
  fs.rmSync(stage, { recursive: true, force: true });
  for (const { path: rel } of listing.files) {
    fs.mkdirSync(path.dirname(path.join(stage, rel)), { recursive: true });
    fs.copyFileSync(path.join(ROOT, rel), path.join(stage, rel));
  }
  const manifest = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
  manifest.optionalDependencies = { ...manifest.optionalDependencies, [PLATFORM.name]: version };
  fs.writeFileSync(path.join(stage, 'package.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  return stage;
}

function main() {
  const dest = process.argv[2];
  if (!dest || dest.startsWith('--')) usage('DIR is missing');
  fs.mkdirSync(dest, { recursive: true });
  const version = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')).version;
  const libtorch = libTorchDir();
  let built;
  if (process.argv.includes('--skip-build') && fs.existsSync(path.join(WORK, 'addon', 'Release', 'vgg_native.node'))) {
    built = { addon: path.join(WORK, 'addon', 'Release', 'vgg_native.node'), torch: findLibTorchWith({ LIBTORCH: libtorch }) };
  } else {
    built = buildAddon(libtorch);
  }
  const pkg = assemblePlatform(built.addon, built.torch, version);
  const tarballs = [npmPack(pkg, path.resolve(dest)), npmPack(stageMain(version), path.resolve(dest))];
  for (const t of tarballs) console.log(`${t}\t${(fs.statSync(t).size / 2 ** 20).toFixed(1)} MiB`);
}

try {
  main();
} catch (e) {
  console.error(`pack:all: ${e.message}`);
  process.exit(1);
}
