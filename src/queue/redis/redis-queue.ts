// src/queue/redis/redis-queue.ts: the Queue on Redis Streams, wire-compatible with mocra
// (keys, group, `payload` field, codec, zstd framing: wire FORMAT §2-§3). This class settles
// deliveries and owns the connections' life (outage, fatal error, close); reading is
// QueueReader's (reader.ts), publishing QueueWriter's (writer.ts), depth, stats and dead-letter
// administration QueueAdmin's (admin.ts); they share a QueueCore (core.ts).
//
// Connections per worker: one command connection (every command; batches are pipelined) plus
// one blocking connection per topic being read (XREADGROUP BLOCK only, opened on the first
// read of that topic). A worker reading request + task + parser_task holds 4 connections.
//
// Reading, in strict priority: read-plan.lua shares the credit out (high first, then normal
// with what is left, then low) by each stream's lag, and one pipeline of XREADGROUP COUNT <n>
// reads exactly that. Only when every priority is empty does the reader block, on its blocking
// connection, over all streams of the topic at once (COUNT 1: a wake-up), then reads the rest
// of its credit the same way. Entries already delivered to this worker (reclaimed by the
// janitor) go out first. Undecodable entries never come out: they move to the dead letters.
// Delivery.entryId is the stream entry id (unique within its stream, mocra's original_id).
//
// Outage: ioredis reconnects with capped back-off. Commands wait meanwhile; read() returns []
// after its block time; acks are kept and flushed after the reconnect. A command connection
// down longer than reconnect_budget_secs is fatal: `fatal$` emits, `onFatal` is called, and
// every operation (read included) rejects with a RedisQueueFatalError from then on. A publish
// without dedup keys whose reply is lost with the connection is re-sent by ioredis and may
// be appended twice (at-least-once); with dedup keys the re-send finds the keys set.

import { Buffer } from "node:buffer";
import type { Redis } from "ioredis";
import { Observable, Subject } from "rxjs";
import { type Codec, codecByName } from "../../codec/index.ts";
import { type Config, queueCodecFormat } from "../../config/schema.ts";
import { type Topic, TOPICS, type TopicMessages, uuidv4 } from "../../model/index.ts";
import { compressPayload, initCompression } from "../compression.ts";
import type { DeadLetter, Delivery, Outgoing, PublishResult, Queue, QueueStats } from "../queue.ts";
import { Acker } from "./acker.ts";
import { QueueAdmin } from "./admin.ts";
import { describeEndpoint, isReplyError, lastError, openConnection } from "../../redis/connection.ts";
import type { QueueCore } from "./core.ts";
import { DelayedMover, unref } from "./delayed.ts";
import { asBuffer, decodePayload, entryFields, RedisDelivery } from "./entries.ts";
import { type ClaimedEntry, Janitor } from "./janitor.ts";
import { QueueKeys, type StreamRef } from "./keys.ts";
import { QueueReader } from "./reader.ts";
import { RUN_TTL_SECS, RunBook, runReason } from "./runs.ts";
import { queueScripts } from "./scripts.ts";
import { QueueWriter } from "./writer.ts";

