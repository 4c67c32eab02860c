// src/queue/open-queue.ts: the queue engine a config chooses, as mocra 0.4.1 does: with
// [channel_config.nats] the queues are on JetStream (Redis, when configured, then keeps
// coordination and the dedup keys); without it, on Redis Streams.

import type { Config } from "../config/schema.ts";
// the NATS client is imported only by a config with [channel_config.nats] (as the Redis one is
// only by commands that use Redis): a Redis-only worker does not load it
import type { NatsQueue, NatsQueueFatalError } from "./nats/nats-queue.ts";
import { openConnection } from "../redis/connection.ts";
import { RedisQueue, type RedisQueueFatalError } from "./redis/index.ts";

export interface OpenQueueOptions {
  onFatal?: (err: RedisQueueFatalError | NatsQueueFatalError) => void;
  onConnection?: (change: { state: "down"; endpoint: string; reason: string } | { state: "up"; endpoint: string; downMs: number }) => void;
  /** only look (status, dashboard): nothing is created, no background work */
  readOnly?: boolean;
}

/** "JetStream at nats://…" or "Redis at host:port": for log lines. */
export function queueEngineName(config: Config): string {
  const n = config.channelConfig.nats;
  if (n) return `NATS JetStream (${n.url})`;
  const r = config.channelConfig.redis;
  return `Redis (${r.redisHost}:${r.redisPort})`;
}

export async function openQueue(config: Config, options: OpenQueueOptions = {}): Promise<RedisQueue | NatsQueue> {
  if (!config.channelConfig.nats) return RedisQueue.connect(config, options);
  const r = config.channelConfig.redis;
  const dedupRedis = options.readOnly || config.crawler.dedupTtlSecs === 0 ? undefined : await openConnection(r, "command", r.connectTimeoutMs, `${config.name}:dedup`);
  try {
    const { NatsQueue } = await import("./nats/nats-queue.ts");
    return await NatsQueue.connect(config, { ...options, dedupRedis, closeDedupRedis: true });
  } catch (err) {
    dedupRedis?.disconnect();
    throw err;
  }
}
