import { defer, finalize, from, type Observable, switchMap } from "rxjs";
import type { Topic, TopicMessages } from "../src/model/index.ts";
import { RedisQueue } from "../src/queue/redis/index.ts";
import { connectRedisStream, redisSourceConfig, type RedisStreamOptions, type RedisStreamSource } from "../src/queue/redis/source.ts";
import { fromQueue } from "./from-queue.ts";
import type { Job } from "./job.ts";

export interface FromRedisStreamOptions extends RedisStreamOptions {
  /** credit: at most this many un-settled messages out at once */
  prefetch: number;
  /** longest blocking read when every stream is empty (ms, default 1000) */
  blockMs?: number;
  /** aborting stops reading; the observable completes once every message out is settled */
  signal?: AbortSignal;
}

/**
 * Reads `topic` of a crawl in Redis — every shard and priority, through the consumer group —
 * with credit backpressure, strict priorities, reclaim of idle entries, delayed retries and dead
 * letters: it is `fromQueue` over the crawl's RedisQueue. Given an open RedisQueue (from
 * `connectRedisStream`, so that `route`/`toQueue` can publish to it too) it reads that one;
 * given a source it connects its own and closes it when the observable ends. Completing or
 * unsubscribing stops reading; entries taken and not settled stay pending for re-delivery.
 */
export function fromRedisStream<K extends Topic>(
  source: RedisQueue | RedisStreamSource,
  topic: K,
  options: FromRedisStreamOptions,
): Observable<Job<TopicMessages[K]>> {
  const { prefetch, blockMs, signal, ...connect } = options;
  const read = { prefetch, blockMs, signal };
  if (source instanceof RedisQueue) {
    if (connect.consumer !== undefined || connect.codec !== undefined) {
      throw new RangeError("fromRedisStream: consumer and codec belong to connectRedisStream when an open queue is given");
    }
    return fromQueue(source, topic, read);
  }
  const config = redisSourceConfig(source); // a bad source fails here, at the call
  return defer(() => {
    let queue: RedisQueue | undefined;
    return from(connectRedisStream(config, connect)).pipe(
      switchMap((q) => fromQueue((queue = q), topic, read)),
      finalize(() => void queue?.close()),
    );
  });
}
