// Crawl bounds against an endless calendar (`/cal?day=N` links to the next days): max_depth and
// max_requests stop it with the exact number of requests at the server, standalone and with two
// workers sharing one run's budget through Redis.
import { afterEach, describe, expect, it } from "vitest";
import { type BudgetStore, MemoryBudgetStore, RedisBudgetStore } from "../src/bounds/budget-store.ts";
import { depthOf, withDepth } from "../src/bounds/bounds.ts";
import type { Config } from "../src/config/index.ts";
import { ALL_ROLES, createBounds } from "../src/engine/flows.ts";
import { createHttpClient } from "../src/engine/standalone.ts";
import { Worker } from "../src/engine/worker.ts";
import { EventBus } from "../src/events/bus.ts";
import type { CrawlEvent } from "../src/events/events.ts";
import { metaData, taskModel } from "../src/model/index.ts";
import { defineModule } from "../src/modules/define.ts";
import { ModuleRegistry } from "../src/modules/registry.ts";
import { RedisQueue } from "../src/queue/redis/index.ts";
import { MemoryRateLimiter } from "../src/ratelimit/memory-limiter.ts";
import { JsonlSink } from "../src/storage/jsonl-sink.ts";
import { formatStatus, readStatus } from "../src/commands/status.ts";
import { cleanup, crawl, testConfig, waitDrained } from "./helpers/crawl.ts";
import { html, startServer, type TestServer } from "./helpers/http-server.ts";
import { deleteNamespace, rawClient, redisTestConfig, requireRedis } from "./helpers/redis.ts";

await requireRedis("bounds tests");

let server: TestServer | undefined;
const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => {});
  await server?.close();
  server = undefined;
});

/** An endless calendar: each day links the next `fanOut` days. */
async function calendar(fanOut: number): Promise<TestServer> {
  return startServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://x");
    if (url.pathname === "/robots.txt") return html(res, "", 404);
    const day = Number(url.searchParams.get("day") ?? 0);
    const links = Array.from({ length: fanOut }, (_, i) => `<a href="/cal?day=${day + i + 1}">next</a>`).join("");
    html(res, `<h1>day ${day}</h1>${links}`);
  });
}

const calendarHits = (s: TestServer) => [...s.hits.entries()].filter(([p]) => p.startsWith("/cal")).reduce((n, [, k]) => n + k, 0);

const calendarModule = (base: () => string, settings = {}) =>
  defineModule({
    name: "calendar",
    start: () => [`${base()}/cal?day=0`],
    parse(page, ctx) {
      ctx.emit({ day: page.text("h1") });
      ctx.follow(page.links("a"));
    },
    settings,
  });

describe("depth", () => {
  it("travels in meta.task, keeping what else is there", () => {
    expect(depthOf(metaData())).toBe(0);
    const m = withDepth(metaData({ task: { keep: "me" } }), 3);
    expect(m.task).toEqual({ keep: "me", depth: 3 });
    expect(depthOf(m)).toBe(3);
  });
});

describe("an endless calendar, standalone", () => {
  it("max_depth = 3 stops it after exactly 4 requests (days 0..3)", async () => {
    server = await calendar(1);
    const config = await testConfig((c) => (c.crawler.maxDepth = 3));
    try {
      const run = await crawl(config, [calendarModule(() => server!.url)]);
      expect(calendarHits(server)).toBe(4);
      expect(run.items.map((i) => i.day).sort()).toEqual(["day 0", "day 1", "day 2", "day 3"]);
      expect(run.events.some((e) => e.type === "bounded" && e.bound === "max_depth")).toBe(true);
    } finally {
      await cleanup(config);
    }
  });

  it("a module's maxDepth wins over [crawler] max_depth", async () => {
    server = await calendar(1);
    const config = await testConfig((c) => (c.crawler.maxDepth = 3));
    try {
      await crawl(config, [calendarModule(() => server!.url, { maxDepth: 1 })]);
      expect(calendarHits(server)).toBe(2);
    } finally {
      await cleanup(config);
    }
  });

  it("max_requests = 25 stops a fanning-out calendar after exactly 25 requests; in-flight work finishes", async () => {
    server = await calendar(3);
    const config = await testConfig((c) => (c.crawler.maxRequests = 25));
    try {
      const run = await crawl(config, [calendarModule(() => server!.url)]);
      expect(calendarHits(server)).toBe(25);
      expect(run.items).toHaveLength(25);
      const spent = run.events.filter((e) => e.type === "budget_spent");
      expect(spent).toEqual([expect.objectContaining({ module: "calendar", budget: "max_requests", limit: 25 })]);
    } finally {
      await cleanup(config);
    }
  });

  it("max_items = 10 stops enqueueing once 10 items are stored", async () => {
    server = await calendar(1);
    const config = await testConfig((c) => (c.crawler.maxItems = 10));
    try {
      const run = await crawl(config, [calendarModule(() => server!.url)]);
      // a linear calendar has one page in flight at a time: exactly 10
      expect(run.items).toHaveLength(10);
      expect(calendarHits(server)).toBe(10);
    } finally {
      await cleanup(config);
    }
  });
});

