// tests/helpers/polite-crawl.ts: crawl with one or more in-process workers on one in-memory
// queue, each worker with its own politeness kit (Redis-backed when a connection is given): two
// workers with two kits on one Redis behave, for politeness, like two worker processes.
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Redis } from "ioredis";
import { type Config, defaultConfig } from "../../src/config/index.ts";
import { createPoliteness, type PolitenessKit } from "../../src/engine/politeness.ts";
import { ALL_ROLES } from "../../src/engine/flows.ts";
import { createHttpClient } from "../../src/engine/standalone.ts";
import { Worker } from "../../src/engine/worker.ts";
import { EventBus } from "../../src/events/bus.ts";
import type { CrawlEvent } from "../../src/events/events.ts";
import { taskModel } from "../../src/model/index.ts";
import type { CrawlModule } from "../../src/modules/define.ts";
import { ModuleRegistry } from "../../src/modules/registry.ts";
import { MemoryQueue } from "../../src/queue/memory-queue.ts";
import { MemoryRateLimiter } from "../../src/ratelimit/memory-limiter.ts";
import { JsonlSink } from "../../src/storage/jsonl-sink.ts";

export async function politeConfig(patch: (c: Config) => void = () => {}): Promise<Config> {
  const c = defaultConfig();
  c.output.path = await mkdtemp(join(tmpdir(), "mocra-polite-"));
  c.crawler.retryBaseDelayMs = 50;
  c.crawler.retryMaxDelayMs = 400;
  c.crawler.shutdownTimeoutSecs = 5;
  patch(c);
  return c;
}

export interface PoliteRun {
  events: CrawlEvent[];
  items: Record<string, unknown>[];
  queue: MemoryQueue;
  kits: PolitenessKit[];
  /** downloads made by each worker */
  fetches: number[];
  elapsedMs: number;
}

/**
 * Runs the modules to completion with `workers` Workers on one MemoryQueue; each worker gets
 * its own kit from createPoliteness(config, redis?). `timeoutMs` bounds the run.
 */
export async function politeCrawl(
  config: Config,
  modules: CrawlModule<any>[],
  options: { workers?: number; redis?: Redis[]; timeoutMs?: number; kitOptions?: Parameters<typeof createPoliteness>[2] } = {},
): Promise<PoliteRun> {
  const registry = new ModuleRegistry(config.modules);
  for (const m of modules) registry.register(m as CrawlModule<unknown>);
  const bus = new EventBus();
  const events: CrawlEvent[] = [];
  bus.events$.subscribe((e) => events.push(e));
  const queue = new MemoryQueue();
  const sink = new JsonlSink(config.output.path);
  const n = options.workers ?? 1;
  const kits: PolitenessKit[] = [];
  const workers: Worker[] = [];
  const fetches = Array.from({ length: n }, () => 0);
  for (let i = 0; i < n; i++) {
    const http = createHttpClient(config);
    const downloader = { fetch: (req: Parameters<typeof http.fetch>[0]) => (fetches[i]++, http.fetch(req)) };
    const limiter = new MemoryRateLimiter();
    const kit = createPoliteness(config, options.redis?.[i], { limiter, events: bus, ...options.kitOptions });
    kits.push(kit);
    workers.push(
      new Worker({ config, queue, registry, sink, events: bus, downloader, limiter, politeness: kit }, i === 0 ? ALL_ROLES : ["download", "parse"]),
    );
  }
  await queue.publish(
    "task",
    modules.map((m) => ({ message: taskModel({ module: [m.name] }) })),
  );
  const started = performance.now();
  const running = workers.map((w) => w.run());
  await new Promise<void>((resolve, reject) => {
    const deadline = Date.now() + (options.timeoutMs ?? 50_000);
    const timer = setInterval(() => {
      if (queue.isDrained()) {
        clearInterval(timer);
        resolve();
      } else if (Date.now() > deadline) {
        clearInterval(timer);
        reject(new Error("crawl did not drain in time"));
      }
    }, 10);
  });
  const elapsedMs = performance.now() - started;
  await Promise.all(workers.map((w) => w.stop("drained", 5000)));
  await Promise.all(running);
  await sink.close();
  await queue.close();
  await Promise.all(kits.map((k) => k.close()));
  const items: Record<string, unknown>[] = [];
  for (const m of modules) {
    const text = await readFile(join(config.output.path, `${m.name}.jsonl`), "utf8").catch(() => "");
    for (const line of text.split("\n")) if (line) items.push(JSON.parse(line));
  }
  await rm(config.output.path, { recursive: true, force: true });
  return { events, items, queue, kits, fetches, elapsedMs };
}
