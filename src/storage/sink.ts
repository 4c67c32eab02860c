/** The items one parsed page produced, keyed by its request's fingerprint. */
export interface ItemBatch {
  module: string;
  /** the request fingerprint: a batch with a fingerprint already stored adds nothing */
  fingerprint: string;
  items: readonly unknown[];
  /** the run the page belongs to (stored by the PostgreSQL sink) */
  runId?: string;
  /** the page's URL (stored by the PostgreSQL sink) */
  url?: string;
}

/**
 * Where items go. `write` resolves once the batch is durable (or known to be stored already),
 * which is when the message that produced it may be acked.
 */
export interface ItemSink {
  /** resolves true if stored now, false if this fingerprint was stored before */
  write(batch: ItemBatch): Promise<boolean>;
  /** where the items are, for the summary (a path, "stdout", a Redis key) */
  describe(): string;
  close(): Promise<void>;
}
