// The endpoints: POST /v1/classify, POST /v1/features, GET /healthz,
// GET /readyz, GET /metrics. Query parameters are validated here with the
// package's validators, so a bad one is 400 with 'ERR_OUT_OF_RANGE' naming it.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { FEATURE_LAYERS, type FeatureLayer } from '../core/forward';
import { checkOneOf, invalidRange, isPlainObject } from '../validate';
import { imageOf } from './body';
import { float32le, pool, POOLINGS, type Pooling } from './features';
import type { ServeState } from './state';

type Query = Record<string, string | undefined>;

function queryOf(request: FastifyRequest): Query {
  return isPlainObject(request.query) ? (request.query as Query) : {};
}

/** A positive integer query parameter, or the fallback when absent. */
function intParam(q: Query, name: string, fallback: number): number {
  const v = q[name];
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!/^\d+$/.test(v) || !Number.isSafeInteger(n) || n < 1) throw invalidRange(`query.${name}`, 'a positive integer', v);
  return n;
}

export function registerRoutes(app: FastifyInstance, state: ServeState): void {
  app.get('/healthz', async () => ({ status: 'ok' }));

  app.get('/readyz', async (_request, reply) => {
    const ready = state.model !== undefined && !state.closing;
    reply.code(ready ? 200 : 503);
    return { ready, ...(state.model ? { arch: state.model.arch, numClasses: state.model.numClasses, device: state.model.device } : {}) };
  });

  app.get('/metrics', async (_request, reply) => {
    reply.type(state.metrics.contentType);
    return state.metrics.text();
  });

  app.post('/v1/classify', async (request) => {
    const topK = intParam(queryOf(request), 'topK', state.options.topK);
    const image = await imageOf(request, state.options.maxBody);
    const predictions = await state.model!.classify(image, { topK, signal: request.vgg.signal });
    state.metrics.images(1);
    return { predictions };
  });

  app.post('/v1/features', async (request, reply) => {
    const q = queryOf(request);
    const layer: FeatureLayer = q.layer === undefined ? 'pool5' : checkOneOf('query.layer', q.layer, FEATURE_LAYERS);
    const pooling: Pooling = q.pooling === undefined ? 'none' : checkOneOf('query.pooling', q.pooling, POOLINGS);
    const image = await imageOf(request, state.options.maxBody);
    const t = pool(await state.model!.extractFeatures(image, { layer, signal: request.vgg.signal }), pooling);
    state.metrics.images(1);
    reply.header('x-shape', t.shape.join(','));
    if (request.headers.accept?.includes('application/octet-stream')) {
      reply.type('application/octet-stream');
      return float32le(t);
    }
    return { layer, pooling, shape: t.shape, data: Array.from(t.data) };
  });
}
