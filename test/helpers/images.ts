// Hand-made image bytes for the bad-input tests.
import * as zlib from 'node:zlib';

/** A well-formed PNG whose header declares width x height (8-bit RGB) over a few bytes of data. */
export function hugePngHeader(width: number, height: number): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8;
  ihdr[9] = 2;
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk('IHDR', ihdr),
    pngChunk('IDAT', zlib.deflateSync(Buffer.alloc(64))),
    pngChunk('IEND', Buffer.alloc(0)),
  ]);
}

/**
 * A JPEG cut a few bytes into its entropy-coded data: every header (SOI, DQT,
 * SOF, DHT, SOS) is intact, so a header-only check passes, but decoding fails.
 */
export function jpegCutAfterHeaders(jpeg: Buffer): Buffer {
  for (let i = 2; i + 3 < jpeg.length; ) {
    if (jpeg[i] !== 0xff) throw new Error(`not a JPEG marker at byte ${i}`);
    const marker = jpeg[i + 1];
    const length = jpeg.readUInt16BE(i + 2);
    if (marker === 0xda) return jpeg.subarray(0, i + 2 + length + 16); // SOS header + 16 bytes of scan data
    i += 2 + length;
  }
  throw new Error('no SOS marker');
}

/** A PNG chunk: length, type, data, CRC-32 over type and data (PNG spec 5.3). */
function pngChunk(type: string, data: Buffer): Buffer {
  const td = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(zlib.crc32(td) >>> 0);
  return Buffer.concat([len, td, crc]);
}

/**
 * A valid non-interlaced 8-bit RGB PNG of one colour, its rows deflated as a
 * stream (a 14000x14000 one is ~600 KB and never exists decoded in this process).
 */
export async function solidPng(width: number, height: number, rgb: readonly [number, number, number]): Promise<Buffer> {
  const row = Buffer.alloc(1 + 3 * width); // filter byte 0 (None), then the pixels
  for (let x = 0; x < width; x++) row.set(rgb, 1 + 3 * x);
  const deflate = zlib.createDeflate({ level: 9 });
  const parts: Buffer[] = [];
  deflate.on('data', (d: Buffer) => parts.push(d));
  const done = new Promise((resolve, reject) => deflate.on('end', resolve).on('error', reject));
  for (let y = 0; y < height; y++) if (!deflate.write(row)) await new Promise((r) => deflate.once('drain', r));
  deflate.end();
  await done;
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // colour type RGB
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk('IHDR', ihdr),
    pngChunk('IDAT', Buffer.concat(parts)),
    pngChunk('IEND', Buffer.alloc(0)),
  ]);
}

/**
 * Rewrites the dimensions an image's header declares, leaving the rest as it
 * is: PNG IHDR (CRC fixed), JPEG SOFn, GIF logical screen and first image
 * descriptor, WebP VP8X canvas / VP8L / VP8 frame. Returns a copy; bytes of
 * another format come back unchanged.
 */
export function withDeclaredSize(img: Buffer, width: number, height: number): Buffer {
  const b = Buffer.from(img);
  const w16 = width & 0xffff;
  const h16 = height & 0xffff;
  if (b.length >= 33 && b.toString('latin1', 12, 16) === 'IHDR') {
    b.writeUInt32BE(width >>> 0, 16);
    b.writeUInt32BE(height >>> 0, 20);
    b.writeUInt32BE(zlib.crc32(b.subarray(12, 29)) >>> 0, 29);
  } else if (b[0] === 0xff && b[1] === 0xd8) {
    for (let i = 2; i + 9 < b.length && b[i] === 0xff; i += 2 + b.readUInt16BE(i + 2)) {
      const m = b[i + 1];
      if (m >= 0xc0 && m <= 0xcf && m !== 0xc4 && m !== 0xc8 && m !== 0xcc) {
        b.writeUInt16BE(h16, i + 5);
        b.writeUInt16BE(w16, i + 7);
        break;
      }
    }
  } else if (b.toString('latin1', 0, 3) === 'GIF' && b.length >= 13) {
    b.writeUInt16LE(w16, 6);
    b.writeUInt16LE(h16, 8);
    let i = 13 + (b[10] & 0x80 ? 3 * 2 ** ((b[10] & 7) + 1) : 0); // past the global colour table
    while (i < b.length && b[i] === 0x21) {
      // an extension: introducer, label, sub-blocks up to a zero-length one
      for (i += 2; i < b.length && b[i] !== 0; ) i += b[i] + 1;
      i++;
    }
    if (b[i] === 0x2c && i + 9 <= b.length) {
      b.writeUInt16LE(w16, i + 5);
      b.writeUInt16LE(h16, i + 7);
    }
  } else if (b.toString('latin1', 8, 12) === 'WEBP' && b.length >= 30) {
    const kind = b.toString('latin1', 12, 16);
    if (kind === 'VP8X') {
      b.writeUIntLE((width - 1) & 0xffffff, 24, 3);
      b.writeUIntLE((height - 1) & 0xffffff, 27, 3);
    } else if (kind === 'VP8L') {
      const bits = ((width - 1) & 0x3fff) | (((height - 1) & 0x3fff) << 14) | (b.readUInt32LE(21) & 0xf0000000);
      b.writeUInt32LE(bits >>> 0, 21);
    } else if (kind === 'VP8 ') {
      b.writeUInt16LE(w16 & 0x3fff, 26);
      b.writeUInt16LE(h16 & 0x3fff, 28);
    }
  }
  return b;
}
