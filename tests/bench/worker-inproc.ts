// tests/bench/worker-inproc.ts: one mocra worker in this process on the Redis queue (the same
// pieces start-worker puts together: RedisQueue, RedisItemSink, HttpClient, all roles), crawling
// the mock shop, with two latencies recorded per page:
//   download  HttpClient.fetch(): from handing the request to the HTTP client to the whole body
//             read (includes waiting for a connection of the client's pool);
//   page      from the start of the download to the page's items being durable in Redis (the
//             sink's write resolved): download + parse + sink (item pages only, 98% of pages).
// Queue wait (publish → read) is not included: the message's enqueue time is not on it.
//
//   node --import tsx tests/bench/worker-inproc.ts --url URL --items N --concurrency C --redis-port P [--max-secs S]
//
// Prints RESULT {"pages","items","ms","cpuMs","peakRssMb","download":{p50,p99,...},"page":{...}}.
import { loadRegistry } from "../../src/commands/common.ts";
import { defaultConfig } from "../../src/config/index.ts";
import { ALL_ROLES } from "../../src/engine/flows.ts";
import { createHttpClient } from "../../src/engine/standalone.ts";
import { Worker } from "../../src/engine/worker.ts";
import { EventBus } from "../../src/events/bus.ts";
import { CrawlStats } from "../../src/events/stats.ts";
import { fingerprint, type Request, taskModel } from "../../src/model/index.ts";
import { RedisQueue } from "../../src/queue/redis/index.ts";
import { MemoryRateLimiter } from "../../src/ratelimit/memory-limiter.ts";
import { RedisItemSink } from "../../src/storage/redis-sink.ts";
import type { ItemBatch, ItemSink } from "../../src/storage/sink.ts";
import type { Downloader } from "../../operators/index.ts";
import { deleteNamespace } from "../helpers/redis.ts";
import { argValue, numArg, percentile, printResult, rssSampler, sleep } from "./common.ts";

const url = argValue("url");
if (!url) throw new Error("--url is required");
const items = numArg("items", 20_000);
const concurrency = numArg("concurrency", 64);
const redisPort = numArg("redis-port", 6379);
const maxSecs = numArg("max-secs", 0);

const config = defaultConfig();
config.name = `bench_inproc_${Math.random().toString(36).slice(2, 8)}`;
config.crawler.taskConcurrency = concurrency;
config.downloadConfig.domainConcurrency = 0; // as benchmark_production's workers: no per-domain cap below C
config.crawler.shutdownTimeoutSecs = 5;
config.channelConfig.redis.redisPort = redisPort;
config.output.sink = "redis";
const registry = await loadRegistry(config, { demo_shop: { start_url: `${url}/list/0` } });
const queue = await RedisQueue.connect(config);
const redisSink = await RedisItemSink.connect(config);

const downloadMs: number[] = [];
const pageMs: number[] = [];
const startedAt = new Map<string, number>();
const http = createHttpClient(config);
const downloader: Downloader = {
  async fetch(req: Request) {
    const t = performance.now();
    startedAt.set(fingerprint(req), t);
    const res = await http.fetch(req);
    downloadMs.push(performance.now() - t);
    return res;
  },
};
const sink: ItemSink = {
  async write(batch: ItemBatch) {
    const stored = await redisSink.write(batch);
    const t = startedAt.get(batch.fingerprint);
    if (t !== undefined) {
      pageMs.push(performance.now() - t);
      startedAt.delete(batch.fingerprint);
    }
    return stored;
  },
  describe: () => redisSink.describe(),
  close: () => redisSink.close(),
};

const events = new EventBus();
const stats = new CrawlStats(events);
const worker = new Worker({ config, queue, registry, sink, events, downloader, limiter: new MemoryRateLimiter() }, ALL_ROLES);
const rss = rssSampler(1000);
const cpu0 = process.cpuUsage();
const crawlStartUs = Number(process.hrtime.bigint() / 1000n);
const t0 = performance.now();
await queue.publish("task", [{ message: taskModel({ module: ["demo_shop"] }) }]);
const running = worker.run();
const deadline = maxSecs > 0 ? t0 + maxSecs * 1000 : Infinity;
while (stats.items < items && performance.now() < deadline) await sleep(20);
const ms = performance.now() - t0;
const crawlEndUs = Number(process.hrtime.bigint() / 1000n);
const pages = stats.pages;
const cpu = process.cpuUsage(cpu0);
const mem = rss.stop();
await worker.stop("benchmark done", 5000);
await running;
await sink.close();
await queue.close();
await deleteNamespace(config.name, redisPort);
const dist = (xs: number[]) => ({ n: xs.length, p50: percentile(xs, 50), p90: percentile(xs, 90), p99: percentile(xs, 99), max: percentile(xs, 100) });
printResult({
  pages,
  items: stats.items,
  partial: stats.items < items,
  ms,
  cpuMs: (cpu.user + cpu.system) / 1000,
  peakRssMb: mem.peak,
  crawlStartUs,
  crawlEndUs,
  download: dist(downloadMs),
  page: dist(pageMs),
});
process.exit(0);
