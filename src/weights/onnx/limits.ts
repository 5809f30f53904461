// Bounds of the ONNX reader, in one place.

/**
 * Opsets the reader is tested on; others load with a warning. 18-20 changed
 * no op a VGG uses in a way that matters: AveragePool-19 gained `dilations`
 * (checked), Cast-19 `saturate` (float8 only, refused), and Reshape, Shape,
 * Identity and Constant-19 only gained element types.
 */
export const MIN_OPSET = 7;
export const MAX_OPSET = 20;
/** Largest .onnx read out of a .model archive: protobuf cannot decode 2 GiB or more. */
export const MAX_MODEL_BYTES = 2 ** 31 - 1;
/** Largest synset.txt read: 1000 ImageNet labels take about 30 KB. */
export const MAX_SYNSET_BYTES = 16 * 1024 * 1024;
/** Deepest nesting of local-function calls inlined; a VGG needs two or three, a recursive function never ends. */
export const MAX_FUNCTION_DEPTH = 16;
/** Most nodes in the graph once local functions are inlined: a VGG has about 100, so this only stops a blow-up. */
export const MAX_GRAPH_NODES = 100_000;
/** Most nodes followed to compute a Reshape's target shape (torch writes about 8). */
export const MAX_SHAPE_NODES = 64;
/** Most elements of an integer tensor read as shape data (a Reshape target, Gather indices). */
export const MAX_SHAPE_VALUES = 16;
