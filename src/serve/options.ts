// What `vgg-native serve` (and createServer) accepts: checked once, defaults
// applied here; the rest of src/serve/ reads the resolved values only.
import { DEFAULT_BATCHING } from '../inference/batcher';
import { checkInteger, checkKnownKeys, checkObject, checkOneOf, checkString, keysOf, orDefault } from '../validate';

/** pino's levels, plus 'silent' for no request logs. */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** Options of {@link createServer}. */
export interface ServeOptions {
  /** Largest request body in bytes (an image, or a multipart form holding one), an integer in 1..2^31-1; more is 413. Default: 20 MiB. */
  maxBody?: number;
  /**
   * Requests admitted at once (decoding or waiting for the model); one more is 503 with Retry-After
   * before its body is read. Default: the model's batching maxQueue plus maxBatch, at most 1024.
   */
  maxInFlight?: number;
  /** Seconds a 503 tells the client to wait (Retry-After), an integer in 0..3600. Default: 1. */
  retryAfter?: number;
  /** Structured (pino JSON) log level on stdout: one line per request received and answered. Default: 'info'. */
  logLevel?: LogLevel;
  /** topK when the request gives none, an integer >= 1. Default: 5. */
  topK?: number;
}

export interface ResolvedServeOptions {
  maxBody: number;
  maxInFlight: number;
  retryAfter: number;
  logLevel: LogLevel;
  topK: number;
}

/** 20 MiB: a 48-megapixel JPEG fits, a decompression bomb's container does not matter (pixel limits hold separately). */
export const DEFAULT_MAX_BODY = 20 * 1024 * 1024;

const SERVE_KEYS = keysOf<ServeOptions>()(['maxBody', 'maxInFlight', 'retryAfter', 'logLevel', 'topK']);

/** Validates createServer's options once. */
export function resolveServeOptions(options: unknown): ResolvedServeOptions {
  const o = checkKnownKeys('options', checkObject('options', options), SERVE_KEYS);
  return {
    maxBody: orDefault(o.maxBody, DEFAULT_MAX_BODY, (v) => checkInteger('options.maxBody', v, 1, 2 ** 31 - 1)),
    maxInFlight: orDefault(o.maxInFlight, Math.min(1024, DEFAULT_BATCHING.maxBatch + 64), (v) =>
      checkInteger('options.maxInFlight', v, 1, 1_000_000),
    ),
    retryAfter: orDefault(o.retryAfter, 1, (v) => checkInteger('options.retryAfter', v, 0, 3600)),
    logLevel: orDefault(o.logLevel, 'info', (v) => checkOneOf('options.logLevel', checkString('options.logLevel', v), LOG_LEVELS)),
    topK: orDefault(o.topK, 5, (v) => checkInteger('options.topK', v, 1)),
  };
}
