// Pages that need a browser (docs/browser.md): a shop whose products are rendered client-side
// from a JSON endpoint, crawled over HTTP (no product), in headless Chromium (every product),
// and with "auto" (every product, rendering only the product pages). Real Chromium, real HTTP.
import { readdirSync, readFileSync } from "node:fs";
import { afterEach, describe, expect, it } from "vitest";
import type { Config } from "../src/config/index.ts";
import { findChromium } from "../src/download/browser-pool.ts";
import { RenderMemory, urlPattern } from "../src/download/render.ts";
import { runStandalone } from "../src/engine/standalone.ts";
import { ModuleRegistry } from "../src/modules/registry.ts";
import jsShop from "./fixtures/js-shop/js_shop.ts";
import { type JsShop, pagesOf, startJsShop } from "./fixtures/js-shop/site.ts";
import { ALL_ROLES } from "../src/engine/flows.ts";
import { createRendering, type Rendering } from "../src/engine/rendering.ts";
import { createHttpClient } from "../src/engine/standalone.ts";
import { Worker } from "../src/engine/worker.ts";
import { EventBus } from "../src/events/bus.ts";
import type { CrawlEvent } from "../src/events/events.ts";
import { taskModel } from "../src/model/index.ts";
import { RedisQueue } from "../src/queue/redis/index.ts";
import { MemoryRateLimiter } from "../src/ratelimit/memory-limiter.ts";
import { JsonlSink } from "../src/storage/jsonl-sink.ts";
import { cleanup, crawl, testConfig, waitDrained } from "./helpers/crawl.ts";
import { startServer } from "./helpers/http-server.ts";
import { deleteNamespace, redisTestConfig, requireRedis } from "./helpers/redis.ts";

let shop: JsShop | undefined;
afterEach(async () => {
  await shop?.close();
  shop = undefined;
});

function shopConfig(render: string, patch: (c: Config) => void = () => {}): Promise<Config> {
  return testConfig((c) => {
    c.modules = { js_shop: { start_url: `${shop!.url}/`, render } };
    c.crawler.taskConcurrency = 8;
    patch(c);
  });
}

type Product = { id: number; name: string; price: string; rendered: boolean };

function expectEveryProductOnce(items: Record<string, unknown>[], products: number): void {
  const ids = (items as Product[]).map((p) => p.id).sort((a, b) => a - b);
  expect(ids).toEqual(Array.from({ length: products }, (_, i) => i + 1));
  for (const p of items as Product[]) {
    expect(p.name).toBe(`Product ${p.id}`);
    expect(p.price).toBe((p.id * 1.25).toFixed(2));
  }
}

/** pids of this process's Chromium children (the browser's main process) */
function chromiumChildren(): number[] {
  const out: number[] = [];
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (Number(fields[1]) === process.pid && /chrom/i.test(stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")")))) out.push(Number(d));
    } catch {
      // gone
    }
  }
  return out;
}

