// src/queue/redis/writer.ts: the writing side of the Redis queue: publish (dedup and append in
// one publish.lua call per chunk), the local knowledge of dedup keys already set (SeenKeys, for
// Queue.seenBefore), and dead letters made from a message rather than a delivery.

import { Buffer } from "node:buffer";
import { setImmediate } from "node:timers";
import type { Topic, TopicMessages } from "../../model/index.ts";
import { defaultPriority, type Outgoing, type PublishResult } from "../queue.ts";
import type { QueueCore } from "./core.ts";
import { SEEN_BUCKETS, SEEN_FIELD_BYTES, seenSlot } from "./keys.ts";
import { queueScripts } from "./scripts.ts";
import { mayBeNew, SeenBuckets, SeenKeys } from "./seen-keys.ts";

const PUBLISH_CHUNK = 1000;

interface Prepared {
  stream: string;
  payload: Buffer;
  dedupKey: string | undefined;
  /** "buckets" layout: the dedup key's bucket and field (seenSlot) */
  slot: { bucket: number; field: Buffer } | undefined;
  /** the run hash counting it */
  runKey: string;
}

/** One publish() call waiting for the next send: its items still to go to Redis. */
interface PendingPublish {
  prepared: Prepared[];
  /** items the call was given (prepared ones and those dropped locally) */
  total: number;
  resolve: (r: PublishResult) => void;
  reject: (err: unknown) => void;
}

export class QueueWriter {
  private readonly seen: SeenKeys;
  private readonly seenBuckets: SeenBuckets;
  private pending: PendingPublish[] = [];
  private sendScheduled = false;

  constructor(
    private readonly core: QueueCore,
    /** crawler.dedup_ttl_secs; 0 = no dedup (as in mocra) */
    private readonly dedupTtlSecs: number,
    seenKeysMax: number,
    /** crawler.dedup_layout: mocra's key per fingerprint, or fingerprints packed in buckets */
    private readonly dedupLayout: "buckets" | "keys" = "buckets",
  ) {
    this.seen = new SeenKeys(seenKeysMax);
    this.seenBuckets = new SeenBuckets(SEEN_BUCKETS, dedupTtlSecs);
  }

  /**
   * Appends the batch (one publish.lua call per 1000 items). An item with a dedupKey is appended
   * only if the key was not seen: in the "buckets" layout its fingerprint was not in its bucket
   * (HSETNX; keys.ts seenBucket), in the "keys" layout `<name>:cache:dedup:<key>` was not set
   * (SET NX EX dedup_ttl_secs); either in the same script as the append. dedup_ttl_secs = 0
   * turns dedup off, as in mocra. A key this queue knows to be set
   * (SeenKeys), or met earlier in the same batch, is a duplicate without going to Redis: the
   * script would find it set.
   *
   * The calls made during one turn of the event loop go out together (one pipeline, at
   * setImmediate): a worker publishes each page's few new links on its own, and every pipeline
   * is a socket write and a script call (when each call sent its own, those pipelines took ~38 µs
   * of a worker's CPU per page under the profiler). Each call still resolves only once Redis has
   * run the script over its items; a key repeated across calls of one turn is a duplicate there.
   */
  async publish<K extends Topic>(topic: K, items: readonly Outgoing<K>[]): Promise<PublishResult> {
    this.core.assertOpen();
    if (items.length === 0) return { accepted: 0, duplicates: 0 };
    const prepared: Prepared[] = [];
    const buckets = this.dedupLayout === "buckets";
    for (const { item, dedupKey } of mayBeNew(items, this.dedupTtlSecs > 0, this.seen)) {
      const priority = item.priority ?? defaultPriority(item.message);
      const slot = buckets && dedupKey !== undefined ? seenSlot(dedupKey) : undefined;
      prepared.push({ stream: this.core.keys.streamFor(topic, priority, item.message), payload: this.core.encode(topic, item.message), dedupKey, slot, runKey: this.core.runKeyOf(topic, item.message) });
    }
    if (prepared.length === 0) return { accepted: 0, duplicates: items.length };
    return new Promise((resolve, reject) => {
      this.pending.push({ prepared, total: items.length, resolve, reject });
      if (!this.sendScheduled) {
        this.sendScheduled = true;
        setImmediate(() => this.sendPending());
      }
    });
  }

  /** Sends what publish() calls are waiting for now (the queue closes: before its QUIT). */
  sendNow(): void {
    void this.sendPending();
  }

