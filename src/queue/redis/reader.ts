// src/queue/redis/reader.ts: the reading side of the Redis queue (see redis-queue.ts for the
// strategy): read-plan.lua shares the credit out in strict priority, one pipeline of XREADGROUP
// reads it, a blocking connection per topic waits when every priority is empty, reclaimed
// entries wait in a buffer for the next read, undecodable ones go to the dead letters.

import type { Buffer } from "node:buffer";
import type { Redis } from "ioredis";
import type { ChannelRedisConfig } from "../../config/schema.ts";
import type { Topic } from "../../model/index.ts";
import type { Delivery } from "../queue.ts";
import { isConnectionError, isReplyError, openConnection } from "../../redis/connection.ts";
import type { QueueCore } from "./core.ts";
import { asBuffer, byPriority, decodePayload, entryFields, RedisDelivery } from "./entries.ts";
import type { ClaimedEntry } from "./janitor.ts";
import type { StreamRef } from "./keys.ts";
import { runReason } from "./runs.ts";
import { queueScripts } from "./scripts.ts";

export interface QueueReaderOptions {
  /** the queue's consumer name in the group */
  consumer: string;
  /** the crawl's name, for the blocking connections' names */
  name: string;
  /** where the blocking connections go */
  redis: ChannelRedisConfig;
  onError: (err: unknown) => void;
}

export class QueueReader {
  private readonly streamByKey = new Map<string, StreamRef>();
  /** blocking connections, one per topic read */
  private readonly blockers = new Map<Topic, Redis>();
  /** deliveries already taken from Redis, not yet handed out (reclaimed ones, wake-up overflow) */
  private readonly buffered = new Map<Topic, RedisDelivery[]>();
  /** the largest credit a reader asked for, per topic: bounds the reclaim buffer */
  private readonly credit = new Map<Topic, number>();
  private readonly readChains = new Map<Topic, Promise<unknown>>();
  private readonly shardStart = new Map<Topic, number>();
  private readonly sleepers = new Set<() => void>();

  constructor(
    private readonly core: QueueCore,
    private readonly o: QueueReaderOptions,
    topics: readonly Topic[],
  ) {
    for (const t of topics) for (const s of core.streams(t)) this.streamByKey.set(s.key, s);
  }

  /** Janitor hook: the topics being read. */
  topics(): Iterable<Topic> {
    return this.credit.keys();
  }

  /** Janitor hook: how many reclaimed entries the topic's buffer may still take. */
  room(topic: Topic): number {
    return (this.credit.get(topic) ?? 0) - (this.buffered.get(topic)?.length ?? 0);
  }

  /** Wakes every waiting read (they resolve []) and closes the blocking connections. */
  stop(): void {
    for (const wake of [...this.sleepers]) wake();
    for (const b of this.blockers.values()) b.disconnect();
    this.blockers.clear();
  }

  read<K extends Topic>(topic: K, max: number, blockMs: number): Promise<Delivery<K>[]> {
    const fatal = this.core.fatalError();
    if (fatal) return Promise.reject(fatal);
    const want = Math.floor(max);
    if (this.core.closed() || !(want >= 1)) return Promise.resolve([]);
    if (want > (this.credit.get(topic) ?? 0)) this.credit.set(topic, want);
    // reads of one topic take turns (they share its blocking connection)
    const prev = this.readChains.get(topic) ?? Promise.resolve();
    const run = this.core.guard(prev.then(() => this.readTurn(topic, want, Math.max(0, blockMs))));
    this.readChains.set(
      topic,
      run.catch(() => {}),
    );
    return run as unknown as Promise<Delivery<K>[]>;
  }

  private async readTurn(topic: Topic, max: number, blockMs: number): Promise<RedisDelivery[]> {
    const deadline = Date.now() + blockMs;
    const fatal = this.core.fatalError();
    if (fatal) throw fatal;
    if (this.core.closed()) return [];
    const out = this.takeBuffered(topic, max);
    if (out.length < max) {
      try {
        if (this.core.cmd.status !== "ready") {
          if (out.length === 0) await this.sleepUntil(deadline, this.core.cmd);
          return this.handOut(topic, out, max);
        }
        out.push(...(await this.readFreshBounded(topic, max - out.length, deadline)));
        if (out.length === 0 && blockMs > 0 && !this.core.closed()) {
          const woke = await this.readBlocking(topic, deadline);
          if (woke.length > 0 && woke.length < max) woke.push(...(await this.readFreshBounded(topic, max - woke.length, deadline)));
          out.push(...woke);
        }
      } catch (err) {
        const fatal = this.core.fatalError();
        if (fatal) throw fatal;
        if (this.core.closed()) return [];
        if (!isConnectionError(err)) throw err;
        if (out.length === 0) await this.sleepUntil(deadline);
      }
    }
    return this.handOut(topic, out, max);
  }

