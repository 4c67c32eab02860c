import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../src/config/index.ts";
import { readStatus } from "../src/commands/status.ts";
import { type ShopServer, startShop } from "../examples/demo-shop/shop.ts";
import { TOPICS } from "../src/model/index.ts";
import { itemStreamKey } from "../src/storage/redis-sink.ts";
import { deleteNamespace, rawClient, requireRedis, uniqueName, sinkItems } from "./helpers/redis.ts";
import { killFirstWorkerMidCrawl, runCli, startWorker, waitFor, type WorkerProcess, writeConfig, shopWorkerToml } from "./helpers/worker-process.ts";

beforeAll(async () => {
  await requireRedis("distributed");
});

let shop: ShopServer | undefined;
let workers: WorkerProcess[] = [];
let name = "";

afterEach(async () => {
  for (const w of workers) if (w.child.exitCode === null) w.child.kill("SIGKILL");
  workers = [];
  await shop?.close();
  shop = undefined;
  if (name) await deleteNamespace(name);
});

const workerToml = (shopUrl: string) => shopWorkerToml(name, shopUrl);

/** Items in the Redis sink: total entries and distinct URLs. */
const items = () => sinkItems(name, "demo_shop");

/** Names of the clients connected under this test's namespace (the test's own tools aside). */
async function connectionNames(): Promise<string[]> {
  const r = rawClient();
  try {
    const list = String(await r.client("LIST"));
    return [...list.matchAll(/ name=(\S+)/g)].map((m) => m[1]).filter((n) => n.startsWith(`${name}:`) && !/:(status|export)$/.test(n));
  } finally {
    r.disconnect();
  }
}

async function idle(configFile: string): Promise<boolean> {
  const s = await readStatus(await loadConfig(configFile));
  return TOPICS.every((t) => {
    const ts = s.topics[t];
    return ts.delayed === 0 && Object.values(ts.priorities).every((p) => p.waiting === 0 && p.pending === 0);
  });
}

describe("distributed crawl on Redis Streams", () => {
  it("two workers and one submit crawl the site completely, every item exactly once; status tells the truth", async () => {
    name = uniqueName();
    shop = await startShop({ items: 400, latencyMs: 20 });
    // slow enough (2 workers × 2 downloads / 20 ms) that "during" is observable
    const cfg = await writeConfig(workerToml(shop.url).replace("task_concurrency = 8", "task_concurrency = 2"));
    workers = [await startWorker(cfg), await startWorker(cfg)];

    const before = await readStatus(await loadConfig(cfg));
    expect(before.workers.length).toBe(2);
    // the README's connection count: per worker 1 command + 4 blocking readers + politeness/cache
    // + node registry + Redis sink = 8
    await waitFor("every blocking reader open", async () => (await connectionNames()).length >= 16, 20_000);
    const conns = await connectionNames();
    expect(conns, conns.join("\n")).toHaveLength(16);
    expect(conns.filter((c) => /:(task|parser_task|request|response)$/.test(c))).toHaveLength(8);
    expect(before.topics.request.priorities.normal.waiting).toBe(0);

    const submitted = await runCli(["submit", "demo_shop", "--config", cfg]);
    expect(submitted.code).toBe(0);
    await waitFor("some items", async () => (await items()).total > 50, 30_000);
    const during = await readStatus(await loadConfig(cfg));
    const busy = Object.values(during.topics.request.priorities).reduce((n, p) => n + p.waiting + p.pending, 0);
    expect(busy).toBeGreaterThan(0);

    await waitFor("400 items", async () => (await items()).total >= 400, 60_000);
    await waitFor("an idle queue", () => idle(cfg), 30_000);
    const got = await items();
    expect(got.total).toBe(400);
    expect(got.urls.size).toBe(400);
    // at-least-once: a worker stalled past claim_min_idle on a loaded machine may lose a page to
    // the other one; bounded, and never a second item
    const refetched = [...shop.hits].filter(([, n]) => n > 1);
    expect(refetched.length, JSON.stringify(refetched)).toBeLessThanOrEqual(5);
    expect(shop.hits.size).toBeGreaterThanOrEqual(400);

    for (const w of workers) w.child.kill("SIGTERM");
    const codes = await Promise.all(workers.map((w) => w.exited));
    expect(codes).toEqual([0, 0]);
    const after = await readStatus(await loadConfig(cfg));
    expect(after.workers.length).toBe(0);
  }, 120_000);

  it("kill -9 of one worker mid-crawl: the other finishes, nothing lost, no duplicate item", async () => {
    name = uniqueName();
    shop = await startShop({ items: 500, latencyMs: 20 });
    const cfg = await writeConfig(workerToml(shop.url));
    workers = [await startWorker(cfg), await startWorker(cfg)];
    expect((await runCli(["submit", "demo_shop", "--config", cfg])).code).toBe(0);
    await killFirstWorkerMidCrawl(workers, 500, items, () => idle(cfg));
    const got = await items();
    expect(got.total).toBe(500);
    expect(got.urls.size).toBe(500);
    workers[1].child.kill("SIGTERM");
    expect(await workers[1].exited).toBe(0);
  }, 150_000);

  it("a Deno worker joins the same crawl as a Node worker", async () => {
    name = uniqueName();
    shop = await startShop({ items: 300, latencyMs: 10 });
    const cfg = await writeConfig(workerToml(shop.url));
    workers = [await startWorker(cfg, { runtime: "deno" }), await startWorker(cfg)];
    expect((await runCli(["submit", "demo_shop", "--config", cfg])).code).toBe(0);
    await waitFor("300 items", async () => (await items()).total >= 300, 60_000);
    await waitFor("an idle queue", () => idle(cfg), 30_000);
    expect((await items()).total).toBe(300);
    for (const w of workers) w.child.kill("SIGTERM");
    const codes = await Promise.all(workers.map((w) => w.exited));
    expect(codes).toEqual([0, 0]);
    // both did work
    for (const w of workers) expect(w.output()).toMatch(/stopped: [1-9]\d* pages/);
  }, 120_000);

  it("download-only and parse-only workers share a crawl through the response topic", async () => {
    name = uniqueName();
    shop = await startShop({ items: 200 });
    const cfg = await writeConfig(workerToml(shop.url));
    workers = [await startWorker(cfg, { roles: "task,download" }), await startWorker(cfg, { roles: "parse" })];
    expect((await runCli(["submit", "demo_shop", "--config", cfg])).code).toBe(0);
    await waitFor("200 items", async () => (await items()).total >= 200, 60_000);
    await waitFor("an idle queue", () => idle(cfg), 30_000);
    expect((await items()).total).toBe(200);
  }, 120_000);
});