/** Two in-process workers, each with its own Redis queue and budget connection, on one crawl. */
async function crawlOnRedis(config: Config, fanOut: number): Promise<{ events: CrawlEvent[] }> {
  const registry = new ModuleRegistry(config.modules).register(calendarModule(() => server!.url));
  const bus = new EventBus();
  const events: CrawlEvent[] = [];
  bus.events$.subscribe((e) => events.push(e));
  const sink = new JsonlSink(config.output.path);
  const workers: Worker[] = [];
  const queues: RedisQueue[] = [];
  cleanups.push(() => deleteNamespace(config.name));
  for (let i = 0; i < 2; i++) {
    const queue = await RedisQueue.connect(config, { onError: () => {}, delayedPollMs: 50 });
    queues.push(queue);
    const conn = rawClient();
    cleanups.push(async () => conn.disconnect());
    const store: BudgetStore = new RedisBudgetStore(conn, config.name, 600);
    const bounds = createBounds(config, registry, store, bus);
    workers.push(
      new Worker({ config, queue, registry, sink, events: bus, downloader: createHttpClient(config), limiter: new MemoryRateLimiter(), bounds }, ALL_ROLES),
    );
  }
  await queues[0].publish("task", [{ message: taskModel({ module: ["calendar"] }) }]);
  const running = workers.map((w) => w.run());
  await waitDrained(queues[0], 40_000, `not drained (fan-out ${fanOut})`);
  await Promise.all(workers.map((w) => w.stop("drained", 5000)));
  await Promise.all(running);
  await sink.close();
  for (const q of queues) await q.close();
  return { events };
}

describe("an endless calendar, two Redis workers", () => {
  it("share one run's max_requests budget: exactly 30 requests at the server; status says it is spent", async () => {
    server = await calendar(3);
    const base = await testConfig();
    const config = redisTestConfig((c) => {
      c.output = base.output;
      c.crawler.maxRequests = 30;
      c.crawler.retryBaseDelayMs = 50;
    });
    try {
      const { events } = await crawlOnRedis(config, 3);
      expect(calendarHits(server)).toBe(30);
      expect(events.filter((e) => e.type === "budget_spent").length).toBeGreaterThanOrEqual(1);
      const status = await readStatus(config);
      expect(status.budgets).toEqual([expect.objectContaining({ module: "calendar", requests: 30, exhausted: "max_requests", limit: 30 })]);
      expect(formatStatus(status)).toMatch(/runs with a budget:\n {2}run \S+ module calendar: 30 requests, 30 items; max_requests 30 reached: enqueueing stopped/);
    } finally {
      await cleanup(base);
    }
  }, 60_000);

  it("stop at max_depth on any worker: exactly 6 requests for max_depth = 5", async () => {
    server = await calendar(1);
    const base = await testConfig();
    const config = redisTestConfig((c) => {
      c.output = base.output;
      c.crawler.maxDepth = 5;
    });
    try {
      await crawlOnRedis(config, 1);
      expect(calendarHits(server)).toBe(6);
    } finally {
      await cleanup(base);
    }
  }, 60_000);
});

describe("budget stores agree", () => {
  const stores: Array<[string, () => BudgetStore | undefined]> = [
    ["memory", () => new MemoryBudgetStore()],
    ["redis", () => {
      const conn = rawClient();
      const name = redisTestConfig().name;
      cleanups.push(async () => conn.disconnect());
      cleanups.push(() => deleteNamespace(name));
      return new RedisBudgetStore(conn, name, 60);
    }],
  ];
  for (const [label, make] of stores) {
    it(`${label}: each fingerprint counts once, the last slot says so, then new ones are refused`, async () => {
      const store = make();
      if (!store) return;
      const key = { runId: "r1", module: "m" };
      expect(await store.takeRequest(key, "a", 2)).toBe("ok");
      expect(await store.takeRequest(key, "a", 2)).toBe("ok");
      expect(await store.takeRequest(key, "b", 2)).toBe("last");
      expect(await store.takeRequest(key, "c", 2)).toEqual({ refused: { budget: "max_requests", limit: 2 } });
      expect(await store.takeRequest(key, "b", 2)).toBe("ok"); // a retry of a counted request
      const other = { runId: "r2", module: "m" };
      expect(await store.addItems(other, 3, 5)).toBeUndefined();
      expect(await store.addItems(other, 2, 5)).toEqual({ budget: "max_items", limit: 5 });
      expect(await store.addItems(key, 1, 0)).toEqual({ budget: "max_requests", limit: 2 }); // spent by requests
      expect(await store.takeRequest(other, "x", 0)).toEqual({ refused: { budget: "max_items", limit: 5 } });
      const states = await store.list();
      expect(states.find((s) => s.runId === "r1")).toMatchObject({ requests: 2, exhausted: "max_requests", limit: 2 });
      expect(states.find((s) => s.runId === "r2")).toMatchObject({ items: 5, exhausted: "max_items", limit: 5 });
    });
  }
});
