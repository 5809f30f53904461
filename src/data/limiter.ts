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
