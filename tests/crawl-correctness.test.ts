// A module that follows every link on every page of a messy site (tests/fixtures/messy) gets
// every product once with correct text and requests no forbidden URL: standalone and with two
// Redis workers. Asserted at the server (requests) and in the output (items, dead letters).
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { defaultConfig } from "../src/config/index.ts";
import { requestFlow } from "../src/engine/flows.ts";
import { createHttpClient } from "../src/engine/standalone.ts";
import { EventBus } from "../src/events/bus.ts";
import { defineModule } from "../src/modules/define.ts";
import { ModuleRegistry } from "../src/modules/registry.ts";
import { request } from "../src/model/index.ts";
import { MemoryQueue } from "../src/queue/memory-queue.ts";
import { MemoryRateLimiter } from "../src/ratelimit/memory-limiter.ts";
import { JsonlSink } from "../src/storage/jsonl-sink.ts";
import { startServer, type TestServer } from "./helpers/http-server.ts";
import { readStatus } from "../src/commands/status.ts";
import { loadConfig } from "../src/config/index.ts";
import { TOPICS } from "../src/model/index.ts";
import { itemStreamKey } from "../src/storage/redis-sink.ts";
import messyShop from "./fixtures/messy/messy_shop.ts";
import { itemProblems, type MessySite, serverProblems, startMessySite } from "./fixtures/messy/site.ts";
import { cleanup, crawl, testConfig } from "./helpers/crawl.ts";
import { deleteNamespace, rawClient, requireRedis, uniqueName } from "./helpers/redis.ts";
import { ROOT, runCli, startWorker, waitFor, type WorkerProcess, writeConfig } from "./helpers/worker-process.ts";

let site: MessySite | undefined;
afterEach(async () => {
  await site?.close();
  site = undefined;
});

describe("a messy site, standalone", () => {
  it("each product once with the right title; nothing forbidden or twice requested; the loop dead-lettered with its reason", async () => {
    site = await startMessySite();
    const config = await testConfig((c) => {
      c.modules = { messy_shop: { start_url: `${site!.url}/` } };
    });
    try {
      const run = await crawl(config, [messyShop]);
      expect(serverProblems(site)).toEqual([]);
      expect(itemProblems(run.items as Array<{ id: unknown; title: unknown }>)).toEqual([]);
      // redirected pages: page.url is final, page.requestUrl the original
      const three = run.items.find((i) => i.id === "3")!;
      expect(three.url).toBe(`${site.url}/product?id=3`);
      expect(three.requestUrl).toBe(`${site.url}/old/3`);
      const four = run.items.find((i) => i.id === "4")!;
      expect([four.url, four.requestUrl]).toEqual([`${site.url}/product?id=4`, `${site.url}/r/abs`]);
      // the canonical spelling was fetched, once
      expect(site.hits.get("/product?color=red&id=1")).toBe(1);
      expect([...site.hits.keys()].filter((p) => p.startsWith("/product?") && p.includes("id=1"))).toEqual(["/product?color=red&id=1"]);
      // the robots-disallowed redirect target and the PDF/PNG hrefs were never requested, the loop once round
      expect(site.hits.get("/loop/a")).toBe(1);
      expect(site.hits.get("/loop/b")).toBe(1);
      const dead = run.events.filter((e) => e.type === "dead_lettered");
      expect(dead.map((e) => (e.type === "dead_lettered" ? e.reason : ""))).toEqual([
        `redirect loop: ${site.url}/loop/a -> ${site.url}/loop/b -> ${site.url}/loop/a`,
      ]);
      expect(run.deadLetters.request).toBe(1);
      expect(run.events.some((e) => e.type === "robots_disallowed" && e.url === `${site!.url}/private/secret`)).toBe(true);
      // the PDF and the PNG were downloaded but not parsed (the module did not ask for them)
      const skipped = run.events.filter((e) => e.type === "content_skipped").map((e) => (e.type === "content_skipped" ? e.contentType : ""));
      expect(skipped.sort()).toEqual(["application/pdf", "image/png"]);
      // bad links were counted per domain, not warned one by one
      expect(run.events.filter((e) => e.type === "warning")).toEqual([]);
      const dropped = run.stats.droppedLinksLines();
      expect(dropped.some((l) => l.includes("not crawlable"))).toBe(true);
      expect(new Set(dropped.map((l) => l.split(":")[0])).size).toBe(dropped.length);
    } finally {
      await cleanup(config);
    }
  }, 60_000);

  it("with keep_query_order the parameter order is kept, and strip_params is configurable", async () => {
    site = await startMessySite();
    const config = await testConfig((c) => {
      c.crawler.keepQueryOrder = true;
      c.crawler.stripParams = ["utm_*"];
      c.modules = { messy_shop: { start_url: `${site!.url}/` } };
    });
    try {
      await crawl(config, [messyShop]);
      const ones = [...site.hits.keys()].filter((p) => p.startsWith("/product?") && /(^|[?&])id=1(&|$)/.test(p)).sort();
      expect(ones).toEqual(["/product?color=red&id=1", "/product?id=1&color=red", "/product?id=1&color=red&fbclid=abc"]);
    } finally {
      await cleanup(config);
    }
  }, 60_000);
});

