import { afterEach, describe, expect, it } from "vitest";
import { type ShopServer, startShop } from "../examples/demo-shop/shop.ts";
import { defineModule } from "../src/modules/define.ts";
import { cleanup, crawl, expectFetchedOnceBarRetries, testConfig } from "./helpers/crawl.ts";
import { html, startServer, type TestServer } from "./helpers/http-server.ts";
import demoShop from "../modules/demo_shop.ts";
import type { Config } from "../src/config/index.ts";

let shop: ShopServer | undefined;
let server: TestServer | undefined;
let config: Config | undefined;

afterEach(async () => {
  await shop?.close();
  await server?.close();
  if (config) await cleanup(config);
  shop = server = config = undefined;
});

describe("standalone crawl of the demo shop", () => {
  it("fetches every reachable page exactly once and stores one item per item page", async () => {
    shop = await startShop({ items: 300 });
    const url = shop.url;
    config = await testConfig((c) => {
      c.modules.demo_shop = { start_url: `${url}/list/0` };
    });
    const run = await crawl(config, [demoShop]);

    const itemPaths = [...shop.hits.keys()].filter((p) => p.startsWith("/item/"));
    const listPaths = [...shop.hits.keys()].filter((p) => p.startsWith("/list/"));
    expect(itemPaths.length).toBe(300);
    expect(listPaths.length).toBe(6);
    for (const [path, n] of shop.hits) expect(n, `hits of ${path}`).toBe(1);

    expect(run.items.length).toBe(300);
    const urls = new Set(run.items.map((i) => i.url));
    expect(urls.size).toBe(300);
    const item7 = run.items.find((i) => String(i.url).endsWith("/item/7"))!;
    const { itemTitle, itemPrice } = await import("../examples/demo-shop/shop.ts");
    expect(item7.title).toBe(itemTitle(7));
    expect(item7.price).toBe(itemPrice(7));
    expect(run.stats.pages).toBe(306);
    expect(run.stats.duplicates).toBeGreaterThan(300); // overlapping links were deduped
    expect(Object.values(run.deadLetters).every((n) => n === 0)).toBe(true);
  });

  it("a module written from the README gets 2 000 items from overlapping list pages, no duplicates", async () => {
    shop = await startShop({ items: 2000 });
    const start = `${shop.url}/list/0`;
    const books = defineModule({
      name: "readme_shop",
      start: () => [start],
      parse(page, ctx) {
        if (page.url.includes("/item/")) {
          ctx.emit({ url: page.url, title: page.text("h1.title"), price: page.text("span.price") });
        }
        ctx.follow(page.links());
      },
    });
    config = await testConfig((c) => {
      c.crawler.taskConcurrency = 32;
    });
    const run = await crawl(config, [books]);
    expect(run.items.length).toBe(2000);
    expect(new Set(run.items.map((i) => i.url)).size).toBe(2000);
    for (const [, n] of shop.hits) expect(n).toBe(1);
  });
});

