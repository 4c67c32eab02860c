// Politeness waits defer a message without spending its retry budget, on the memory and the
// Redis queue; a crawl of a host that answers 429 + Retry-After while other pages answer 503
// twice gets every page with the default budget.
import { afterEach, describe, expect, it } from "vitest";
import { defineModule } from "../src/modules/define.ts";
import { request } from "../src/model/index.ts";
import { MemoryQueue } from "../src/queue/memory-queue.ts";
import type { Delivery } from "../src/queue/queue.ts";
import { RedisQueue } from "../src/queue/redis/index.ts";
import { cleanup, crawl, testConfig } from "./helpers/crawl.ts";
import { html, startServer, type TestServer } from "./helpers/http-server.ts";
import { deleteNamespace, redisTestConfig, requireRedis } from "./helpers/redis.ts";

await requireRedis("deferral tests");
const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => {});
});

async function readOne(q: MemoryQueue | RedisQueue, timeoutMs = 5000): Promise<Delivery<"request">> {
  const t0 = Date.now();
  while (Date.now() - t0 < timeoutMs) {
    const [d] = await q.read("request", 1, 200);
    if (d) return d;
  }
  throw new Error("nothing delivered");
}

describe("defer", () => {
  const queues: Array<[string, () => Promise<MemoryQueue | RedisQueue | undefined>]> = [
    ["memory", () => Promise.resolve(new MemoryQueue())],
    [
      "redis",
      async () => {
        const config = redisTestConfig();
        const q = await RedisQueue.connect(config, { onError: () => {}, delayedPollMs: 50 });
        cleanups.push(() => deleteNamespace(config.name));
        cleanups.push(() => q.close());
        return q;
      },
    ],
  ];
  for (const [label, open] of queues) {
    it(`${label}: a deferred message comes back after the delay with the same attempt; a retry adds one`, async () => {
      const q = await open();
      if (!q) return;
      await q.publish("request", [{ message: request({ url: "http://a.test/" }) }]);
      const d1 = await readOne(q);
      expect(d1.attempt).toBe(1);
      await q.defer(d1, 100, "held back");
      expect(await q.depth("request")).toBe(1); // deferred work counts as queued
      expect((await q.stats()).request.delayed).toBe(1);
      const d2 = await readOne(q);
      expect(d2.attempt).toBe(1);
      await q.retryLater(d2, 0, "HTTP 503");
      const d3 = await readOne(q);
      expect(d3.attempt).toBe(2);
      await q.defer(d3, 0, "held back");
      expect((await readOne(q)).attempt).toBe(2);
    });
  }
});

describe("a crawl through 429 + Retry-After and 503s", () => {
  let server: TestServer | undefined;
  afterEach(async () => {
    await server?.close();
    server = undefined;
  });

  it("gets every page with the default retry budget; retries and deferrals are counted apart", async () => {
    const PAGES = 12;
    const flaky = new Set([2, 5, 8, 11]); // 503 twice, then 200
    const served = new Map<number, number>(); // non-429 answers per page
    let throttledUntil = 0;
    let throttles = 0;
    server = await startServer((req, res) => {
      const url = new URL(req.url ?? "/", "http://x");
      if (url.pathname === "/robots.txt") return html(res, "", 404);
      // the whole host throttles for 400 ms after the 4th request, twice
      const now = Date.now();
      const total = [...server!.hits.values()].reduce((a, b) => a + b, 0);
      if ((total === 4 || total === 20) && now >= throttledUntil) {
        throttledUntil = now + 400;
        throttles++;
      }
      if (now < throttledUntil) {
        res.writeHead(429, { "retry-after": "1" }).end();
        return;
      }
      if (url.pathname === "/") return html(res, Array.from({ length: PAGES }, (_, i) => `<a href="/p/${i}">${i}</a>`).join(""));
      const n = Number(url.pathname.slice(3));
      const k = (served.get(n) ?? 0) + 1;
      served.set(n, k);
      if (flaky.has(n) && k <= 2) return html(res, "busy", 503);
      html(res, `<h1>page ${n}</h1>`);
    });
    const config = await testConfig(); // request_max_retries = 3: the default
    expect(config.crawler.requestMaxRetries).toBe(3);
    const site = defineModule({
      name: "throttled",
      start: () => [`${server!.url}/`],
      parse(page, ctx) {
        if (page.url.includes("/p/")) ctx.emit({ title: page.text("h1") });
        ctx.follow(page.links("a"));
      },
    });
    try {
      const run = await crawl(config, [site]);
      expect(throttles).toBeGreaterThanOrEqual(1);
      expect(run.items.map((i) => i.title).sort()).toEqual(Array.from({ length: PAGES }, (_, i) => `page ${i}`).sort());
      expect(run.stats.deadLetters).toBe(0);
      expect(run.stats.retries).toBe(flaky.size * 2); // the 503s, and nothing else
      expect(run.stats.deferred).toBeGreaterThan(0); // the 429 and the held-back host
      for (const n of flaky) expect(served.get(n)).toBe(3);
    } finally {
      await cleanup(config);
    }
  }, 30_000);
});
