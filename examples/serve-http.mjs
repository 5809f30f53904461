// The model behind node:http, without a framework: POST an image to /classify,
// concurrent requests share forwards (the model's dynamic batching), a full
// queue is 503, SIGTERM drains. `vgg-native serve` does this and more on fastify.
//   node examples/serve-http.mjs model.pth 8080
//   curl --data-binary @cat.jpg -H 'content-type: image/jpeg' localhost:8080/classify
import { createServer } from 'node:http';
import { errorCode, vgg } from 'vgg-native';

const [weights, port = '8080'] = process.argv.slice(2);
const MAX_BODY = 20 * 1024 * 1024;
const model = await vgg({ weights, batching: { maxBatch: 8, maxWaitMs: 2, maxQueue: 64 } });

/** HTTP status by the package's error codes (an image we cannot read is the client's fault). */
const STATUS = { QUEUE_FULL: 503, UNSUPPORTED_FORMAT: 415, ABORT_ERR: 499, NATIVE: 500, DISPOSED: 503 };

function send(res, status, body) {
  const headers = { 'content-type': 'application/json', ...(status === 503 ? { 'retry-after': '1' } : {}) };
  res.writeHead(status, headers).end(JSON.stringify(body));
}

/** The body, up to MAX_BODY bytes; undefined (and a 413 sent) past it. */
async function readBody(req, res) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > MAX_BODY) {
      send(res, 413, { error: { code: 'BODY_TOO_LARGE', message: `more than ${MAX_BODY} bytes` } });
      req.destroy();
      return undefined;
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

const server = createServer(async (req, res) => {
  if (req.method !== 'POST' || req.url?.split('?')[0] !== '/classify') return send(res, 404, { error: { code: 'NOT_FOUND' } });
  const body = await readBody(req, res);
  if (!body) return;
  // The client going away drops its work if it has not started.
  const controller = new AbortController();
  res.once('close', () => res.writableFinished || controller.abort());
  try {
    // The format is decided from the bytes: SVG and other documents are refused, never rendered.
    const predictions = await model.classify(body, { topK: 5, signal: controller.signal });
    send(res, 200, { predictions });
  } catch (e) {
    const code = errorCode(e) ?? 'INTERNAL';
    send(res, STATUS[code] ?? (code === 'INTERNAL' ? 500 : 400), { error: { code, message: e.message } });
  }
});

server.listen(Number(port), '127.0.0.1', () => console.log(`listening on http://127.0.0.1:${port}`));
process.once('SIGTERM', () => {
  // Stop accepting; answers in flight finish; then free the model.
  server.close(() => {
    model.dispose();
    process.exit(0);
  });
  server.closeIdleConnections();
});
