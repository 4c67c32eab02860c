// src/queue/redis/core.ts: what the parts of the Redis queue (RedisQueue settling and owning the
// connections, QueueReader, QueueWriter, QueueAdmin) share: the command connection, the keys and codec, and the guards
// that make every operation fail with the queue's fatal error once Redis is given up on.

import type { Buffer } from "node:buffer";
import type { Redis } from "ioredis";
import type { Codec } from "../../codec/index.ts";
import type { Topic, TopicMessages } from "../../model/index.ts";
import type { QueueKeys, StreamRef } from "./keys.ts";

export interface QueueCore {
  readonly cmd: Redis;
  readonly keys: QueueKeys;
  readonly codec: Codec;
  /** approximate cap of each dead-letter stream (MAXLEN ~) */
  readonly deadLetterMaxLen: number;
  /** seconds a finished run's hash is kept */
  readonly runTtlSecs: number;
  /** the run hash a message is counted in (<name>:run:<run_id>) */
  runKeyOf<K extends Topic>(topic: K, message: TopicMessages[K]): string;
  /** every stream of a topic, high priority first */
  streams(topic: Topic): StreamRef[];
  /** the stored bytes of a message (codec, then zstd above the compression threshold) */
  encode<K extends Topic>(topic: K, message: TopicMessages[K]): Buffer;
  /** the operation's result, or the fatal error if that comes first */
  guard<T>(op: Promise<T>): Promise<T>;
  /** runs a pipeline (guarded); rejects with the first command error */
  exec(pipe: ReturnType<Redis["pipeline"]>): Promise<unknown[]>;
  /** XGROUP CREATE ... MKSTREAM on every stream of the topics (a stream deleted meanwhile) */
  ensureGroups(topics: readonly Topic[]): Promise<void>;
  /** throws once the queue is closed or fatally failed */
  assertOpen(): void;
  /** close() was called (or Redis was given up on) */
  closed(): boolean;
  /** the error Redis was given up on with, once it was */
  fatalError(): Error | undefined;
}
