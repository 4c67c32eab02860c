// Settlement failures are per-message failures: a rejected ack or a failing seen-set never
// errors a flow (the worker still stops gracefully), and a delivery still being worked on is
// touched so another worker does not claim it (Redis: XCLAIM ... JUSTID).
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { lastValueFrom } from "rxjs";
import { afterEach, describe, expect, it } from "vitest";
import { type Config, defaultConfig } from "../src/config/index.ts";
import { createHttpClient } from "../src/engine/standalone.ts";
import { Worker } from "../src/engine/worker.ts";
import { EventBus } from "../src/events/bus.ts";
import type { CrawlEvent } from "../src/events/events.ts";
import { request, type Topic } from "../src/model/index.ts";
import { defineModule } from "../src/modules/define.ts";
import { ModuleRegistry } from "../src/modules/registry.ts";
import { enqueueRequests } from "../src/queue/enqueue-requests.ts";
import { MemoryQueue } from "../src/queue/memory-queue.ts";
import type { Delivery, Queue } from "../src/queue/queue.ts";
import { RedisQueue } from "../src/queue/redis/index.ts";
import { MemoryRateLimiter } from "../src/ratelimit/memory-limiter.ts";
import { JsonlSink } from "../src/storage/jsonl-sink.ts";
import { ack, dedup, fromQueue, retry } from "../operators/index.ts";
import { html, startServer, type TestServer } from "./helpers/http-server.ts";
import { deleteNamespace, redisTestConfig, requireRedis } from "./helpers/redis.ts";
import { waitFor } from "./helpers/worker-process.ts";

await requireRedis("settlement");

/** A memory queue whose ack rejects for deliveries whose URL matches `failing` (counting the tries). */
class AckFailingQueue extends MemoryQueue {
  attemptsOnFailing = 0;
  acked = 0;
  constructor(private readonly failing: RegExp) {
    super();
  }
  override ack(delivery: Delivery<Topic>): Promise<void> {
    const url = (delivery.message as { url?: unknown }).url;
    if (typeof url === "string" && this.failing.test(url)) {
      this.attemptsOnFailing++;
      return Promise.reject(new Error("XACK refused (test)"));
    }
    this.acked++;
    return super.ack(delivery);
  }
}

const pages = defineModule({
  name: "pages",
  start: () => [],
  parse(page, ctx) {
    ctx.emit({ url: page.url });
  },
});

function workerConfig(outDir: string, patch: (c: Config) => void = () => {}): Config {
  const c = defaultConfig();
  c.crawler.obeyRobotsTxt = false;
  c.crawler.taskConcurrency = 4;
  // requests are enqueued here directly, not from a start URL that names the test server's host
  c.downloadConfig.allowPrivateHosts = ["127.0.0.1"];
  c.output.path = outDir;
  patch(c);
  return c;
}

function startWorkerOn(config: Config, queue: Queue, events: EventBus, sink: JsonlSink): { worker: Worker; running: Promise<void> } {
  const registry = new ModuleRegistry().register(pages);
  const worker = new Worker(
    { config, queue, registry, sink, events, downloader: createHttpClient(config), limiter: new MemoryRateLimiter() },
    ["download", "parse"],
  );
  return { worker, running: worker.run() };
}

async function itemLines(file: string): Promise<string[]> {
  return (await readFile(file, "utf8").catch(() => "")).split("\n").filter(Boolean);
}

let server: TestServer | undefined;
let dir: string | undefined;
let name = "";
afterEach(async () => {
  await server?.close();
  server = undefined;
  if (dir) await rm(dir, { recursive: true, force: true });
  dir = undefined;
  if (name) await deleteNamespace(name);
  name = "";
});

