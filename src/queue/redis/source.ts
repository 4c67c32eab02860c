// src/queue/redis/source.ts: opening the Redis queue of a crawl from what a chain builder has at
// hand — a Config, a redis:// URL, an ioredis client, or mocra's [channel_config.redis] fields —
// plus the crawl's namespace `name`.
import type { Redis } from "ioredis";
import { type Codec, codecByName } from "../../codec/index.ts";
import { type ChannelRedisConfig, type Config, defaultConfig } from "../../config/index.ts";
import { RedisQueue, type RedisQueueOptions } from "./redis-queue.ts";

/** Where a crawl's streams live. */
export type RedisStreamSource =
  /** a loaded config.toml: `name` and `[channel_config]` as start-worker uses them */
  | Config
  /** `redis://[user:password@]host[:port][/db]`; `rediss://` for TLS */
  | { name: string; url: string }
  /** an ioredis client: its host, port, db and credentials (the queue opens its own connections, as it blocks on reads) */
  | { name: string; client: Redis }
  /** mocra's `[channel_config.redis]` fields (camelCase), defaults for the rest */
  | { name: string; redis: Partial<ChannelRedisConfig> };

export interface RedisStreamOptions {
  /** the consumer name in the group (default `<uuid-v4>-0`, as mocra's listener 0) */
  consumer?: string;
  /** payload codec: "json", "msgpack", or a Codec (default: channel_config.queue_codec) */
  codec?: string | Codec;
  /** called once if Redis stays unreachable past reconnect_budget_secs */
  onFatal?: RedisQueueOptions["onFatal"];
}

const isConfig = (s: RedisStreamSource): s is Config => "channelConfig" in s;

/** The Config a source stands for (defaults for everything it does not say). */
export function redisSourceConfig(source: RedisStreamSource): Config {
  if (isConfig(source)) return source;
  const config = defaultConfig();
  if (!source.name) throw new RangeError("a Redis stream source needs the crawl's name (the namespace of its keys)");
  config.name = source.name;
  const r = config.channelConfig.redis;
  if ("url" in source) Object.assign(r, fromUrl(source.url));
  else if ("client" in source) {
    const o = source.client.options;
    Object.assign(r, { redisHost: o.host ?? r.redisHost, redisPort: o.port ?? r.redisPort, redisDb: o.db ?? 0, redisUsername: o.username ?? "", redisPassword: o.password ?? "", tls: o.tls !== undefined });
  } else Object.assign(r, source.redis);
  return config;
}

function fromUrl(text: string): Partial<ChannelRedisConfig> {
  let u: URL;
  try {
    u = new URL(text);
  } catch {
    throw new RangeError(`not a Redis URL: ${JSON.stringify(text)} (expected redis://host:port/db)`);
  }
  if (u.protocol !== "redis:" && u.protocol !== "rediss:") {
    throw new RangeError(`unsupported Redis URL scheme ${JSON.stringify(u.protocol)} in ${JSON.stringify(text)}: use redis:// (or rediss:// for TLS)`);
  }
  const db = u.pathname.replace(/^\//, "");
  if (db !== "" && !/^\d+$/.test(db)) throw new RangeError(`the Redis database in ${JSON.stringify(text)} must be a number, got ${JSON.stringify(db)}`);
  return {
    redisHost: u.hostname.replace(/^\[|\]$/g, "") || "127.0.0.1",
    redisPort: u.port ? Number(u.port) : 6379,
    redisDb: db === "" ? 0 : Number(db),
    redisUsername: decodeURIComponent(u.username),
    redisPassword: decodeURIComponent(u.password),
    tls: u.protocol === "rediss:",
  };
}

/**
 * Connects the crawl's Redis queue (the RedisQueue every worker uses: consumer group reads with
 * credit, strict priorities, reclaim of idle entries, delayed retries, dead letters). Read it with
 * `fromRedisStream`, publish to it with `toQueue` / `route`, and `close()` it when done.
 */
export function connectRedisStream(source: RedisStreamSource, options: RedisStreamOptions = {}): Promise<RedisQueue> {
  const config = redisSourceConfig(source);
  const codec = typeof options.codec === "string" ? codecByName(options.codec) : options.codec;
  return RedisQueue.connect(config, { consumerName: options.consumer, codec, onFatal: options.onFatal });
}