  /** Sends every waiting call's items in one pipeline; each item's dedup check and append are atomic in the script. */
  private async sendPending(): Promise<void> {
    this.sendScheduled = false;
    const calls = this.pending;
    if (calls.length === 0) return;
    this.pending = [];
    try {
      const prepared = calls.length === 1 ? calls[0].prepared : calls.flatMap((c) => c.prepared);
      const pipe = this.core.cmd.pipeline();
      const now = performance.now();
      const buckets = this.dedupLayout === "buckets";
      // "buckets": those sent as unknown (the script writes their TTL if it adds to them), and
      // those of them it was to create (true)
      const unknownSent = new Map<number, boolean>();
      let createTries = 0;
      for (let i = 0; i < prepared.length; i += PUBLISH_CHUNK) {
        const chunk = prepared.slice(i, i + PUBLISH_CHUNK);
        const streamIndex = new Map<string, number>();
        for (const p of chunk) if (!streamIndex.has(p.stream)) streamIndex.set(p.stream, streamIndex.size + 1);
        const keys = [...streamIndex.keys()];
        const runIndex = new Map<string, number>();
        let layout = "";
        const payloads: Buffer[] = [];
        const bucketIndex = new Map<number, number>();
        const fields: Buffer[] = [];
        // per KEYS index: "1" = a bucket whose expiry this worker does not know, "2" = likewise
        // and likely absent (create it with SET NX EX), "0" = anything else
        const unknown: string[] = [];
        for (const p of chunk) {
          let d = 0;
          if (p.slot !== undefined) {
            const { bucket, field } = p.slot;
            d = bucketIndex.get(bucket) ?? 0;
            if (d === 0) {
              keys.push(this.core.keys.seenBucket(bucket));
              d = keys.length;
              bucketIndex.set(bucket, d);
              if (this.seenBuckets.known(bucket, now)) {
                unknown[d - 1] = "0";
              } else {
                const create = this.seenBuckets.tryCreate(createTries);
                if (create) createTries++;
                unknown[d - 1] = create ? "2" : "1";
                unknownSent.set(bucket, create);
              }
            }
            fields.push(field);
          } else if (p.dedupKey !== undefined) {
            keys.push(this.core.keys.dedup(p.dedupKey));
            d = keys.length;
          }
          let r = runIndex.get(p.runKey);
          if (r === undefined) {
            keys.push(p.runKey);
            runIndex.set(p.runKey, (r = keys.length));
          }
          layout += `${streamIndex.get(p.stream)},${d},${r};`;
          payloads.push(p.payload);
        }
        const width = buckets ? SEEN_FIELD_BYTES : 0;
        const ttl = buckets ? this.seenBuckets.writeTtlSecs : this.dedupTtlSecs;
        const unknownFlags = Array.from({ length: keys.length }, (_, k) => unknown[k] ?? "0").join("");
        queueScripts.pipe(pipe, "publish", keys, [this.core.keys.group, ttl, layout, width, Buffer.concat(fields), unknownFlags, ...payloads]);
      }
      const sentAt = performance.now();
      // -1 = appended (-3: by creating its bucket); >= 0 = duplicate, its key's (bucket's)
      // remaining ms; -2 = duplicate in a known bucket
      const flags = (await this.core.exec(pipe)).flat() as number[];
      const ttlMs = this.dedupTtlSecs * 1000;
      const createdNow = new Set<number>();
      let at = 0;
      for (const call of calls) {
        let accepted = 0;
        for (const { dedupKey, slot } of call.prepared) {
          let f = flags[at++];
          if (f === -3) {
            if (slot !== undefined) createdNow.add(slot.bucket);
            f = -1;
          }
          if (f === -1) accepted++;
          if (dedupKey === undefined) continue;
          if (slot === undefined) {
            // "keys": an appended key lives the full TTL, a duplicate its PTTL
            this.seen.remember(dedupKey, f < 0 ? ttlMs : f, sentAt);
            continue;
          }
          // "buckets": what the script wrote or read teaches this worker its bucket's expiry
          if (f === -1 && unknownSent.has(slot.bucket)) this.seenBuckets.lives(slot.bucket, this.seenBuckets.writeTtlSecs * 1000, sentAt);
          else if (f >= 0) this.seenBuckets.lives(slot.bucket, f, sentAt);
          // an added fingerprint is remembered for at least the dedup TTL from when it was added
          const lives = f === -1 ? ttlMs : f >= 0 ? f : this.seenBuckets.expiresAt(slot.bucket) - sentAt;
          this.seen.remember(dedupKey, Math.min(lives, this.seenBuckets.expiresAt(slot.bucket) - sentAt), sentAt);
        }
        call.resolve({ accepted, duplicates: call.total - accepted });
      }
      for (const [bucket, create] of unknownSent) if (create) this.seenBuckets.triedCreate(createdNow.has(bucket));
    } catch (err) {
      for (const call of calls) call.reject(err);
    }
  }

  /** Queue.seenBefore: the key is certainly set in Redis (see SeenKeys). Local, no I/O. */
  seenBefore(dedupKey: string): boolean {
    return this.dedupTtlSecs > 0 && this.seen.has(dedupKey);
  }

  async deadLetterMessage<K extends Topic>(topic: K, message: TopicMessages[K], reason: string, originalId: string): Promise<void> {
    this.core.assertOpen();
    const stream = this.core.keys.streamFor(topic, defaultPriority(message), message);
    await this.core.guard(
      this.core.cmd.xadd(this.core.keys.dlq(stream), "MAXLEN", "~", this.core.deadLetterMaxLen, "*", "payload", this.core.encode(topic, message), "reason", reason, "original_id", originalId),
    );
  }

  /** The dedup keys may be gone (Redis restarted without persistence): forget the ones known. */
  forgetSeen(): void {
    this.seen.clear();
    this.seenBuckets.clear();
  }
}
