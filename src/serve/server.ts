// The HTTP server of `vgg-native serve`, on fastify: routes, the admission
// bound, metrics, structured request logs and draining. Concurrent requests
// reach the model as concurrent classify()/extractFeatures() calls, which the
// model's dynamic batching (src/inference/batcher.ts) coalesces into shared forwards.
import multipart from '@fastify/multipart';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { coreOf, type Vgg } from '../model';
import { clientGone } from './body';
import { HttpError, httpStatusOf } from './http-errors';
import { ServeMetrics } from './metrics';
import { resolveServeOptions, type ServeOptions } from './options';
import { registerRoutes } from './routes';
import type { ServeState } from './state';

/** Per-request bookkeeping, kept on the request. */
interface Tracked {
  started: number;
  admitted: boolean;
  errorCode?: string;
  signal?: AbortSignal;
}

declare module 'fastify' {
  interface FastifyRequest {
    vgg: Tracked;
  }
}

/** The server and what its owner needs: the fastify app (listen, inject), the metrics, and a drain. */
export interface VggServer {
  app: FastifyInstance;
  metrics: ServeMetrics;
  /** Stops accepting, answers every request already accepted, then closes (the model is left to its owner). */
  close(): Promise<void>;
}

/** Routes that run the model: bounded by maxInFlight and readiness. */
const MODEL_ROUTES = new Set(['/v1/classify', '/v1/features']);

/**
 * An HTTP server over `model` (which may still be loading: /readyz answers 503 until it is).
 * Give `metrics` when the model's batching.onBatch already reports to it.
 */
export async function createServer(model: Vgg | Promise<Vgg>, options: ServeOptions = {}, metrics?: ServeMetrics): Promise<VggServer> {
  const o = resolveServeOptions(options);
  const state: ServeState = {
    model: undefined,
    closing: false,
    inFlight: 0,
    options: o,
    metrics: metrics ?? new ServeMetrics(() => (state.model ? coreOf(state.model).queued : 0)),
  };
  Promise.resolve(model).then(
    (m) => {
      state.model = m;
    },
    () => undefined, // the owner awaits the model too and reports its failure
  );
  const app = Fastify({ logger: { level: o.logLevel }, bodyLimit: o.maxBody, return503OnClosing: true, forceCloseConnections: 'idle' });
  // Only the bodies we document: raw image bytes and multipart forms; JSON or text is 415.
  app.removeAllContentTypeParsers();
  const raw = (_req: unknown, body: Buffer | string, done: (e: Error | null, body?: unknown) => void): void => done(null, body);
  app.addContentTypeParser('application/octet-stream', { parseAs: 'buffer', bodyLimit: o.maxBody }, raw);
  app.addContentTypeParser(/^image\/[\w.+-]+$/, { parseAs: 'buffer', bodyLimit: o.maxBody }, raw);
  await app.register(multipart, { limits: { fileSize: o.maxBody, files: 1 } });
  app.addHook('onRequest', async (request, reply) => admit(state, request, reply));
  // While draining, each answer ends its connection: a keep-alive socket left idle would hold close() for keepAliveTimeout (72 s).
  app.addHook('onSend', async (_request, reply) => {
    if (state.closing) reply.header('connection', 'close');
  });
  app.setErrorHandler((error, request, reply) => answerError(state, error, request, reply));
  registerRoutes(app, state);
  return {
    app,
    metrics: state.metrics,
    close: async () => {
      state.closing = true;
      await app.close();
    },
  };
}

/** Starts the request's bookkeeping; refuses model work when not ready or over maxInFlight, before its body is read. */
function admit(state: ServeState, request: FastifyRequest, reply: FastifyReply): void {
  const tracked: Tracked = { started: performance.now(), admitted: false };
  request.vgg = tracked;
  const route = request.routeOptions.url ?? 'unknown';
  reply.raw.once('close', () => {
    const status = reply.raw.writableFinished ? reply.statusCode : 499;
    if (tracked.admitted) state.inFlight--;
    state.metrics.answered(route, status, (performance.now() - tracked.started) / 1000, tracked.errorCode, tracked.admitted);
  });
  if (!MODEL_ROUTES.has(route)) return;
  if (!state.model) throw new HttpError(503, 'NOT_READY', 'the model is still loading: retry when /readyz answers 200');
  if (state.inFlight >= state.options.maxInFlight) {
    throw new HttpError(503, 'QUEUE_FULL', `${state.options.maxInFlight} requests are already in flight: retry later`);
  }
  state.inFlight++;
  tracked.admitted = true;
  state.metrics.admitted();
  tracked.signal = clientGone(reply.raw);
}

/** Every failure as `{ error: { code, message } }` with its status; 503 with Retry-After; one log line. */
function answerError(state: ServeState, error: unknown, request: FastifyRequest, reply: FastifyReply): void {
  const { status, code } = httpStatusOf(error);
  const message = error instanceof Error ? error.message : String(error);
  if (request.vgg) request.vgg.errorCode = code;
  const log = { code, status };
  if (status >= 500 && status !== 503) request.log.error({ ...log, err: error }, 'request failed');
  else request.log.info(log, status === 499 ? 'client went away; its work was dropped' : 'request refused');
  if (status === 503) reply.header('retry-after', String(state.options.retryAfter));
  reply.code(status).send({ error: { code, message } });
}
