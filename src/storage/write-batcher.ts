// src/storage/write-batcher.ts: the group commit every sink uses. Writes that arrive while one
// flush is running go out together in the next flush, so a sink's throughput does not depend on
// its round-trip or fsync time, and each write's promise settles when its own flush does.

/** A write waiting for its flush: what to write, and how to answer its caller. */
export interface PendingWrite<W, R> {
  readonly value: W;
  resolve(result: R): void;
  reject(err: unknown): void;
}

export class WriteBatcher<W, R> {
  private pending: PendingWrite<W, R>[] = [];
  private flushing: Promise<void> | undefined;

  /** `flush` must settle every write it is given (resolve or reject each one). */
  constructor(private readonly flush: (writes: PendingWrite<W, R>[]) => Promise<void>) {}

  /** Queues `value` for the next flush; resolves with what the flush answers for it. */
  add(value: W): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.pending.push({ value, resolve, reject });
      this.flushing ??= this.loop();
    });
  }

  /** Resolves once nothing is pending or being written. */
  async drained(): Promise<void> {
    while (this.flushing) await this.flushing;
  }

  private async loop(): Promise<void> {
    try {
      while (this.pending.length > 0) {
        const writes = this.pending;
        this.pending = [];
        try {
          await this.flush(writes);
        } catch (err) {
          for (const w of writes) w.reject(err); // a flush that threw: no write of it stays unanswered
        }
      }
    } finally {
      this.flushing = undefined;
    }
  }
}

/** `writes` grouped by module, in arrival order within each module. */
export function byModule<T>(writes: readonly T[], moduleOf: (w: T) => string): Map<string, T[]> {
  const groups = new Map<string, T[]>();
  for (const w of writes) {
    const module = moduleOf(w);
    const list = groups.get(module);
    if (list) list.push(w);
    else groups.set(module, [w]);
  }
  return groups;
}
