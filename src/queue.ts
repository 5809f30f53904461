// One native call sequence at a time per model: the native side also locks,
// but queueing here keeps libuv's pool threads free for sharp's decoding
// instead of parking them on a mutex, and lets AbortSignal drop queued work.

import { throwIfAborted } from './abort';
import { AbortError } from './errors';

export { AbortError, throwIfAborted };

export class SerialQueue {
  private tail: Promise<unknown> = Promise.resolve();

  run<T>(task: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    const result = this.tail.then(() => {
      throwIfAborted(signal);
      return task();
    });
    this.tail = result.catch(() => undefined);
    return result;
  }

  /** Resolves when everything queued so far has settled. */
  drain(): Promise<void> {
    return this.tail.then(() => undefined);
  }
}
