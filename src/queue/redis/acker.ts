// src/queue/redis/acker.ts: batched XACK. Acks are collected and flushed as one ack.lua call
// (one XACK per stream and run, each run's `open` counted down in the same step, with the run
// counts kept since the last flush) once `batchSize` are waiting (at the end of the current
// task, so acks made together go together) or `flushMs` after the first; each ack() resolves
// once its flush succeeded. A flush that fails on the connection keeps its ids and is
// tried again after a reconnect, so an outage delays acks but never drops them.

import type { Redis } from "ioredis";
import { isConnectionError } from "../../redis/connection.ts";
import { RunTallies } from "./runs.ts";
import { queueScripts } from "./scripts.ts";

interface PendingAck {
  stream: string;
  id: string;
  /** the run hash counted down, or "" */
  runKey: string;
  resolve: () => void;
  reject: (err: Error) => void;
}

export interface AckerOptions {
  batchSize: number;
  flushMs: number;
  /** pause before retrying a flush that failed on the connection */
  retryMs: number;
  /** the runs index (<name>:runs) */
  runsKey: string;
  /** seconds a finished run's hash is kept */
  runTtlSecs: number;
}

export class Acker {
  private waiting: PendingAck[] = [];
  private timer: ReturnType<typeof setTimeout> | undefined;
  private flushQueued = false;
  private readonly inFlight = new Set<Promise<void>>();
  private readonly inFlightBatches = new Set<PendingAck[]>();
  private failed: Error | undefined;
  /** per-run counts (pages, items, ...) that go out with the next flush */
  readonly tallies = new RunTallies();

  constructor(
    private readonly conn: Redis,
    private readonly group: string,
    private readonly options: AckerOptions,
  ) {}

  get size(): number {
    return this.waiting.length;
  }

  /** Counts `n` of `field` for a run; sent with the next flush (at the latest `flushMs` from now). */
  tally(runKey: string, field: string, n = 1): void {
    if (this.failed) return;
    this.tallies.add(runKey, field, n);
    this.timer ??= setTimeout(() => this.flushNow(), this.options.flushMs);
  }

  ack(stream: string, id: string, runKey = ""): Promise<void> {
    if (this.failed) return Promise.reject(this.failed);
    return new Promise((resolve, reject) => {
      this.waiting.push({ stream, id, runKey, resolve, reject });
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
    if ((this.waiting.length === 0 && this.tallies.size === 0) || this.failed) return;
    const batch = this.waiting.splice(0);
    this.inFlightBatches.add(batch);
    const p = this.send(batch).finally(() => {
      this.inFlight.delete(p);
      this.inFlightBatches.delete(batch);
    });
    this.inFlight.add(p);
  }

  private async send(batch: PendingAck[]): Promise<void> {
    const tallies = this.tallies.take();
    const keys = [this.options.runsKey];
    const index = new Map<string, number>();
    const at = (key: string) => {
      let i = index.get(key);
      if (i === undefined) {
        keys.push(key);
        index.set(key, (i = keys.length));
      }
      return i;
    };
    const groups = new Map<string, string[]>();
    for (const a of batch) {
      const g = `${at(a.stream)},${a.runKey ? at(a.runKey) : 0}`;
      const ids = groups.get(g);
      if (ids) ids.push(a.id);
      else groups.set(g, [a.id]);
    }
    let layout = "";
    const ids: string[] = [];
    for (const [g, list] of groups) {
      layout += `${g},${list.length};`;
      ids.push(...list);
    }
    const counts: Array<string | number> = [];
    for (const [key, field, n] of tallies) counts.push(at(key), field, n);
    try {
      await queueScripts.run(this.conn, "ack", keys, [this.group, this.options.runTtlSecs, layout, tallies.length, ...counts, ...ids]);
    } catch (err) {
      if (isConnectionError(err) && !this.failed) this.tallies.restore(tallies);
      return this.retryLater(batch, err);
    }
    for (const a of batch) a.resolve();
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
