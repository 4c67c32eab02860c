import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { Config } from "../src/config/index.ts";
import { EventBus } from "../src/events/bus.ts";
import type { CrawlEvent } from "../src/events/events.ts";
import { runStandalone } from "../src/engine/standalone.ts";
import { defaultHeaders, itemSchema, requiredFields, userAgentRotation } from "../src/middleware/builtin.ts";
import { dataMiddleware, downloadMiddleware, type Middleware, RetryRequest, storeMiddleware } from "../src/modules/middleware.ts";
import { defineModule } from "../src/modules/define.ts";
import { ModuleRegistry } from "../src/modules/registry.ts";
import { JsonlSink } from "../src/storage/jsonl-sink.ts";
import type { ItemBatch, ItemSink } from "../src/storage/sink.ts";
import { cleanup, testConfig } from "./helpers/crawl.ts";
import { html, startServer, type TestServer } from "./helpers/http-server.ts";
import { deleteNamespace, rawClient, requireRedis, uniqueName } from "./helpers/redis.ts";
import { runCli, startWorker, waitFor, writeConfig } from "./helpers/worker-process.ts";
import { itemStreamKey } from "../src/storage/redis-sink.ts";

let server: TestServer | undefined;
let config: Config | undefined;
afterEach(async () => {
  await server?.close();
  if (config) await cleanup(config);
  server = config = undefined;
});

/** A page per id; the item on /p/N has a price unless N is a multiple of 3. */
async function shop(pages: number): Promise<{ server: TestServer; agents: string[]; headers: Record<string, string | undefined>[] }> {
  const agents: string[] = [];
  const headers: Record<string, string | undefined>[] = [];
  const s = await startServer((req, res) => {
    if (req.url === "/robots.txt") return html(res, "", 404);
    agents.push(String(req.headers["user-agent"]));
    headers.push({ lang: req.headers["accept-language"] as string | undefined, trace: req.headers["x-trace"] as string | undefined });
    if (req.url === "/") return html(res, Array.from({ length: pages }, (_, i) => `<a href="/p/${i}">p${i}</a>`).join(""));
    const n = Number(req.url!.split("/").pop());
    html(res, `<h1>t${n}</h1>${n % 3 === 0 ? "" : `<span class=price>${n}</span>`}`);
  });
  return { server: s, agents, headers };
}

async function run(cfg: Config, registry: ModuleRegistry, middleware: Middleware[] = []): Promise<{ events: CrawlEvent[]; result: Awaited<ReturnType<typeof runStandalone>> }> {
  const bus = new EventBus();
  const events: CrawlEvent[] = [];
  bus.events$.subscribe((e) => events.push(e));
  const result = await runStandalone({ config: cfg, registry, events: bus, middleware });
  return { events, result };
}

class RecordingSink implements ItemSink {
  readonly batches: ItemBatch[] = [];
  constructor(private readonly log: string[], private readonly label: string) {}
  async write(batch: ItemBatch): Promise<boolean> {
    this.log.push(`${this.label}`);
    this.batches.push(batch);
    return true;
  }
  describe(): string {
    return this.label;
  }
  async close(): Promise<void> {}
}

async function jsonl(dir: string, module: string): Promise<Record<string, unknown>[]> {
  const text = await readFile(join(dir, `${module}.jsonl`), "utf8").catch(() => "");
  return text.split("\n").filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
}