export interface RedisQueueOptions {
  /** called once when Redis stayed unreachable past reconnect_budget_secs (also: `fatal$`) */
  onFatal?: (err: RedisQueueFatalError) => void;
  /** the command connection was lost (`down`) or is back (`up`, after `downMs`): for log lines */
  onConnection?: (change: { state: "down"; endpoint: string; reason: string } | { state: "up"; endpoint: string; downMs: number }) => void;
  /**
   * Only look (the dashboard command): no consumer groups are created and no background work
   * runs (no janitor claiming entries, no delayed mover). Reads of stats and dead letters work.
   */
  readOnly?: boolean;
  /** background failures that do not stop the queue (janitor, mover); default: console.warn */
  onError?: (err: unknown) => void;
  /** the payload codec; default: channel_config.queue_codec */
  codec?: Codec;
  /** default `<uuid-v4>-0`, as mocra's listener 0 */
  consumerName?: string;
  /**
   * PEL deliveries after which a reclaimed entry is dead-lettered instead of handed out again
   * ("delivered N times without being acked"). Default max(request_max_retries, 1) + 2: the
   * retry operator settles ordinary failures long before; this catches messages that kill or
   * stall their worker every time, with a margin of two for unrelated crashes.
   */
  maxDeliveries?: number;
  /** acks per XACK flush (default 50) */
  ackBatchSize?: number;
  /** ms an ack waits for its batch to fill (default 20) */
  ackFlushMs?: number;
  /** longest sleep of the delayed-retry mover (ms, default 200) */
  delayedPollMs?: number;
  /** ms between trims of the streams being read (default 60 000) */
  trimIntervalMs?: number;
  /** approximate cap of each dead-letter stream (MAXLEN ~, default 100 000) */
  deadLetterMaxLen?: number;
  /** dedup keys remembered as set in Redis (SeenKeys; default 65 536, ~10 MB at most) */
  seenKeysMax?: number;
}

const EMPTY_PAYLOAD = Buffer.alloc(0);

/** Redis stayed unreachable past the reconnect budget: the worker must stop. */
export class RedisQueueFatalError extends Error {
  override readonly name = "RedisQueueFatalError";
}

/** The queue was closed. */
export class QueueClosedError extends Error {
  override readonly name = "QueueClosedError";
}

export class RedisQueue implements Queue {
  readonly backend = "redis";
  /** Emits once, then completes, if Redis stays unreachable past reconnect_budget_secs. */
  readonly fatal$: Observable<RedisQueueFatalError>;

  private readonly fatalSubject = new Subject<RedisQueueFatalError>();
  private readonly keys: QueueKeys;
  private readonly codec: Codec;
  private readonly threshold: number;
  private readonly deadLetterMaxLen: number;
  private readonly endpoint: string;
  private readonly streamsOf = new Map<Topic, StreamRef[]>();
  private readonly acker: Acker;
  private readonly mover: DelayedMover;
  private readonly janitor: Janitor;
  private readonly onError: (err: unknown) => void;
  private readonly reader: QueueReader;
  private readonly writer: QueueWriter;
  private readonly admin: QueueAdmin;

  private closed = false;
  private fatal: RedisQueueFatalError | undefined;
  /**
   * The rejecters of the operations in flight: a fatal error rejects them all, since ioredis may
   * keep a command queued forever. (Not Promise.race against one long-lived promise: every race
   * would leave a reaction on it, a leak of one settled result per operation.)
   */
  private readonly guarded = new Set<(err: Error) => void>();
  private downSince: number | undefined;
  private readonly onConnection: RedisQueueOptions["onConnection"];
  private watchdog: ReturnType<typeof setInterval> | undefined;

