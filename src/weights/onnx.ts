// Reads VGG weights out of an ONNX model (a plain .onnx file or an ONNX-zoo
// `.model` zip archive) into canonical mmcls names.
//
// Weights are found by walking the image tensor's path through the graph,
// never by initializer names: exporters name things freely (`vgg0_conv0_weight`,
// `features.0.conv.weight`, `onnx::Conv_87`), but the op sequence of a VGG is
// fixed. The walk follows the one data tensor from the image input through
// Conv [BatchNormalization] Relu ... MaxPool ... Flatten/Reshape, Gemm (or
// MatMul + Add) ... and checks the result against the per-depth table.
//
// Choices worth knowing:
// - torch.onnx.export in eval mode folds BatchNorm into the convolutions by
//   default; such a file is read as a VGG without BN (batchNorm: false). The
//   numbers are the folded ones, so the logits still match the original.
// - A graph without dense layers (mmcls num_classes <= 0, a feature
//   extractor) is read with numClasses 0 and no classifier tensors.
// - Labels of a `.model` archive come from synset.txt: the text after the
//   WordNet id (`n01440764 tench, Tinca tinca` -> `tench, Tinca tinca`, the
//   form mmcls uses for ImageNet CLASSES). A count that disagrees with
//   numClasses drops the labels and records a warning.
// - Every attribute met on the path either shapes what is read (BN epsilon
//   folded into running_var, Gemm alpha/beta/transB folded into the weights,
//   MaxPool ceil_mode into the model's ceilMode) or refuses the file with
//   code UNSUPPORTED_ATTRIBUTE naming the node; unknown attributes refuse too.
// - Non-fatal oddities (opset outside 7..17, a trailing Softmax, alpha/beta
//   folding) are recorded in `warnings`; vgg() shows them in weightsInfo.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as yauzl from 'yauzl';
import { onnx } from 'onnx-proto';
import {
  ArchSpec, CLASSIFIER_LINEAR_INDICES, ConvSlot, Depth, FLATTENED_FEATURES, HIDDEN_FEATURES,
  STAGE_BLOCKS, STAGE_WIDTHS, convSlots, depthFromStageBlocks,
} from '../arch';
import type { NamedTensorSource } from '../binding';
import { bfloat16ToFloat, halfToFloat } from './half';

