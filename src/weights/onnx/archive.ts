// The ONNX zoo's `.model` archives: a zip holding one .onnx, with
// signature.json and synset.txt beside it. Read through the shared zip
// module, entry by entry, so the archive itself is never held in memory;
// only the .onnx (which protobuf decodes from memory) and synset.txt are read.
import * as path from 'node:path';
import { OnnxFormatError } from '../errors';
import { ZipReader, type ByteSource, type ZipEntry } from '../zip';
import { MAX_MODEL_BYTES, MAX_SYNSET_BYTES } from './limits';
import { readModel } from './model';
import type { OnnxWeights } from './types';

/** One label per non-empty line, the WordNet id (`n01440764`) dropped when present. */
export function parseSynset(text: string): string[] {
  return text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l.length > 0)
    .map((l) => l.replace(/^n\d{8}\s+/, ''));
}

/** Entries that hold files: no folders, no macOS resource forks. */
function fileEntries(zip: ZipReader): ZipEntry[] {
  return [...zip.entries.values()].filter((e) => !e.name.endsWith('/') && !e.name.startsWith('__MACOSX/'));
}

/**
 * Reads VGG weights from a `.model` archive. Labels come from synset.txt:
 * the text after the WordNet id (`n01440764 tench, Tinca tinca` -> `tench,
 * Tinca tinca`, the form mmcls uses for ImageNet CLASSES); a count that
 * disagrees with numClasses drops them with a warning.
 * @param name - how messages name the archive
 * @throws OnnxFormatError BAD_ARCHIVE (not a readable zip, or not exactly one
 * .onnx inside), and the codes of the .onnx inside.
 */
export async function readArchive(source: ByteSource, name: string): Promise<OnnxWeights> {
  const zip = await ZipReader.open(
    source,
    (_code, msg) =>
      new OnnxFormatError('BAD_ARCHIVE', `${name}: not a readable zip archive (${msg}); expected an ONNX-zoo .model archive holding one .onnx file`),
  );
  const files = fileEntries(zip);
  const models = files.filter((e) => /\.onnx$/i.test(e.name));
  if (models.length !== 1) {
    throw new OnnxFormatError(
      'BAD_ARCHIVE',
      `${name}: expected one .onnx file in the archive but found ${models.length === 0 ? 'none' : models.map((e) => e.name).join(', ')}`,
    );
  }
  const model = models[0];
  const weights = readModel(await zip.readEntry(model, MAX_MODEL_BYTES), `${name}:${model.name}`, undefined);
  const synset = files.find((e) => /^synset\.txt$/i.test(path.posix.basename(e.name)));
  if (synset) {
    const labels = parseSynset((await zip.readEntry(synset, MAX_SYNSET_BYTES)).toString('utf8'));
    if (labels.length === weights.numClasses) weights.labels = labels;
    else weights.warnings.push(`${name}: ${synset.name} has ${labels.length} labels but the model has ${weights.numClasses} classes; labels ignored`);
  }
  return weights;
}