describe("redirect limits and early rejection", () => {
  let server: TestServer | undefined;
  afterEach(async () => {
    await server?.close();
    server = undefined;
  });

  it("a chain over max_redirects is dead-lettered with one clear reason; a redirect off the allowed domains is dropped", async () => {
    server = await startServer((req, res) => {
      const m = /^\/hop\/(\d+)$/.exec(req.url ?? "");
      if (m) {
        res.writeHead(302, { location: `/hop/${Number(m[1]) + 1}` });
        return void res.end();
      }
      if (req.url === "/away") {
        res.writeHead(301, { location: "http://elsewhere.example/x" });
        return void res.end();
      }
      res.writeHead(200, { "content-type": "text/html" });
      res.end(`<a href="/hop/0">chain</a> <a href="/away">away</a>`);
    });
    const base = server.url;
    const m = defineModule({ name: "hops", start: () => [`${base}/`], parse: (page, ctx) => void ctx.follow(page.links()), settings: { allowedDomains: ["127.0.0.1"] } });
    const config = await testConfig((c) => {
      c.downloadConfig.maxRedirects = 3;
    });
    try {
      const run = await crawl(config, [m]);
      const reasons = run.events.flatMap((e) => (e.type === "dead_lettered" ? [e.reason] : []));
      expect(reasons).toEqual([`too many redirects (more than 3): ${[0, 1, 2, 3, 4].map((i) => `${base}/hop/${i}`).join(" -> ")}`]);
      expect([...server.hits.keys()].filter((p) => p.startsWith("/hop/")).sort()).toEqual(["/hop/0", "/hop/1", "/hop/2", "/hop/3"]);
      expect(run.stats.droppedLinksLines().join("\n")).toContain("redirect outside allowed domains: http://elsewhere.example/x");
    } finally {
      await cleanup(config);
    }
  }, 60_000);

  it("queued requests with a bad URL or an unknown module go to the dead letters before robots.txt or the download", async () => {
    // robots.txt answers 503: every request of this origin would wait out a robots hold
    server = await startServer((_req, res) => {
      res.writeHead(503);
      res.end();
    });
    const config = defaultConfig();
    config.output.path = await mkdtemp(join(tmpdir(), "mocra-reject-"));
    const registry = new ModuleRegistry().register(defineModule({ name: "known", start: () => [], parse: () => {} }));
    const queue = new MemoryQueue();
    const sink = new JsonlSink(config.output.path);
    await queue.publish("request", [
      { message: request({ url: "javascript:alert(1)", module: "known" }) },
      { message: request({ url: "http://[::1/x", module: "known" }) },
      { message: request({ url: "http://-nope-.example/", module: "known" }) },
      { message: request({ url: `${server.url}/page`, module: "ghost" }) },
    ]);
    const stop = new AbortController();
    const deps = { config, queue, registry, sink, events: new EventBus(), downloader: createHttpClient(config), limiter: new MemoryRateLimiter() };
    const sub = requestFlow(deps, stop.signal).subscribe();
    try {
      await waitFor("4 dead letters", async () => (await queue.stats()).request.dead === 4, 10_000, 20);
      const reasons = (await queue.listDeadLetters("request", 10)).map((d) => d.reason).sort();
      expect(reasons).toEqual([
        'bad URL "http://-nope-.example/": host "-nope-.example" cannot exist (label starts or ends with "-")',
        'bad URL "http://[::1/x": not a URL',
        'bad URL "javascript:alert(1)": not http(s)',
        'unknown module "ghost": no module of that name on this worker',
      ]);
      expect(server.hits.size).toBe(0); // not even robots.txt was asked
    } finally {
      stop.abort();
      sub.unsubscribe();
      await sink.close();
      await rm(config.output.path, { recursive: true, force: true });
    }
  }, 30_000);
});

describe("a messy site, two Redis workers", () => {
  let name = "";
  let workers: WorkerProcess[] = [];
  beforeAll(async () => {
    await requireRedis("crawl-correctness");
  });
  afterEach(async () => {
    for (const w of workers) if (w.child.exitCode === null) w.child.kill("SIGKILL");
    workers = [];
    if (name) await deleteNamespace(name);
  });

  it("gives the same result as standalone", async () => {
    name = uniqueName();
    site = await startMessySite();
    const cfg = await writeConfig(`name = "${name}"
[crawler]
task_concurrency = 4
module_paths = ["${ROOT}tests/fixtures/messy/messy_shop.ts"]
[output]
sink = "redis"
[modules.messy_shop]
start_url = "${site.url}/"
`);
    workers = [await startWorker(cfg), await startWorker(cfg)];
    expect((await runCli(["submit", "messy_shop", "--config", cfg])).code).toBe(0);
    const r = rawClient();
    const items = async () => (await r.xrange(itemStreamKey(name, "messy_shop"), "-", "+")).map(([, f]) => JSON.parse(f[f.indexOf("item") + 1]) as { id: string; title: string });
    const idle = async () => {
      const s = await readStatus(await loadConfig(cfg));
      return TOPICS.every((t) => s.topics[t].delayed === 0 && Object.values(s.topics[t].priorities).every((p) => p.waiting === 0 && p.pending === 0));
    };
    try {
      await waitFor("12 items", async () => (await items()).length >= 12, 60_000);
      await waitFor("an idle queue", idle, 30_000);
      expect(itemProblems(await items())).toEqual([]);
      expect(serverProblems(site)).toEqual([]);
      const status = await readStatus(await loadConfig(cfg));
      expect(Object.values(status.topics.request.priorities).reduce((n, p) => n + p.dead, 0)).toBe(1); // the loop
      const dlq = await runCli(["dlq", "list", "--config", cfg]);
      expect(dlq.out).toContain("redirect loop");
    } finally {
      r.disconnect();
    }
    for (const w of workers) w.child.kill("SIGTERM");
    expect(await Promise.all(workers.map((w) => w.exited))).toEqual([0, 0]);
    // dropped links are summed up per domain when a worker stops, not warned one by one
    const output = workers.map((w) => w.output()).join("\n");
    expect(output).toMatch(/links not followed: \d+ .*; most on /); // one line (per domain: --log-level debug)
    expect(output).not.toMatch(/warning: .*not an http/);
  }, 120_000);
});
