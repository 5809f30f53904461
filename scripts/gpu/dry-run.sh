#!/usr/bin/env bash
# The GPU kit's dry run on a machine without a GPU (issue 14): packs the kit,
# then runs it as the GPU machine would, against the LibTorch found here
# (Debian's CPU LibTorch 1.13): the addon builds in a temp folder (kept, so a
# second run is incremental), every CUDA check is reported as skipped with its
# reason, and the checks' own code runs on the CPU at small sizes (plumbing).
# Results: /tmp/vgg-native-gpu-dry/out/results.{json,md}.
#   npm run gpu:dry-run
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
KIT=${VGG_GPU_KIT:-/tmp/vgg-native-gpu-kit}
export VGG_GPU_WORK=${VGG_GPU_WORK:-/tmp/vgg-native-gpu-dry}
export OUT=$VGG_GPU_WORK/out
export VGG_GPU_PLUMBING=1
# Debian's python3 holds the oracle's torch and torchvision.
export PYTHON=${PYTHON:-/usr/bin/python3}
rm -rf "$OUT"
bash "$ROOT/scripts/gpu/pack.sh" "$KIT"
bash "$KIT/run.sh" "$KIT"