describe("render modes on a client-side rendered shop", () => {
  it('"http" stores no product; "browser" every product, rendering every page, images blocked', async () => {
    shop = await startJsShop(8);
    const http = await shopConfig("http");
    try {
      const run = await crawl(http, [jsShop]);
      expect(run.items).toEqual([]);
      expect(shop.documents()).toBe(pagesOf(shop));
      expect(shop.renders()).toBe(0);
    } finally {
      await cleanup(http);
    }

    await shop.close();
    shop = await startJsShop(8);
    const browser = await shopConfig("browser");
    try {
      const run = await crawl(browser, [jsShop]);
      expectEveryProductOnce(run.items, 8);
      expect((run.items as Product[]).every((p) => p.rendered)).toBe(true);
      // one document request per page (fetched by the engine, handed to Chromium), every page rendered
      expect(shop.documents()).toBe(pagesOf(shop));
      expect(shop.renders()).toBe(pagesOf(shop));
      expect(shop.images()).toBe(0);
      const rendered = run.events.filter((e) => e.type === "page_rendered");
      expect(rendered.length).toBe(pagesOf(shop));
      // the product pages' script fetched its JSON: a sub-resource, not a crawl request
      expect(rendered.every((e) => e.type === "page_rendered" && e.subresources >= 1)).toBe(true);
      expect(run.events.filter((e) => e.type === "request_sent").length).toBe(pagesOf(shop));
    } finally {
      await cleanup(browser);
    }
  }, 60_000);

  it('"auto" stores every product while rendering only the product pages, and learns the pattern', async () => {
    shop = await startJsShop(12);
    // two downloads at a time: the first product pages teach the pattern to the later ones
    const config = await shopConfig("auto", (c) => {
      c.crawler.taskConcurrency = 2;
    });
    try {
      const run = await crawl(config, [jsShop]);
      expectEveryProductOnce(run.items, 12);
      expect(shop.documents()).toBe(pagesOf(shop)); // no page fetched twice: the HTTP body is what gets rendered
      expect(shop.productRenders()).toBe(12);
      expect(shop.renders()).toBe(12); // the plain pages were not rendered
      const rendered = run.events.filter((e) => e.type === "page_rendered");
      // after a few product pages needed a render, the rest skipped the check
      expect(rendered.filter((e) => e.type === "page_rendered" && e.learned).length).toBeGreaterThan(0);
    } finally {
      await cleanup(config);
    }
  }, 60_000);

  it("a request can ask for the browser itself, with a selector to wait for", async () => {
    shop = await startJsShop(4);
    const config = await shopConfig("http");
    const { defineModule } = await import("../src/modules/define.ts");
    const one = defineModule<{ name: string }>({
      name: "js_one",
      start: () => [{ url: `${shop!.url}/product/3`, render: "browser", renderWait: "#product .name" }, `${shop!.url}/product/4`],
      parse(page, ctx) {
        ctx.emit({ name: page.text("#product .name") });
      },
    });
    try {
      const run = await crawl(config, [one]);
      expect((run.items as Array<{ name: string }>).map((i) => i.name).sort()).toEqual(["", "Product 3"]);
      expect(shop.productRenders()).toBe(1);
    } finally {
      await cleanup(config);
    }
  }, 60_000);

  it("a browser killed mid-crawl: the pages in flight are rendered again, every product stored once", async () => {
    shop = await startJsShop(12, { apiDelayMs: 150 });
    const config = await shopConfig("browser", (c) => {
      c.browser.concurrency = 2;
    });
    const registry = new ModuleRegistry(config.modules);
    registry.register(jsShop as never);
    const bus = new EventBus();
    let killed = 0;
    const sub = bus.events$.subscribe((e) => {
      if (e.type === "page_rendered" && killed === 0 && e.url.includes("/product/")) {
        for (const pid of chromiumChildren()) {
          process.kill(pid, "SIGKILL");
          killed++;
        }
      }
    });
    try {
      const result = await runStandalone({ config, registry, events: bus });
      sub.unsubscribe();
      expect(killed).toBeGreaterThan(0);
      const text = readFileSync(`${config.output.path}/js_shop.jsonl`, "utf8");
      const items = text.split("\n").filter(Boolean).map((l) => JSON.parse(l) as Product);
      expect(result.deadLetters).toMatchObject({ request: 0, render: 0 });
      expectEveryProductOnce(items, 12);
    } finally {
      sub.unsubscribe();
      await cleanup(config);
    }
  }, 60_000);

  it("a missing browser is one line naming the setting that asks for one", async () => {
    shop = await startJsShop(2);
    const config = await shopConfig("browser", (c) => {
      c.browser.executable = "/nonexistent/chromium";
    });
    const registry = new ModuleRegistry(config.modules);
    registry.register(jsShop as never);
    try {
      await expect(runStandalone({ config, registry })).rejects.toThrow(
        'render = "browser" (module js_shop) needs Chromium, but /nonexistent/chromium is not an executable file: install it (Debian: apt-get install chromium) or set [browser] executable = "/path/to/chromium"',
      );
      expect(shop.documents()).toBe(0);
    } finally {
      await cleanup(config);
    }
  });
});

describe("RenderMemory", () => {
  it("groups pages of one template and renders without the check once a pattern is known", () => {
    expect(urlPattern("http://a.test/product/17?x=1")).toBe("a.test/product/*");
    expect(urlPattern("http://a.test/p-9/list")).toBe("a.test/*/list");
    const m = new RenderMemory(3, 5);
    expect(m.knownToNeedBrowser("http://a.test/product/1")).toBe(false);
    for (const id of [1, 2, 3]) m.record(`http://a.test/product/${id}`, true);
    const decisions = Array.from({ length: 10 }, (_, i) => m.knownToNeedBrowser(`http://a.test/product/${10 + i}`));
    // every 5th page is checked again
    expect(decisions.filter((d) => !d).length).toBe(2);
    m.record("http://a.test/product/99", false);
    expect(m.knownToNeedBrowser("http://a.test/product/100")).toBe(false);
    expect(m.snapshot()).toEqual({ "a.test/product/*": "http" });
  });

  it("the system Chromium is found", () => {
    expect(findChromium("")).toMatch(/chrom/);
  });
});

