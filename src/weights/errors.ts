// Typed errors for everything that reads or writes checkpoint files, so callers
// (the facade, the CLI, tests) can branch on `code` instead of parsing messages.

export type CheckpointErrorCode =
  /** The file ends before a structure it declares (pickle, zip record, storage). */
  | 'TRUNCATED'
  /** Not a torch.save file at all (neither zip nor legacy pickle stream). */
  | 'BAD_MAGIC'
  /** Zip structure is damaged or uses features torch never writes. */
  | 'BAD_ZIP'
  /** The pickle names a global outside the allow-list (os.system, eval, ...). */
  | 'FORBIDDEN_GLOBAL'
  /** The pickle uses an opcode we do not execute (INST, EXT*, buffers, ...). */
  | 'FORBIDDEN_OPCODE'
  /** The pickle is malformed (stack underflow, missing memo entry, bad arguments). */
  | 'BAD_PICKLE'
  /** A safety bound was hit (nesting depth, memo size, object count, lengths). */
  | 'LIMIT'
  /** A storage's declared size does not fit the bytes the file holds. */
  | 'BAD_STORAGE'
  /** A tensor's shape/stride/offset reaches outside its storage, or is invalid. */
  | 'BAD_TENSOR'
  /** The unpickled object is not a state_dict layout we recognise. */
  | 'UNKNOWN_LAYOUT'
  /** The tensors do not match the expected model (missing/unexpected/shape). */
  | 'STATE_MISMATCH'
  /** Writing failed (invalid value passed to the writer). */
  | 'BAD_VALUE';

export class CheckpointError extends Error {
  readonly code: CheckpointErrorCode;
  /** The checkpoint file involved, when known. */
  readonly file?: string;

  constructor(code: CheckpointErrorCode, message: string, file?: string) {
    super(message);
    this.name = 'CheckpointError';
    this.code = code;
    this.file = file;
  }
}

/** `in checkpoint x.pth` or `` for messages when the file is unknown. */
export function inFile(file?: string): string {
  return file ? ` in checkpoint ${file}` : '';
}