  private constructor(
    private readonly config: Config,
    private readonly cmd: Redis,
    readonly consumer: string,
    options: RedisQueueOptions,
  ) {
    const ch = config.channelConfig;
    this.keys = new QueueKeys(config.name, ch.redis.shards);
    this.codec = options.codec ?? codecByName(queueCodecFormat(config));
    this.threshold = ch.compressionThreshold;
    this.deadLetterMaxLen = options.deadLetterMaxLen ?? 100_000;
    this.endpoint = describeEndpoint(ch.redis);
    this.onError = options.onError ?? ((err) => console.warn(`redis queue: ${err instanceof Error ? err.message : String(err)}`));
    for (const t of TOPICS) this.streamsOf.set(t, this.keys.streams(t));
    this.onConnection = options.onConnection;
    this.fatal$ = this.fatalSubject.asObservable();
    if (options.onFatal) this.fatal$.subscribe(options.onFatal);

    queueScripts.define(cmd);
    const core: QueueCore = {
      cmd,
      keys: this.keys,
      codec: this.codec,
      deadLetterMaxLen: this.deadLetterMaxLen,
      runTtlSecs: RUN_TTL_SECS,
      runKeyOf: (topic, message) => this.keys.run(message.runId),
      streams: (topic) => this.streamsOf.get(topic)!,
      encode: (topic, message) => this.encode(topic, message),
      guard: (op) => this.guard(op),
      exec: (pipe) => this.exec(pipe),
      ensureGroups: (topics) => this.ensureGroups(topics),
      assertOpen: () => this.assertOpen(),
      closed: () => this.closed,
      fatalError: () => this.fatal,
    };
    this.reader = new QueueReader(core, { consumer, name: config.name, redis: ch.redis, onError: this.onError }, TOPICS);
    this.writer = new QueueWriter(core, config.crawler.dedupTtlSecs, options.seenKeysMax ?? 65_536, config.crawler.dedupLayout);
    this.admin = new QueueAdmin(core);
    this.acker = new Acker(cmd, this.keys.group, {
      batchSize: options.ackBatchSize ?? 50,
      flushMs: options.ackFlushMs ?? 20,
      retryMs: 250,
      runsKey: this.keys.runs(),
      runTtlSecs: RUN_TTL_SECS,
    });
    this.mover = new DelayedMover(cmd, this.keys, { pollMs: options.delayedPollMs ?? 200, batch: 500 }, this.onError);
    this.janitor = new Janitor(
      cmd,
      this.keys,
      {
        consumer: this.consumer,
        claimMinIdleMs: ch.redis.claimMinIdle,
        claimIntervalMs: ch.redis.claimInterval,
        claimCount: ch.redis.claimCount,
        maxDeliveries: options.maxDeliveries ?? Math.max(config.crawler.requestMaxRetries, 1) + 2,
        maxPoisonDeliveries: Math.max(config.crawler.requestMaxRetries, 1),
        keepConsumedMs: ch.minidTime * 3_600_000,
        trimIntervalMs: options.trimIntervalMs ?? 60_000,
        maxCallsPerStream: 10,
      },
      {
        topics: () => this.reader.topics(),
        room: (t) => this.reader.room(t),
        claimed: (t, entries) => void this.reader.takeClaimed(t, entries),
        poisoned: (t, entries) => this.deadLetterPoisoned(t, entries),
        error: this.onError,
      },
    );
  }

  /**
   * Connects (waiting at most channel_config.redis.connect_timeout_ms, then failing with the
   * endpoint and the reason), creates the consumer group on every stream of every topic, and
   * starts the background work (ack flusher, delayed mover, janitor, outage watchdog).
   */
  static async connect(config: Config, options: RedisQueueOptions = {}): Promise<RedisQueue> {
    const r = config.channelConfig.redis;
    await initCompression();
    const consumer = options.consumerName ?? `${uuidv4()}-0`;
    const cmd = await openConnection(r, "command", r.connectTimeoutMs, `${config.name}:${consumer}`);
    const queue = new RedisQueue(config, cmd, consumer, options);
    if (options.readOnly) return queue;
    try {
      await queue.ensureGroups();
    } catch (err) {
      cmd.disconnect();
      throw new Error(`Redis at ${queue.endpoint}: creating the consumer groups failed: ${err instanceof Error ? err.message : String(err)}`);
    }
    queue.start();
    return queue;
  }