describe("two Redis workers, one with a browser", () => {
  it("the crawl completes; every render happens on the worker with the browser, plain pages on both", async () => {
    if (!(await requireRedis("browser distributed"))) return;
    shop = await startJsShop(8);
    const base = await testConfig();
    const config = redisTestConfig((c) => {
      c.output = base.output;
      c.crawler.retryBaseDelayMs = 50;
      c.crawler.taskConcurrency = 4;
      c.modules = { js_shop: { start_url: `${shop!.url}/`, render_products: true } };
    });
    const registry = new ModuleRegistry(config.modules).register(jsShop as never);
    const sink = new JsonlSink(config.output.path);
    const events: CrawlEvent[][] = [[], []];
    const queues: RedisQueue[] = [];
    const workers: Worker[] = [];
    let rendering: Rendering | undefined;
    try {
      for (let i = 0; i < 2; i++) {
        const bus = new EventBus();
        bus.events$.subscribe((e) => events[i].push(e));
        const queue = await RedisQueue.connect(config, { onError: () => {}, delayedPollMs: 50 });
        queues.push(queue);
        const http = createHttpClient(config);
        if (i === 0) rendering = createRendering(config, registry, http, { events: bus });
        workers.push(new Worker({ config, queue, registry, sink, events: bus, downloader: i === 0 ? rendering!.downloader : http, renders: i === 0, limiter: new MemoryRateLimiter() }, ALL_ROLES));
      }
      await queues[1].publish("task", [{ message: taskModel({ module: ["js_shop"] }) }]);
      const running = workers.map((w) => w.run());
      await waitDrained(queues[0], 50_000);
      await Promise.all(workers.map((w) => w.stop("drained", 5000)));
      await Promise.all(running);
      await sink.close();
      const items = readFileSync(`${config.output.path}/js_shop.jsonl`, "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l) as Product);
      expectEveryProductOnce(items, 8);
      const sent = (i: number) => events[i].flatMap((e) => (e.type === "request_sent" ? [e.url] : []));
      const renderedOn = (i: number) => events[i].filter((e) => e.type === "page_rendered").length;
      expect(renderedOn(0)).toBe(8);
      expect(renderedOn(1)).toBe(0);
      expect(sent(1).filter((u) => u.includes("/product/"))).toEqual([]);
      expect(sent(0).filter((u) => u.includes("/product/")).length).toBe(8);
      // the worker without a browser still took ordinary work
      expect(sent(1).length).toBeGreaterThan(0);
      expect(shop.productRenders()).toBe(8);
    } finally {
      await rendering?.close();
      for (const q of queues) await q.close();
      await deleteNamespace(config.name);
      await cleanup(base);
    }
  }, 60_000);
});

describe("a rendered page keeps the crawl's rules", () => {
  it("cookies go from the module's jar into the browser and back; a hook acts on the live page; a redirect goes through the engine", async () => {
    const seen: Record<string, string> = {};
    const server = await startServer((req, res) => {
      const path = req.url ?? "/";
      seen[path] = req.headers.cookie ?? "";
      const page = (body: string) => {
        res.writeHead(200, { "content-type": "text/html" });
        res.end(`<!doctype html><html><body>${body}</body></html>`);
      };
      if (path === "/login") {
        res.writeHead(200, { "content-type": "text/html", "set-cookie": "sid=abc; Path=/" });
        res.end(`<!doctype html><html><body><a href="/old">next</a><script>document.cookie = "js=1; path=/";</script></body></html>`);
        return;
      }
      if (path === "/old") {
        res.writeHead(301, { location: "/feed" });
        res.end();
        return;
      }
      if (path === "/feed") {
        return page(`<ul id="feed"></ul><button id="more">more</button><a href="/plain">plain</a><script>
          let n = 0;
          const add = () => { for (let i = 0; i < 2; i++) { const li = document.createElement("li"); li.textContent = "item " + (++n); document.getElementById("feed").append(li); } };
          add();
          document.getElementById("more").onclick = add;
        </script>`);
      }
      if (path === "/plain") return page("<p>plain</p>");
      res.writeHead(404);
      res.end();
    });
    const { defineModule } = await import("../src/modules/define.ts");
    const feed = defineModule<{ url: string; items: number; requestUrl: string }>({
      name: "feed",
      settings: {
        render: "browser",
        renderWait: "load",
        async renderHook(page) {
          if ((await page.$("#more")) !== null) {
            await page.click("#more");
            await page.click("#more");
          }
        },
      },
      start: () => [`${server.url}/login`],
      parse(page, ctx) {
        // the plain page is fetched over HTTP (a per-request override of the module's render)
        ctx.follow(page.links("a[href]").filter((u) => !u.endsWith("/plain")));
        ctx.follow(page.links("a[href]").filter((u) => u.endsWith("/plain")), { render: "http" });
        ctx.emit({ url: page.url, requestUrl: page.requestUrl, items: page.select("#feed li").length });
      },
    });
    const config = await testConfig();
    try {
      const run = await crawl(config, [feed]);
      const byUrl = new Map((run.items as Array<{ url: string; items: number; requestUrl: string }>).map((i) => [new URL(i.url).pathname, i]));
      // 2 items written by the script, 4 more by the hook's two clicks
      expect(byUrl.get("/feed")?.items).toBe(6);
      expect(byUrl.get("/feed")?.requestUrl).toBe(`${server.url}/old`);
      expect(run.events.some((e) => e.type === "redirected" && e.to === `${server.url}/feed`)).toBe(true);
      // the cookie set by the document and the one set by its script both reached the jar:
      // the redirect hop and the plain HTTP page sent them
      expect(seen["/feed"]).toContain("sid=abc");
      expect(seen["/feed"]).toContain("js=1");
      expect(seen["/plain"]).toContain("js=1");
      expect(byUrl.get("/plain")).toBeDefined();
      expect(run.events.filter((e) => e.type === "page_rendered").map((e) => (e.type === "page_rendered" ? new URL(e.url).pathname : "")).sort()).toEqual(["/feed", "/login"]);
    } finally {
      await server.close();
      await cleanup(config);
    }
  }, 60_000);
});

describe("what a rendered page fetches itself", () => {
  it("the private-network rule: a host the crawl does not name must resolve to public addresses", async () => {
    const { subresourceRule } = await import("../src/download/browser-downloader.ts");
    const { privateNetworkPolicy } = await import("../src/download/private-network.ts");
    const { request } = await import("../src/model/index.ts");
    const policy = privateNetworkPolicy({ allowPrivateHosts: ["127.0.0.3"], allowPrivateNetworks: false });
    const allow = subresourceRule(policy, request({ url: "http://127.0.0.1:1/", module: "m" }))!;
    expect(await allow("http://127.0.0.2:8080/secret")).toBe(false);
    expect(await allow("http://169.254.169.254/latest/meta-data/")).toBe(false);
    expect(await allow("http://localhost:9/")).toBe(false); // a name resolving to loopback
    expect(await allow("http://[::1]/")).toBe(false);
    expect(await allow("http://127.0.0.3/named")).toBe(true);
    expect(await allow("data:text/plain,x")).toBe(true);
    expect(await allow("not a url")).toBe(false);
    expect(subresourceRule(privateNetworkPolicy({ allowPrivateHosts: [], allowPrivateNetworks: true }), request({ url: "http://x/" }))).toBeUndefined();
  });

  it("a rendered page's scripts, scripts' fetches and frames reach no private address the crawl does not name", async () => {
    // the "intranet": 127.0.0.2 (loopback, never named by the crawl, whose start URL is on 127.0.0.1).
    // Two layers refuse it: the crawl's rule (above) and Chromium's Local Network Access checks
    // (a document handed over with route.fulfill() counts as public to Chromium)
    const { createServer } = await import("node:http");
    const intranetHits: string[] = [];
    const intranet = createServer((req, res) => {
      intranetHits.push(req.url ?? "/");
      res.writeHead(200, { "content-type": "text/plain", "access-control-allow-origin": "*" });
      res.end("secret");
    });
    await new Promise<void>((r) => intranet.listen(0, "127.0.0.2", r));
    const intranetUrl = `http://127.0.0.2:${(intranet.address() as { port: number }).port}`;
    const server = await startServer((req, res) => {
      if (req.url === "/data.json") {
        res.writeHead(200, { "content-type": "application/json" });
        return void res.end('{"n":1}');
      }
      res.writeHead(200, { "content-type": "text/html" });
      res.end(`<!doctype html><html><body><p id="out">waiting</p>
        <iframe src="${intranetUrl}/frame"></iframe>
        <script src="${intranetUrl}/script.js"></script>
        <script>
          const out = document.getElementById("out");
          Promise.allSettled([fetch("${intranetUrl}/secret").then((r) => r.text()), fetch("/data.json").then((r) => r.json())])
            .then(([secret, data]) => { out.textContent = secret.status + " " + (data.value ? data.value.n : "none"); });
        </script></body></html>`);
    });
    const { defineModule } = await import("../src/modules/define.ts");
    const probe = defineModule<{ out: string }>({
      name: "probe",
      settings: { render: "browser", renderWait: "settled" },
      start: () => [`${server.url}/`],
      parse(page, ctx) {
        ctx.emit({ out: page.text("#out") });
      },
    });
    const config = await testConfig();
    try {
      const run = await crawl(config, [probe]);
      // the page's own request to its (named) host went out; nothing reached the intranet
      expect(run.items).toEqual([{ out: "rejected 1" }]);
      expect(server.hits.get("/data.json")).toBe(1);
      expect(intranetHits).toEqual([]);
    } finally {
      await server.close();
      await new Promise<void>((r) => intranet.close(() => r()));
      await cleanup(config);
    }
  }, 60_000);
});