describe("middleware chains", () => {
  it("run in weight order in all three chains (global and per module), ties by registration order", async () => {
    const s = await shop(2);
    server = s.server;
    config = await testConfig();
    const log: string[] = [];
    const dl = (name: string, weight: number) =>
      downloadMiddleware({
        name,
        weight,
        beforeRequest: (req) => {
          log.push(`before:${name}`);
          return req;
        },
        afterResponse: (res) => {
          log.push(`after:${name}`);
          return res;
        },
      });
    const data = (name: string, weight: number) =>
      dataMiddleware({
        name,
        weight,
        handleItem: (item) => {
          log.push(`data:${name}`);
          return { ...(item as object), path: `${(item as { path?: string }).path ?? ""}/${name}` };
        },
      });
    const module = defineModule({
      name: "ordered",
      start: () => [`${s.server.url}/p/1`],
      parse(page, ctx) {
        ctx.emit({ title: page.text("h1") });
      },
      middleware: [dl("m_dl_5", 5), data("m_data_5", 5), data("m_data_tie", 20), storeMiddleware("m_store_7", new RecordingSink(log, "store:m_store_7"), 7)],
    });
    const registry = new ModuleRegistry().register(module);
    const global = [dl("g_dl_20", 20), dl("g_dl_1", 1), data("g_data_20", 20), data("g_data_1", 1), storeMiddleware("g_store_-1", new RecordingSink(log, "store:g_store_-1"), -1)];
    await run(config, registry, global);

    expect(log.filter((l) => l.startsWith("before:"))).toEqual(["before:g_dl_1", "before:m_dl_5", "before:g_dl_20"]);
    // after_response unwinds (reverse weight order), as mocra does
    expect(log.filter((l) => l.startsWith("after:"))).toEqual(["after:g_dl_20", "after:m_dl_5", "after:g_dl_1"]);
    expect(log.filter((l) => l.startsWith("data:"))).toEqual(["data:g_data_1", "data:m_data_5", "data:g_data_20", "data:m_data_tie"]);
    // store: -1 (global), 0 (the [output] sink, which logs nothing), 7 (module)
    expect(log.filter((l) => l.startsWith("store:"))).toEqual(["store:g_store_-1", "store:m_store_7"]);
    const items = await jsonl(config.output.path, "ordered");
    expect(items).toEqual([{ title: "t1", path: "/g_data_1/m_data_5/g_data_20/m_data_tie" }]);
  });

  it("drops invalid items with reasons (counted), writes to two sinks at once, rotates user agents and adds headers", async () => {
    const s = await shop(12);
    server = s.server;
    config = await testConfig();
    const second = await testConfig();
    const secondSink = new JsonlSink(second.output.path);
    const module = defineModule({
      name: "priced",
      start: () => [`${s.server.url}/`],
      parse(page, ctx) {
        if (page.url.endsWith("/")) ctx.follow(page.links("a"));
        else ctx.emit({ title: page.text("h1"), price: page.text("span.price") });
      },
      middleware: [storeMiddleware("archive", secondSink, 10)],
    });
    const registry = new ModuleRegistry().register(module);
    const schema = { type: "object", required: ["title"], properties: { title: { type: "string", pattern: "^t\\d+$" } } };
    const { events, result } = await run(config, registry, [
      userAgentRotation(["agent-a", "agent-b", "agent-c"]),
      defaultHeaders({ "Accept-Language": "en-GB" }),
      requiredFields(["title", "price"]),
      itemSchema(schema),
    ]);

    // 12 item pages, every third has no price: 4 dropped, 8 kept, in both sinks
    const kept = await jsonl(config.output.path, "priced");
    const archived = await jsonl(second.output.path, "priced");
    await cleanup(second);
    expect(kept.length).toBe(8);
    expect(archived.map((i) => i.title).sort()).toEqual(kept.map((i) => i.title).sort());
    expect(result.stats.dropped).toBe(4);
    expect(result.stats.droppedReasons.get("required_fields: empty required field: price")).toBe(4);
    const drops = events.filter((e) => e.type === "item_dropped");
    expect(drops).toHaveLength(4);
    expect(result.stats.items).toBe(8);
    expect(result.output).toContain("archive:");

    // 13 pages fetched, agents taken round robin; every request got the default header
    expect(s.agents.length).toBe(13);
    expect(new Set(s.agents)).toEqual(new Set(["agent-a", "agent-b", "agent-c"]));
    for (const a of ["agent-a", "agent-b", "agent-c"]) expect(s.agents.filter((x) => x === a).length).toBeGreaterThanOrEqual(4);
    expect(s.headers.every((h) => h.lang === "en-GB")).toBe(true);
  });

  it("validates items against a JSON Schema with the failing path as the reason", async () => {
    const s = await shop(3);
    server = s.server;
    config = await testConfig();
    const module = defineModule({
      name: "typed",
      start: () => [`${s.server.url}/p/1`, `${s.server.url}/p/2`],
      parse(page, ctx) {
        const n = Number(page.url.split("/").pop());
        ctx.emit({ title: page.text("h1"), price: n === 1 ? n : String(n) });
      },
    });
    const { result } = await run(config, new ModuleRegistry().register(module), [
      itemSchema({ type: "object", properties: { price: { type: "number" } } }),
    ]);
    expect(await jsonl(config.output.path, "typed")).toEqual([{ title: "t1", price: 1 }]);
    expect([...result.stats.droppedReasons.keys()]).toEqual(["item_schema: schema: /price must be number"]);
  });

  it("skips requests, retries on RetryRequest, dead-letters a throwing middleware (events and counters)", async () => {
    let served = 0;
    server = await startServer((req, res) => {
      if (req.url === "/robots.txt") return html(res, "", 404);
      served++;
      html(res, `<h1>${req.url}</h1>`);
    });
    const url = server.url;
    config = await testConfig();
    let captcha = 0;
    const module = defineModule({
      name: "guarded",
      start: () => [`${url}/skip`, `${url}/captcha`, `${url}/ok`, `${url}/bad-item`],
      parse(page, ctx) {
        ctx.emit({ title: page.text("h1") });
      },
      middleware: [
        downloadMiddleware({
          name: "skipper",
          beforeRequest: (req) => (req.url.endsWith("/skip") ? null : req),
          afterResponse(res, ctx) {
            if (ctx.request.url.endsWith("/captcha") && captcha++ === 0) throw new RetryRequest("captcha page");
            return res;
          },
        }),
        dataMiddleware({
          name: "exploder",
          handleItem(item) {
            if ((item as { title: string }).title === "/bad-item") throw new Error("boom");
            return item;
          },
        }),
      ],
    });
    const { events, result } = await run(config, new ModuleRegistry().register(module));
    const titles = (await jsonl(config.output.path, "guarded")).map((i) => i.title).sort();
    expect(titles).toEqual(["/captcha", "/ok"]);
    expect(served).toBe(4); // /skip never sent; /captcha twice; /ok; /bad-item
    expect(events.find((e) => e.type === "request_skipped")).toMatchObject({ middleware: "skipper", stage: "before_request" });
    expect(result.stats.retries).toBe(1);
    expect(result.stats.middlewareErrors).toBe(1);
    expect(events.find((e) => e.type === "middleware_error")).toMatchObject({ chain: "data", middleware: "exploder" });
    expect(result.deadLetters.response).toBe(1);
  });
});

