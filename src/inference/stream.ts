// classifyStream(): classification over a source too large to hold in memory
// (a folder listing, a database cursor, a Readable in object mode). At most
// two batches are read ahead of the consumer: one decoding, one running.
import type { ModelCore } from '../core/model-core';
import type { ImageInput } from '../image/preprocess';
import { invalidType } from '../validate';
import { predictor, resolveClassifyOptions, type ClassifyItem, type ClassifyOptions } from './classify';
import { checkModel, runPipeline } from './pipeline';

function isIterableSource(v: unknown): v is Iterable<ImageInput> | AsyncIterable<ImageInput> {
  if (typeof v !== 'object' || v === null || ArrayBuffer.isView(v)) return false; // strings and Buffers iterate characters/bytes
  return typeof (v as AsyncIterable<unknown>)[Symbol.asyncIterator] === 'function' || typeof (v as Iterable<unknown>)[Symbol.iterator] === 'function';
}

/**
 * Classifies every input of `source`, yielding one ClassifyItem per input in
 * source order as soon as its batch is done. A bad input is yielded with its
 * `error` (a TypeError for an input of the wrong kind, ImageInputError for an
 * unreadable image) and the stream goes on; with `failFast: true` the stream
 * throws it instead, after yielding every input before it. Reading stops
 * (the source's `return()` is called) when the consumer breaks out early.
 * Options are validated now, synchronously; after `signal` fires, `next()`
 * rejects with AbortError.
 *
 *   for await (const r of classifyStream(model, walk('photos/'))) {
 *     if (r.error) console.warn(r.index, r.error.message);
 *     else console.log(r.input, r.predictions[0].label);
 *   }
 */
export function classifyStream(
  model: ModelCore,
  source: Iterable<ImageInput> | AsyncIterable<ImageInput>,
  options?: ClassifyOptions,
): AsyncGenerator<ClassifyItem, void, undefined> {
  checkModel(model);
  if (!isIterableSource(source)) throw invalidType('source', 'an iterable or async iterable of image inputs', source);
  const o = resolveClassifyOptions(model, options);
  return (async function* stream(): AsyncGenerator<ClassifyItem, void, undefined> {
    // failFast here means: everything before the bad input is still yielded, then it is thrown.
    for await (const r of runPipeline(source, { ...o, failFast: false }, predictor(model, o))) {
      if (r.error && o.failFast) throw r.error;
      yield r.error ? { index: r.index, input: r.input, error: r.error } : { index: r.index, input: r.input, predictions: r.value! };
    }
  })();
}
