// The zip records the reader and the writer share (PKWARE APPNOTE 6.3.x,
// sections 4.3 and 4.5): signatures, fixed record sizes, flags and the
// ZIP64 extra field. Named once so neither side spells a magic number.

/** Record signatures ("PK" + two bytes), as little-endian u32. */
export const SIG = {
  LOCAL: 0x04034b50,
  CENTRAL: 0x02014b50,
  END: 0x06054b50,
  END64: 0x06064b50,
  LOCATOR64: 0x07064b50,
} as const;

/** Fixed sizes of the records, before their variable-length fields. */
export const SIZE = {
  LOCAL: 30,
  CENTRAL: 46,
  END: 22,
  END64: 56,
  LOCATOR64: 20,
} as const;

/** Compression methods this package reads (and, for STORED, writes). */
export const METHOD = { STORED: 0, DEFLATE: 8 } as const;

/** General purpose flag bits. */
export const FLAG = {
  /** Traditional or strong encryption: never read. */
  ENCRYPTED: 0x0001,
  /** CRC and sizes follow the data (the local header holds zeros): the central directory has them. */
  DATA_DESCRIPTOR: 0x0008,
  /** The name is UTF-8. */
  UTF8: 0x0800,
} as const;

/** Extra field holding the 64-bit sizes and offset that read 0xFFFFFFFF in the record. */
export const EXTRA_ZIP64 = 0x0001;
/** Version needed to extract: 2.0 for plain stored entries, 4.5 for ZIP64. */
export const VERSION = { DEFAULT: 20, ZIP64: 45 } as const;
/** A 32-bit field that reads this has its value in the ZIP64 extra field. */
export const U32_MAX = 0xffffffff;
export const U16_MAX = 0xffff;
/** 1980-01-01 00:00 in MS-DOS time/date: output that does not depend on the clock. */
export const DOS_EPOCH = 0x00210000;

/** Every zip problem falls in one of these; the caller maps them onto its own error class. */
export type ZipProblem = 'TRUNCATED' | 'BAD_ZIP' | 'LIMIT';

/**
 * Makes the caller's error for a zip problem. The zip code knows the record;
 * the caller knows the file and which error class its users catch
 * (CheckpointError for .pth, OnnxFormatError for .model).
 */
export type ZipFail = (code: ZipProblem, message: string) => Error;
