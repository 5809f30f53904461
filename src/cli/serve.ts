// `vgg-native serve`: the model behind HTTP (src/serve/). Concurrent requests
// are batched dynamically; SIGTERM (or SIGINT) stops accepting, answers every
// request already accepted, disposes the model and exits 0.
import type { Command } from 'commander';
import { coreOf, type Vgg } from '../model';
import { ServeMetrics } from '../serve/metrics';
import { DEFAULT_MAX_BODY, LOG_LEVELS, type LogLevel } from '../serve/options';
import { keepEventLoopFirst } from '../serve/priority';
import { createServer } from '../serve/server';
import { setting } from '../settings';
import { DEFAULT_BATCHING } from '../inference/batcher';
import { intArg, openModel, requireModelSource, UsageError, withModelFlags, type ModelFlags } from './common';

interface ServeFlags extends ModelFlags {
  port: number;
  host: string;
  maxBatch: number;
  maxWaitMs: number;
  maxQueue: number;
  maxBody: number;
  topK: number;
  logLevel: string;
}

/** Milliseconds an idle model waits for company: lets requests arriving a moment apart share a forward for little latency. */
const DEFAULT_SERVE_WAIT_MS = 2;

/** Calls waiting for the model before a request is refused with 503: a few seconds of work on a CPU. */
const DEFAULT_SERVE_QUEUE = 64;

export function registerServe(program: Command): void {
  withModelFlags(
    program.command('serve').description('serve the model over HTTP: POST /v1/classify, POST /v1/features, GET /healthz, /readyz, /metrics'),
  )
    .option('--port <port>', 'TCP port (0: any free port, printed on stderr)', intArg('--port', 0), 8080)
    .option('--host <host>', 'address to listen on (0.0.0.0 exposes the server to the network)', '127.0.0.1')
    .option('--max-batch <n>', 'most images in one coalesced forward', intArg('--max-batch'), DEFAULT_BATCHING.maxBatch)
    .option('--max-wait-ms <ms>', 'how long an idle model waits for more requests to batch', intArg('--max-wait-ms', 0), DEFAULT_SERVE_WAIT_MS)
    .option('--max-queue <n>', 'requests waiting for the model before 503 with Retry-After', intArg('--max-queue'), DEFAULT_SERVE_QUEUE)
    .option('--max-body <bytes>', 'largest request body; more is 413', intArg('--max-body'), DEFAULT_MAX_BODY)
    .option('-k, --top-k <k>', 'predictions per image when a request gives no topK', intArg('--top-k'), 5)
    .option('--log-level <level>', `request log level on stdout (${LOG_LEVELS.join(', ')})`, 'info')
    .action(async (flags: ServeFlags) => {
      requireModelSource(flags, 'serve');
      if (!(LOG_LEVELS as readonly string[]).includes(flags.logLevel))
        throw new UsageError(`--log-level must be one of ${LOG_LEVELS.join(', ')}, got '${flags.logLevel}'`);
      await serve(flags);
    });
}

/** Runs until SIGTERM or SIGINT, then drains. @throws what loading the model or listening throws */
async function serve(flags: ServeFlags): Promise<void> {
  let model: Vgg | undefined;
  let stopPriority = (): void => undefined;
  const metrics = new ServeMetrics(() => (model ? coreOf(model).queued : 0));
  const batching = { maxBatch: flags.maxBatch, maxWaitMs: flags.maxWaitMs, maxQueue: flags.maxQueue, onBatch: metrics.batch.bind(metrics) };
  const loading = openModel(flags, { batching });
  loading.catch(() => undefined); // awaited below, after listening
  const server = await createServer(
    loading,
    { maxBody: flags.maxBody, maxInFlight: flags.maxQueue + flags.maxBatch, topK: flags.topK, logLevel: flags.logLevel as LogLevel },
    metrics,
  );
  const stopped = new Promise<NodeJS.Signals>((resolve) => {
    process.once('SIGTERM', resolve);
    process.once('SIGINT', resolve);
  });
  try {
    const address = await server.app.listen({ port: flags.port, host: flags.host });
    process.stderr.write(`vgg-native serve: listening on ${address}\n`);
    model = await loading;
    process.stderr.write(`vgg-native serve: ${model.arch} ready (${model.numClasses} classes, ${model.device})\n`);
    stopPriority = keepEventLoopFirst(setting('workerNice'));
    const signal = await stopped;
    process.stderr.write(`vgg-native serve: ${signal}: draining\n`);
  } finally {
    stopPriority();
    await server.close();
    (model ?? (await loading.catch(() => undefined)))?.dispose();
  }
}
