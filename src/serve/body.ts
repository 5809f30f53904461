// The image of a request: the raw body (Content-Type image/* or
// application/octet-stream) or the one file of a multipart form. Its format is
// decided from the bytes (src/image/sniff.ts), never from the declared type:
// only the raster formats the library decodes go on, SVG and other documents
// that can reference files never reach the decoder.
import type { FastifyRequest } from 'fastify';
import { sniff } from '../image/sniff';
import { HttpError } from './http-errors';

/** The request's image bytes, checked to be a decoded raster format. @throws HttpError 400 'EMPTY' / 'NO_FILE', 415 'UNSUPPORTED_FORMAT'; fastify's 413 */
export async function imageOf(request: FastifyRequest, maxBody: number): Promise<Buffer> {
  const bytes = request.isMultipart() ? await multipartFile(request, maxBody) : (request.body as Buffer | undefined);
  if (!bytes || bytes.length === 0)
    throw new HttpError(400, 'EMPTY', 'the request holds no image bytes: send the image as the body (image/*) or as a multipart file');
  const s = sniff(bytes);
  if (!s.decoded) throw new HttpError(415, 'UNSUPPORTED_FORMAT', `unsupported image format: ${s.format ?? 'unknown'} (${s.hint})`);
  return bytes;
}

/** The first file of a multipart/form-data body, read whole up to maxBody bytes (@fastify/multipart throws 413 past it). */
async function multipartFile(request: FastifyRequest, maxBody: number): Promise<Buffer> {
  const part = await request.file({ limits: { fileSize: maxBody, files: 1, fields: 16, fieldSize: 1024, parts: 17 } });
  if (!part) throw new HttpError(400, 'NO_FILE', 'the multipart form holds no file: send the image as a file field');
  return part.toBuffer();
}

/** An AbortSignal that fires when the client closes the connection before its answer was sent. */
export function clientGone(raw: import('node:http').ServerResponse): AbortSignal {
  const controller = new AbortController();
  raw.once('close', () => {
    if (!raw.writableFinished) controller.abort('the client closed the connection before its answer');
  });
  return controller.signal;
}
