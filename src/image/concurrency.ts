/** Maps with at most `limit` calls in flight; results keep the input order. */
export async function mapBounded<T, R>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  async function worker(): Promise<void> {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i], i);
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

/**
 * A readers-writer gate: any number of `shared` tasks at once, an `exclusive`
 * one alone (waiting writers go first, so they are not starved).
 */
export class Gate {
  private readers = 0;
  private writing = false;
  private writersWaiting = 0;
  private wakers: Array<() => void> = [];

  private wake(): void {
    const w = this.wakers;
    this.wakers = [];
    for (const f of w) f();
  }

  /** Waits until `acquire` (which checks and takes the gate in one synchronous step) succeeds. */
  private async until(acquire: () => boolean): Promise<void> {
    while (!acquire()) await new Promise<void>((resolve) => this.wakers.push(resolve));
  }

  /** Runs `fn` alongside other shared tasks, never alongside an exclusive one. */
  async shared<T>(fn: () => Promise<T>): Promise<T> {
    await this.until(() => !this.writing && this.writersWaiting === 0 && ++this.readers > 0);
    try {
      return await fn();
    } finally {
      this.readers--;
      this.wake();
    }
  }

  /** Runs `fn` with no other task of this gate in flight. */
  async exclusive<T>(fn: () => Promise<T>): Promise<T> {
    this.writersWaiting++;
    await this.until(() => {
      if (this.writing || this.readers > 0) return false;
      this.writing = true;
      this.writersWaiting--;
      return true;
    });
    try {
      return await fn();
    } finally {
      this.writing = false;
      this.wake();
    }
  }
}
