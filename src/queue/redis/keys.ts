// src/queue/redis/keys.ts: every Redis key and name the queue uses (wire FORMAT §3, §4), and
// what bounds each one.
//
//   {<name>:<topic>-<priority>:<shard>}      stream (braces literal; shards = 1 drops ":<shard>").
//       Bound: trim.lua (janitor, every minute) drops entries every group has received and
//       settled once older than minid_time hours (0: at once); what stays is the pending and
//       the not-yet-delivered entries, plus up to one stream node (~100 entries) of slack.
//   {<name>:<topic>-<priority>:<shard>}:dlq  dead letters of that stream (fields payload, reason,
//       original_id). Bound: MAXLEN ~ deadLetterMaxLen (default 100 000) on every append.
//   <name>:crawler_group                     the one consumer group of every stream
//   <name>:cache:dedup:<key>                 dedup marker, SET NX EX dedup_ttl_secs (mocra's key).
//       Bound: one key per distinct dedup key published within dedup_ttl_secs, about 100 bytes
//       each with a 32-hex fingerprint (1 000 000 requests a day at the default 86 400 s ≈ 100 MB).
//       Each queue also remembers, for a while, keys it knows to be set (seen-keys.ts), and
//       counts those as duplicates without asking Redis.
//   <name>:cache:seenh18:<5 hex>             the seen set in the "buckets" dedup layout (ours, the
//       default): a hash per first 18 bits of a fingerprint (262 144 buckets, named by those bits
//       in hex), each field the fingerprint's last 14 bytes (value ""), so the prefix and the field
//       hold the whole md5: HSETNX is the check and the insert (publish.lua; a bucket created
//       while the seen set is young is a string of its first field until its second). A listpack
//       while a bucket has <= hash-max-listpack-entries fields (128 in the stock redis.conf): up
//       to ~2·10^7 fingerprints a TTL. Expiry per bucket: EXPIRE dedup_ttl_secs + 1/4 when a
//       worker adds to a bucket it has not refreshed within the last ~1/8 of that (seen-keys.ts,
//       SeenBuckets). Bound: ~18 B per distinct fingerprint published within that of its bucket's
//       last refresh, plus ~200 B per bucket (23 B per URL at 10^7 URLs, docs/scale.md). A key
//       that is not a 32-hex fingerprint is stored by its md5. (Before, "buckets" were strings
//       at <name>:cache:seen:<4 hex>: never read now, they expire by their TTL.)
//   <name>:delayed:<topic>                   sorted set of retries waiting for their due time
//       (ours; score = due ms). Bound: one member per message waiting to be retried.
//   <name>:run:<run_id>                      hash: a run's counts (ours; runs.ts lists the
//       fields). `open` is the run's messages not yet settled anywhere (queued, in flight or
//       delayed), kept by the scripts that append and settle; 0 = finished. Bound: expires
//       run_ttl_secs after the run finished.
//   <name>:runs                              sorted set of run ids (score = submitted or finished
//       ms). Bound: members older than run_ttl_secs are dropped when the runs are listed.
//
// Keys of different hash tags meet in one script (the delayed set and its streams, a publish
// batch and its dedup keys): like mocra's layout, this targets a single Redis, not a cluster.

import { Buffer } from "node:buffer";
import { md5Hex, messageId, PRIORITIES, type Priority, type Topic, type TopicMessages } from "../../model/index.ts";
import { crc32 } from "../../codec/crc32.ts";

/**
 * "buckets" dedup layout: bits of a fingerprint that name its bucket (2^18 buckets: ~38
 * fingerprints each at 10^7, so every bucket stays a listpack), and the bytes of the rest that
 * are its field (the bytes from the one holding bit 18 on: the key name and the field together
 * hold all 128 bits, so dedup is exact).
 */
export const SEEN_BUCKET_BITS = 18;
export const SEEN_BUCKETS = 2 ** SEEN_BUCKET_BITS;
export const SEEN_FIELD_BYTES = 16 - Math.floor(SEEN_BUCKET_BITS / 8);

const MD5_HEX = /^[0-9a-f]{32}$/;

/** Where a dedup key is kept in the "buckets" layout: its bucket (0 .. SEEN_BUCKETS - 1) and its field. */
export function seenSlot(dedupKey: string): { bucket: number; field: Buffer } {
  const md5 = Buffer.from(MD5_HEX.test(dedupKey) ? dedupKey : md5Hex(dedupKey), "hex");
  return { bucket: md5.readUInt32BE(0) >>> (32 - SEEN_BUCKET_BITS), field: md5.subarray(16 - SEEN_FIELD_BYTES) };
}

export interface StreamRef {
  key: string;
  priority: Priority;
  shard: number;
}

export class QueueKeys {
  readonly group: string;

  constructor(
    readonly name: string,
    readonly shards: number,
  ) {
    if (!Number.isInteger(shards) || shards < 1) throw new RangeError(`shards must be an integer >= 1, got ${shards}`);
    this.group = `${name}:crawler_group`;
  }

  stream(topic: Topic, priority: Priority, shard: number): string {
    return this.shards > 1 ? `{${this.name}:${topic}-${priority}:${shard}}` : `{${this.name}:${topic}-${priority}}`;
  }

  /** The shard mocra routes a message to: crc32 of its id (TaskModel: run_id) modulo shards. */
  shardOf<K extends Topic>(topic: K, message: TopicMessages[K]): number {
    return this.shards > 1 ? crc32(messageId(topic, message)) % this.shards : 0;
  }

  streamFor<K extends Topic>(topic: K, priority: Priority, message: TopicMessages[K]): string {
    return this.stream(topic, priority, this.shardOf(topic, message));
  }

  /** Every stream of a topic, high priority first, shards in order within a priority. */
  streams(topic: Topic): StreamRef[] {
    const out: StreamRef[] = [];
    for (const priority of PRIORITIES) {
      for (let shard = 0; shard < this.shards; shard++) out.push({ key: this.stream(topic, priority, shard), priority, shard });
    }
    return out;
  }

  dlq(streamKey: string): string {
    return `${streamKey}:dlq`;
  }

  /** the watchdog's records of entries whose module code blocked a worker (hash id -> reason; TTL) */
  poison(streamKey: string): string {
    return `${streamKey}:poison`;
  }

  dedup(key: string): string {
    return `${this.name}:cache:dedup:${key}`;
  }

  /** a bucket of the "buckets" dedup layout (`bucket`: from seenSlot) */
  seenBucket(bucket: number): string {
    return `${this.name}:cache:seenh${SEEN_BUCKET_BITS}:${bucket.toString(16).padStart(Math.ceil(SEEN_BUCKET_BITS / 4), "0")}`;
  }

  delayed(topic: Topic): string {
    return `${this.name}:delayed:${topic}`;
  }

  /** A run's counts (hash). */
  run(runId: string): string {
    return `${this.name}:run:${runId}`;
  }

  /** The runs known (sorted set of run ids). */
  runs(): string {
    return `${this.name}:runs`;
  }
}