describe("download middleware and politeness", () => {
  it("requests replaced or skipped by beforeRequest hold no concurrency lease (domain_concurrency = 1)", async () => {
    const s = await shop(12);
    server = s.server;
    config = await testConfig((c) => {
      c.downloadConfig.domainConcurrency = 1;
    });
    const module = defineModule({
      name: "leased",
      start: () => [`${s.server.url}/`],
      parse(page, ctx) {
        if (page.url.endsWith("/")) ctx.follow(page.links("a"));
        else ctx.emit({ title: page.text("h1") });
      },
      middleware: [
        downloadMiddleware({
          name: "replace_or_skip",
          beforeRequest(req) {
            const n = Number(req.url.split("/").pop());
            if (n % 4 === 3) return null;
            return { ...req, headers: [...req.headers, { key: "x-copy", value: String(n) }] }; // a new object
          },
        }),
      ],
    });
    const t0 = Date.now();
    const { events } = await run(config, new ModuleRegistry().register(module));
    expect(Date.now() - t0).toBeLessThan(15_000); // a leaked lease would hold every later request for max_wait_ms, then 40 s
    expect((await jsonl(config.output.path, "leased")).length).toBe(9);
    expect(events.filter((e) => e.type === "request_skipped")).toHaveLength(3);
    expect(events.filter((e) => e.type === "retry_scheduled")).toHaveLength(0);
  });
});

describe.skipIf(!(await requireRedis("middleware.test")))("middleware in a start-worker process on Redis", () => {
  it("config middleware ([middleware] built-ins and paths) run in weight order; drops counted; Redis sink and stdout at once", async () => {
    const name = uniqueName();
    const trails: string[] = [];
    server = await startServer((req, res) => {
      if (req.url === "/robots.txt") return html(res, "", 404);
      trails.push(String(req.headers["x-trail"]));
      if (req.url === "/") return html(res, Array.from({ length: 9 }, (_, i) => `<a href="/p/${i}">p${i}</a>`).join(""));
      const n = Number(req.url!.split("/").pop());
      html(res, `<h1>t${n}</h1>${n % 3 === 0 ? "" : `<span class=price>${n}</span>`}`);
    });
    const cfg = await writeConfig(`name = "${name}"
[crawler]
module_paths = ["tests/fixtures/modules"]
shutdown_timeout_secs = 5
[output]
sink = "redis"
[middleware]
required_fields = ["price"]
paths = ["tests/fixtures/middleware/trail.ts"]
[modules.catalog]
url = "${server.url}"
`);
    const w = await startWorker(cfg);
    const r = rawClient();
    try {
      expect((await runCli(["submit", "catalog", "--config", cfg])).code).toBe(0);
      await waitFor("6 items in Redis", async () => (await r.xlen(itemStreamKey(name, "catalog"))) >= 6, 60_000);
      await new Promise((res) => setTimeout(res, 300));
      w.child.kill("SIGTERM");
      expect(await w.exited).toBe(0);
      // download chain: -5 before 10 (user agents off: built-ins only where configured) before 50
      expect(trails.length).toBe(10);
      expect(new Set(trails)).toEqual(new Set(["dl_early,dl_late"]));
      const stored = (await r.xrange(itemStreamKey(name, "catalog"), "-", "+")).map(([, f]) => JSON.parse(f[f.indexOf("item") + 1]) as Record<string, string>);
      expect(stored).toHaveLength(6); // 9 pages, 3 without a price dropped
      // data chain: data_early (-5), required_fields (10), data_late (50)
      for (const item of stored) expect(item.trail).toBe("/data_early/data_late");
      const printed = w.output().split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l) as { item: { title: string } });
      expect(printed.map((p) => p.item.title).sort()).toEqual(stored.map((i) => i.title).sort());
      expect(w.output()).toMatch(/, 3 items dropped by middleware;/);
    } finally {
      r.disconnect();
      await deleteNamespace(name);
    }
  });
});