  /** Priority order; anything beyond `max` (a wake-up can overshoot) waits for the next read. */
  private handOut(topic: Topic, out: RedisDelivery[], max: number): RedisDelivery[] {
    if (this.core.closed()) return []; // left pending: reclaimed by another worker
    byPriority(out);
    if (out.length > max) this.bufferOf(topic).unshift(...out.splice(max));
    return out;
  }

  private bufferOf(topic: Topic): RedisDelivery[] {
    let b = this.buffered.get(topic);
    if (!b) this.buffered.set(topic, (b = []));
    return b;
  }

  private takeBuffered(topic: Topic, max: number): RedisDelivery[] {
    const b = this.buffered.get(topic);
    if (!b || b.length === 0) return [];
    byPriority(b);
    return b.splice(0, max);
  }

  /**
   * readFresh, but if the command connection drops meanwhile, gives up at the deadline: ioredis
   * re-sends the read after the reconnect, and what it brings then waits in the buffer for the
   * next read (nothing is lost, nothing is read twice).
   */
  private async readFreshBounded(topic: Topic, max: number, deadline: number): Promise<RedisDelivery[]> {
    const fresh = this.readFresh(topic, max);
    let lost: () => void = () => {};
    const late = Symbol("late");
    const gaveUp = new Promise<typeof late>((resolve) => {
      lost = () => void this.sleepUntil(deadline).then(() => resolve(late));
      this.core.cmd.once("close", lost);
    });
    try {
      const r = await Promise.race([fresh, gaveUp]);
      if (r !== late) return r;
      fresh.then(
        (ds) => {
          if (!this.core.closed()) this.bufferOf(topic).push(...ds);
        },
        () => {}, // not delivered, or pending under this consumer: reclaimed later
      );
      return [];
    } finally {
      this.core.cmd.off("close", lost);
    }
  }

  /**
   * Up to `max` fresh entries in strict priority: read-plan.lua shares the credit out over the
   * streams by their lag, then one pipeline reads exactly that much from each (two round trips).
   */
  private async readFresh(topic: Topic, max: number): Promise<RedisDelivery[]> {
    const streams = this.core.streams(topic);
    const shards = this.core.keys.shards;
    const start = this.shardStart.get(topic) ?? 0;
    this.shardStart.set(topic, (start + 1) % shards);
    const plan = (await this.core.guard(
      queueScripts.run(
        this.core.cmd,
        "readPlan",
        streams.map((s) => s.key),
        [this.core.keys.group, max, shards, start],
      ),
    )) as number[];
    if (plan.length === 0) return [];
    const pipe = this.core.cmd.pipeline();
    const planned: StreamRef[] = [];
    for (let i = 0; i + 1 < plan.length; i += 2) {
      const stream = streams[plan[i] - 1];
      planned.push(stream);
      pipe.xreadgroupBuffer("GROUP", this.core.keys.group, this.o.consumer, "COUNT", plan[i + 1], "STREAMS", stream.key, ">");
    }
    let replies: unknown[];
    try {
      replies = await this.core.exec(pipe);
    } catch (err) {
      if (!isReplyError(err, "NOGROUP")) throw err;
      await this.core.ensureGroups([topic]); // deleted meanwhile: what was read is pending and gets reclaimed
      return [];
    }
    const raw: RawEntry[] = [];
    replies.forEach((reply, i) => {
      for (const [, entries] of (reply as Array<[Buffer, Array<[Buffer, Buffer[] | null]>]> | null) ?? []) {
        for (const [id, fields] of entries) raw.push({ stream: planned[i], id: id.toString(), fields: fields ?? [], deliveries: 1 });
      }
    });
    return this.deliveries(topic, raw);
  }

  /** Blocks on every stream of the topic at once until one has an entry (COUNT 1) or the deadline. */
  private async readBlocking(topic: Topic, deadline: number): Promise<RedisDelivery[]> {
    const conn = await this.blocker(topic, deadline);
    if (!conn) return [];
    const ms = Math.floor(deadline - Date.now());
    if (ms < 1 || this.core.closed()) return [];
    const streams = this.core.streams(topic);
    let reply: Array<[Buffer, Array<[Buffer, Buffer[] | null]>]> | null;
    try {
      reply = (await conn.callBuffer(
        "XREADGROUP",
        "GROUP",
        this.core.keys.group,
        this.o.consumer,
        "COUNT",
        1,
        "BLOCK",
        ms,
        "STREAMS",
        ...streams.map((s) => s.key),
        ...streams.map(() => ">"),
      )) as typeof reply;
    } catch (err) {
      if (isReplyError(err, "NOGROUP")) {
        await this.core.ensureGroups([topic]);
        return [];
      }
      throw err;
    }
    const raw: RawEntry[] = [];
    for (const [key, entries] of reply ?? []) {
      const stream = this.streamByKey.get(key.toString());
      if (!stream) continue;
      for (const [id, fields] of entries) raw.push({ stream, id: id.toString(), fields: fields ?? [], deliveries: 1 });
    }
    return this.deliveries(topic, raw);
  }

