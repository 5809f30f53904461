// One table from the package's error codes (and fastify's) to HTTP statuses,
// so every failure a client sees is `{ error: { code, message } }` with a
// status that says whose fault it was.
import { errorCode } from '../errors';

/** A failure decided by the server itself (a media type, readiness, the admission bound). */
export class HttpError extends Error {
  constructor(
    readonly statusCode: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'HttpError';
  }
}

/** 499: the client closed the connection before its answer (nginx's convention); logged, never sent. */
export const CLIENT_CLOSED = 499;

/** Statuses by the package's error codes; anything unlisted with a code of ours is 400, without one 500. */
const STATUS_BY_CODE: Record<string, number> = {
  // ImageInputError: the bytes are not a raster image we decode (SVG, PDF, HEIC, unknown): a type we do not decode.
  UNSUPPORTED_FORMAT: 415,
  EMPTY: 400,
  CORRUPT: 400,
  DECODE_FAILED: 400,
  TOO_LARGE: 400,
  ERR_INVALID_ARG_TYPE: 400,
  ERR_OUT_OF_RANGE: 400,
  NO_CLASSIFIER: 400,
  QUEUE_FULL: 503,
  DISPOSED: 503,
  ABORT_ERR: CLIENT_CLOSED,
  NATIVE: 500,
  BODY_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
};

/** fastify's and @fastify/multipart's codes, renamed to the ones the README documents. */
const RENAMED: Record<string, string> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 'BODY_TOO_LARGE',
  FST_REQ_FILE_TOO_LARGE: 'BODY_TOO_LARGE',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'UNSUPPORTED_MEDIA_TYPE',
  FST_INVALID_MULTIPART_CONTENT_TYPE: 'UNSUPPORTED_MEDIA_TYPE',
};

/** The status and code a failure is answered with. */
export function httpStatusOf(e: unknown): { status: number; code: string } {
  if (e instanceof HttpError) return { status: e.statusCode, code: e.code };
  const given = errorCode(e) ?? (e as { code?: unknown })?.code;
  if (typeof given === 'string') {
    const code = RENAMED[given] ?? given;
    const status = STATUS_BY_CODE[code] ?? statusOfFastify(e) ?? (code.startsWith('FST_') ? 400 : 500);
    return { status, code };
  }
  return { status: statusOfFastify(e) ?? 500, code: 'INTERNAL' };
}

/** fastify's own errors carry their 4xx status. */
function statusOfFastify(e: unknown): number | undefined {
  const s = (e as { statusCode?: unknown })?.statusCode;
  return typeof s === 'number' && s >= 400 && s < 600 ? s : undefined;
}
