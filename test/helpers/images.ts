// Hand-made image bytes for the bad-input tests.
import * as zlib from 'node:zlib';

/** A well-formed PNG whose header declares width x height (8-bit RGB) over a few bytes of data. */
export function hugePngHeader(width: number, height: number): Buffer {
  const chunk = (type: string, data: Buffer): Buffer => {
    const td = Buffer.concat([Buffer.from(type, 'latin1'), data]);
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(zlib.crc32(td) >>> 0);
    return Buffer.concat([len, td, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8;
  ihdr[9] = 2;
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', zlib.deflateSync(Buffer.alloc(64))),
    chunk('IEND', Buffer.alloc(0)),
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
