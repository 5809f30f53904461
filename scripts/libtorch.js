#!/usr/bin/env node
// Finds LibTorch, in this order:
//   1. $LIBTORCH: an unpacked official LibTorch (CPU or CUDA)
//   2. a Python torch: python3 -c 'import torch; print(torch.utils.cmake_prefix_path)'
//   3. the system (Debian/Ubuntu libtorch-dev)
// When none is found, on Debian/Ubuntu as root it installs libtorch-dev and
// libopenblas0-pthread with apt-get; otherwise it stops saying what to do.
//
// The choice is the script's for both build systems: scripts/build-native.js
// passes CMake its Torch_DIR (a bare `cmake-js build` asks `torch-dir`), and
// CMakeLists.txt finds the rest itself (layout, sources, OpenMP, Gloo, NCCL,
// oneDNN and the VGGN_WITH_* defines). node-gyp has no find_package:
// binding.gyp asks this script for all of it, derived here the same way.
//
// CLI:
//   node scripts/libtorch.js info | json | torch-dir            (people, build-native.js, scripts/*.sh)
//   node scripts/libtorch.js sources | include-dirs | onednn-include | defines | cxx-std-flag | cflags | ldflags | libs   (binding.gyp)
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const { execFileSync, spawnSync } = require('node:child_process');

const ROOT = path.resolve(__dirname, '..');
const SYSTEM_CMAKE_DIRS = [
  '/usr/lib/x86_64-linux-gnu/cmake/Torch',
  '/usr/lib/aarch64-linux-gnu/cmake/Torch',
  '/usr/lib/cmake/Torch',
  '/usr/local/lib/cmake/Torch',
  '/usr/share/cmake/Torch',
  '/usr/local/share/cmake/Torch',
];

function torchDirFromPrefix(prefix) {
  for (const rel of ['share/cmake/Torch', 'lib/cmake/Torch', 'Torch', 'cmake/Torch']) {
    const dir = path.join(prefix, rel);
    if (fs.existsSync(path.join(dir, 'TorchConfig.cmake'))) return dir;
  }
  return undefined;
}

function fromEnv() {
  const p = process.env.LIBTORCH;
  if (!p) return undefined;
  const dir = torchDirFromPrefix(p);
  if (!dir)
    throw new Error(
      `LIBTORCH=${p} has no share/cmake/Torch/TorchConfig.cmake; point it at an unpacked LibTorch (the folder holding include/, lib/, share/).`,
    );
  return { torchDir: dir, source: 'LIBTORCH' };
}

function fromPython() {
  for (const py of ['python3', 'python']) {
    const r = spawnSync(py, ['-c', 'import torch; print(torch.utils.cmake_prefix_path)'], { encoding: 'utf8', timeout: 60000 });
    if (r.status === 0 && r.stdout.trim()) {
      const dir = path.join(r.stdout.trim(), 'Torch');
      if (fs.existsSync(path.join(dir, 'TorchConfig.cmake'))) return { torchDir: dir, source: `python torch (${py})` };
    }
  }
  return undefined;
}

function fromSystem() {
  const dir = SYSTEM_CMAKE_DIRS.find((d) => fs.existsSync(path.join(d, 'TorchConfig.cmake')));
  return dir ? { torchDir: dir, source: 'system' } : undefined;
}

function installWithApt() {
  const isDebian = fs.existsSync('/etc/debian_version');
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  if (!isDebian || !isRoot) return false;
  console.error('vgg-native: no LibTorch found; installing libtorch-dev and libopenblas0-pthread with apt-get');
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  execFileSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env });
  execFileSync('apt-get', ['install', '-y', '-qq', 'libtorch-dev', 'libopenblas0-pthread', 'libdnnl-dev'], { stdio: 'inherit', env });
  return true;
}

const HELP = [
  'vgg-native: LibTorch not found. Do one of:',
  '  - Debian/Ubuntu: sudo apt-get install libtorch-dev libopenblas0-pthread',
  '  - download LibTorch (CPU or CUDA) from pytorch.org, unpack it, and set LIBTORCH=/path/to/libtorch',
  '  - install PyTorch for python3 (pip install torch): its bundled LibTorch is used',
  'then run `npm rebuild vgg-native` (or `npm run build` in this folder).',
].join('\n');

function readFileOr(file, fallback) {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return fallback;
  }
}