  private start(): void {
    this.cmd.on("close", () => {
      if (!this.closed && this.downSince === undefined) {
        this.downSince = Date.now();
        this.onConnection?.({ state: "down", endpoint: this.endpoint, reason: lastError(this.cmd)?.message ?? "connection closed" });
      }
    });
    this.cmd.on("ready", () => {
      const since = this.downSince;
      this.downSince = undefined;
      if (since !== undefined && !this.closed) {
        this.onConnection?.({ state: "up", endpoint: this.endpoint, downMs: Date.now() - since });
        this.afterReconnect();
      }
    });
    const budgetMs = this.config.channelConfig.redis.reconnectBudgetSecs * 1000;
    this.watchdog = setInterval(() => {
      if (this.downSince !== undefined && Date.now() - this.downSince > budgetMs) {
        const why = lastError(this.cmd)?.message ?? "connection lost";
        this.die(new RedisQueueFatalError(`Redis at ${this.endpoint} unreachable for more than ${budgetMs / 1000} s (reconnect_budget_secs): ${why}`));
      }
    }, Math.min(500, budgetMs));
    unref(this.watchdog);
    this.mover.start();
    this.janitor.start();
  }

  /** Groups and dedup keys may be gone (Redis restarted without persistence): create the groups again, forget the keys. */
  private afterReconnect(): void {
    this.writer.forgetSeen();
    this.ensureGroups().catch(this.onError);
    this.mover.wake(0);
  }

  /** XGROUP CREATE <key> <group> $ MKSTREAM on every stream (BUSYGROUP = already there). */
  async ensureGroups(topics: readonly Topic[] = TOPICS): Promise<void> {
    const pipe = this.cmd.pipeline();
    for (const t of topics) for (const s of this.streamsOf.get(t)!) pipe.xgroup("CREATE", s.key, this.keys.group, "$", "MKSTREAM");
    for (const [err] of (await pipe.exec()) ?? []) {
      if (err && !isReplyError(err, "BUSYGROUP")) throw err;
    }
  }

  // ---------------------------------------------------------------------------------- publish

  /** QueueWriter.publish: dedup and append in one script call per chunk; known keys skip Redis. */
  publish<K extends Topic>(topic: K, items: readonly Outgoing<K>[]): Promise<PublishResult> {
    return this.writer.publish(topic, items);
  }

  /** Queue.seenBefore: the key is certainly set in Redis (SeenKeys). Local, no I/O. */
  seenBefore(dedupKey: string): boolean {
    return this.writer.seenBefore(dedupKey);
  }

  private encode<K extends Topic>(topic: K, message: TopicMessages[K]): Buffer {
    return asBuffer(compressPayload(this.codec.encode(topic, message), this.threshold));
  }

  // ------------------------------------------------------------------------------------- read

  /** QueueReader.read: strict priority within the credit, blocking without polling when empty. */
  /** "<stream key> <entry id>": claim.lua reads the reason from `<stream key>:poison` */
  poisonKey(delivery: Delivery<Topic>): string | undefined {
    return delivery instanceof RedisDelivery ? `${delivery.stream} ${delivery.entryId}` : undefined;
  }

  read<K extends Topic>(topic: K, max: number, blockMs: number): Promise<Delivery<K>[]> {
    return this.reader.read(topic, max, blockMs);
  }

  // ----------------------------------------------------------------------------------- settle

  ack(delivery: Delivery<Topic>): Promise<void> {
    const gate = this.gate();
    if (gate) return gate;
    return this.acker.ack(this.locate(delivery).stream, delivery.entryId, this.keys.run(delivery.message.runId));
  }

  /**
   * Counts `n` of `field` (pages, items, bytes, status:<code>, ...) for a run; the count goes to
   * Redis with this worker's next ack batch (runs.ts). For figures only: whether a run is
   * finished is counted by the scripts that append and settle.
   */
  countForRun(runId: string, field: string, n = 1): void {
    if (!this.closed) this.acker.tally(this.keys.run(runId), field, n);
  }

  retryLater(delivery: Delivery<Topic>, delayMs: number, _reason: string): Promise<void> {
    this.countForRun(delivery.message.runId, "retries");
    return this.park(delivery, delayMs, delivery.attempt);
  }

