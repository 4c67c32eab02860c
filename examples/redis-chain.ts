import process from "node:process";
import { fileURLToPath } from "node:url";
import { lastValueFrom, merge, tap } from "rxjs";
import demoShop from "../modules/demo_shop.ts";
import {
  ack, connectRedisStream, download, fromRedisStream, generate, HttpClient, loadConfig, MemoryRateLimiter,
  ModuleRegistry, parse, rateLimit, RedisItemSink, retry, route,
} from "../src/index.ts";

/**
 * One crawler process over the shared Redis, composed by hand: it takes the tasks `submit` puts
 * there and the requests they lead to, and stores items in the Redis sink. Run as many as you
 * like; they share the work through the consumer group. Returns the pages it stored once `signal`
 * aborts and the messages in hand are settled.
 */
export async function runRedisChain(configPath: string | undefined, signal: AbortSignal): Promise<number> {
  const config = await loadConfig(configPath); // name, [channel_config.redis], [modules.demo_shop]
  const registry = new ModuleRegistry(config.modules).register(demoShop);
  const redis = await connectRedisStream(config); // the crawl's streams: read, publish, ack, reclaim
  const sink = await RedisItemSink.connect(config); // items once per page, whichever process stores them
  const timeoutSecs = config.downloadConfig.timeout;
  const policy = { maxRetries: 3, baseDelayMs: 500, maxDelayMs: 10_000 };
  let pages = 0;

  const tasks = fromRedisStream(redis, "task", { prefetch: 4, signal }).pipe(
    generate({ registry, queue: redis, backlog: 1_000, timeoutSecs }), // start() → the request stream
    ack(),
    retry({ policy }),
  );
  const requests = fromRedisStream(redis, "request", { prefetch: 32, signal }).pipe(
    rateLimit(new MemoryRateLimiter(), { rateOf: () => 200, maxWaitMs: 5_000 }), // per process
    download(new HttpClient({ userAgent: "my-bot/1.0", maxBodyBytes: 5e6, maxRedirects: 5 }), { concurrency: 16 }),
    parse(registry, { timeoutSecs }),
    route({ sink, queue: redis }), // items → Redis sink, follow-ups → request stream, then XACK
    tap((job) => job.ok && pages++),
    retry({ policy }),
  );
  try {
    await lastValueFrom(merge(tasks, requests), { defaultValue: null });
    return pages;
  } finally {
    await sink.close();
    await redis.close(); // flushes the acks; anything not settled stays pending for the others
  }
}

// `npx tsx examples/redis-chain.ts [config.toml]` (or `deno run -A ...`); SIGINT/SIGTERM stop it
if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const stop = new AbortController();
  for (const sig of ["SIGINT", "SIGTERM"] as const) process.once(sig, () => stop.abort());
  console.error("redis-chain: waiting for work (npx tsx src/cli.ts submit demo_shop)");
  console.error(`redis-chain stopped: ${await runRedisChain(process.argv[2], stop.signal)} pages`);
}
