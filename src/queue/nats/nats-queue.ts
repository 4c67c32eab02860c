// src/queue/nats/nats-queue.ts: the Queue on NATS JetStream in mocra 0.4.1's layout (names.ts):
// one stream, a subject and a durable pull consumer (explicit acks) per topic and priority,
// mocra's headers (x-attempt, x-created-at, x-nack-reason), dead letters on {ns}._dlq.{topic}.
// The bodies are the same codecs and zstd framing as on Redis.
//
// Reading, in strict priority, with credit: a read asks each priority's consumer, high first, for
// at most the credit still free, with a no_wait pull (the server answers at once with what it
// has, then a 404/408 status). Only when nothing is ready anywhere does the reader wait: one
// pull of one message per priority with `expires` = the block time, which the server holds
// open (no polling). A message that arrives on such a pull after the read has what it asked for
// stays with this reader and goes out first on its next read (at most one per priority).
//
// Delivery contract, as on Redis:
// - ack after hand-off: "+ACK" on the message's reply subject; a killed worker's un-acked
//   messages come back after ack_wait (the consumer's, 30 s by default as in mocra); touch()
//   sends "+WPI" (in progress) so a slow page is not handed to a second worker.
// - retries and deferrals are republished (mocra's way: x-attempt + 1 and x-nack-reason) with
//   our x-due-at header; a reader that gets a message before it is due NAKs it with the delay
//   that is left, so the server holds it until then. Republishing, not a delayed NAK of the
//   same message, because mocra readers count attempts by x-attempt and read the reason from
//   x-nack-reason, and a NAK can change neither.
// - attempts across workers: x-attempt + 1, plus the re-deliveries the server counted (a
//   worker died or stalled holding it) less the one NAK that waited for its due time. After
//   maxDeliveries such re-deliveries the message is dead-lettered (a page that kills workers).
// - every publish carries a Nats-Msg-Id, so the same message sent again after a lost PubAck (a
//   restart of the server) is dropped by JetStream's duplicate window; a dedup key is the id
//   ("d:<key>"), which also makes two workers publishing the same new link at once store it once.
// - dedup (dedup_ttl_secs) marks keys in Redis as the Redis queue does (<name>:cache:dedup:<key>,
//   mocra's key), after JetStream stored the message: a crash in between leaves the key unset
//   and the re-publish of the redelivered parent is dropped by the duplicate window.

import { randomUUID } from "node:crypto";
import { AckPolicy, DeliverPolicy, jetstreamManager, type JetStreamManager, type StreamInfo } from "@nats-io/jetstream";
import { connect, headers as natsHeaders, type Msg, type MsgHdrs, type NatsConnection, type Subscription } from "@nats-io/transport-node";
import type { Redis } from "ioredis";
import { type Codec, CodecError, codecByName } from "../../codec/index.ts";
import { type Config, queueCodecFormat } from "../../config/schema.ts";
import { PRIORITIES, type Priority, type Topic, TOPICS, type TopicMessages } from "../../model/index.ts";
import { compressPayload, initCompression } from "../compression.ts";
import { type DeadLetter, defaultPriority, type Delivery, type Outgoing, type PublishResult, type Queue, type QueueStats, type TopicStats } from "../queue.ts";
import { decodePayload } from "../redis/entries.ts";
import { mayBeNew, SeenKeys } from "../redis/seen-keys.ts";
import { HEADER_ATTEMPT, HEADER_CREATED_AT, HEADER_DUE_AT, HEADER_NACK_REASON, HEADER_ORIGINAL_ID, JetStreamNames } from "./names.ts";

export interface NatsQueueOptions {
  /** called once when NATS stayed unreachable past reconnect_budget_secs */
  onFatal?: (err: NatsQueueFatalError) => void;
  /** the connection was lost (`down`) or is back (`up`) */
  onConnection?: (change: { state: "down"; endpoint: string; reason: string } | { state: "up"; endpoint: string; downMs: number }) => void;
  /** only look (status, dashboard, dlq): no stream or consumer is created */
  readOnly?: boolean;
  /** the payload codec; default: channel_config.queue_codec */
  codec?: Codec;
  /**
   * Redis for the dedup keys (`<name>:cache:dedup:<key>`, as the Redis queue); without it a
   * publish with dedup keys relies on JetStream's duplicate window alone (2 minutes).
   */
  dedupRedis?: Redis;
  /** close() disconnects dedupRedis */
  closeDedupRedis?: boolean;
  /** re-deliveries (the server's count) after which a message is dead-lettered; default max(request_max_retries, 1) + 2 */
  maxDeliveries?: number;
  /** background failures that do not stop the queue; default: console.warn */
  onError?: (err: unknown) => void;
}

