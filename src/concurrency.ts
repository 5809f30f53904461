// Bounding concurrent work: Limiter (FIFO slots: the data loader, mapBounded) and Gate (readers-writer: image decoding).

// At most `limit` tasks running; waiters start in FIFO order, so the images of
// an earlier batch are decoded before those of a later, prefetched one.
export class Limiter {
  private active = 0;
  private readonly waiting: Array<() => void> = [];

  constructor(private readonly limit: number) {}

  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.active >= this.limit)
      await new Promise<void>((resolve) => this.waiting.push(resolve)); // slot handed over
    else this.active++;
    try {
      return await task();
    } finally {
      const next = this.waiting.shift();
      if (next)
        next(); // pass the slot on directly, so no newcomer can jump the queue
      else this.active--;
    }
  }
}

/** Maps with at most `limit` calls in flight (started in input order); results keep the input order. */
export function mapBounded<T, R>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const limiter = new Limiter(limit);
  return Promise.all(items.map((item, i) => limiter.run(() => fn(item, i))));
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