/** Resolves everything a build needs about the LibTorch that will be used. */
function findLibTorch({ install = false } = {}) {
  let found = fromEnv() || fromPython() || fromSystem();
  if (!found && install && installWithApt()) found = fromSystem();
  if (!found) throw new Error(HELP);
  const torchDir = found.torchDir;
  const version = (/set\(PACKAGE_VERSION "([^"]+)"\)/.exec(readFileOr(path.join(torchDir, 'TorchConfigVersion.cmake'), '')) || [])[1] || 'unknown';
  const config = readFileOr(path.join(torchDir, 'TorchConfig.cmake'), '');
  const abi = (/-D_GLIBCXX_USE_CXX11_ABI=(\d)/.exec(config) || [])[1];
  // The official archive: <prefix>/share/cmake/Torch with <prefix>/lib and
  // <prefix>/include; a pip wheel: torch/share/cmake/Torch with torch/lib and
  // torch/include (the same layout, one level down); Debian's puts the
  // libraries beside the cmake dir instead.
  const prefix = path.resolve(torchDir, '../../..');
  const libCandidates = [
    path.join(prefix, 'lib'),
    path.resolve(prefix, '../lib'),
    path.resolve(torchDir, '../..'),
    path.resolve(torchDir, '../../lib'),
  ];
  const libDir = libCandidates.find(
    (d) => fs.existsSync(path.join(d, 'libtorch.so')) || fs.existsSync(path.join(d, 'libtorch.dylib')) || fs.existsSync(path.join(d, 'torch.lib')),
  );
  if (!libDir) throw new Error(`vgg-native: found ${torchDir} but no libtorch library beside it (looked in ${libCandidates.join(', ')}).\n${HELP}`);
  const incCandidates = [path.join(prefix, 'include'), path.resolve(prefix, '../include'), '/usr/include'];
  const includeRoot = incCandidates.find((d) => fs.existsSync(path.join(d, 'torch', 'csrc', 'api', 'include', 'torch', 'torch.h')));
  if (!includeRoot)
    throw new Error(
      `vgg-native: found ${torchDir} but not its headers (torch/csrc/api/include/torch/torch.h under ${incCandidates.join(' or ')}).\n${HELP}`,
    );
  const cuda = ['libtorch_cuda.so', 'torch_cuda.lib', 'libtorch_cuda.dylib'].some((f) => fs.existsSync(path.join(libDir, f)));
  const hasLib = (name) => fs.existsSync(path.join(libDir, `lib${name}.so`)) || fs.existsSync(path.join(libDir, `lib${name}.dylib`));
  const libs = ['torch', 'torch_cpu', 'c10'];
  if (cuda) libs.push('torch_cuda', 'c10_cuda');
  // c10d (torch.distributed) with Gloo, when this LibTorch ships its headers and
  // Gloo's own (ProcessGroupGloo.hpp includes gloo/algorithm.h): beside LibTorch's,
  // the system's (libgloo-dev), or $VGG_NATIVE_GLOO_INCLUDE. VGG_NATIVE_C10D=0 leaves it out.
  const c10dDir = path.join(includeRoot, 'torch', 'csrc', 'distributed', 'c10d');
  const glooInclude = [includeRoot, '/usr/include', process.env.VGG_NATIVE_GLOO_INCLUDE].find(
    (d) => d && fs.existsSync(path.join(d, 'gloo', 'algorithm.h')),
  );
  const c10d = process.env.VGG_NATIVE_C10D !== '0' && Boolean(glooInclude) && fs.existsSync(path.join(c10dDir, 'ProcessGroupGloo.hpp'));
  // NCCL for CUDA tensors: a CUDA LibTorch whose c10d has ProcessGroupNCCL and an
  // nccl.h to compile it against. VGG_NATIVE_NCCL=0 leaves it out.
  const ncclInclude =
    cuda && c10d && process.env.VGG_NATIVE_NCCL !== '0' && fs.existsSync(path.join(c10dDir, 'ProcessGroupNCCL.hpp'))
      ? ncclHeaderDir(includeRoot)
      : undefined;
  const nccl = Boolean(ncclInclude);
  // A pip CUDA torch's headers include cuSPARSE's, cuBLAS's, cuDNN's ... from NVIDIA's wheels
  // (site-packages/nvidia/*/include), which a minimal CUDA toolkit lacks.
  const pipCudaIncludes = cuda ? nvidiaWheelDirs(includeRoot, 'include').filter((d) => d !== ncclInclude) : [];
  const onednn = oneDnn(includeRoot);
  const openmp = openMpRuntime(includeRoot, libDir);
  // PyTorch 2.14's headers stop with "C++20 or later compatible compiler is required"; earlier ones need C++17.
  const allH = readFileOr(path.join(includeRoot, 'torch', 'csrc', 'api', 'include', 'torch', 'all.h'), '');
  const cxxStd = /C\+\+20 or later/.test(allH) ? 20 : 17;
  return {
    source: found.source,
    torchDir,
    version,
    cuda,
    abi,
    libDir,
    c10d,
    nccl,
    onednn,
    openmp,
    cxxStd,
    defines: [
      ...(c10d ? ['VGGN_WITH_C10D=1', 'USE_C10D_GLOO=1'] : []),
      ...(nccl ? ['VGGN_WITH_NCCL=1', 'USE_C10D_NCCL=1'] : []),
      ...(onednn ? ['VGGN_WITH_ONEDNN=1'] : []),
    ],
    includeDirs: [
      includeRoot,
      path.join(includeRoot, 'torch', 'csrc', 'api', 'include'),
      ...(c10d && glooInclude !== includeRoot && glooInclude !== '/usr/include' ? [glooInclude] : []),
      ...(nccl && ncclInclude !== '/usr/include' ? [ncclInclude] : []),
      ...pipCudaIncludes,
      ...(onednn && !onednn.firstInclude && onednn.includeDir !== '/usr/include' ? [onednn.includeDir] : []),
    ],
    libs: libs.filter(hasLib),
  };
}

