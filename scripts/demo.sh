#!/usr/bin/env bash
# One command on a fresh Debian 12 / Ubuntu machine: install what vgg-native
# needs (as root or with sudo), build it, and run the main job (scripts/demo.js).
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
# LibTorch (CPU), threaded BLAS, Gloo; the digits data (python3-sklearn) and,
# for `npm test`, the PyTorch/torchvision/onnx/PIL oracles.
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq cmake g++ make libtorch-dev libopenblas0-pthread libgloo-dev libdnnl-dev \
  python3-torch python3-torchvision python3-onnx python3-pil python3-skimage python3-sklearn >/dev/null
# onnxruntime-node (a bench peer, devDependency) would fetch CUDA binaries at install: its CPU build ships in the package.
export ONNXRUNTIME_NODE_INSTALL_CUDA=skip
npm ci --no-audit --no-fund
node scripts/demo.js "$@"