  /**
   * Like retryLater, but the parked entry carries `attempt - 1` deliveries, so it comes back with
   * this delivery's attempt. The janitor's poison check (claim.lua) counts PEL deliveries of one
   * entry id, so it still dead-letters an entry that keeps killing its worker: a deferral happens
   * before the download, never instead of a crash.
   */
  defer(delivery: Delivery<Topic>, delayMs: number, _reason: string): Promise<void> {
    this.countForRun(delivery.message.runId, "deferred");
    return this.park(delivery, delayMs, Math.max(0, delivery.attempt - 1));
  }

  /** retry-later.lua: ack and park the payload in the delayed set with `deliveries` so far. */
  private async park(delivery: Delivery<Topic>, delayMs: number, deliveries: number): Promise<void> {
    this.assertOpen();
    const d = this.locate(delivery);
    const delay = Math.max(0, Math.round(delayMs));
    await this.guard(queueScripts.run(this.cmd, "retryLater", [d.stream, this.keys.delayed(delivery.topic)], [this.keys.group, delivery.entryId, delay, deliveries, d.payload]));
    this.mover.wake(delay);
  }

  async deadLetter(delivery: Delivery<Topic>, reason: string): Promise<void> {
    this.assertOpen();
    const d = this.locate(delivery);
    await this.guard(this.deadLetterEntry(d.stream, delivery.entryId, d.payload, reason, delivery.message.runId));
  }

  /** dead-letter.lua: the move and the run's count in one step (if the entry is still pending). */
  private deadLetterEntry(stream: string, entryId: string, payload: Buffer, reason: string, runId: string): Promise<unknown> {
    return queueScripts.run(this.cmd, "deadLetter", [stream, this.keys.dlq(stream), this.keys.run(runId), this.keys.runs()], [
      this.keys.group,
      entryId,
      payload,
      reason,
      this.deadLetterMaxLen,
      RUN_TTL_SECS,
      runReason(reason),
    ]);
  }

  /** Janitor hook: entries delivered too often (they kill or stall their worker) go to the dead letters. */
  private async deadLetterPoisoned(topic: Topic, entries: ClaimedEntry[]): Promise<void> {
    for (const e of entries) {
      const { payload } = entryFields(e.fields);
      let runId = "undecodable";
      try {
        if (payload) runId = decodePayload(this.codec, topic, payload).runId;
      } catch {
        // counted under "undecodable"
      }
      const reason = e.poisonReason !== undefined ? `${e.poisonReason} (after ${e.deliveries - 1} attempts)` : `delivered ${e.deliveries - 1} times without being acked`;
      await this.deadLetterEntry(e.stream.key, e.id, payload ?? EMPTY_PAYLOAD, reason, runId);
      if (e.poisonReason !== undefined) await this.cmd.hdel(this.keys.poison(e.stream.key), e.id);
    }
  }

  deadLetterMessage<K extends Topic>(topic: K, message: TopicMessages[K], reason: string, originalId: string): Promise<void> {
    // a derived message: the delivery it came from is settled (and counted off) on its own
    this.countForRun(message.runId, "dead");
    this.countForRun(message.runId, `dead:${runReason(reason)}`);
    return this.writer.deadLetterMessage(topic, message, reason, originalId);
  }

  async touch(deliveries: readonly Delivery<Topic>[]): Promise<void> {
    this.assertOpen();
    if (deliveries.length === 0) return;
    const byStream = new Map<string, string[]>();
    for (const d of deliveries) {
      const stream = this.locate(d).stream;
      const ids = byStream.get(stream);
      if (ids) ids.push(d.entryId);
      else byStream.set(stream, [d.entryId]);
    }
    const pipe = this.cmd.pipeline();
    for (const [stream, ids] of byStream) queueScripts.pipe(pipe, "touch", [stream], [this.keys.group, this.consumer, ...ids]);
    await this.exec(pipe);
  }

  /** Where a delivery lives and its stored bytes (recomputed for a Delivery made elsewhere). */
  private locate(d: Delivery<Topic>): { stream: string; payload: Buffer } {
    if (d instanceof RedisDelivery) return d;
    return { stream: this.keys.streamFor(d.topic, d.priority, d.message), payload: this.encode(d.topic, d.message) };
  }

