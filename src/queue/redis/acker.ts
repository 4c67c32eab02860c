// src/queue/redis/acker.ts: batched XACK. Acks are collected and flushed as one pipeline (one
// XACK per stream) once `batchSize` are waiting (at the end of the current task, so acks made
// together go together) or `flushMs` after the first; each ack() resolves once its flush
// succeeded. A flush that fails on the connection keeps its ids and is
// tried again after a reconnect, so an outage delays acks but never drops them.

import type { Redis } from "ioredis";
import { isConnectionError } from "../../redis/connection.ts";

interface PendingAck {
  stream: string;
  id: string;
  resolve: () => void;
  reject: (err: Error) => void;
}

export interface AckerOptions {
  batchSize: number;
  flushMs: number;
  /** pause before retrying a flush that failed on the connection */
  retryMs: number;
}

export class Acker {
  private waiting: PendingAck[] = [];
  private timer: ReturnType<typeof setTimeout> | undefined;
  private flushQueued = false;
  private readonly inFlight = new Set<Promise<void>>();
  private readonly inFlightBatches = new Set<PendingAck[]>();
  private failed: Error | undefined;

  constructor(
    private readonly conn: Redis,
    private readonly group: string,
    private readonly options: AckerOptions,
  ) {}

  get size(): number {
    return this.waiting.length;
  }

  ack(stream: string, id: string): Promise<void> {
    if (this.failed) return Promise.reject(this.failed);
    return new Promise((resolve, reject) => {
      this.waiting.push({ stream, id, resolve, reject });
      if (this.waiting.length >= this.options.batchSize) {
        if (!this.flushQueued) {
          this.flushQueued = true;
          queueMicrotask(() => {
            this.flushQueued = false;
            this.flushNow();
          });
        }
      } else this.timer ??= setTimeout(() => this.flushNow(), this.options.flushMs);
    });
  }

  /**
   * Flushes everything waiting; resolves when nothing is left (retrying through an outage, so
   * a caller that cannot wait forever bounds it).
   */
  async flush(): Promise<void> {
    for (;;) {
      this.flushNow();
      if (this.inFlight.size === 0) return;
      await Promise.allSettled([...this.inFlight]);
      if (this.waiting.length === 0 && this.inFlight.size === 0) return;
      if (this.failed) return;
      if (this.inFlight.size === 0) await new Promise((r) => setTimeout(r, this.options.retryMs));
    }
  }

  /** Rejects every waiting ack, sent or not (fatal error); later acks reject at once. */
  fail(err: Error): void {
    this.failed = err;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    for (const a of this.waiting.splice(0)) a.reject(err);
    for (const batch of this.inFlightBatches) for (const a of batch) a.reject(err);
    this.inFlightBatches.clear();
  }

  private flushNow(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.waiting.length === 0 || this.failed) return;
    const batch = this.waiting.splice(0);
    this.inFlightBatches.add(batch);
    const p = this.send(batch).finally(() => {
      this.inFlight.delete(p);
      this.inFlightBatches.delete(batch);
    });
    this.inFlight.add(p);
  }

  private async send(batch: PendingAck[]): Promise<void> {
    const byStream = new Map<string, string[]>();
    for (const a of batch) {
      const ids = byStream.get(a.stream);
      if (ids) ids.push(a.id);
      else byStream.set(a.stream, [a.id]);
    }
    const pipe = this.conn.pipeline();
    for (const [stream, ids] of byStream) pipe.xack(stream, this.group, ...ids);
    let results: Array<[Error | null, unknown]> | null;
    try {
      results = await pipe.exec();
    } catch (err) {
      return this.retryLater(batch, err);
    }
    const errors = new Map<string, Error>();
    let connectionFailure: Error | undefined;
    [...byStream.keys()].forEach((stream, i) => {
      const err = results?.[i]?.[0];
      if (!err) return;
      if (isConnectionError(err)) connectionFailure = err;
      else errors.set(stream, err);
    });
    if (connectionFailure) {
      const retry = batch.filter((a) => !errors.has(a.stream));
      for (const a of batch) if (errors.has(a.stream)) a.reject(errors.get(a.stream)!);
      return this.retryLater(retry, connectionFailure);
    }
    for (const a of batch) {
      const err = errors.get(a.stream);
      if (err) a.reject(err);
      else a.resolve();
    }
  }

  /** Puts the batch back in front and flushes again after a pause (ioredis reconnects meanwhile). */
  private retryLater(batch: PendingAck[], err: unknown): void {
    if (this.failed) {
      for (const a of batch) a.reject(this.failed);
      return;
    }
    if (!isConnectionError(err)) {
      const e = err instanceof Error ? err : new Error(String(err));
      for (const a of batch) a.reject(e);
      return;
    }
    this.waiting.unshift(...batch);
    this.timer ??= setTimeout(() => this.flushNow(), this.options.retryMs);
  }
}