describe("failures", () => {
  it("retries 500/503 with backoff, then succeeds; does not retry 404", async () => {
    let flaky = 0;
    server = await startServer((req, res) => {
      if (req.url === "/") return html(res, `<a href="/flaky">f</a><a href="/missing">m</a><a href="/ok">ok</a>`);
      if (req.url === "/flaky") {
        flaky++;
        if (flaky === 1) return html(res, "oops", 500);
        if (flaky === 2) return html(res, "busy", 503);
        return html(res, "<h1>finally</h1>");
      }
      if (req.url === "/ok") return html(res, "<h1>ok</h1>");
      return html(res, "not here", 404);
    });
    const base = server.url;
    const m = defineModule({
      name: "flaky",
      start: () => [`${base}/`],
      parse(page, ctx) {
        if (page.url === `${base}/`) ctx.follow(page.links());
        else ctx.emit({ url: page.url, h1: page.text("h1") });
      },
    });
    config = await testConfig((c) => {
      c.crawler.retryBaseDelayMs = 100;
      c.crawler.requestMaxRetries = 5;
    });
    const run = await crawl(config, [m]);
    expect(server.hits.get("/flaky")).toBe(3);
    expect(server.hits.get("/missing")).toBe(1);
    const t = server.times.get("/flaky")!;
    expect(t[1] - t[0]).toBeGreaterThanOrEqual(45); // first retry waits 50..100 ms
    expect(t[2] - t[1]).toBeGreaterThanOrEqual(95); // second waits 100..200 ms
    expect(run.items.map((i) => i.h1).sort()).toEqual(["finally", "ok"]);
    expect(run.stats.retries).toBe(2);
    expect(run.stats.httpErrors).toBe(1);
    expect(run.deadLetters.request).toBe(0);
  });

  it("gives up after max retries and dead-letters the request with its last error", async () => {
    server = await startServer((_req, res) => html(res, "down", 503));
    const base = server.url;
    const m = defineModule({ name: "down", start: () => [`${base}/x`], parse() {} });
    config = await testConfig((c) => {
      c.crawler.requestMaxRetries = 3;
      c.crawler.obeyRobotsTxt = false; // its robots.txt answers 503 too, which would hold the site back
    });
    const run = await crawl(config, [m]);
    expect(server.hits.get("/x")).toBe(3);
    expect(run.deadLetters.request).toBe(1);
    const dead = await run.queue.listDeadLetters("request", 10);
    expect(dead[0].reason).toMatch(/HTTP 503.*after 3 attempts/);
  });

  it("a hanging server hits the timeout", async () => {
    server = await startServer(() => {
      /* never answers */
    });
    const base = server.url;
    const m = defineModule({ name: "hang", start: () => [{ url: `${base}/slow`, timeoutSecs: 0.3 }], parse() {} });
    config = await testConfig((c) => {
      c.crawler.requestMaxRetries = 2;
      c.crawler.obeyRobotsTxt = false; // its robots.txt hangs too
    });
    const started = Date.now();
    const run = await crawl(config, [m]);
    expect(server.hits.get("/slow")).toBe(2);
    expect(Date.now() - started).toBeLessThan(5000);
    const dead = await run.queue.listDeadLetters("request", 10);
    expect(dead[0].reason).toMatch(/timeout after 0.3s/);
  });

  it("rejects a body over the size limit, without retrying", async () => {
    const big = "x".repeat(200_000);
    server = await startServer((req, res) => {
      if (req.url === "/chunked") {
        res.writeHead(200, { "content-type": "text/html" }); // no content-length: counted while streaming
        res.write(big);
        res.end(big);
        return;
      }
      html(res, big);
    });
    const base = server.url;
    const m = defineModule({ name: "big", start: () => [`${base}/big`, `${base}/chunked`], parse(_p, ctx) { ctx.emit({}); } });
    config = await testConfig((c) => {
      c.downloadConfig.maxResponseSize = 100_000;
    });
    const run = await crawl(config, [m]);
    expect(server.hits.get("/big")).toBe(1);
    expect(server.hits.get("/chunked")).toBe(1);
    expect(run.items.length).toBe(0);
    const dead = await run.queue.listDeadLetters("request", 10);
    expect(dead.length).toBe(2);
    for (const d of dead) expect(d.reason).toMatch(/exceeds max_response_size 100000/);
  });

  it("parses malformed HTML without a crash", async () => {
    server = await startServer((_req, res) =>
      html(res, `<html><body><div class="a"><p>one<p>two</div></div><span class=price>12 &euro</span><a href=/next>n</a><table><td>x</body>`),
    );
    const base = server.url;
    const m = defineModule({
      name: "malformed",
      start: () => [`${base}/`],
      parse(page, ctx) {
        ctx.emit({ price: page.text("span.price"), links: page.links() });
      },
    });
    config = await testConfig();
    const run = await crawl(config, [m]);
    expect(run.items.length).toBe(1);
    expect(String(run.items[0].price)).toContain("12");
    expect(run.items[0].links).toEqual([`${base}/next`]);
  });

  it("a parse() that throws sends that response to the dead letters and the crawl goes on", async () => {
    server = await startServer((req, res) => {
      if (req.url === "/") return html(res, `<a href="/bad">b</a><a href="/good">g</a>`);
      html(res, `<h1>${req.url}</h1>`);
    });
    const base = server.url;
    const m = defineModule({
      name: "thrower",
      start: () => [`${base}/`],
      parse(page, ctx) {
        if (page.url.endsWith("/bad")) throw new Error("selector exploded");
        if (page.url.endsWith("/good")) ctx.emit({ ok: true });
        ctx.follow(page.links());
      },
    });
    config = await testConfig();
    const run = await crawl(config, [m]);
    expect(run.items).toEqual([{ ok: true }]);
    expect(server.hits.get("/bad")).toBe(1);
    expect(run.deadLetters.response).toBe(1);
    const [dead] = await run.queue.listDeadLetters("response", 1);
    expect(dead.reason).toMatch(/selector exploded/);
    expect(dead.message && "statusCode" in dead.message ? dead.message.statusCode : 0).toBe(200);
  });
});

