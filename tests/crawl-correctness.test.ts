// A module that follows every link on every page of a messy site (tests/fixtures/messy) gets
// every product once with correct text and requests no forbidden URL: standalone and with two
// Redis workers. Asserted at the server (requests) and in the output (items, dead letters).
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { readStatus } from "../src/commands/status.ts";
import { parseConfig } from "../src/config/index.ts";
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

describe("a messy site, two Redis workers", () => {
  let hasRedis = false;
  let name = "";
  let workers: WorkerProcess[] = [];
  beforeAll(async () => {
    hasRedis = await requireRedis("crawl-correctness");
  });
  afterEach(async () => {
    for (const w of workers) if (w.child.exitCode === null) w.child.kill("SIGKILL");
    workers = [];
    if (name) await deleteNamespace(name);
  });

  it("gives the same result as standalone", async () => {
    if (!hasRedis) return;
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
      const s = await readStatus(parseConfig(`name = "${name}"`, cfg));
      return TOPICS.every((t) => s.topics[t].delayed === 0 && Object.values(s.topics[t].priorities).every((p) => p.waiting === 0 && p.pending === 0));
    };
    try {
      await waitFor("12 items", async () => (await items()).length >= 12, 60_000);
      await waitFor("an idle queue", idle, 30_000);
      expect(itemProblems(await items())).toEqual([]);
      expect(serverProblems(site)).toEqual([]);
      const status = await readStatus(parseConfig(`name = "${name}"`, cfg));
      expect(Object.values(status.topics.request.priorities).reduce((n, p) => n + p.dead, 0)).toBe(1); // the loop
      const dlq = await runCli(["dlq", "list", "--config", cfg]);
      expect(dlq.out).toContain("redirect loop");
    } finally {
      r.disconnect();
    }
    for (const w of workers) w.child.kill("SIGTERM");
    expect(await Promise.all(workers.map((w) => w.exited))).toEqual([0, 0]);
  }, 120_000);
});