export interface OnnxWeights {
  arch: ArchSpec;
  /** Outputs of the last dense layer; 0 when the graph has no classifier. */
  numClasses: number;
  /** Canonical mmcls names (no `backbone.`), in state_dict order. */
  tensors: NamedTensorSource[];
  /** From synset.txt of a `.model` archive, one per class. */
  labels?: string[];
  /** Version of the default ('' / ai.onnx) operator set. */
  opset: number;
  /** producer_name and producer_version of the model, when set. */
  producer?: string;
  /**
   * BatchNormalization epsilon of the first BN node (BN models only). The
   * model uses mmcls's 1e-5; another epsilon is folded into running_var
   * (var + eps - 1e-5), which gives the same normalisation.
   */
  bnEpsilon?: number;
  /** MaxPool ceil_mode of the graph (omitted when it has no MaxPool). */
  ceilMode?: boolean;
  /** Things that did not stop the read but may matter to the caller. */
  warnings: string[];
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
  | 'EXTERNAL_DATA';

/** The input is not an ONNX VGG the package can load; the message says why. */
export class OnnxFormatError extends Error {
  override name = 'OnnxFormatError';
  readonly code: OnnxErrorCode;
  /** The node the problem was found at (`Op node 'name'`), when there is one. */
  readonly node?: string;
  constructor(code: OnnxErrorCode, message: string, node?: string) {
    super(message);
    this.code = code;
    if (node !== undefined) this.node = node;
  }
}

const MMCLS_BN_EPS = 1e-5;
/** ONNX's BatchNormalization default epsilon (1e-5), and the float32 value files store for it. */
const ONNX_BN_EPS = 1e-5;
const ONNX_BN_EPS_F32 = Math.fround(1e-5);
const MIN_OPSET = 7;
const MAX_OPSET = 17;

/**
 * Reads VGG weights from an ONNX file or `.model` zip archive (detected by
 * content, not extension).
 */
export async function readOnnx(input: string | Buffer): Promise<OnnxWeights> {
  if (typeof input !== 'string' && !Buffer.isBuffer(input)) {
    throw new TypeError(`Expected a file path or Buffer for input but received ${String(input)} of type ${typeof input}`);
  }
  const source = typeof input === 'string' ? input : '<buffer>';
  const bytes = typeof input === 'string' ? await fs.promises.readFile(input) : input;
  const externalDir = typeof input === 'string' ? path.dirname(path.resolve(input)) : undefined;
  if (isZip(bytes)) return readArchive(bytes, source);
  return readModel(bytes, source, externalDir);
}

// ---------------------------------------------------------------------------
// Containers: zip archive and protobuf

function isZip(bytes: Buffer): boolean {
  // Local file header, or the end record of an empty archive.
  return bytes.length >= 4 && bytes[0] === 0x50 && bytes[1] === 0x4b &&
    ((bytes[2] === 0x03 && bytes[3] === 0x04) || (bytes[2] === 0x05 && bytes[3] === 0x06));
}

async function readArchive(bytes: Buffer, source: string): Promise<OnnxWeights> {
  let files: Map<string, Buffer>;
  try {
    files = await unzip(bytes, (name) => /\.onnx$/i.test(name) || /^(synset\.txt|signature\.json)$/i.test(path.posix.basename(name)));
  } catch (err) {
    throw new OnnxFormatError('BAD_ARCHIVE', `${source}: not a readable zip archive (${(err as Error).message}); expected an ONNX-zoo .model archive holding one .onnx file`);
  }
  const models = [...files.keys()].filter((n) => /\.onnx$/i.test(n));
  if (models.length !== 1) {
    throw new OnnxFormatError('BAD_ARCHIVE', `${source}: expected one .onnx file in the archive but found ${models.length === 0 ? 'none' : models.join(', ')}`);
  }
  const inner = `${source}:${models[0]}`;
  const weights = readModel(files.get(models[0])!, inner, undefined);
  const synsetName = [...files.keys()].find((n) => /^synset\.txt$/i.test(path.posix.basename(n)));
  if (synsetName) {
    const labels = parseSynset(files.get(synsetName)!.toString('utf8'));
    if (labels.length === weights.numClasses) weights.labels = labels;
    else weights.warnings.push(`${source}: ${synsetName} has ${labels.length} labels but the model has ${weights.numClasses} classes; labels ignored`);
  }
  return weights;
}

/** Entries whose name passes `want`, read fully (directories and macOS resource forks skipped). */
function unzip(bytes: Buffer, want: (name: string) => boolean): Promise<Map<string, Buffer>> {
  return new Promise((resolve, reject) => {
    yauzl.fromBuffer(bytes, { lazyEntries: true }, (err, zip) => {
      if (err || !zip) return reject(err ?? new Error('no zip'));
      const out = new Map<string, Buffer>();
      zip.on('error', reject);
      zip.on('end', () => resolve(out));
      zip.on('entry', (entry: yauzl.Entry) => {
        const name = entry.fileName;
        if (name.endsWith('/') || name.startsWith('__MACOSX/') || !want(name)) return zip.readEntry();
        zip.openReadStream(entry, (e, stream) => {
          if (e || !stream) return reject(e ?? new Error(`cannot open ${name}`));
          const chunks: Buffer[] = [];
          stream.on('data', (c: Buffer) => chunks.push(c));
          stream.on('error', reject);
          stream.on('end', () => { out.set(name, Buffer.concat(chunks)); zip.readEntry(); });
        });
      });
      zip.readEntry();
    });
  });
}

/** One label per non-empty line, the WordNet id (`n01440764`) dropped when present. */
export function parseSynset(text: string): string[] {
  return text.split(/\r?\n/).map((l) => l.trim()).filter((l) => l.length > 0)
    .map((l) => l.replace(/^n\d{8}\s+/, ''));
}

function decodeModel(bytes: Buffer, source: string): onnx.ModelProto {
  if (bytes.length === 0) throw new OnnxFormatError('NOT_ONNX', `${source}: not an ONNX file: it is empty`);
  let model: onnx.ModelProto;
  try {
    model = onnx.ModelProto.decode(bytes);
  } catch (err) {
    throw new OnnxFormatError('NOT_ONNX', `${source}: not an ONNX file: expected an ONNX ModelProto (protobuf) or a zip .model archive but decoding failed (${(err as Error).message})`);
  }
  if (!model.graph || !model.graph.node || model.graph.node.length === 0) {
    throw new OnnxFormatError('NOT_ONNX', `${source}: not an ONNX file: decoded ${bytes.length} bytes but found no graph with nodes`);
  }
  return model;
}

// ---------------------------------------------------------------------------
// The graph walk

type Tensor = onnx.ITensorProto;
interface Param { name: string; dims: number[]; data: Float32Array }
interface ConvLayer { kind: 'conv'; node: string; weight: Param; bias?: Param; bn?: { scale: Param; bias: Param; mean: Param; var: Param; eps: number } }
interface DenseLayer { kind: 'dense'; node: string; weight: Param; bias?: Param }

/**
 * The attributes each op on the image's path may carry (ONNX operator docs,
 * opsets 1-17; `is_test`, `spatial`, `broadcast`, `axis` and Reshape's `shape`
 * are from the older opsets). Each is either read by the walk, or has no
 * effect at inference (BatchNormalization momentum, Dropout ratio/seed,
 * MaxPool storage_order, which only orders the unused indices output). An
 * attribute outside this list refuses the file: ignoring it could change
 * the numbers.
 */
const KNOWN_ATTRIBUTES: Record<string, readonly string[]> = {
  Conv: ['kernel_shape', 'strides', 'pads', 'dilations', 'group', 'auto_pad'],
  BatchNormalization: ['epsilon', 'momentum', 'spatial', 'is_test', 'training_mode', 'consumed_inputs'],
  MaxPool: ['kernel_shape', 'strides', 'pads', 'dilations', 'auto_pad', 'ceil_mode', 'storage_order'],
  AveragePool: ['kernel_shape', 'strides', 'pads', 'auto_pad', 'ceil_mode', 'count_include_pad'],
  Flatten: ['axis'],
  Reshape: ['shape', 'allowzero'],
  Gemm: ['alpha', 'beta', 'transA', 'transB', 'broadcast'],
  MatMul: [],
  Add: ['broadcast', 'axis'],
  Relu: [],
  Dropout: ['ratio', 'seed', 'is_test'],
  Identity: [],
  Softmax: ['axis'],
  LogSoftmax: ['axis'],
};

/** Ops that read only a tensor's shape: they hang off the data path without continuing it. */
const SHAPE_ONLY = new Set(['Shape', 'Size']);
/** Ops that leave the values alone at inference. */
const PASS_THROUGH = new Set(['Relu', 'Dropout', 'Identity']);

function readModel(bytes: Buffer, source: string, externalDir: string | undefined): OnnxWeights {
  const model = decodeModel(bytes, source);
  const graph = model.graph!;
  const warnings: string[] = [];

  const opsetEntry = model.opsetImport.find((o) => !o.domain || o.domain === 'ai.onnx');
  if (!opsetEntry) throw new OnnxFormatError('NOT_ONNX', `${source}: expected an opset_import for the default ONNX domain but found ${model.opsetImport.map((o) => o.domain).join(', ') || 'none'}`);
  const opset = toNum(opsetEntry.version ?? 0);
  if (opset < MIN_OPSET || opset > MAX_OPSET) warnings.push(`${source}: opset ${opset} is outside the tested range ${MIN_OPSET}..${MAX_OPSET}`);

  const initializers = new Map<string, Tensor>();
  for (const t of graph.initializer ?? []) if (t.name) initializers.set(t.name, t);
  // Constant nodes and Identity-of-constant stand in for initializers (torch
  // exports Identity nodes over parameters; some tools emit Constant nodes).
  const constants = new Map<string, Tensor>();
  const aliases = new Map<string, string>();
  const consumers = new Map<string, onnx.INodeProto[]>();
  for (const node of graph.node ?? []) {
    if (node.opType === 'Constant' && node.output?.[0]) {
      const t = constantValue(node);
      if (t) constants.set(node.output[0], t);
    }
    if (node.opType === 'Identity' && node.input?.[0] && node.output?.[0]) aliases.set(node.output[0], node.input[0]);
    for (const name of node.input ?? []) {
      if (!name) continue;
      const list = consumers.get(name);
      if (list) list.push(node); else consumers.set(name, [node]);
    }
  }
  const resolveTensor = (name: string): Tensor | undefined => {
    for (let hops = 0; hops < 64; hops++) {
      const t = initializers.get(name) ?? constants.get(name);
      if (t) return t;
      const next = aliases.get(name);
      if (next === undefined) return undefined;
      name = next;
    }
    return undefined;
  };

  const nodeLabel = (n: onnx.INodeProto) => `${n.opType} node '${n.name || n.output?.[0] || '?'}'`;
  const param = (node: onnx.INodeProto, index: number, what: string, required: boolean): Param | undefined => {
    const name = node.input?.[index];
    if (!name) {
      if (required) throw new OnnxFormatError('NOT_VGG', `${source}: ${nodeLabel(node)} has no input ${index} (${what})`);
      return undefined;
    }
    const t = resolveTensor(name);
    if (!t) throw new OnnxFormatError('MISSING_INITIALIZER', `${source}: missing initializer: ${nodeLabel(node)} reads ${what} from '${name}', which is neither an initializer nor a Constant`);
    return { name, dims: (t.dims ?? []).map(toNum), data: tensorToFloat32(t, source, name, externalDir) };
  };

  const input = imageInput(graph, initializers, consumers, source);
  const convs: ConvLayer[] = [];
  const dense: DenseLayer[] = [];
  const stages: number[] = [];
  let convsInStage = 0;
  let inHead = false; // after Flatten/Reshape
  let last: ConvLayer | DenseLayer | undefined; // the layer an Add or BN may attach to
  let lastAttachable = false; // nothing but Identity since `last`
  let bnEps: number | undefined;
  let ceilMode: boolean | undefined; // MaxPool ceil_mode, the same for every pool
  let stagesClosed = false; // the fifth MaxPool has been seen
  let softmax = false;

  let current = input;
  const visited = new Set<onnx.INodeProto>();
  for (;;) {
    const users = (consumers.get(current) ?? []).filter((n) => !SHAPE_ONLY.has(n.opType ?? ''));
    if (users.length === 0) break;
    if (users.length > 1) {
      throw new OnnxFormatError('NOT_VGG', `${source}: not a VGG: tensor '${current}' feeds ${users.length} nodes (${users.map(nodeLabel).join(', ')}); expected a single chain of layers`);
    }
    const node = users[0];
    if (visited.has(node)) throw new OnnxFormatError('NOT_VGG', `${source}: not a VGG: the graph has a cycle at ${nodeLabel(node)}`);
    visited.add(node);
    const op = node.opType ?? '';
    const where = inHead ? 'classifier' : 'trunk';
    if (op !== 'Add' && node.input?.[0] !== current) {
      throw new OnnxFormatError('NOT_VGG', `${source}: not a VGG: ${nodeLabel(node)} takes the data tensor '${current}' as a parameter, not as its first input`);
    }
    let keepAttachable = false;
    checkAttributeNames(node, source, nodeLabel(node));
    switch (op) {
      case 'Conv': {
        if (inHead) throw new OnnxFormatError('NOT_VGG', `${source}: not a VGG: ${nodeLabel(node)} comes after the features were flattened`);
        const weight = param(node, 1, 'the weight', true)!;
        checkConv(node, weight, source, nodeLabel(node));
        if (stagesClosed) throw new OnnxFormatError('NOT_VGG', `${source}: not a VGG: ${nodeLabel(node)} follows the last stage`);
        last = { kind: 'conv', node: nodeLabel(node), weight, bias: param(node, 2, 'the bias', false) };
        convs.push(last);
        convsInStage++;
        keepAttachable = true;
        break;
      }
      case 'BatchNormalization': {
        if (!last || last.kind !== 'conv' || !lastAttachable || last.bn) {
          throw new OnnxFormatError('NOT_VGG', `${source}: not a VGG: ${nodeLabel(node)} does not directly follow a Conv`);
        }
        const eps = batchNormEpsilon(node, source, nodeLabel(node));
        bnEps ??= Number(eps.toPrecision(7)); // a float32 attribute: 1e-5 arrives as 9.99999974e-6
        last.bn = {
          scale: param(node, 1, 'scale', true)!, bias: param(node, 2, 'B', true)!,
          mean: param(node, 3, 'mean', true)!, var: param(node, 4, 'var', true)!,
          eps,
        };
        break;
      }
      case 'MaxPool': {
        if (inHead) throw new OnnxFormatError('NOT_VGG', `${source}: not a VGG: ${nodeLabel(node)} comes after the features were flattened`);
        const ceil = maxPoolCeilMode(node, source, nodeLabel(node));
        if (ceilMode !== undefined && ceil !== ceilMode) {
          throw new OnnxFormatError('UNSUPPORTED_ATTRIBUTE', `${source}: ${nodeLabel(node)} has ceil_mode ${Number(ceil)} but an earlier MaxPool has ${Number(ceilMode)}; a VGG rounds all its pools the same way`, nodeLabel(node));
        }
        ceilMode = ceil;
        stages.push(convsInStage);
        convsInStage = 0;
        if (stages.length === STAGE_WIDTHS.length) stagesClosed = true;
        break;
      }
      case 'AveragePool': {
        // torchvision's AdaptiveAvgPool2d(7) on a 7x7 map exports as a 1x1 pool: a no-op.
        const k = ints(node, 'kernel_shape');
        const s = ints(node, 'strides') ?? [1, 1];
        const pads = ints(node, 'pads') ?? [0, 0, 0, 0];
        if (!k || k.join() !== '1,1' || s.join() !== '1,1' || pads.some((p) => p !== 0)) {
          throw new OnnxFormatError('UNSUPPORTED_OP', `${source}: unsupported op in the ${where}: ${nodeLabel(node)} with kernel_shape [${k ?? ''}] (only the 1x1 no-op pool of torchvision's avgpool is accepted)`);
        }
        break;
      }
      case 'Flatten': {
        const axis = attr(node, 'axis')?.i;
        if (axis !== undefined && axis !== null && toNum(axis) !== 1) {
          throw new OnnxFormatError('UNSUPPORTED_ATTRIBUTE', `${source}: ${nodeLabel(node)} flattens from axis ${toNum(axis)}; expected axis 1`, nodeLabel(node));
        }
        inHead = true;
        break;
      }
      case 'Reshape':
        // The target shape is usually computed (Shape/Gather/Concat); the first
        // dense layer's input size checks that this was the flatten.
        inHead = true;
        break;
      case 'Gemm':
      case 'MatMul': {
        // Exporters (the zoo's opset-8 vgg19 among them) feed the last MaxPool's
        // [N,512,7,7] straight into the first dense layer: a row-major flatten,
        // which is what Flatten(axis=1) and the model's own flatten do.
        if (!inHead && !stagesClosed) throw new OnnxFormatError('NOT_VGG', `${source}: not a VGG: ${nodeLabel(node)} comes before the last stage's MaxPool`);
        inHead = true;
        last = op === 'Gemm' ? gemmLayer(node, param, source, nodeLabel(node), warnings) : matMulLayer(node, param, source, nodeLabel(node));
        dense.push(last);
        keepAttachable = true;
        break;
      }
      case 'Add': {
        // The bias of a MatMul-expressed (or bias-less Gemm) Linear, on either side of the Add.
        const other = node.input?.[0] === current ? 1 : 0;
        if (!last || last.kind !== 'dense' || last.bias || !lastAttachable) {
          throw new OnnxFormatError('UNSUPPORTED_OP', `${source}: unsupported op in the ${where}: ${nodeLabel(node)} (an Add is accepted only as the bias right after a MatMul or a Gemm without C)`);
        }
        last.bias = param(node, other, 'the bias', true);
        break;
      }
      case 'Softmax':
      case 'LogSoftmax':
        if (!inHead || dense.length === 0) throw new OnnxFormatError('UNSUPPORTED_OP', `${source}: unsupported op in the trunk: ${nodeLabel(node)}`);
        {
          const axis = attr(node, 'axis')?.i;
          // Over the classes of [N, classes]: axis 1 or -1 (absent = 1 before opset 13, -1 after).
          if (axis !== undefined && axis !== null && toNum(axis) !== 1 && toNum(axis) !== -1) {
            throw new OnnxFormatError('UNSUPPORTED_ATTRIBUTE', `${source}: ${nodeLabel(node)} has axis ${toNum(axis)}; expected the class axis (1 or -1)`, nodeLabel(node));
          }
        }
        softmax = true;
        break;
      default:
        if (!PASS_THROUGH.has(op)) {
          throw new OnnxFormatError('UNSUPPORTED_OP', `${source}: unsupported op in the ${where}: ${nodeLabel(node)}; expected Conv, BatchNormalization, Relu, MaxPool, Flatten/Reshape, Gemm or MatMul+Add, Dropout, Identity`);
        }
        keepAttachable = op === 'Identity' && lastAttachable;
    }
    lastAttachable = keepAttachable;
    current = node.output?.[0] ?? '';
    if (!current) break;
  }
  if (softmax) warnings.push(`${source}: the graph ends with a softmax, so its outputs are probabilities; the weights read here give logits`);
  if (convsInStage > 0) {
    // mmcls with_last_pool=False: the last stage has no closing MaxPool.
    stages.push(convsInStage);
    if (dense.length === 0) warnings.push(`${source}: no MaxPool after the last stage (mmcls with_last_pool=False)`);
  }

  const depth = depthFromStageBlocks(stages);
  if (!depth) {
    const expected = Object.values(STAGE_BLOCKS).map((b) => `[${b}]`).join(', ');
    throw new OnnxFormatError('NOT_VGG', `${source}: not a VGG: found ${convs.length} convolution${convs.length === 1 ? '' : 's'} in stages [${stages}] — not a VGG-11/13/16/19 (expected convolutions per stage ${expected})`);
  }
  const withBn = convs.filter((c) => c.bn).length;
  if (withBn !== 0 && withBn !== convs.length) {
    throw new OnnxFormatError('NOT_VGG', `${source}: not a VGG: found BatchNormalization after ${withBn} of ${convs.length} convolutions; expected all or none`);
  }
  const batchNorm = withBn > 0;
  if (dense.length !== 0 && dense.length !== CLASSIFIER_LINEAR_INDICES.length) {
    throw new OnnxFormatError('NOT_VGG', `${source}: not a VGG: found ${dense.length} dense layer${dense.length === 1 ? '' : 's'} after the features; expected ${CLASSIFIER_LINEAR_INDICES.length} (or none for a feature extractor)`);
  }

  const tensors: NamedTensorSource[] = [];
  const add = (name: string, data: Float32Array, shape: number[]) => tensors.push({ name, tensor: { kind: 'array', data, shape } });
  const check = (key: string, p: Param, shape: number[], layer: string) => {
    if (p.dims.length !== shape.length || p.dims.some((d, i) => d !== shape[i])) {
      throw new OnnxFormatError('NOT_VGG', `${source}: not a VGG-${depth}: ${key} (from '${p.name}' of ${layer}) should have shape [${shape}] but has [${p.dims}]`);
    }
  };
  convSlots(depth).forEach((slot: ConvSlot, i: number) => {
    const c = convs[i];
    const p = `features.${slot.featureIndex}`;
    const o = slot.outChannels;
    check(`${p}.conv.weight`, c.weight, [o, slot.inChannels, 3, 3], c.node);
    add(`${p}.conv.weight`, c.weight.data, [o, slot.inChannels, 3, 3]);
    add(`${p}.conv.bias`, vector(c.bias, o, `${p}.conv.bias`, c.node, source), [o]);
    if (c.bn) {
      add(`${p}.bn.weight`, vector(c.bn.scale, o, `${p}.bn.weight`, c.node, source), [o]);
      add(`${p}.bn.bias`, vector(c.bn.bias, o, `${p}.bn.bias`, c.node, source), [o]);
      add(`${p}.bn.running_mean`, vector(c.bn.mean, o, `${p}.bn.running_mean`, c.node, source), [o]);
      add(`${p}.bn.running_var`, withEpsilon(vector(c.bn.var, o, `${p}.bn.running_var`, c.node, source), c.bn.eps), [o]);
      tensors.push({ name: `${p}.bn.num_batches_tracked`, tensor: { kind: 'array', data: BigInt64Array.of(0n), shape: [] } });
    }
  });
  let numClasses = 0;
  if (dense.length > 0) {
    numClasses = dense[2].weight.dims[0];
    const shapes = [[HIDDEN_FEATURES, FLATTENED_FEATURES], [HIDDEN_FEATURES, HIDDEN_FEATURES], [numClasses, HIDDEN_FEATURES]];
    CLASSIFIER_LINEAR_INDICES.forEach((index, i) => {
      const d = dense[i];
      const key = `classifier.${index}`;
      check(`${key}.weight`, d.weight, shapes[i], d.node);
      add(`${key}.weight`, d.weight.data, shapes[i]);
      add(`${key}.bias`, vector(d.bias, shapes[i][0], `${key}.bias`, d.node, source), [shapes[i][0]]);
    });
  }

  const producer = [model.producerName, model.producerVersion].filter((s) => s).join(' ') || undefined;
  return {
    arch: { depth: depth as Depth, batchNorm },
    numClasses, tensors, opset, producer, warnings,
    ...(ceilMode !== undefined ? { ceilMode } : {}),
    ...(batchNorm ? { bnEpsilon: bnEps } : {}),
  };
}

/** The graph input carrying the image: not an initializer (old IR versions list those as inputs too). */
function imageInput(graph: onnx.IGraphProto, initializers: Map<string, Tensor>, consumers: Map<string, onnx.INodeProto[]>, source: string): string {
  const names = (graph.input ?? []).map((i) => i.name ?? '').filter((n) => n && !initializers.has(n));
  let candidates = names.filter((n) => (consumers.get(n) ?? []).some((c) => c.input?.[0] === n));
  if (candidates.length > 1) {
    const convFed = candidates.filter((n) => (consumers.get(n) ?? []).some((c) => c.opType === 'Conv' && c.input?.[0] === n));
    if (convFed.length >= 1) candidates = convFed;
  }
  if (candidates.length !== 1) {
    throw new OnnxFormatError('NOT_VGG', `${source}: not a VGG: expected one image input but the graph has ${candidates.length === 0 ? 'none' : candidates.join(', ')} (inputs without an initializer: ${names.join(', ') || 'none'})`);
  }
  return candidates[0];
}

function checkAttributeNames(node: onnx.INodeProto, source: string, label: string): void {
  const known = KNOWN_ATTRIBUTES[node.opType ?? ''];
  if (!known) return; // the op itself is judged by the walk
  for (const a of node.attribute ?? []) {
    if (!known.includes(a.name ?? '')) {
      throw new OnnxFormatError('UNSUPPORTED_ATTRIBUTE', `${source}: ${label} has attribute '${a.name}', which the reader does not know; ` +
        `expected only ${known.length ? known.join(', ') : 'none'}`, label);
    }
  }
}

/** The node's epsilon (ONNX default 1e-5); refuses training mode and a non-spatial BN. */
function batchNormEpsilon(node: onnx.INodeProto, source: string, label: string): number {
  const training = attr(node, 'training_mode')?.i;
  if (training !== undefined && training !== null && toNum(training) !== 0) {
    throw new OnnxFormatError('UNSUPPORTED_ATTRIBUTE', `${source}: ${label} has training_mode 1 (batch statistics); expected inference mode`, label);
  }
  const isTest = attr(node, 'is_test')?.i;
  if (isTest !== undefined && isTest !== null && toNum(isTest) === 0 && (node.output?.length ?? 1) > 1) {
    throw new OnnxFormatError('UNSUPPORTED_ATTRIBUTE', `${source}: ${label} has is_test 0 with running-statistics outputs (training mode); expected inference mode`, label);
  }
  // spatial 0 (opsets < 9) normalises per activation; with per-channel
  // parameters ([C], checked later) that is the same computation.
  const a = attr(node, 'epsilon');
  return a ? (a.f ?? 0) : ONNX_BN_EPS;
}

/** running_var' = var + eps - 1e-5, so the model's sqrt(var' + 1e-5) = sqrt(var + eps). */
function withEpsilon(variance: Float32Array, eps: number): Float32Array {
  if (eps === ONNX_BN_EPS_F32 || eps === MMCLS_BN_EPS) return variance;
  return variance.map((v) => v + eps - MMCLS_BN_EPS);
}

/** A 2x2 stride-2 pool without padding; returns its ceil_mode. */
function maxPoolCeilMode(node: onnx.INodeProto, source: string, label: string): boolean {
  const k = ints(node, 'kernel_shape');
  const s = ints(node, 'strides') ?? [1, 1];
  const pads = ints(node, 'pads') ?? [0, 0, 0, 0];
  const dilations = ints(node, 'dilations') ?? [1, 1];
  const autoPad = attr(node, 'auto_pad')?.s;
  const autoPadText = autoPad ? Buffer.from(autoPad).toString() : 'NOTSET';
  if (!k || k.join() !== '2,2' || s.join() !== '2,2' || pads.some((p) => p !== 0) || dilations.some((d) => d !== 1) ||
    (autoPadText !== 'NOTSET' && autoPadText !== 'VALID')) {
    throw new OnnxFormatError('UNSUPPORTED_ATTRIBUTE', `${source}: ${label} has kernel_shape [${k ?? ''}], strides [${s}], pads [${pads}], dilations [${dilations}], auto_pad ${autoPadText}; ` +
      'expected a 2x2 max pool with stride 2, no padding and dilation 1', label);
  }
  const ceil = attr(node, 'ceil_mode')?.i;
  return ceil !== undefined && ceil !== null && toNum(ceil) !== 0;
}

function checkConv(node: onnx.INodeProto, weight: Param, source: string, label: string): void {
  const k = ints(node, 'kernel_shape') ?? weight.dims.slice(2);
  const strides = ints(node, 'strides') ?? [1, 1];
  const dilations = ints(node, 'dilations') ?? [1, 1];
  const group = toNum(attr(node, 'group')?.i ?? 1);
  const autoPad = attr(node, 'auto_pad')?.s;
  const autoPadText = autoPad ? Buffer.from(autoPad).toString() : 'NOTSET';
  const pads = ints(node, 'pads') ?? [0, 0, 0, 0];
  const padsOk = autoPadText === 'SAME_UPPER' || autoPadText === 'SAME_LOWER' || (autoPadText === 'NOTSET' && pads.every((p) => p === 1));
  if (k.join() !== '3,3' || strides.some((s) => s !== 1) || dilations.some((d) => d !== 1) || group !== 1 || !padsOk) {
    throw new OnnxFormatError('UNSUPPORTED_ATTRIBUTE', `${source}: ${label} has kernel_shape [${k}], strides [${strides}], dilations [${dilations}], group ${group}, pads [${pads}], auto_pad ${autoPadText}; expected a 3x3 convolution with stride 1, padding 1, dilation 1, group 1`, label);
  }
}

type ParamFn = (node: onnx.INodeProto, index: number, what: string, required: boolean) => Param | undefined;

function gemmLayer(node: onnx.INodeProto, param: ParamFn, source: string, label: string, warnings: string[]): DenseLayer {
  const transA = toNum(attr(node, 'transA')?.i ?? 0);
  const transB = toNum(attr(node, 'transB')?.i ?? 0);
  const alpha = attr(node, 'alpha')?.f ?? 1;
  const beta = attr(node, 'beta')?.f ?? 1;
  if (transA !== 0) throw new OnnxFormatError('UNSUPPORTED_ATTRIBUTE', `${source}: ${label} has transA=${transA}; expected 0 (the features as rows)`, label);
  const w = param(node, 1, 'the weight', true)!;
  if (w.dims.length !== 2) throw new OnnxFormatError('NOT_VGG', `${source}: not a VGG: ${label} weight '${w.name}' has shape [${w.dims}]; expected 2 dimensions`);
  // Linear keeps [out, in]: transB=1 stores it that way, transB=0 stores [in, out].
  const weight = transB ? w : transposed(w);
  const bias = param(node, 2, 'the bias (C)', false);
  if (alpha !== 1 || (bias && beta !== 1)) {
    warnings.push(`${source}: ${label} has alpha=${alpha}, beta=${beta}; folded into the weight and bias`);
    if (alpha !== 1) weight.data = weight.data.map((v) => v * alpha);
    if (bias && beta !== 1) bias.data = bias.data.map((v) => v * beta);
  }
  return { kind: 'dense', node: label, weight, bias };
}

function matMulLayer(node: onnx.INodeProto, param: ParamFn, source: string, label: string): DenseLayer {
  const w = param(node, 1, 'the weight', true)!;
  if (w.dims.length !== 2) throw new OnnxFormatError('NOT_VGG', `${source}: not a VGG: ${label} weight '${w.name}' has shape [${w.dims}]; expected 2 dimensions`);
  return { kind: 'dense', node: label, weight: transposed(w) }; // MatMul stores [in, out]
}

/** A per-channel vector of length n: zeros when absent, broadcast when a scalar. */
function vector(p: Param | undefined, n: number, key: string, layer: string, source: string): Float32Array {
  if (!p) return new Float32Array(n);
  if (p.data.length === n) return p.data;
  if (p.data.length === 1) return new Float32Array(n).fill(p.data[0]);
  throw new OnnxFormatError('NOT_VGG', `${source}: not a VGG: ${key} (from '${p.name}' of ${layer}) should have ${n} elements but has ${p.data.length} (shape [${p.dims}])`);
}

/** [rows, cols] -> [cols, rows], in cache-friendly blocks (the first dense layer has 100M elements). */
function transposed(p: Param): Param {
  const [rows, cols] = p.dims;
  const src = p.data;
  const out = new Float32Array(src.length);
  const B = 64;
  for (let r0 = 0; r0 < rows; r0 += B) {
    const r1 = Math.min(r0 + B, rows);
    for (let c0 = 0; c0 < cols; c0 += B) {
      const c1 = Math.min(c0 + B, cols);
      for (let r = r0; r < r1; r++) {
        const base = r * cols;
        for (let c = c0; c < c1; c++) out[c * rows + r] = src[base + c];
      }
    }
  }
  return { name: p.name, dims: [cols, rows], data: out };
}

// ---------------------------------------------------------------------------
// Attributes and tensor data

function attr(node: onnx.INodeProto, name: string): onnx.IAttributeProto | undefined {
  return node.attribute?.find((a) => a.name === name);
}

function ints(node: onnx.INodeProto, name: string): number[] | undefined {
  const a = attr(node, name);
  return a ? (a.ints ?? []).map(toNum) : undefined;
}

/** protobufjs hands 64-bit integers out as Long objects when `long` is installed. */
function toNum(v: number | { toNumber(): number }): number {
  return typeof v === 'number' ? v : v.toNumber();
}

/** The value of a Constant node as a tensor (`value`, `value_float` or `value_floats`). */
function constantValue(node: onnx.INodeProto): Tensor | undefined {
  for (const a of node.attribute ?? []) {
    if (a.name === 'value' && a.t) return a.t;
    if (a.name === 'value_float') return { dataType: onnx.TensorProto.DataType.FLOAT, dims: [], floatData: [a.f ?? 0] };
    if (a.name === 'value_floats') return { dataType: onnx.TensorProto.DataType.FLOAT, dims: [(a.floats ?? []).length], floatData: a.floats ?? [] };
  }
  return undefined;
}

const LITTLE_ENDIAN_HOST = os.endianness() === 'LE';
const DT = onnx.TensorProto.DataType;

function tensorToFloat32(t: Tensor, source: string, name: string, externalDir: string | undefined): Float32Array {
  const dims = (t.dims ?? []).map(toNum);
  const n = dims.reduce((a, b) => a * b, 1);
  const type = t.dataType ?? DT.UNDEFINED;
  let raw: Uint8Array | undefined = t.rawData && t.rawData.length > 0 ? t.rawData : undefined;
  if (t.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL) raw = externalBytes(t, source, name, externalDir);
  const width = type === DT.FLOAT ? 4 : type === DT.DOUBLE ? 8 : type === DT.FLOAT16 || type === DT.BFLOAT16 ? 2 : 0;
  if (width === 0) {
    throw new OnnxFormatError('BAD_TENSOR', `${source}: tensor '${name}' has data type ${DT[type] ?? type}; expected FLOAT (FLOAT16, BFLOAT16 and DOUBLE are converted)`);
  }
  const fail = (found: string) => new OnnxFormatError('BAD_TENSOR', `${source}: tensor '${name}' of shape [${dims}] should hold ${n} values but ${found}`);
  if (raw) {
    if (raw.length !== n * width) throw fail(`its raw_data has ${raw.length} bytes (expected ${n * width})`);
    return rawToFloat32(raw, type, n);
  }
  const out = new Float32Array(n);
  let values: ArrayLike<number> | undefined;
  if (type === DT.FLOAT) values = t.floatData ?? [];
  else if (type === DT.DOUBLE) values = t.doubleData ?? [];
  if (values) {
    if (values.length !== n) throw fail(`it has ${values.length}`);
    out.set(values);
    return out;
  }
  // FLOAT16 / BFLOAT16 outside raw_data are bit patterns in int32_data.
  const bits = t.int32Data ?? [];
  if (bits.length !== n) throw fail(`it has ${bits.length}`);
  for (let i = 0; i < n; i++) out[i] = type === DT.FLOAT16 ? halfToFloat(bits[i]) : bfloat16ToFloat(bits[i]);
  return out;
}

function rawToFloat32(raw: Uint8Array, type: number, n: number): Float32Array {
  const out = new Float32Array(n);
  if (type === DT.FLOAT && LITTLE_ENDIAN_HOST) {
    // Copy through bytes: raw_data is a view into the file at any alignment.
    new Uint8Array(out.buffer).set(raw);
    return out;
  }
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  if (type === DT.FLOAT) for (let i = 0; i < n; i++) out[i] = view.getFloat32(i * 4, true);
  else if (type === DT.DOUBLE) for (let i = 0; i < n; i++) out[i] = view.getFloat64(i * 8, true);
  else if (type === DT.FLOAT16) for (let i = 0; i < n; i++) out[i] = halfToFloat(view.getUint16(i * 2, true));
  else for (let i = 0; i < n; i++) out[i] = bfloat16ToFloat(view.getUint16(i * 2, true));
  return out;
}

function externalBytes(t: Tensor, source: string, name: string, dir: string | undefined): Uint8Array {
  const entry = (key: string) => t.externalData?.find((e) => e.key === key)?.value ?? undefined;
  const location = entry('location');
  if (!dir || !location) {
    throw new OnnxFormatError('EXTERNAL_DATA', `${source}: tensor '${name}' keeps its data in an external file${location ? ` '${location}'` : ''}; pass the .onnx file path (not a Buffer or archive) so it can be found`);
  }
  const file = path.resolve(dir, location);
  if (path.relative(dir, file).startsWith('..')) throw new OnnxFormatError('EXTERNAL_DATA', `${source}: tensor '${name}' points outside the model's folder ('${location}')`);
  const offset = Number(entry('offset') ?? 0);
  let length = entry('length') !== undefined ? Number(entry('length')) : undefined;
  let fd: number;
  try { fd = fs.openSync(file, 'r'); } catch (err) {
    throw new OnnxFormatError('EXTERNAL_DATA', `${source}: tensor '${name}' keeps its data in '${location}', which cannot be opened (${(err as Error).message})`);
  }
  try {
    length ??= fs.fstatSync(fd).size - offset;
    const buf = Buffer.alloc(length);
    const got = fs.readSync(fd, buf, 0, length, offset);
    if (got !== length) throw new OnnxFormatError('EXTERNAL_DATA', `${source}: tensor '${name}': '${location}' holds ${got} bytes from offset ${offset}, expected ${length}`);
    return buf;
  } finally {
    fs.closeSync(fd);
  }
}

