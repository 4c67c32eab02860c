// src/queue/redis/entries.ts: stream entries as they come out of Redis, and the deliveries made
// from them.

import { Buffer } from "node:buffer";
import type { Codec } from "../../codec/index.ts";
import { CodecError } from "../../codec/index.ts";
import { PRIORITIES, type Priority, type Topic, type TopicMessages } from "../../model/index.ts";
import { decompressPayload, FramingError } from "../compression.ts";
import type { Delivery } from "../queue.ts";

/** A delivery read from a stream; it remembers where it came from and the bytes it was stored as. */
export class RedisDelivery<K extends Topic = Topic> implements Delivery<K> {
  constructor(
    readonly topic: K,
    readonly priority: Priority,
    readonly entryId: string,
    readonly message: TopicMessages[K],
    readonly attempt: number,
    /** the stream key it was read from (and is acked on) */
    readonly stream: string,
    /** the payload exactly as stored (possibly a zstd frame): retries and dead letters keep it */
    readonly payload: Buffer,
  ) {}
}

/** The fields of an entry: `payload` (missing = undefined) and `attempt` (0 when absent). */
export function entryFields(fields: readonly Buffer[]): { payload: Buffer | undefined; attempt: number } {
  let payload: Buffer | undefined;
  let attempt = 0;
  for (let i = 0; i + 1 < fields.length; i += 2) {
    const name = fields[i];
    if (name.length !== 7) continue;
    if (name[0] === 0x70 && name.toString("latin1") === "payload") payload = fields[i + 1];
    else if (name[0] === 0x61 && name.toString("latin1") === "attempt") {
      const n = Number(fields[i + 1].toString("latin1"));
      if (Number.isSafeInteger(n) && n >= 0) attempt = n;
    }
  }
  return { payload, attempt };
}

/** Decodes a stored payload; throws CodecError (with the framing problem, if any) when it cannot. */
export function decodePayload<K extends Topic>(codec: Codec, topic: K, payload: Uint8Array): TopicMessages[K] {
  let bytes: Uint8Array = payload;
  let framing: FramingError | undefined;
  try {
    bytes = decompressPayload(payload);
  } catch (err) {
    if (!(err instanceof FramingError)) throw err;
    framing = err; // as mocra: try the bytes as they are
  }
  try {
    return codec.decode(topic, bytes);
  } catch (err) {
    if (framing) throw new CodecError(framing.message);
    throw err instanceof CodecError ? err : new CodecError(err instanceof Error ? err.message : String(err));
  }
}

export function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

const RANK: Record<Priority, number> = Object.fromEntries(PRIORITIES.map((p, i) => [p, i])) as Record<Priority, number>;

/** Stable sort, high priority first. */
export function byPriority<D extends { priority: Priority }>(list: D[]): D[] {
  return list.sort((a, b) => RANK[a.priority] - RANK[b.priority]);
}

/** Orders stream ids ("<ms>-<seq>"). */
export function compareIds(a: string, b: string): number {
  const [am, as] = a.split("-").map(Number);
  const [bm, bs] = b.split("-").map(Number);
  return am - bm || as - bs;
}
