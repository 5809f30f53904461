#!/usr/bin/env bash
# `npm run test:asan`: build the addon with AddressSanitizer and
# UndefinedBehaviorSanitizer into a private folder (never build/, which the
# normal tests load) and run the native-facing tests against it. A finding
# makes ASan/UBSan abort the process, so mocha's exit status is the verdict.
# The last line is "sanitizers: clean" or "sanitizers: FAILED (status N)".
# Usage: scripts/asan.sh [--skip-build] [mocha test files...]
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${VGG_ASAN_BUILD:-/tmp/vgg-native-asan}"
skip_build=0
if [ "${1:-}" = "--skip-build" ]; then skip_build=1; shift; fi
if [ "$skip_build" = 0 ] || [ ! -f "$OUT/Release/vgg_native.node" ]; then
  torch_dir=$(node scripts/libtorch.js torch-dir) || exit 1
  flags="-fsanitize=address,undefined -fno-sanitize=vptr -fno-omit-frame-pointer -g -O1"
  npx cmake-js build -d . -O "$OUT" -B Release --parallel "$(nproc)" \
    "--CDTorch_DIR=$torch_dir" "--CDCMAKE_CXX_FLAGS=$flags" \
    "--CDCMAKE_SHARED_LINKER_FLAGS=-fsanitize=address,undefined" -l warn || {
    echo "sanitizers: FAILED (build)"
    exit 1
  }
fi
tests=("$@")
if [ ${#tests[@]} -eq 0 ]; then
  tests=(test/fuzz-regressions.test.ts test/security.test.ts test/hostile-images.test.ts test/preprocess.test.ts test/pth-reader.test.ts test/soak.test.ts)
fi
cfg=$(mktemp --suffix=.json)
trap 'rm -f "$cfg"' EXIT
echo '{ "require": ["tsx/cjs"], "extension": ["ts"], "timeout": 600000, "reporter": "dot" }' >"$cfg"
# Node itself is not instrumented: preload the runtime, keep leak checks off
# (V8 and LibTorch keep process-lifetime allocations), fail on UB.
export VGG_NATIVE_ADDON="$OUT/Release/vgg_native.node"
export LD_PRELOAD="$(gcc -print-file-name=libasan.so):$(gcc -print-file-name=libubsan.so)"
export ASAN_OPTIONS="detect_leaks=0,abort_on_error=1,allocator_may_return_null=1,detect_odr_violation=0,handle_segv=1"
export UBSAN_OPTIONS="print_stacktrace=1,halt_on_error=1"
# The instrumented addon, not build/Release's, must be the one the tests load.
node --import tsx -e "require('./src/binding').loadBinding().runtime(); if (!require('fs').readFileSync('/proc/self/maps', 'utf8').includes('$OUT/Release/vgg_native.node')) { console.error('the ASan addon was not loaded'); process.exit(1); }" || {
  echo "sanitizers: FAILED (addon not loaded)"
  exit 1
}
npx mocha --config "$cfg" "${tests[@]}"
status=$?
if [ "$status" = 0 ]; then echo "sanitizers: clean"; else echo "sanitizers: FAILED (status $status)"; fi
exit "$status"