/** site-packages/nvidia/<name>/<sub> folders beside a pip torch (NVIDIA's CUDA wheels), those that exist. */
function nvidiaWheelDirs(includeRoot, sub) {
  const nvidia = path.join(path.resolve(includeRoot, '../..'), 'nvidia');
  try {
    return fs
      .readdirSync(nvidia)
      .sort()
      .map((d) => path.join(nvidia, d, sub))
      .filter((d) => fs.existsSync(d));
  } catch {
    return [];
  }
}

/**
 * The folder holding nccl.h: $NCCL_INCLUDE_DIR, LibTorch's own include/, the
 * system's, CUDA's, or pip's NVIDIA packages beside a pip torch
 * (site-packages/nvidia/<name>/include, as nvidia-nccl-cu* install it).
 */
function ncclHeaderDir(includeRoot) {
  const dirs = [process.env.NCCL_INCLUDE_DIR, includeRoot, '/usr/include', '/usr/local/cuda/include', ...nvidiaWheelDirs(includeRoot, 'include')];
  return dirs.find((d) => d && fs.existsSync(path.join(d, 'nccl.h')));
}

/**
 * The oneDNN inference engine (native/onednn_trunk.cc) links a oneDNN of its
 * own: the system's (Debian's libdnnl-dev) or $VGG_NATIVE_ONEDNN (a folder
 * with include/ and lib/), never the copy inside LibTorch (the official and
 * pip builds link oneDNN statically with hidden symbols). With Debian's
 * LibTorch 1.13 that is the very libdnnl.so.2 LibTorch loads; with 2.x the two
 * live side by side. The engine's source follows the oneDNN 2 API.
 */
