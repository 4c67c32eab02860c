// src/queue/redis/janitor.ts: the periodic upkeep of the streams a worker reads.
//
// - Reclaim (every claim_interval ms): entries pending longer than claim_min_idle (their
//   consumer died or stalled) are claimed with XAUTOCLAIM (claim.lua) and handed to the queue,
//   which gives them out through read(). It claims only as many as the queue has room for
//   (`room(topic)`, bounded by the credit readers asked for), so memory stays O(prefetch);
//   the XAUTOCLAIM cursor of each stream is kept between sweeps. An entry delivered more than
//   `maxDeliveries` times is handed to `poisoned` instead, which dead-letters it (and counts it
//   off its run, which only a decoded payload tells).
// - Trim (every trimIntervalMs): trim.lua drops consumed entries older than minid_time, never
//   an entry still pending or not yet delivered.

import type { Buffer } from "node:buffer";
import type { Redis } from "ioredis";
import type { Topic } from "../../model/index.ts";
import { unref } from "./delayed.ts";
import type { QueueKeys, StreamRef } from "./keys.ts";
import { queueScripts } from "./scripts.ts";

/** One reclaimed entry: its stream, id, fields and PEL delivery count (this claim included). */
export interface ClaimedEntry {
  stream: StreamRef;
  id: string;
  fields: Buffer[];
  deliveries: number;
  /** why a worker's watchdog recorded it as blocking module code (a poison entry only) */
  poisonReason?: string;
}

export interface JanitorOptions {
  consumer: string;
  claimMinIdleMs: number;
  claimIntervalMs: number;
  claimCount: number;
  maxDeliveries: number;
  /** deliveries of an entry the watchdog recorded as blocking a worker (request_max_retries) */
  maxPoisonDeliveries?: number;
  /** ms a consumed entry is kept (minid_time in ms) */
  keepConsumedMs: number;
  trimIntervalMs: number;
  /** XAUTOCLAIM calls per stream per sweep, at most */
  maxCallsPerStream: number;
}

export interface JanitorHooks {
  /** the topics being read */
  topics(): Iterable<Topic>;
  /** how many more deliveries of `topic` the queue can hold now */
  room(topic: Topic): number;
  claimed(topic: Topic, entries: ClaimedEntry[]): void;
  /** entries delivered more than maxDeliveries times (still pending, now this consumer's) */
  poisoned(topic: Topic, entries: ClaimedEntry[]): Promise<void>;
  error(err: unknown): void;
}

export class Janitor {
  private claimTimer: ReturnType<typeof setInterval> | undefined;
  private trimTimer: ReturnType<typeof setInterval> | undefined;
  private readonly cursors = new Map<string, string>();
  private sweeping = false;
  private trimming = false;
  private stopped = false;

  constructor(
    private readonly conn: Redis,
    private readonly keys: QueueKeys,
    private readonly options: JanitorOptions,
    private readonly hooks: JanitorHooks,
  ) {}

  start(): void {
    this.claimTimer = setInterval(() => void this.sweep(), this.options.claimIntervalMs);
    this.trimTimer = setInterval(() => void this.trim(), this.options.trimIntervalMs);
    unref(this.claimTimer);
    unref(this.trimTimer);
  }

  stop(): void {
    this.stopped = true;
    clearInterval(this.claimTimer);
    clearInterval(this.trimTimer);
  }

  /** One reclaim sweep over every stream of the topics being read, high priority first. */
  async sweep(): Promise<void> {
    if (this.sweeping || this.stopped) return;
    this.sweeping = true;
    try {
      for (const topic of this.hooks.topics()) {
        for (const stream of this.keys.streams(topic)) {
          for (let call = 0; call < this.options.maxCallsPerStream; call++) {
            const room = this.hooks.room(topic);
            if (room <= 0 || this.stopped) break;
            const done = await this.claimOnce(topic, stream, Math.min(room, this.options.claimCount));
            if (done) break;
          }
        }
      }
    } catch (err) {
      if (!this.stopped) this.hooks.error(err);
    } finally {
      this.sweeping = false;
    }
  }

  /** One claim.lua call; true when the stream's cursor went round (nothing more to look at). */
  private async claimOnce(topic: Topic, stream: StreamRef, count: number): Promise<boolean> {
    const o = this.options;
    const cursor = this.cursors.get(stream.key) ?? "0-0";
    const reply = (await queueScripts.runBuffer(
      this.conn,
      "claim",
      [stream.key, this.keys.poison(stream.key)],
      [this.keys.group, o.consumer, o.claimMinIdleMs, cursor, count, o.maxDeliveries, o.maxPoisonDeliveries ?? o.maxDeliveries],
    )) as [Buffer, Array<[Buffer, number, Buffer[], Buffer]>, ...Array<[Buffer, number, Buffer[]]>];
    const next = reply[0].toString();
    this.cursors.set(stream.key, next);
    if (reply[1].length > 0) {
      await this.hooks.poisoned(topic, reply[1].map(([id, deliveries, fields, reason]) => ({ stream, id: id.toString(), fields, deliveries, poisonReason: reason.length > 0 ? reason.toString() : undefined })));
    }
    const entries: ClaimedEntry[] = [];
    for (let i = 2; i < reply.length; i++) {
      const [id, deliveries, fields] = reply[i] as [Buffer, number, Buffer[]];
      entries.push({ stream, id: id.toString(), fields, deliveries });
    }
    if (entries.length > 0) this.hooks.claimed(topic, entries);
    return next === "0-0";
  }

  /** Trims every stream of the topics being read (one pipeline). */
  async trim(): Promise<void> {
    if (this.trimming || this.stopped) return;
    this.trimming = true;
    try {
      const pipe = this.conn.pipeline();
      let n = 0;
      for (const topic of this.hooks.topics()) {
        for (const s of this.keys.streams(topic)) {
          queueScripts.pipe(pipe, "trim", [s.key], [this.options.keepConsumedMs]);
          n++;
        }
      }
      if (n === 0) return;
      for (const [err] of (await pipe.exec()) ?? []) if (err) throw err;
    } catch (err) {
      if (!this.stopped) this.hooks.error(err);
    } finally {
      this.trimming = false;
    }
  }
}
