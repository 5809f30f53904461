#!/usr/bin/env bash
# Runs the GPU kit that scripts/gpu/pack.sh made (issue 14): unpacks it, builds
# the addon with cmake-js against python3's torch (its LibTorch: CUDA, cuDNN,
# NCCL when it has them), and runs scripts/gpu/checks.js; results.json,
# results.md and the logs land in $OUT. On a machine without CUDA (the dry run
# here) the same steps run against the LibTorch found, and every CUDA check is
# reported as skipped with its reason.
#
#   bash run.sh [KIT_DIR]      (default: this script's folder)
# Environment:
#   OUT                 where results go (default: $WORK/out)
#   VGG_GPU_WORK        where the kit unpacks (default: a new temp folder); kept
#                       between runs, the build there is incremental
#   VGG_GPU_PLUMBING=1  also run the checks' CPU plumbing (small sizes)
#   VGG_GPU_BUDGET      seconds for the whole run (default 540); the checks get
#                       what the build leaves (at least 120)
#   VGG_GPU_TIMEOUT     seconds for the checks, overriding that
set -uo pipefail

KIT_DIR=$(cd "${1:-$(dirname "${BASH_SOURCE[0]}")}" && pwd)
WORK=${VGG_GPU_WORK:-$(mktemp -d "${TMPDIR:-/tmp}/vgg-gpu-run-XXXXXX")}
OUT=${OUT:-$WORK/out}
mkdir -p "$WORK" "$OUT"
LOG=$OUT/run.log
step() { printf '[run %s] %s\n' "$(date +%T)" "$*" | tee -a "$LOG"; }
unxz_to() { # unxz_to FILE.xz DEST: xz when there is one, else python3's lzma
  if command -v xz >/dev/null; then xz -dc "$1" >"$2"; else python3 -c 'import lzma,shutil,sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], "wb"))' "$1" "$2"; fi
}
START=$(date +%s)

step "unpacking $KIT_DIR into $WORK"
KIT=$WORK/kit
mkdir -p "$KIT" "$WORK/bin"
unxz_to "$KIT_DIR/kit.tar.xz" "$WORK/kit.tar"
tar -xf "$WORK/kit.tar" -C "$KIT" && rm -f "$WORK/kit.tar"
[ -x "$WORK/bin/node" ] || { unxz_to "$KIT_DIR/node.xz" "$WORK/bin/node" && chmod +x "$WORK/bin/node"; }
export PATH="$WORK/bin:$PATH"
step "node $(node --version), $(nproc) cores; $(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || echo 'no nvidia-smi')"

# LibTorch: python3's torch when it has its CMake package (pip), else what scripts/libtorch.js finds.
PREFIX=$("${PYTHON:-python3}" -c 'import torch; print(torch.utils.cmake_prefix_path)' 2>/dev/null || true)
if [ -n "$PREFIX" ] && [ -f "$PREFIX/Torch/TorchConfig.cmake" ]; then
  export LIBTORCH
  LIBTORCH=$(cd "$PREFIX/../.." && pwd)
  [ -f "$LIBTORCH/include/gloo/algorithm.h" ] || export VGG_NATIVE_GLOO_INCLUDE="$KIT/gloo-include"
fi
cd "$KIT" || exit 1
BUILD=$WORK/build
build() { # build [ENV=VALUE...]: one cmake-js build into $BUILD, logged
  env "$@" node scripts/libtorch.js info 2>&1 | tee -a "$LOG"
  env "$@" node node_modules/cmake-js/bin/cmake-js build -d "$KIT" -O "$BUILD" -B Release --parallel "$(nproc)" \
    "--CDTorch_DIR=$(env "$@" node scripts/libtorch.js torch-dir)" -l warn >>"$OUT/build.log" 2>&1
}
ATTEMPTS=()
step "building the addon"
if build VGGN_DUMMY=1; then
  ATTEMPTS+=("default:ok")
  BUILD_ENV=(VGGN_DUMMY=1)
else
  ATTEMPTS+=("default:failed")
  step "build failed; again without NCCL (VGG_NATIVE_NCCL=0)"
  rm -rf "$BUILD"
  if build VGG_NATIVE_NCCL=0; then
    ATTEMPTS+=("no-nccl:ok")
    BUILD_ENV=(VGG_NATIVE_NCCL=0)
  else
    ATTEMPTS+=("no-nccl:failed")
    step "build failed; again without c10d (VGG_NATIVE_C10D=0)"
    rm -rf "$BUILD"
    build VGG_NATIVE_C10D=0 && ATTEMPTS+=("no-c10d:ok") || ATTEMPTS+=("no-c10d:failed")
    BUILD_ENV=(VGG_NATIVE_C10D=0)
  fi
fi
ADDON=$BUILD/Release/vgg_native.node
env "${BUILD_ENV[@]}" node -e '
  const t = require("./scripts/libtorch.js");
  const info = t.findLibTorch();
  console.log(JSON.stringify({ ...info, describe: t.describe(info), attempts: process.argv.slice(1) }, null, 2));
' "${ATTEMPTS[@]}" >"$KIT/build-info.json" 2>>"$LOG"
cp "$KIT/build-info.json" "$OUT/build-info.json"
step "build: ${ATTEMPTS[*]} ($(($(date +%s) - START)) s so far)"
if [ ! -f "$ADDON" ]; then
  step "no addon was built: see build.log"
  tail -n 60 "$OUT/build.log"
  exit 1
fi

step "checks"
PLUMB=()
[ "${VGG_GPU_PLUMBING:-0}" = 1 ] && PLUMB=(--plumbing)
# The checks get what is left of VGG_GPU_BUDGET (default 540 s, the whole run) after the build.
LEFT=$((${VGG_GPU_BUDGET:-540} - ($(date +%s) - START)))
[ "$LEFT" -lt 120 ] && LEFT=120
TIMEOUT=${VGG_GPU_TIMEOUT:-$LEFT}
VGG_NATIVE_ADDON=$ADDON timeout "$TIMEOUT" node scripts/gpu/checks.js --out "$OUT" "${PLUMB[@]}" 2>>"$LOG"
RC=$?
[ $RC = 124 ] && step "the checks ran past $TIMEOUT s and were stopped"
tail -c 2000000 "$OUT/build.log" >"$OUT/build.log.tail" && mv "$OUT/build.log.tail" "$OUT/build.log"
step "done in $(($(date +%s) - START)) s, exit $RC; results in $OUT"
exit $RC
