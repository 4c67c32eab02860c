import { parseArgs } from "node:util";
import { type Config, cacheRedisConnection } from "../config/index.ts";
import { ALL_ROLES, type Role } from "../engine/flows.ts";
import { NodeRegistry } from "../engine/node-registry.ts";
import { createPoliteness } from "../engine/politeness.ts";
import { showProgress } from "../engine/progress.ts";
import { createHttpClient, createLocalSink } from "../engine/standalone.ts";
import { Worker } from "../engine/worker.ts";
import { EventBus } from "../events/bus.ts";
import { CrawlStats } from "../events/stats.ts";
import { BlobOffloadQueue } from "../queue/blob-offload-queue.ts";
import type { Queue } from "../queue/queue.ts";
import { openConnection } from "../queue/redis/connection.ts";
import { RedisQueue } from "../queue/redis/index.ts";
import { MemoryRateLimiter } from "../ratelimit/memory-limiter.ts";
import { onStopSignals } from "../runtime/index.ts";
import { FileBlobStorage } from "../storage/blob-storage.ts";
import { RedisItemSink } from "../storage/redis-sink.ts";
import type { ItemSink } from "../storage/sink.ts";
import { loadConfigFrom, loadRegistry, UsageError } from "./common.ts";

export const usage = `usage: start-worker [--config PATH] [--roles task,download,parse]

Joins the crawl in Redis (channel_config.redis) and works until SIGINT/SIGTERM; then stops
taking work, finishes and acks what is in flight, flushes the sink, and exits 0.

  --config PATH   config file (default: ./config.toml if present, else built-in defaults)
  --roles LIST    stages to run, comma-separated: task (expand tasks into requests), download,
                  parse (default: all). A download-only worker puts Responses on the "response"
                  topic for parse workers.
  -h, --help      this help`;

export function parseRoles(text: string | undefined): Role[] {
  if (text === undefined) return [...ALL_ROLES];
  const roles = text.split(",").map((r) => r.trim()).filter(Boolean);
  for (const r of roles) {
    if (!ALL_ROLES.includes(r as Role)) throw new UsageError(`unknown role ${JSON.stringify(r)}: roles are ${ALL_ROLES.join(", ")}`);
  }
  if (roles.length === 0) throw new UsageError("--roles needs at least one role");
  return roles as Role[];
}

/** The queue a worker uses: Redis, with large Response bodies offloaded when blob storage is set. */
export async function connectQueue(config: Config, onFatal: (err: Error) => void): Promise<Queue> {
  const redis = await RedisQueue.connect(config, { onFatal });
  const path = config.channelConfig.blobStorage.path;
  return path ? new BlobOffloadQueue(redis, new FileBlobStorage(path)) : redis;
}

export async function createWorkerSink(config: Config): Promise<ItemSink> {
  return config.output.sink === "redis" ? RedisItemSink.connect(config) : createLocalSink(config);
}

export async function startWorkerCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: { config: { type: "string" }, roles: { type: "string" }, help: { type: "boolean", short: "h" } },
  });
  if (values.help) {
    console.log(usage);
    return 0;
  }
  const roles = parseRoles(values.roles);
  const config = await loadConfigFrom(values.config);
  const registry = await loadRegistry(config);

  let fatal: Error | undefined;
  let requestStop: (reason: string) => void = () => {};
  const queue = await connectQueue(config, (err) => {
    fatal = err;
    requestStop(err.message);
  });
  const sink = await createWorkerSink(config);
  const events = new EventBus();
  const stats = new CrawlStats(events);
  // rate limits, concurrency leases, robots.txt, caches and backoff shared with every worker
  const r = config.channelConfig.redis;
  const cacheRedis = await openConnection(cacheRedisConnection(config), "command", r.connectTimeoutMs, `${config.name}:politeness`);
  const politeness = createPoliteness(config, cacheRedis, { events });
  const worker = new Worker(
    { config, queue, registry, sink, events, downloader: createHttpClient(config), limiter: new MemoryRateLimiter(), politeness },
    roles,
  );
  const nodes = await NodeRegistry.start(config, { id: worker.id, roles, pages: () => stats.pages });
  const stopProgress = showProgress(events, stats, {
    intervalSecs: config.crawler.progressIntervalSecs,
    tty: false,
    queued: () => queue.depth("request"),
  });
  console.error(`worker ${worker.id} (${roles.join(", ")}) joined ${config.name} on Redis; modules: ${registry.names().join(", ") || "none"}`);

  const stopped = new Promise<string>((resolve) => {
    requestStop = resolve;
  });
  const removeSignals = onStopSignals(requestStop, (sig) => {
    console.error(`${sig} again: exiting now; un-acked work will be re-delivered to other workers`);
    process.exit(130);
  });
  const running = worker.run();
  const reason = await Promise.race([stopped, running.then(() => "flows ended")]);
  console.error(`stopping (${reason}): finishing in-flight work`);
  const outcome = await worker.stop(reason, config.crawler.shutdownTimeoutSecs * 1000);
  await running.catch((err: unknown) => console.error(`worker flow failed: ${String(err)}`));
  stopProgress();
  await sink.close();
  await nodes.stop();
  await politeness.close();
  cacheRedis.disconnect();
  await queue.close();
  removeSignals();
  stats.stop();
  console.error(
    `worker ${worker.id} stopped: ${stats.pages} pages, ${stats.items} items, ${stats.retries} retries, ${stats.deadLetters} dead letters; items: ${sink.describe()}`,
  );
  if (fatal) {
    console.error(`fatal: ${fatal.message}`);
    return 1;
  }
  if (outcome === "timeout") {
    console.error(
      `shutdown: in-flight work outlasted shutdown_timeout_secs (${config.crawler.shutdownTimeoutSecs} s); ` +
        "what it still held stays pending in Redis and is re-delivered (claimed after claim_min_idle)",
    );
    return 1;
  }
  return 0;
}