/** NATS stayed unreachable past the reconnect budget: the worker must stop. */
export class NatsQueueFatalError extends Error {
  override readonly name = "NatsQueueFatalError";
}

/** The queue was closed. */
export class NatsQueueClosedError extends Error {
  override readonly name = "NatsQueueClosedError";
}

/** A delivery from a JetStream consumer: what to ack it on and the bytes and headers it came with. */
export class NatsDelivery<K extends Topic = Topic> implements Delivery<K> {
  constructor(
    readonly topic: K,
    readonly priority: Priority,
    /** the stream sequence */
    readonly entryId: string,
    readonly message: TopicMessages[K],
    readonly attempt: number,
    /** the $JS.ACK reply subject: acks, NAKs and in-progress go there */
    readonly reply: string,
    /** the payload as stored (possibly a zstd frame): retries and dead letters keep it */
    readonly payload: Uint8Array,
    /** the headers it came with (mocra's and any other), kept on a retry */
    readonly headers: ReadonlyMap<string, string>,
  ) {}
}

/** Per topic and priority: what one JetStream consumer reports. */
export interface ConsumerDepth {
  /** not yet delivered to any worker */
  waiting: number;
  /** delivered and not acked (including messages held until their retry is due) */
  pending: number;
  /** dead letters on {ns}._dlq.{topic}-{priority} */
  dead: number;
  /** messages of the subject held by the stream (consumed ones too, until max_age) */
  length: number;
}

/** A pull request in flight: done once the server's status for it (404/408/409) came. */
interface PullRequest {
  done: boolean;
  wake: () => void;
}

/** One consumer read by this worker: its inbox and what arrived there, not yet handed out. */
interface PullChannel {
  topic: Topic;
  priority: Priority;
  durable: string;
  inbox: string;
  sub: Subscription;
  /** with when it arrived (performance.now()) */
  arrived: { m: Msg; at: number }[];
  requests: Map<string, PullRequest>;
  /** a waiting (expires) pull is open on the server */
  waiting: boolean;
  /** its id: a message it brings completes it (batch 1, no status follows) */
  waitingId: string | undefined;
  /** the no_wait pull being answered: the server sends no status when it fills the batch */
  answering: { id: string; remaining: number } | undefined;
}

const NO_WAIT_TIMEOUT_MS = 2_000;
const PUBACK_TIMEOUT_MS = 5_000;

/** The server's answer to a publish: stored at `seq`, or a duplicate of a Nats-Msg-Id within the window. */
interface StoredAck {
  seq: number;
  duplicate: boolean;
}
const PUBLISH_RETRY_MS = 250;
const ACK_WAIT_DEFAULT_MS = 30_000;

export class NatsQueue implements Queue {
  readonly backend = "nats";
  readonly names: JetStreamNames;

  private readonly codec: Codec;
  private readonly threshold: number;
  private readonly dedupTtlSecs: number;
  private readonly seen = new SeenKeys(65_536);
  private readonly maxDeliveries: number;
  private readonly backoffMs: number;
  private readonly ackWaitMs: number;
  private readonly budgetMs: number;
  private readonly channels = new Map<string, Promise<PullChannel>>();
  /** wakes a reader waiting on a topic */
  private readonly wakers = new Map<Topic, Set<() => void>>();
  private readonly onError: (err: unknown) => void;
  private requestSeq = 0;
  private ackSub: { prefix: string; sub: Subscription } | undefined;
  private readonly pendingAcks = new Map<string, { resolve: (a: StoredAck) => void; reject: (e: unknown) => void; timer: ReturnType<typeof setTimeout> }>();
  private ackSeq = 0;
  private closed = false;
  private fatal: NatsQueueFatalError | undefined;
  private downSince: number | undefined;
  private budgetTimer: ReturnType<typeof setTimeout> | undefined;

  private constructor(
    private readonly config: Config,
    private readonly nc: NatsConnection,
    private readonly jsm: JetStreamManager,
    private readonly options: NatsQueueOptions,
  ) {
    const n = config.channelConfig.nats;
    if (!n) throw new Error("NatsQueue needs [channel_config.nats]");
    this.names = new JetStreamNames(config.name);
    this.codec = options.codec ?? codecByName(queueCodecFormat(config));
    this.threshold = config.channelConfig.compressionThreshold;
    this.dedupTtlSecs = config.crawler.dedupTtlSecs;
    const nackMax = config.channelConfig.nackMaxRetries;
    this.maxDeliveries = options.maxDeliveries ?? (nackMax > 0 ? nackMax : Math.max(config.crawler.requestMaxRetries, 1) + 2);
    this.backoffMs = config.channelConfig.nackBackoffMs;
    this.ackWaitMs = n.ackWaitMs || ACK_WAIT_DEFAULT_MS;
    this.budgetMs = n.reconnectBudgetSecs * 1000;
    this.onError = options.onError ?? ((err) => console.warn(`nats queue: ${err instanceof Error ? err.message : String(err)}`));
  }

