// `vgg-native build [--libtorch DIR] [--onednn DIR]`: compiles the addon from
// this package's sources into its build/ folder, for a CUDA or custom LibTorch
// or a platform with no prebuilt package. Never run at install: npm 12 runs no
// dependency's install script, and a prebuilt addon needs none.
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import type { Command } from 'commander';
import { ModelError } from '../errors';
import { childEnvironment } from '../settings';

const ROOT = path.resolve(__dirname, '..', '..');

export function registerBuild(program: Command): void {
  program
    .command('build')
    .description('compile the native addon from source (cmake-js) into this package; preferred over the prebuilt one once built')
    .option(
      '--libtorch <dir>',
      'an unpacked LibTorch (include/, lib/, share/) or a pip torch folder (torch/); default: $LIBTORCH, python3 -c "import torch", then the system',
    )
    .option('--onednn <dir>', "a oneDNN 2 or 3 (include/, lib/) for the engine; default: $VGG_NATIVE_ONEDNN, then the system's")
    .action((opts: { libtorch?: string; onednn?: string }) => {
      // The whole environment goes to the build (cmake, the compiler and scripts/libtorch.js read their own variables).
      const env = childEnvironment({
        ...(opts.libtorch ? { LIBTORCH: path.resolve(opts.libtorch) } : {}),
        ...(opts.onednn ? { VGG_NATIVE_ONEDNN: path.resolve(opts.onednn) } : {}),
      });
      const r = spawnSync(process.execPath, [path.join(ROOT, 'scripts', 'build-native.js')], { stdio: 'inherit', env, cwd: ROOT });
      if (r.status !== 0) throw new ModelError('BUILD_FAILED', `the source build failed (exit ${r.status ?? r.signal}); its output is above`);
    });
}
