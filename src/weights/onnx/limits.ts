// Bounds of the ONNX reader, in one place.

/** Opsets the reader is tested on; others load with a warning. */
export const MIN_OPSET = 7;
export const MAX_OPSET = 17;
/** Largest .onnx read out of a .model archive: protobuf cannot decode 2 GiB or more. */
export const MAX_MODEL_BYTES = 2 ** 31 - 1;
/** Largest synset.txt read: 1000 ImageNet labels take about 30 KB. */
export const MAX_SYNSET_BYTES = 16 * 1024 * 1024;
