// The one way the package handles an AbortSignal: whatever aborted it, the
// caller gets our AbortError (code 'ABORT_ERR'), before work starts
// (throwIfAborted) or while waiting on a promise (abortable).
import { AbortError } from './errors';

/** The AbortError for an aborted signal: its reason if that is one, else one carrying a string reason as message. */
export function abortErrorOf(signal: AbortSignal): AbortError {
  if (signal.reason instanceof AbortError) return signal.reason;
  return new AbortError(typeof signal.reason === 'string' ? signal.reason : undefined);
}

/** @throws AbortError when `signal` has fired. */
export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw abortErrorOf(signal);
}

/** Resolves with `p`, or rejects with AbortError as soon as `signal` fires (p's result is then dropped), leaving no listener behind. */
export function abortable<T>(p: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return p;
  if (signal.aborted) {
    p.catch(() => undefined);
    return Promise.reject(abortErrorOf(signal));
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(abortErrorOf(signal));
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}