  /** Connects, and (unless read-only) makes sure the stream exists. */
  static async connect(config: Config, options: NatsQueueOptions = {}): Promise<NatsQueue> {
    const n = config.channelConfig.nats;
    if (!n) throw new Error("NatsQueue.connect: no [channel_config.nats] in the config");
    await initCompression();
    const servers = n.url.split(",").map((s) => s.trim()).filter(Boolean);
    let nc: NatsConnection;
    try {
      nc = await connect({
        servers,
        name: `${config.name}:mocra-ts`,
        ...(n.username !== "" ? { user: n.username, pass: n.password } : n.token !== "" ? { token: n.token } : {}),
        timeout: n.connectTimeoutMs,
        maxReconnectAttempts: -1,
        reconnectTimeWait: 250,
        pingInterval: 10_000,
      });
    } catch (err) {
      throw new Error(`cannot connect to NATS at ${n.url} ([channel_config.nats] url): ${err instanceof Error ? err.message : String(err)}`);
    }
    const jsm = await jetstreamManager(nc, { timeout: 5_000 });
    const queue = new NatsQueue(config, nc, jsm, options);
    queue.watchConnection();
    if (!options.readOnly) await queue.ensureStream();
    return queue;
  }

  /** mocra's stream config: {ns}_stream on {ns}.>, max_age from minid_time; an existing stream is used as it is. */
  private async ensureStream(): Promise<void> {
    try {
      await this.jsm.streams.info(this.names.stream);
      return;
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
    const minid = this.config.channelConfig.minidTime;
    try {
      await this.jsm.streams.add({
        name: this.names.stream,
        subjects: [this.names.streamSubjects()],
        ...(minid > 0 ? { max_age: minid * 3600 * 1e9 } : {}),
      });
    } catch (err) {
      // another worker created it meanwhile
      if (!String(err).includes("already in use")) throw err;
    }
  }

  private watchConnection(): void {
    const endpoint = this.config.channelConfig.nats?.url ?? "";
    void (async () => {
      for await (const s of this.nc.status()) {
        if (s.type === "disconnect" && this.downSince === undefined) {
          this.downSince = Date.now();
          this.options.onConnection?.({ state: "down", endpoint, reason: "disconnected" });
          this.budgetTimer = setTimeout(() => this.giveUp(), this.budgetMs);
        } else if (s.type === "reconnect" && this.downSince !== undefined) {
          const downMs = Date.now() - this.downSince;
          this.downSince = undefined;
          clearTimeout(this.budgetTimer);
          this.options.onConnection?.({ state: "up", endpoint, downMs });
        }
      }
    })().catch(() => {});
  }

  private giveUp(): void {
    if (this.closed || this.downSince === undefined) return;
    this.fatal = new NatsQueueFatalError(
      `NATS at ${this.config.channelConfig.nats?.url} unreachable for ${this.config.channelConfig.nats?.reconnectBudgetSecs} s (reconnect_budget_secs): giving up`,
    );
    this.options.onFatal?.(this.fatal);
    this.wakeAll();
  }

  private assertOpen(): void {
    if (this.fatal) throw this.fatal;
    if (this.closed) throw new NatsQueueClosedError("queue closed");
  }

  // ---- writing ----

  private encode<K extends Topic>(topic: K, message: TopicMessages[K]): Uint8Array {
    return compressPayload(this.codec.encode(topic, message), this.threshold);
  }

  /** mocra's default_headers(): x-attempt "0", x-created-at = now in ms */
  private freshHeaders(): MsgHdrs {
    const h = natsHeaders();
    h.set(HEADER_ATTEMPT, "0");
    h.set(HEADER_CREATED_AT, String(Date.now()));
    return h;
  }

  /**
   * Publishes and waits for the server's PubAck (stored), retrying through a lost connection or
   * a restarting server until the reconnect budget is spent. `msgId` makes the retries safe.
   */
  private async store(subject: string, payload: Uint8Array, headers: MsgHdrs, msgId: string): Promise<StoredAck> {
    const started = Date.now();
    headers.set("Nats-Msg-Id", msgId);
    for (;;) {
      this.assertOpen();
      try {
        return await this.publishOnce(subject, payload, headers);
      } catch (err) {
        if (this.closed || Date.now() - started > this.budgetMs) throw err;
        if (isNotFound(err) || String(err).includes("no responders")) await this.ensureStream().catch(() => {});
        await sleep(PUBLISH_RETRY_MS);
      }
    }
  }

  /**
   * One publish with its reply on this queue's own PubAck inbox. (js.publish() costs a request
   * each, and the client builds a RequestError and a TimeoutError with their stacks up front per
   * request: ~130 us of a worker's CPU per page under the profiler.)
   */
  private publishOnce(subject: string, payload: Uint8Array, headers: MsgHdrs): Promise<StoredAck> {
    if (!this.ackSub) {
      const prefix = `_INBOX.${randomUUID().replaceAll("-", "")}`;
      this.ackSub = { prefix, sub: this.nc.subscribe(`${prefix}.*`, { callback: (_err, m) => this.onPubAck(m) }) };
    }
    const id = String(++this.ackSeq);
    return new Promise<StoredAck>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pendingAcks.delete(id);
        reject(new Error(`no PubAck for ${subject} within ${PUBACK_TIMEOUT_MS} ms`));
      }, PUBACK_TIMEOUT_MS);
      this.pendingAcks.set(id, { resolve, reject, timer });
      this.nc.publish(subject, payload, { headers, reply: `${this.ackSub!.prefix}.${id}` });
    });
  }

  private onPubAck(m: Msg): void {
    const id = m.subject.slice(m.subject.lastIndexOf(".") + 1);
    const waiting = this.pendingAcks.get(id);
    if (!waiting) return;
    this.pendingAcks.delete(id);
    clearTimeout(waiting.timer);
    const code = m.headers?.code ?? 0;
    if (code >= 300) {
      // 503: no responders (JetStream not there yet, or no stream on the subject)
      waiting.reject(new Error(`no responders (${code} ${m.headers?.description ?? ""})`));
      return;
    }
    try {
      const ack = JSON.parse(new TextDecoder().decode(m.data)) as { seq?: number; duplicate?: boolean; error?: { code?: number; description?: string } };
      if (ack.error) waiting.reject(new Error(`${ack.error.code ?? ""} ${ack.error.description ?? "publish refused"}`));
      else waiting.resolve({ seq: ack.seq ?? 0, duplicate: ack.duplicate === true });
    } catch (err) {
      waiting.reject(err);
    }
  }

  async publish<K extends Topic>(topic: K, items: readonly Outgoing<K>[]): Promise<PublishResult> {
    this.assertOpen();
    if (items.length === 0) return { accepted: 0, duplicates: 0 };
    const todo = mayBeNew(items, this.dedupTtlSecs > 0, this.seen).map(({ item, dedupKey }) => ({
      subject: this.names.subject(topic, item.priority ?? defaultPriority(item.message)),
      payload: this.encode(topic, item.message),
      dedupKey,
    }));
    // keys already set in Redis: duplicates without a publish
    const redis = this.options.dedupRedis;
    const keyed = todo.filter((t) => t.dedupKey !== undefined);
    let fresh = todo;
    if (redis && keyed.length > 0) {
      const sentAt = performance.now();
      const pipe = redis.pipeline();
      for (const t of keyed) pipe.pttl(this.dedupKey(t.dedupKey as string));
      const ttls = ((await pipe.exec()) ?? []).map(([err, v]) => (err ? -2 : Number(v)));
      const known = new Set<string>();
      keyed.forEach((t, i) => {
        const ttl = ttls[i];
        if (ttl === -2) return;
        known.add(t.dedupKey as string);
        this.seen.remember(t.dedupKey as string, ttl < 0 ? this.dedupTtlSecs * 1000 : ttl, sentAt);
      });
      fresh = todo.filter((t) => t.dedupKey === undefined || !known.has(t.dedupKey));
    }
    const acks = await Promise.all(
      fresh.map((t) => this.store(t.subject, t.payload, this.freshHeaders(), t.dedupKey !== undefined ? `d:${t.dedupKey}` : randomUUID())),
    );
    const accepted = acks.filter((a) => !a.duplicate).length;
    const marked = fresh.filter((t) => t.dedupKey !== undefined);
    if (marked.length > 0) {
      const sentAt = performance.now();
      if (redis) {
        const pipe = redis.pipeline();
        for (const t of marked) pipe.set(this.dedupKey(t.dedupKey as string), "1", "EX", this.dedupTtlSecs, "NX");
        await pipe.exec();
      }
      for (const t of marked) this.seen.remember(t.dedupKey as string, redis ? this.dedupTtlSecs * 1000 : 60_000, sentAt);
    }
    return { accepted, duplicates: items.length - accepted };
  }

  private dedupKey(key: string): string {
    return `${this.config.name}:cache:dedup:${key}`;
  }

  seenBefore(dedupKey: string): boolean {
    return this.dedupTtlSecs > 0 && this.seen.has(dedupKey);
  }

  // ---- reading ----

  private channel(topic: Topic, priority: Priority): Promise<PullChannel> {
    const id = `${topic}:${priority}`;
    let ch = this.channels.get(id);
    if (!ch) {
      ch = this.openChannel(topic, priority);
      ch.catch(() => this.channels.delete(id));
      this.channels.set(id, ch);
    }
    return ch;
  }

  /** The durable consumer (created as mocra does if missing) and an inbox subscription for its pulls. */
  private async openChannel(topic: Topic, priority: Priority): Promise<PullChannel> {
    const durable = this.names.durable(topic, priority);
    await this.ensureConsumer(topic, priority);
    const inbox = `_INBOX.${randomUUID().replaceAll("-", "")}`;
    const ch: PullChannel = { topic, priority, durable, inbox, arrived: [], requests: new Map(), waiting: false, waitingId: undefined, answering: undefined, sub: undefined as unknown as Subscription };
    ch.sub = this.nc.subscribe(`${inbox}.*`, { callback: (_err, m) => this.onPulled(ch, m) });
    return ch;
  }

  private async ensureConsumer(topic: Topic, priority: Priority): Promise<void> {
    const durable = this.names.durable(topic, priority);
    try {
      await this.jsm.consumers.info(this.names.stream, durable);
      return;
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
    await this.ensureStream();
    await this.jsm.consumers.add(this.names.stream, {
      durable_name: durable,
      filter_subject: this.names.subject(topic, priority),
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.All,
      ack_wait: this.ackWaitMs * 1e6,
      // messages held until their retry is due count as ack-pending: the server default (1000) could stall a consumer
      max_ack_pending: -1,
    });
  }

  private onPulled(ch: PullChannel, m: Msg): void {
    const code = m.headers?.code ?? 0;
    if (code >= 100 || (m.reply === undefined && m.data.length === 0)) {
      // the status ending a pull request (404 no messages, 408 expired, 409 ...)
      const id = m.subject.slice(m.subject.lastIndexOf(".") + 1);
      this.finish(ch, id);
      return;
    }
    if (this.closed) {
      if (m.reply) this.nc.publish(m.reply, "-NAK");
      return;
    }
    ch.arrived.push({ m, at: performance.now() });
    const a = ch.answering;
    if (a) {
      if (--a.remaining <= 0) this.finish(ch, a.id);
    } else if (ch.waitingId !== undefined) {
      this.finish(ch, ch.waitingId);
    }
    this.wake(ch.topic);
  }

  private finish(ch: PullChannel, id: string): void {
    if (ch.answering?.id === id) ch.answering = undefined;
    if (ch.waitingId === id) ch.waitingId = undefined;
    const req = ch.requests.get(id);
    if (!req) return;
    ch.requests.delete(id);
    req.done = true;
    req.wake();
  }

  /** Sends a pull request for `batch` messages; resolves when the server has answered it (or after `timeoutMs`). */
  private pull(ch: PullChannel, batch: number, expiresMs: number | undefined, timeoutMs: number, onDone?: () => void): Promise<void> {
    const id = String(++this.requestSeq);
    if (expiresMs !== undefined) ch.waitingId = id;
    return new Promise<void>((resolve) => {
      const req: PullRequest = { done: false, wake: () => {} };
      const timer = setTimeout(() => this.finish(ch, id), timeoutMs);
      req.wake = () => {
        clearTimeout(timer);
        onDone?.();
        resolve();
      };
      ch.requests.set(id, req);
      if (expiresMs === undefined) ch.answering = { id, remaining: batch };
      const body = expiresMs === undefined ? { batch, no_wait: true } : { batch, expires: Math.round(expiresMs * 1e6) };
      this.nc.publish(`$JS.API.CONSUMER.MSG.NEXT.${this.names.stream}.${ch.durable}`, JSON.stringify(body), { reply: `${ch.inbox}.${id}` });
    });
  }

  private wake(topic: Topic): void {
    const set = this.wakers.get(topic);
    if (!set) return;
    this.wakers.delete(topic);
    for (const w of set) w();
  }

  private wakeAll(): void {
    for (const t of [...this.wakers.keys()]) this.wake(t);
  }

  async read<K extends Topic>(topic: K, max: number, blockMs: number): Promise<Delivery<K>[]> {
    if (this.fatal) throw this.fatal;
    if (this.closed || max <= 0) return [];
    const chans = await Promise.all(PRIORITIES.map((p) => this.channel(topic, p)));
    const out: Delivery<K>[] = [];
    await this.readReady(chans, out, max);
    if (out.length > 0 || blockMs <= 0 || this.closed) return out;
    // nothing ready anywhere: one waiting pull per priority (unless one is still open), then wait for a message or the block time
    await new Promise<void>((resolve) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const done = () => {
        clearTimeout(timer);
        this.wakers.get(topic)?.delete(done);
        resolve();
      };
      timer = setTimeout(done, blockMs);
      let set = this.wakers.get(topic);
      if (!set) this.wakers.set(topic, (set = new Set()));
      set.add(done);
      for (const ch of chans) {
        if (ch.waiting) continue;
        ch.waiting = true;
        void this.pull(ch, 1, blockMs, blockMs + 5_000, () => (ch.waiting = false));
      }
    });
    if (!this.closed) await this.readReady(chans, out, max);
    return out;
  }

  /** High before normal before low: what already arrived, then a no_wait pull for the credit left. */
  private async readReady<K extends Topic>(chans: PullChannel[], out: Delivery<K>[], max: number): Promise<void> {
    for (const ch of chans) {
      this.takeArrived(ch, out, max);
      const free = max - out.length;
      if (free <= 0) return;
      await this.pull(ch, free, undefined, NO_WAIT_TIMEOUT_MS);
      this.takeArrived(ch, out, max);
      if (out.length >= max) return;
    }
  }

  private takeArrived<K extends Topic>(ch: PullChannel, out: Delivery<K>[], max: number): void {
    while (out.length < max && ch.arrived.length > 0) {
      const { m, at } = ch.arrived.shift() as { m: Msg; at: number };
      // held here past half the ack wait (the credit was full): the server may hand it to another
      // worker any moment, so give it back at once rather than work on it twice
      if (performance.now() - at > this.ackWaitMs / 2) {
        if (m.reply) this.nc.publish(m.reply, "-NAK");
        continue;
      }
      const d = this.accept(ch, m);
      if (d) out.push(d as unknown as Delivery<K>);
    }
  }

  /** A message off a consumer as a delivery; not yet due → NAKed until due; undecodable or re-delivered too often → dead letters. */
  private accept(ch: PullChannel, m: Msg): NatsDelivery | undefined {
    const reply = m.reply ?? "";
    const { delivered, streamSeq } = parseAckSubject(reply);
    const headers = headerMap(m.headers);
    const now = Date.now();
    const dueAt = Number(headers.get(HEADER_DUE_AT) ?? 0);
    if (dueAt > now + 5) {
      this.nc.publish(reply, `-NAK ${JSON.stringify({ delay: (dueAt - now) * 1e6 })}`);
      return undefined;
    }
    const xAttempt = Number.parseInt(headers.get(HEADER_ATTEMPT) ?? "0", 10);
    const redelivered = Math.max(0, delivered - 1 - (dueAt > 0 ? 1 : 0));
    const payload = new Uint8Array(m.data);
    const entryId = String(streamSeq);
    if (redelivered >= this.maxDeliveries) {
      void this.toDeadLetters(ch.topic, ch.priority, payload, headers, `delivered ${delivered} times without being acked`, entryId, reply);
      return undefined;
    }
    let message: TopicMessages[Topic];
    try {
      message = decodePayload(this.codec, ch.topic, payload);
    } catch (err) {
      const reason = err instanceof CodecError ? `undecodable payload: ${err.message}` : `undecodable payload: ${String(err)}`;
      void this.toDeadLetters(ch.topic, ch.priority, payload, headers, reason, entryId, reply);
      return undefined;
    }
    const attempt = (Number.isSafeInteger(xAttempt) && xAttempt >= 0 ? xAttempt : 0) + 1 + redelivered;
    return new NatsDelivery(ch.topic, ch.priority, entryId, message, attempt, reply, payload, headers);
  }

  private async toDeadLetters(topic: Topic, priority: Priority, payload: Uint8Array, headers: ReadonlyMap<string, string>, reason: string, originalId: string, reply: string): Promise<void> {
    try {
      const h = natsHeaders();
      const attempt = headers.get(HEADER_ATTEMPT);
      if (attempt !== undefined) h.set(HEADER_ATTEMPT, attempt);
      h.set(HEADER_NACK_REASON, oneLine(reason));
      h.set(HEADER_ORIGINAL_ID, originalId);
      await this.store(this.names.deadSubject(topic, priority), payload, h, `dlq:${this.names.stream}:${originalId}:${randomUUID()}`);
      this.nc.publish(reply, "+ACK");
    } catch (err) {
      this.onError(err);
    }
  }

  // ---- settling ----

  private delivery(d: Delivery<Topic>): NatsDelivery {
    if (!(d instanceof NatsDelivery)) throw new TypeError("not a delivery of this queue");
    return d;
  }

  async ack(delivery: Delivery<Topic>): Promise<void> {
    const d = this.delivery(delivery);
    this.nc.publish(d.reply, "+ACK");
  }

  /** Republishes the stored bytes with `attempt` (0-based, mocra's x-attempt) and a due time, then acks this delivery. */
  private async republish(d: NatsDelivery, attempt: number, delayMs: number, reason: string | undefined): Promise<void> {
    this.assertOpen();
    const h = natsHeaders();
    for (const [k, v] of d.headers) if (k !== HEADER_DUE_AT) h.set(k, v);
    h.set(HEADER_ATTEMPT, String(attempt));
    if (!d.headers.has(HEADER_CREATED_AT)) h.set(HEADER_CREATED_AT, String(Date.now()));
    if (reason !== undefined) h.set(HEADER_NACK_REASON, oneLine(reason));
    if (delayMs > 0) h.set(HEADER_DUE_AT, String(Date.now() + delayMs));
    await this.store(this.names.subject(d.topic, d.priority), d.payload, h, randomUUID());
    this.nc.publish(d.reply, "+ACK");
  }

  async retryLater(delivery: Delivery<Topic>, delayMs: number, reason: string): Promise<void> {
    const d = this.delivery(delivery);
    // x-attempt counts failed deliveries (0 on the first): this one failed, so it is d.attempt
    await this.republish(d, d.attempt, Math.max(delayMs, this.backoffMs), reason);
  }

  async defer(delivery: Delivery<Topic>, delayMs: number, _reason: string): Promise<void> {
    const d = this.delivery(delivery);
    await this.republish(d, d.attempt - 1, delayMs, undefined);
  }

  async deadLetter(delivery: Delivery<Topic>, reason: string): Promise<void> {
    const d = this.delivery(delivery);
    this.assertOpen();
    const h = natsHeaders();
    h.set(HEADER_ATTEMPT, String(d.attempt - 1));
    h.set(HEADER_NACK_REASON, oneLine(reason));
    h.set(HEADER_ORIGINAL_ID, d.entryId);
    await this.store(this.names.deadSubject(d.topic, d.priority), d.payload, h, randomUUID());
    this.nc.publish(d.reply, "+ACK");
  }

  async deadLetterMessage<K extends Topic>(topic: K, message: TopicMessages[K], reason: string, originalId: string): Promise<void> {
    this.assertOpen();
    const h = this.freshHeaders();
    h.set(HEADER_NACK_REASON, oneLine(reason));
    h.set(HEADER_ORIGINAL_ID, originalId);
    await this.store(this.names.deadSubject(topic, defaultPriority(message)), this.encode(topic, message), h, randomUUID());
  }

  async touch(deliveries: readonly Delivery<Topic>[]): Promise<void> {
    for (const d of deliveries) this.nc.publish(this.delivery(d).reply, "+WPI");
  }

  // ---- depths, dead letters ----

  /** Per topic and priority: waiting, pending (consumer num_pending, num_ack_pending), dead letters and length. */
  async depths(topics: readonly Topic[] = TOPICS): Promise<Record<Topic, Record<Priority, ConsumerDepth>>> {
    let info: StreamInfo | undefined;
    try {
      info = await this.jsm.streams.info(this.names.stream, { subjects_filter: this.names.streamSubjects() });
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
    const subjects = (info?.state.subjects ?? {}) as Record<string, number>;
    const out = {} as Record<Topic, Record<Priority, ConsumerDepth>>;
    await Promise.all(
      topics.map(async (topic) => {
        const row = {} as Record<Priority, ConsumerDepth>;
        out[topic] = row;
        await Promise.all(
          PRIORITIES.map(async (p) => {
            const length = subjects[this.names.subject(topic, p)] ?? 0;
            const dead = subjects[this.names.deadSubject(topic, p)] ?? 0;
            let waiting = length;
            let pending = 0;
            if (info) {
              try {
                const c = await this.jsm.consumers.info(this.names.stream, this.names.durable(topic, p));
                waiting = c.num_pending;
                pending = c.num_ack_pending;
              } catch (err) {
                if (!isNotFound(err)) throw err; // no consumer yet: every message of the subject waits
              }
            }
            row[p] = { waiting, pending, dead, length };
          }),
        );
      }),
    );
    return out;
  }

  async depth(topic: Topic): Promise<number> {
    const d = (await this.depths([topic]))[topic];
    return PRIORITIES.reduce((n, p) => n + d[p].waiting + d[p].pending, 0);
  }

  async stats(): Promise<QueueStats> {
    const all = await this.depths();
    const out = {} as QueueStats;
    for (const topic of TOPICS) {
      const d = all[topic];
      const s: TopicStats = { ready: { high: 0, normal: 0, low: 0 }, inFlight: 0, delayed: 0, dead: 0 };
      for (const p of PRIORITIES) {
        s.ready[p] = d[p].waiting;
        s.inFlight += d[p].pending;
        s.dead += d[p].dead;
      }
      out[topic] = s;
    }
    return out;
  }

  /** The dead letters of `topic` (high priority first), with their stream sequence. */
  private async deadMessages(topic: Topic, count: number): Promise<{ priority: Priority; seq: number; data: Uint8Array; headers: Map<string, string> }[]> {
    const out: { priority: Priority; seq: number; data: Uint8Array; headers: Map<string, string> }[] = [];
    for (const p of PRIORITIES) {
      let seq = 0;
      while (out.length < count) {
        let m;
        try {
          m = await this.jsm.streams.getMessage(this.names.stream, { next_by_subj: this.names.deadSubject(topic, p), seq: seq + 1 } as unknown as Parameters<JetStreamManager["streams"]["getMessage"]>[1]);
        } catch (err) {
          if (isNotFound(err)) break;
          throw err;
        }
        if (!m) break;
        seq = m.seq;
        out.push({ priority: p, seq: m.seq, data: m.data, headers: headerMap(m.header) });
      }
    }
    return out;
  }

  async listDeadLetters(topic: Topic, count: number): Promise<DeadLetter[]> {
    return (await this.deadMessages(topic, count)).map((m) => {
      let message: TopicMessages[Topic] | undefined;
      try {
        message = decodePayload(this.codec, topic, m.data);
      } catch {
        message = undefined;
      }
      return { topic, priority: m.priority, id: String(m.seq), reason: m.headers.get(HEADER_NACK_REASON) ?? "", originalId: m.headers.get(HEADER_ORIGINAL_ID) ?? "", message };
    });
  }

  async replayDeadLetters(topic: Topic, count: number): Promise<number> {
    this.assertOpen();
    let n = 0;
    for (const m of await this.deadMessages(topic, count)) {
      await this.store(this.names.subject(topic, m.priority), m.data, this.freshHeaders(), `replay:${this.names.stream}:${m.seq}`);
      await this.jsm.streams.deleteMessage(this.names.stream, m.seq, false);
      n++;
    }
    return n;
  }

  async purgeDeadLetters(topic: Topic): Promise<number> {
    let n = 0;
    for (const p of PRIORITIES) {
      try {
        n += (await this.jsm.streams.purge(this.names.stream, { filter: this.names.deadSubject(topic, p) })).purged;
      } catch (err) {
        if (!isNotFound(err)) throw err;
      }
    }
    return n;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.budgetTimer);
    this.wakeAll();
    // what arrived and was never handed out goes back at once (not after ack_wait)
    for (const chP of this.channels.values()) {
      const ch = await chP.catch(() => undefined);
      if (!ch) continue;
      for (const { m } of ch.arrived.splice(0)) if (m.reply) this.nc.publish(m.reply, "-NAK");
    }
    try {
      await this.nc.drain();
    } catch {
      await this.nc.close().catch(() => {});
    }
    // drained: a PubAck still missing will not come
    for (const w of this.pendingAcks.values()) {
      clearTimeout(w.timer);
      w.reject(new NatsQueueClosedError("queue closed before the server acknowledged a publish"));
    }
    this.pendingAcks.clear();
    if (this.options.closeDedupRedis) this.options.dedupRedis?.disconnect();
  }
}

/** $JS.ACK.<stream>.<consumer>.<delivered>.<stream seq>.<consumer seq>.<ts>.<pending> (or the 12-token form with domain and account hash) */
export function parseAckSubject(reply: string): { delivered: number; streamSeq: number } {
  const t = reply.split(".");
  const at = t.length === 9 ? 4 : 6;
  return { delivered: Number(t[at]) || 1, streamSeq: Number(t[at + 1]) || 0 };
}

function headerMap(h: MsgHdrs | undefined): Map<string, string> {
  const out = new Map<string, string>();
  if (!h) return out;
  for (const k of h.keys()) {
    const v = h.get(k);
    if (v !== "") out.set(k, v);
  }
  return out;
}

function isNotFound(err: unknown): boolean {
  const s = String(err instanceof Error ? err.message : err);
  return /not found|no message found|10059|10014|10037/i.test(s) || (typeof err === "object" && err !== null && "code" in err && (err as { code: unknown }).code === 404);
}

/** A header value is one line */
function oneLine(s: string): string {
  return s.replace(/[\r\n]+/g, " ").slice(0, 2000);
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

