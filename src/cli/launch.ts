// `launch`: torchrun for vgg-native. One command per host starts its ranks
// of a data-parallel job (a Node script, a vgg-native command such as
// finetune, or with --no-node any program), sets their environment, prefixes
// their output, stops the others when one fails and restarts the group up
// to --max-restarts times.
import type { Command } from 'commander';
import { launch } from '../launch/launch';
import { intArg, UsageError } from './common';

interface LaunchFlags {
  nprocPerNode: number;
  nnodes: number;
  nodeRank: number;
  masterAddr: string;
  masterPort: number;
  maxRestarts: number;
  node: boolean;
}

/** What each rank runs: this CLI for one of its commands, node for a script, or the program itself with --no-node. */
function rankCommand(program: Command, script: string, args: string[], node: boolean): string[] {
  if (!node) return [script, ...args];
  // require.resolve, not an import: the entry file runs in the child; importing it here would make a cycle.
  if (program.commands.some((c) => c.name() === script)) return [process.execPath, require.resolve('../cli'), script, ...args];
  return [process.execPath, script, ...args];
}

/** Stops the ranks on Ctrl-C or a SIGTERM to the launcher, as torchrun forwards them. */
async function withSignals<T>(run: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const controller = new AbortController();
  const abort = () => controller.abort();
  process.once('SIGINT', abort);
  process.once('SIGTERM', abort);
  try {
    return await run(controller.signal);
  } finally {
    process.off('SIGINT', abort);
    process.off('SIGTERM', abort);
  }
}

export function registerLaunch(program: Command): void {
  program
    .command('launch')
    .description("start this host's ranks of a data-parallel job, as torchrun does (one command per host)")
    .argument('<script>', 'a Node script (run with this node), a vgg-native command (e.g. finetune), or a program with --no-node')
    .argument('[args...]', 'its arguments (put them after -- when they clash with these flags)')
    .option('--nproc-per-node <n>', 'ranks on this host', intArg('--nproc-per-node'), 1)
    .option('--nnodes <n>', 'hosts in the job', intArg('--nnodes'), 1)
    .option('--node-rank <n>', "this host's index, 0..nnodes-1", intArg('--node-rank', 0), 0)
    .option('--master-addr <host>', "rank 0's host (where its store listens)", '127.0.0.1')
    .option('--master-port <port>', "rank 0's store port", intArg('--master-port'), 29500)
    .option('--max-restarts <n>', 'restart the group this often after a rank fails', intArg('--max-restarts', 0), 0)
    .option('--no-node', "run <script> as a program, not with node (torchrun's --no-python)")
    .allowUnknownOption() // the script's own flags pass through to it
    .action(async (script: string, args: string[], flags: LaunchFlags) => {
      if (flags.nodeRank >= flags.nnodes) throw new UsageError(`--node-rank must be below --nnodes (${flags.nnodes}), got ${flags.nodeRank}`);
      if (flags.masterPort > 65535) throw new UsageError(`--master-port must be at most 65535, got ${flags.masterPort}`);
      const { restarts } = await withSignals((signal) =>
        launch(
          {
            command: rankCommand(program, script, args, flags.node),
            nprocPerNode: flags.nprocPerNode,
            nnodes: flags.nnodes,
            nodeRank: flags.nodeRank,
            masterAddr: flags.masterAddr,
            masterPort: flags.masterPort,
            maxRestarts: flags.maxRestarts,
          },
          undefined,
          signal,
        ),
      );
      if (restarts > 0) process.stderr.write(`vgg-native launch: done after ${restarts} restart${restarts === 1 ? '' : 's'}\n`);
    });
}