  /** The topic's blocking connection, opened on first use; undefined when Redis is not reachable by the deadline. */
  private async blocker(topic: Topic, deadline: number): Promise<Redis | undefined> {
    let conn = this.blockers.get(topic);
    if (!conn) {
      const r = this.o.redis;
      try {
        conn = await openConnection(r, "blocking", Math.max(1, Math.min(r.connectTimeoutMs, deadline - Date.now())), `${this.o.name}:${this.o.consumer}:${topic}`);
      } catch {
        await this.sleepUntil(deadline);
        return undefined;
      }
      if (this.core.closed()) {
        conn.disconnect();
        return undefined;
      }
      this.blockers.set(topic, conn);
    }
    if (conn.status !== "ready") {
      await this.sleepUntil(deadline, conn);
      return isReady(conn) ? conn : undefined;
    }
    return conn;
  }

  /**
   * Decodes entries into deliveries. Undecodable ones (and ones without a payload) are moved
   * to the dead letters and acked, atomically, and left out.
   */
  private async deliveries(topic: Topic, raw: RawEntry[]): Promise<RedisDelivery[]> {
    const out: RedisDelivery[] = [];
    const poison: Array<{ entry: RawEntry; payload: Buffer; reason: string }> = [];
    for (const entry of raw) {
      const { payload, attempt } = entryFields(entry.fields);
      if (payload === undefined) {
        poison.push({ entry, payload: EMPTY, reason: "Deserialization failed: the entry has no payload field" });
        continue;
      }
      try {
        const message = decodePayload(this.core.codec, topic, payload);
        out.push(new RedisDelivery(topic, entry.stream.priority, entry.id, message, attempt + entry.deliveries, entry.stream.key, payload));
      } catch (err) {
        poison.push({ entry, payload, reason: `Deserialization failed: ${err instanceof Error ? err.message : String(err)}` });
      }
    }
    if (poison.length > 0) {
      const pipe = this.core.cmd.pipeline();
      for (const p of poison) {
        // its run is unknown (the payload does not decode): counted under the run "undecodable"
        queueScripts.pipe(
          pipe,
          "deadLetter",
          [p.entry.stream.key, this.core.keys.dlq(p.entry.stream.key), this.core.keys.run("undecodable"), this.core.keys.runs()],
          [this.core.keys.group, p.entry.id, p.payload, p.reason, this.core.deadLetterMaxLen, this.core.runTtlSecs, runReason(p.reason)],
        );
      }
      await this.core.exec(pipe);
    }
    return out;
  }

  /** Janitor hook: reclaimed entries wait in the buffer for the next read. */
  async takeClaimed(topic: Topic, entries: ClaimedEntry[]): Promise<void> {
    try {
      const ds = await this.deliveries(topic, entries);
      if (this.core.closed()) return;
      // an entry still waiting here from an earlier sweep may have aged past claim_min_idle
      // and been claimed again: keep one copy
      const buffer = this.bufferOf(topic);
      const waiting = new Set(buffer.map((d) => `${d.stream} ${d.entryId}`));
      for (const d of ds) if (!waiting.has(`${d.stream} ${d.entryId}`)) buffer.push(d);
    } catch (err) {
      this.o.onError(err);
    }
  }

  /** Waits until the deadline, or until `conn` is ready, or until close(). Never polls. */
  private sleepUntil(deadline: number, conn?: Redis): Promise<void> {
    const ms = deadline - Date.now();
    if (ms <= 0 || this.core.closed()) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        conn?.off("ready", done);
        this.sleepers.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      conn?.once("ready", done);
      this.sleepers.add(done);
    });
  }
}

interface RawEntry {
  stream: StreamRef;
  id: string;
  fields: Buffer[];
  /** PEL delivery count: 1 for a fresh read */
  deliveries: number;
}

/** (a function, so that TypeScript does not keep a status narrowed across an await) */
function isReady(conn: Redis): boolean {
  return conn.status === "ready";
}

const EMPTY = asBuffer(new Uint8Array(0));
