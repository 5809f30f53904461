// The package's one zip codec: torch.save's .pth archives (read and write)
// and the ONNX zoo's .model archives (read) go through it. Reading works on
// a file handle or a Buffer without loading the whole archive; writing
// streams stored entries with torch's 64-byte data alignment.
export { FLAG, METHOD, SIG, type ZipFail, type ZipProblem } from './format';
export { bufferSource, fileSource, type ByteSource } from './source';
export { ZipReader, type ZipEntry } from './reader';
export { ZipWriter, type ZipWriterOptions } from './writer';