function oneDnn(torchIncludeRoot) {
  const roots = [process.env.VGG_NATIVE_ONEDNN, '/usr'].filter(Boolean);
  for (const root of roots) {
    const includeDir = path.join(root, 'include');
    const major = (/#define DNNL_VERSION_MAJOR (\d+)/.exec(readFileOr(path.join(includeDir, 'oneapi', 'dnnl', 'dnnl_version.h'), '')) || [])[1];
    if (!major) continue;
    const libDirs = [
      path.join(root, 'lib'),
      path.join(root, 'lib', 'x86_64-linux-gnu'),
      path.join(root, 'lib', 'aarch64-linux-gnu'),
      path.join(root, 'lib64'),
    ];
    const libDir = libDirs.find((d) => fs.existsSync(path.join(d, 'libdnnl.so')));
    if (libDir) return { version: Number(major), includeDir, libDir, firstInclude: shadowInclude(torchIncludeRoot, includeDir) };
  }
  return false;
}

/**
 * LibTorch 2.x ships the headers of its own (hidden) oneDNN in include/oneapi;
 * the engine must compile against the headers of the oneDNN it links. A
 * folder holding only `oneapi` -> <linked oneDNN>/include/oneapi goes first on
 * the include path (-I before LibTorch's -isystem): its path, made by
 * {@link makeShadowInclude} when binding.gyp asks (CMakeLists.txt makes its own
 * in its build folder). Undefined when LibTorch has none of its own.
 */
function shadowInclude(torchIncludeRoot, includeDir) {
  const own = path.join(torchIncludeRoot, 'oneapi');
  if (!fs.existsSync(own) || path.resolve(own) === path.resolve(includeDir, 'oneapi')) return undefined;
  return path.join(ROOT, 'build', 'onednn-include');
}

function makeShadowInclude(onednn) {
  const dir = onednn.firstInclude;
  const link = path.join(dir, 'oneapi');
  fs.mkdirSync(dir, { recursive: true });
  if (readLink(link) !== path.join(onednn.includeDir, 'oneapi')) {
    fs.rmSync(link, { force: true });
    fs.symlinkSync(path.join(onednn.includeDir, 'oneapi'), link);
  }
  return dir;
}

function readLink(file) {
  try {
    return fs.readlinkSync(file);
  } catch {
    return undefined;
  }
}

/**
 * ATen's at::parallel_for is an inline OpenMP loop when LibTorch's backend is
 * OpenMP (ATen/Config.h): compiled without -fopenmp it runs on one thread.
 * The addon then compiles with -fopenmp and links the OpenMP runtime LibTorch
 * itself loads (Debian: the system libgomp; official archives and pip: their
 * bundled libgomp-<hash>.so.1), so both share one thread team. Null when
 * ATen's backend is not OpenMP or its runtime cannot be told.
 */
function openMpRuntime(includeRoot, libDir) {
  if (!/#define AT_PARALLEL_OPENMP 1/.test(readFileOr(path.join(includeRoot, 'ATen', 'Config.h'), ''))) return null;
  let needed = '';
  try {
    needed = execFileSync('readelf', ['-d', path.join(libDir, 'libtorch_cpu.so')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  } catch {
    return null;
  }
  const lib = (/\[((?:libgomp|libiomp5|libomp)[^\]]*)\]/.exec(needed) || [])[1];
  if (!lib) return null;
  const bundled = path.join(libDir, lib);
  return { cflags: '-fopenmp', link: lib === 'libgomp.so.1' || !fs.existsSync(bundled) ? '-fopenmp' : bundled };
}

/** The native sources for binding.gyp: every .cc in native/ (CMakeLists.txt globs the same). */
function nativeSources() {
  return fs
    .readdirSync(path.join(ROOT, 'native'))
    .filter((f) => f.endsWith('.cc'))
    .sort()
    .map((f) => `native/${f}`);
}

/** The oneDNN library the engine links, by its full path (no -L that could also pick a system libtorch). */
function oneDnnLib(t) {
  return path.join(t.onednn.libDir, 'libdnnl.so');
}

function describe(t) {
  return `LibTorch ${t.version} (${t.cuda ? 'CUDA' : 'CPU only'}${t.c10d ? ', torch.distributed/Gloo' : ''}${t.nccl ? '+NCCL' : ''}${t.onednn ? ', oneDNN engine' : ''}) from ${t.source}: ${t.torchDir}, libraries in ${t.libDir}`;
}

module.exports = { findLibTorch, nativeSources, describe, oneDnnLib, HELP };

if (require.main === module) {
  const what = process.argv[2] || 'info';
  try {
    if (what === 'sources') {
      console.log(nativeSources().join(' '));
      process.exit(0);
    }
    const t = findLibTorch({ install: process.argv.includes('--install') });
    switch (what) {
      case 'info':
        console.log(describe(t));
        break;
      case 'json':
        console.log(JSON.stringify(t, null, 2));
        break;
      case 'torch-dir':
        console.log(t.torchDir);
        break;
      case 'cxx-std-flag':
        console.log(`-std=c++${t.cxxStd}`);
        break;
      case 'include-dirs':
        console.log(t.includeDirs.join(' '));
        break;
      case 'defines':
        console.log(t.defines.join(' '));
        break;
      case 'cflags':
        console.log([t.abi !== undefined ? `-D_GLIBCXX_USE_CXX11_ABI=${t.abi}` : '', t.openmp ? t.openmp.cflags : ''].join(' ').trim());
        break;
      case 'ldflags':
        console.log([`-L${t.libDir}`, `-Wl,-rpath,${t.libDir}`].join(' '));
        break;
      // After the objects on the link line (gyp's "libraries"), so --as-needed keeps them.
      case 'libs':
        console.log([...t.libs.map((l) => `-l${l}`), ...(t.onednn ? [oneDnnLib(t)] : []), ...(t.openmp ? [t.openmp.link] : [])].join(' '));
        break;
      case 'onednn-include':
        console.log(t.onednn?.firstInclude ? makeShadowInclude(t.onednn) : '');
        break;
      default:
        throw new Error(`unknown query ${what}`);
    }
  } catch (e) {
    console.error(e.message);
    process.exit(1);
  }
}