  // ------------------------------------------------------------------------------ inspection (QueueAdmin)

  depth(topic: Topic): Promise<number> {
    return this.admin.depth(topic);
  }

  stats(): Promise<QueueStats> {
    return this.admin.stats();
  }

  listDeadLetters(topic: Topic, count: number): Promise<DeadLetter[]> {
    return this.admin.listDeadLetters(topic, count);
  }

  replayDeadLetters(topic: Topic, count: number): Promise<number> {
    return this.admin.replayDeadLetters(topic, count);
  }

  purgeDeadLetters(topic: Topic): Promise<number> {
    return this.admin.purgeDeadLetters(topic);
  }

  /** The crawl's runs (their counts, fleet-wide; runs.ts). */
  runs(): RunBook {
    return new RunBook(this.cmd, this.keys);
  }

  /** Runs the janitor once now (reclaim, then trim), besides its timers. */
  async maintain(): Promise<void> {
    await this.janitor.sweep();
    await this.janitor.trim();
  }

  // ---------------------------------------------------------------------------------- close

  /**
   * Stops reading (blocked reads resolve []), flushes the acks (waiting at most
   * connect_timeout_ms for an absent Redis), stops the background work and closes the
   * connections. Deliveries handed out and not settled stay pending: another worker reclaims them.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.writer.sendNow(); // publishes waiting for this turn's send go out before QUIT
    this.reader.stop();
    this.janitor.stop();
    this.mover.stop();
    clearInterval(this.watchdog);
    if (!this.fatal) {
      const bound = this.config.channelConfig.redis.connectTimeoutMs;
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([this.acker.flush(), new Promise((r) => (timer = setTimeout(r, bound)))]);
      clearTimeout(timer);
      this.acker.fail(new QueueClosedError("the Redis queue is closed"));
    }
    if (this.cmd.status === "ready") {
      await this.cmd.quit().catch(() => this.cmd.disconnect());
    } else {
      this.cmd.disconnect();
    }
    this.fatalSubject.complete();
  }

  private die(err: RedisQueueFatalError): void {
    if (this.fatal) return;
    this.fatal = err;
    this.closed = true;
    for (const reject of this.guarded) reject(err);
    this.guarded.clear();
    clearInterval(this.watchdog);
    this.janitor.stop();
    this.mover.stop();
    this.acker.fail(err);
    this.reader.stop();
    this.cmd.disconnect();
    this.fatalSubject.next(err);
    this.fatalSubject.complete();
  }

  /** The operation's result, or the fatal error if that comes first. */
  private guard<T>(op: Promise<T>): Promise<T> {
    if (this.fatal) {
      op.catch(() => {}); // settles later; nobody waits for it
      return Promise.reject(this.fatal);
    }
    return new Promise<T>((resolve, reject) => {
      this.guarded.add(reject);
      op.then(
        (value) => {
          this.guarded.delete(reject);
          resolve(value);
        },
        (err: unknown) => {
          this.guarded.delete(reject);
          reject(err);
        },
      );
    });
  }

  /** Runs a pipeline (guarded); rejects with the first command error. */
  private async exec(pipe: ReturnType<Redis["pipeline"]>): Promise<unknown[]> {
    const results = (await this.guard(pipe.exec())) ?? [];
    const out: unknown[] = [];
    for (const [err, reply] of results) {
      if (err) throw err;
      out.push(reply);
    }
    return out;
  }

  private gate(): Promise<never> | undefined {
    if (this.fatal) return Promise.reject(this.fatal);
    if (this.closed) return Promise.reject(new QueueClosedError("the Redis queue is closed"));
    return undefined;
  }

  private assertOpen(): void {
    if (this.fatal) throw this.fatal;
    if (this.closed) throw new QueueClosedError("the Redis queue is closed");
  }
}