describe("bounded memory", () => {
  it("a start() yielding 1 000 000 requests is pulled only as the queue has room", async () => {
    server = await startServer((_req, res) => html(res, "<p>x</p>"));
    const base = server.url;
    let pulled = 0;
    const m = defineModule({
      name: "million",
      *start() {
        for (let i = 0; i < 1_000_000; i++) {
          pulled++;
          yield `${base}/p/${i}`;
        }
      },
      parse() {},
    });
    config = await testConfig((c) => {
      c.crawler.generateBacklog = 500;
      c.crawler.taskConcurrency = 16;
    });
    const controller = new AbortController();
    const rssBefore = process.memoryUsage.rss();
    let rssPeak = rssBefore;
    const sampler = setInterval(() => (rssPeak = Math.max(rssPeak, process.memoryUsage.rss())), 100);
    setTimeout(() => controller.abort(), 3000);
    const run = await crawl(config, [m], controller.signal);
    clearInterval(sampler);
    expect(run.interrupted).toBe(true);
    // pulled ≈ crawled + backlog + one batch + what was in flight: far below 1 000 000
    expect(pulled).toBeLessThan(run.stats.pages + 500 + 100 + 2 * 16 + 200);
    expect(rssPeak - rssBefore).toBeLessThan(150 * 1024 * 1024);
  });

  it("1 000 000 seeds that dedup to 1 000 URLs run to completion in bounded memory", async () => {
    server = await startServer((_req, res) => html(res, "<p>x</p>"));
    const base = server.url;
    const m = defineModule({
      name: "dupes",
      *start() {
        for (let i = 0; i < 1_000_000; i++) yield `${base}/p/${i % 1000}`;
      },
      parse(_page, ctx) {
        ctx.emit({ n: 1 });
      },
    });
    config = await testConfig((c) => {
      c.crawler.generateBacklog = 200;
    });
    const rssBefore = process.memoryUsage.rss();
    let rssPeak = rssBefore;
    const sampler = setInterval(() => (rssPeak = Math.max(rssPeak, process.memoryUsage.rss())), 50);
    const run = await crawl(config, [m]).finally(() => clearInterval(sampler));
    rssPeak = Math.max(rssPeak, process.memoryUsage.rss());
    console.log(`1 000 000 seeds → 1 000 URLs: peak RSS +${((rssPeak - rssBefore) / 2 ** 20).toFixed(0)} MB during the run`);
    expect(run.items.length).toBe(1000);
    expectFetchedOnceBarRetries(server.hits, run.events);
    expect(rssPeak - rssBefore).toBeLessThan(150 * 1024 * 1024); // the peak while it ran, not what is left after
  }, 120_000);
});
