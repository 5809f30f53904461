// The server's Prometheus metrics (prom-client, the maintained registry
// Prometheus' own docs list for Node): requests, errors by code, queue depth,
// batch sizes, latency, images per second. One registry per server.
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { BatchInfo } from '../inference/batcher';

/** Seconds over which `vgg_serve_images_per_second` averages. */
const RATE_WINDOW_S = 10;

export class ServeMetrics {
  readonly registry = new Registry();
  readonly #requests = new Counter({
    name: 'vgg_serve_requests_total',
    help: 'HTTP requests answered, by route and status',
    labelNames: ['route', 'status'] as const,
    registers: [this.registry],
  });
  readonly #errors = new Counter({
    name: 'vgg_serve_errors_total',
    help: 'Requests answered with an error, by route and error code',
    labelNames: ['route', 'code'] as const,
    registers: [this.registry],
  });
  readonly #latency = new Histogram({
    name: 'vgg_serve_request_duration_seconds',
    help: 'Time from request received to response sent, by route',
    labelNames: ['route'] as const,
    buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  });
  readonly #batchSize = new Histogram({
    name: 'vgg_serve_batch_size',
    help: 'Images per native forward (dynamic batching across requests)',
    buckets: [1, 2, 4, 8, 16, 32, 64, 128],
    registers: [this.registry],
  });
  readonly #images = new Counter({ name: 'vgg_serve_images_total', help: 'Images run through the model', registers: [this.registry] });
  readonly #inFlight = new Gauge({
    name: 'vgg_serve_requests_in_flight',
    help: 'Requests admitted and not yet answered',
    registers: [this.registry],
  });
  /** Completion times (ms) and image counts of the last RATE_WINDOW_S seconds. */
  readonly #recent: Array<{ at: number; images: number }> = [];

  constructor(queueDepth: () => number) {
    // prom-client's process and Node.js metrics (RSS, heap, GC, event-loop lag at 1 ms resolution: the 20 ms target needs finer than its default 10).
    collectDefaultMetrics({ register: this.registry, eventLoopMonitoringPrecision: 1 });
    new Gauge({
      name: 'vgg_serve_queue_depth',
      help: 'Calls waiting for their forward on the model',
      registers: [this.registry],
      collect() {
        this.set(queueDepth());
      },
    });
    const recent = this.#recent;
    new Gauge({
      name: 'vgg_serve_images_per_second',
      help: `Images run through the model per second, averaged over the last ${RATE_WINDOW_S} s`,
      registers: [this.registry],
      collect() {
        prune(recent, performance.now());
        this.set(recent.reduce((sum, r) => sum + r.images, 0) / RATE_WINDOW_S);
      },
    });
  }

  /** A forward started (the model's batching.onBatch). */
  batch(info: BatchInfo): void {
    this.#batchSize.observe(info.images);
  }

  /** Images finished by one request. */
  images(n: number): void {
    this.#images.inc(n);
    const now = performance.now();
    this.#recent.push({ at: now, images: n });
    prune(this.#recent, now);
  }

  admitted(): void {
    this.#inFlight.inc();
  }

  /** A request answered (or dropped, status 499), with its error code when it failed. */
  answered(route: string, status: number, seconds: number, code: string | undefined, admitted: boolean): void {
    if (admitted) this.#inFlight.dec();
    this.#requests.inc({ route, status: String(status) });
    if (code) this.#errors.inc({ route, code });
    this.#latency.observe({ route }, seconds);
  }

  /** The Prometheus text exposition. */
  text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}

function prune(recent: Array<{ at: number }>, now: number): void {
  while (recent.length > 0 && now - recent[0].at > RATE_WINDOW_S * 1000) recent.shift();
}