describe("Redis restarted mid-crawl", () => {
  it("workers pause, reconnect and finish: every item exactly once", async () => {
    const { spawn } = await import("node:child_process");
    const { mkdtemp } = await import("node:fs/promises");
    const { tmpdir } = await import("node:os");
    const { join } = await import("node:path");
    const { freePort, redisReachable } = await import("./helpers/redis.ts");
    const port = await freePort();
    const dir = await mkdtemp(join(tmpdir(), "mocra-redis-"));
    // append-only with fsync always: a restart keeps every acknowledged write
    const startRedis = () =>
      spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--dir", dir, "--appendonly", "yes", "--appendfsync", "always", "--save", ""], { stdio: "ignore" });
    let server = startRedis();
    await waitFor("redis-server", () => redisReachable(port, 200), 10_000, 50);
    name = uniqueName();
    shop = await startShop({ items: 300, latencyMs: 10 });
    const cfg = await writeConfig(
      workerToml(shop.url).replace("[channel_config.redis]", `[channel_config.redis]\nredis_port = ${port}\nreconnect_budget_secs = 60`),
    );
    const itemsOn = async () => {
      const { Redis } = await import("ioredis");
      const r = new Redis({ port, lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0 });
      r.on("error", () => {});
      try {
        await r.connect();
        const entries = await r.xrange(itemStreamKey(name, "demo_shop"), "-", "+");
        return { total: entries.length, urls: new Set(entries.map(([, f]) => String(JSON.parse(f[f.indexOf("item") + 1]).url))) };
      } catch {
        return { total: -1, urls: new Set<string>() };
      } finally {
        r.disconnect();
      }
    };
    try {
      workers = [await startWorker(cfg)];
      expect((await runCli(["submit", "demo_shop", "--config", cfg])).code).toBe(0);
      await waitFor("some items", async () => (await itemsOn()).total > 60, 30_000, 50);
      const exited = new Promise((r) => server.once("exit", r));
      server.kill("SIGTERM"); // SHUTDOWN: the append-only file is complete
      await exited;
      await new Promise((r) => setTimeout(r, 2000)); // Redis is down for two seconds
      server = startRedis();
      await waitFor("redis-server again", () => redisReachable(port, 200), 10_000, 50);
      await waitFor("300 items", async () => (await itemsOn()).total >= 300, 90_000);
      await new Promise((r) => setTimeout(r, 1000));
      const got = await itemsOn();
      expect(got.total).toBe(300);
      expect(got.urls.size).toBe(300);
      expect(workers[0].child.exitCode).toBe(null); // the worker rode it out
      workers[0].child.kill("SIGTERM");
      expect(await workers[0].exited).toBe(0);
    } finally {
      server.kill("SIGKILL");
    }
  }, 150_000);
});