describe("a failed settlement is a per-message failure", () => {
  it("a rejected ack: retried, reported as an error event; the flow goes on and the worker stops gracefully", async () => {
    server = await startServer((_req, res) => html(res, "<p>ok</p>"));
    dir = await mkdtemp(join(tmpdir(), "mocra-settle-"));
    const queue = new AckFailingQueue(/\/p\/3$/);
    const events = new EventBus();
    const seen: CrawlEvent[] = [];
    events.events$.subscribe((e) => seen.push(e));
    const sink = new JsonlSink(dir);
    await enqueueRequests(queue, Array.from({ length: 20 }, (_, i) => request({ url: `${server!.url}/p/${i}`, module: "pages" })));
    const { worker, running } = startWorkerOn(workerConfig(dir), queue, events, sink);
    let flowError: unknown;
    running.catch((err: unknown) => (flowError = err));

    await waitFor("19 acks and 3 tries at the failing one", async () => queue.acked >= 19 && queue.attemptsOnFailing >= 3, 30_000, 20);
    expect(flowError).toBeUndefined();
    await worker.stop("test", 10_000);
    await expect(running).resolves.toBeUndefined();
    await sink.close();

    expect(queue.attemptsOnFailing).toBe(3); // the first try and two retries, then reported
    const ackErrors = seen.filter((e) => e.type === "error" && e.stage === "ack");
    expect(ackErrors).toHaveLength(1);
    expect(ackErrors[0]).toMatchObject({ message: expect.stringContaining("stays pending") });
    expect(await itemLines(join(dir, "pages.jsonl"))).toHaveLength(20); // its items were stored before the ack
    expect(seen.some((e) => e.type === "worker_stopped")).toBe(true);
  });

  it("a seen-set that throws fails that request as retryable; a failed dedup ack does not error the chain", async () => {
    const queue = new AckFailingQueue(/\/dup$/);
    const events = new EventBus();
    const seen: CrawlEvent[] = [];
    events.events$.subscribe((e) => seen.push(e));
    const keys = new Set<string>();
    let failNext = true;
    const flaky = {
      add(key: string): Promise<boolean> {
        if (failNext) {
          failNext = false;
          return Promise.reject(new Error("seen-set unreachable (test)"));
        }
        const fresh = !keys.has(key);
        keys.add(key);
        return Promise.resolve(fresh);
      },
    };
    // two distinct deliveries of one URL (no queue-side dedup): the second is dropped by dedup()
    await queue.publish("request", [{ message: request({ url: "http://127.0.0.1:9/a", module: "pages" }) }]);
    await queue.publish("request", [{ message: request({ url: "http://127.0.0.1:9/dup", module: "pages" }) }]);
    await queue.publish("request", [{ message: request({ url: "http://127.0.0.1:9/dup", module: "pages" }) }]);
    const stop = new AbortController();
    const flow = fromQueue(queue, "request", { prefetch: 4, signal: stop.signal }).pipe(
      dedup(flaky, { events }),
      ack({ events }),
      retry({ policy: { maxRetries: 3, baseDelayMs: 20, maxDelayMs: 40 }, events }),
    );
    const done = lastValueFrom(flow, { defaultValue: null });
    await waitFor("three distinct deliveries settled", async () => keys.size === 2 && queue.attemptsOnFailing >= 6, 10_000, 10);
    stop.abort();
    await expect(done).resolves.not.toThrow();
    // the first request's seen-set failure became a retry, not a flow error
    expect(seen.filter((e) => e.type === "retry_scheduled" && e.reason.includes("dedup failed"))).toHaveLength(1);
    // /dup acked twice (once as new, once as a duplicate), each ack refused 3 times, reported
    expect(seen.filter((e) => e.type === "error" && e.stage === "ack")).toHaveLength(2);
  });
});

describe("long-running deliveries are touched", () => {
  it("a page slower than claim_min_idle is not claimed and fetched again by a second worker", async () => {
    let slowHits = 0;
    server = await startServer(async (req, res) => {
      if (req.url === "/slow") {
        slowHits++;
        await new Promise((r) => setTimeout(r, 4_500));
      }
      html(res, "<p>slow</p>");
    });
    dir = await mkdtemp(join(tmpdir(), "mocra-touch-"));
    const base = redisTestConfig((c) => {
      c.channelConfig.redis.claimMinIdle = 1_500; // touched every 750 ms: room for a loaded machine
      c.channelConfig.redis.claimInterval = 200;
    });
    name = base.name;
    const config = workerConfig(dir, (c) => {
      c.name = base.name;
      c.channelConfig = base.channelConfig;
      c.downloadConfig.timeout = 20;
    });
    const qa = await RedisQueue.connect(config);
    const qb = await RedisQueue.connect(config);
    const sinkA = new JsonlSink(join(dir, "a"));
    const sinkB = new JsonlSink(join(dir, "b"));
    const eventsB = new EventBus();
    const pagesB: CrawlEvent[] = [];
    eventsB.events$.subscribe((e) => e.type === "response_received" && pagesB.push(e));
    const workers: ReturnType<typeof startWorkerOn>[] = [];
    try {
      await enqueueRequests(qa, [request({ url: `${server.url}/slow`, module: "pages" })]);
      workers.push(startWorkerOn(config, qa, new EventBus(), sinkA));
      await waitFor("worker A fetching /slow", async () => slowHits === 1, 20_000, 20);
      workers.push(startWorkerOn(config, qb, eventsB, sinkB)); // its janitor claims entries idle > 1.5 s
      await waitFor("the item stored by A", async () => (await itemLines(join(dir!, "a", "pages.jsonl"))).length === 1, 30_000, 50);
      await new Promise((r) => setTimeout(r, 2_000)); // time for a wrong reclaim to show
      expect(slowHits).toBe(1);
      expect(pagesB).toHaveLength(0);
    } finally {
      await Promise.all(workers.map((w) => w.worker.stop("test", 10_000)));
      await Promise.all(workers.map((w) => w.running.catch(() => {})));
      await sinkA.close();
      await sinkB.close();
      await qa.close();
      await qb.close();
    }
  }, 60_000);
});
