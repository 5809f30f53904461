#!/usr/bin/env bash
# One command on a fresh Debian 12 / Ubuntu machine: install what vgg-native
# needs (as root or with sudo), build it, and run the main job, `vgg-native
# demo` (src/cli/demo.ts): offline, about a minute on two cores, everything it
# writes in a new folder under the temp folder (or --out DIR), which it names
# first. Arguments go to the demo: bash scripts/demo.sh --full-epochs 0 --json
# Once installed, `node dist/cli.js demo` (or `npx vgg-native demo`) runs the demo alone.
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive
# LibTorch (CPU), threaded BLAS, Gloo, oneDNN headers; the demo's photographs (python3-skimage);
# for `npm test`: the PyTorch/torchvision/onnx/PIL oracles, sklearn's digits, clang-format (lint)
# and Chromium (the training report's test). apt-get runs only when something is missing.
PKGS="cmake g++ make libtorch-dev libopenblas0-pthread libgloo-dev libdnnl-dev patchelf unzip python3-skimage \
  python3-torch python3-torchvision python3-onnx python3-pil python3-sklearn clang-format chromium"
missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed' || missing="$missing $p"
done
if [ -n "$missing" ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq $PKGS >/dev/null
fi
# npm ci builds dist/ (tsc; the package itself has no install script), then the addon is compiled
# from source against Debian's LibTorch (cmake-js), as `npx vgg-native build` does for users.
# onnxruntime-node (a bench peer, devDependency) would fetch CUDA binaries at install: its CPU build
# ships in the package.
export ONNXRUNTIME_NODE_INSTALL_CUDA=skip
npm ci --no-audit --no-fund
npm run build:native
node dist/cli.js demo "$@"
