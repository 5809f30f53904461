// Typed errors for everything that reads or writes weight files, so callers
// (the facade, the CLI, tests) can branch on `code` instead of parsing
// messages. Both derive from the package's one base class, VggNativeError.
import { VggNativeError } from '../errors';

/** Codes of {@link CheckpointError}. */
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
  /** Writing failed (invalid value passed to the writer, or a name the layout has no place for). */
  | 'BAD_VALUE'
  /** The weights file is missing or cannot be opened; `cause` holds the system's error. */
  | 'UNREADABLE'
  /** Not a format the package reads (.pth zip or legacy, .safetensors, .onnx, ONNX zoo .model); the message names what it looks like. */
  | 'UNKNOWN_FORMAT'
  /** A safetensors header that is not what the format describes: length past the file, not JSON, a malformed entry, a duplicate name. */
  | 'BAD_HEADER'
  /** A safetensors range out of the data buffer, overlapping another, or leaving a hole. */
  | 'BAD_OFFSETS'
  /** An element type the package cannot load (safetensors F8_*, or one it does not know). */
  | 'UNSUPPORTED_DTYPE'
  /** A whole `nn.Module` pickled with `torch.save(model)`: its classes would have to run; save `model.state_dict()` instead. */
  | 'PICKLED_MODULE';

/**
 * A .pth checkpoint (or the weights file as a whole) cannot be read or
 * written; `code` says why, `file` names the file when known.
 *
 * @example
 * ```ts
 * import { vgg, CheckpointError } from 'vgg-native';
 *
 * try {
 *   const model = await vgg('vgg16', { weights: 'downloaded.pth' });
 * } catch (e) {
 *   if (e instanceof CheckpointError && e.code === 'FORBIDDEN_GLOBAL') console.error(`refusing ${e.file}: it would run code`);
 *   else throw e;
 * }
 * ```
 */
export class CheckpointError extends VggNativeError {
  declare readonly code: CheckpointErrorCode;
  /** The checkpoint file involved, when known. */
  readonly file?: string;

  /**
   * @param code - one of {@link CheckpointErrorCode}
   * @param message - what is wrong, naming the file
   * @param file - the checkpoint file, when known
   * @param options - `cause`: the underlying error (the system's, for 'UNREADABLE')
   */
  constructor(code: CheckpointErrorCode, message: string, file?: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = 'CheckpointError';
    this.file = file;
  }
}

/** Why an ONNX file was refused; stable across releases, for callers to branch on. */
export type OnnxErrorCode =
  /** Not a protobuf ModelProto or zip archive with one, or no graph. */
  | 'NOT_ONNX'
  /** A zip `.model` archive that cannot be read or holds no single .onnx. */
  | 'BAD_ARCHIVE'
  /** The graph is not a VGG-11/13/16/19 (op sequence, stage counts, shapes). */
  | 'NOT_VGG'
  /** An op on the image's path that a VGG does not have. */
  | 'UNSUPPORTED_OP'
  /** An attribute whose value the model cannot honour, or that it does not know. */
  | 'UNSUPPORTED_ATTRIBUTE'
  /** A node reads a parameter that is neither an initializer nor a Constant. */
  | 'MISSING_INITIALIZER'
  /** A tensor's data type or byte count is wrong. */
  | 'BAD_TENSOR'
  /** External tensor data that cannot be found, or that points outside the model's folder. */
  | 'EXTERNAL_DATA'
  /** The reader thread stopped without an answer (killed, or out of memory). */
  | 'READER_EXITED';

/**
 * The input is not an ONNX VGG the package can load; the message says why,
 * `code` says what kind of problem, `node` names the graph node at fault.
 * The codes: 'NOT_ONNX' (not a ModelProto, or no graph), 'BAD_ARCHIVE' (a
 * .model zip without a single .onnx), 'NOT_VGG', 'UNSUPPORTED_OP',
 * 'UNSUPPORTED_ATTRIBUTE' (an attribute that would change the numbers, e.g.
 * Conv padding other than 1 or a training-mode BatchNormalization),
 * 'MISSING_INITIALIZER', 'BAD_TENSOR', 'EXTERNAL_DATA', 'READER_EXITED'.
 * Files are decoded as the ONNX spec's ModelProto; an opset outside 7..20
 * loads with a warning (`weightsInfo.warnings`), not an error.
 *
 * @example
 * ```ts
 * import { vgg, OnnxFormatError } from 'vgg-native';
 *
 * try {
 *   const model = await vgg({ weights: 'vgg16-bn.model' });
 * } catch (e) {
 *   if (e instanceof OnnxFormatError && e.code === 'UNSUPPORTED_ATTRIBUTE') console.error(`cannot honour ${e.node}`);
 *   else throw e;
 * }
 * ```
 */
export class OnnxFormatError extends VggNativeError {
  declare readonly code: OnnxErrorCode;
  /** The node the problem was found at (`Op node 'name'`), when there is one. */
  readonly node?: string;

  /**
   * @param code - why the file was refused
   * @param message - what is wrong, naming the file
   * @param node - the graph node at fault, when there is one
   */
  constructor(code: OnnxErrorCode, message: string, node?: string) {
    super(code, message);
    this.name = 'OnnxFormatError';
    if (node !== undefined) this.node = node;
  }
}

/** `in checkpoint x.pth` or `` for messages when the file is unknown. */
export function inFile(file?: string): string {
  return file ? ` in checkpoint ${file}` : '';
}
