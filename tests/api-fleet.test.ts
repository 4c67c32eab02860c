// Two real start-worker processes with [api] on their own ports, sharing one crawl in Redis:
// metrics against the shop's own count, fleet-wide pause through one worker's API (and per
// module through the CLI), resume to the end; the log line of a Redis outage.
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { type ShopServer, startShop } from "../examples/demo-shop/shop.ts";
import { itemStreamKey } from "../src/storage/redis-sink.ts";
import { getJson, scrape, sumOf } from "./helpers/api.ts";
import { deleteNamespace, freePort, rawClient, requireRedis, startRedisServer, stopRedisServer, uniqueName } from "./helpers/redis.ts";
import { runCli, startWorker, waitFor, type WorkerProcess, writeConfig } from "./helpers/worker-process.ts";

beforeAll(async () => {
  await requireRedis("api-fleet");
});

let shop: ShopServer | undefined;
let workers: WorkerProcess[] = [];
let name = "";
const KEY = "fleet-key";

afterEach(async () => {
  for (const w of workers) if (w.child.exitCode === null) w.child.kill("SIGKILL");
  workers = [];
  await shop?.close();
  shop = undefined;
  if (name) await deleteNamespace(name);
});

/** A worker's config; without `redisPort`, writeConfig points it at the test Redis. */
function workerToml(shopUrl: string, apiPort: number, redisPort?: number): string {
  return `name = "${name}"
[crawler]
task_concurrency = 2
obey_robots_txt = false
shutdown_timeout_secs = 10
progress_interval_secs = 1
[output]
sink = "redis"
[channel_config.redis]
${redisPort === undefined ? "" : `redis_port = ${redisPort}\n`}claim_min_idle = 3000
claim_interval = 500
[api]
port = ${apiPort}
api_key = "${KEY}"
[modules.demo_shop]
start_url = "${shopUrl}/list/0"
`;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Waits until the shop has seen no new request for `quietMs` (in-flight work drained). */
async function quiet(quietMs: number, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = shop!.totalHits;
  let since = Date.now();
  while (Date.now() - since < quietMs) {
    if (Date.now() > deadline) throw new Error(`the shop never went quiet for ${quietMs} ms`);
    await sleep(100);
    if (shop!.totalHits !== last) {
      last = shop!.totalHits;
      since = Date.now();
    }
  }
}

async function storedItems(): Promise<number> {
  const r = rawClient();
  try {
    return await r.xlen(itemStreamKey(name, "demo_shop"));
  } finally {
    r.disconnect();
  }
}

const post = (base: string, path: string) => fetch(`${base}${path}`, { method: "POST", headers: { authorization: `Bearer ${KEY}` } });

describe("[api] across a fleet of workers", () => {
  it("metrics equal the shop's count; pause via one worker's API stops both, per-module pause via the CLI too; resume finishes", async () => {
    name = uniqueName();
    shop = await startShop({ items: 300, latencyMs: 25 });
    const ports = [await freePort(), await freePort()];
    const configs = await Promise.all(ports.map((p) => writeConfig(workerToml(shop!.url, p))));
    workers = await Promise.all(configs.map((c) => startWorker(c)));
    const [a, b] = ports.map((p) => `http://127.0.0.1:${p}`) as [string, string];
    expect((await runCli(["submit", "demo_shop", "--config", configs[0]!])).code).toBe(0);
    await waitFor("the crawl to get going", async () => shop!.totalHits >= 40, 60_000, 50);

    // pause through worker A: both stop taking work; what was in flight finishes
    const paused = await post(a, "/control/pause");
    expect(paused.status).toBe(200);
    await quiet(700);
    const frozen = shop.totalHits;
    await sleep(2000);
    expect(shop.totalHits).toBe(frozen); // no new request for 2 s, from either worker
    const snapB = await getJson<{ paused: { all: boolean }; totals: { pages: number } }>(`${b}/observability/engine`);
    expect(snapB.body.paused.all).toBe(true);
    expect(snapB.body.totals.pages).toBeGreaterThan(0); // B was crawling too before the pause
    expect(sumOf(await scrape(b), "mocra_paused", { scope: "all" })).toBe(1);
    const status = await runCli(["status", "--config", configs[0]!]);
    expect(status.out).toMatch(/PAUSED/);
    expect(frozen).toBeLessThan(306); // not finished: 6 list pages + 300 items

    // while paused, pause the module through B's API and resume the crawl through A's: the
    // workers read again, but hold the module's messages back (re-queued as deferrals)
    const modulePaused = await post(b, "/control/pause?module=demo_shop");
    expect(await modulePaused.json()).toEqual({ paused: { all: true, modules: ["demo_shop"] } });
    const resumed = await post(a, "/control/resume");
    expect(await resumed.json()).toEqual({ paused: { all: false, modules: ["demo_shop"] } }); // the module stays paused
    const cliPause = await runCli(["pause", "--module", "demo_shop", "--config", configs[1]!]); // the CLI agrees (idempotent)
    expect(cliPause.out).toMatch(/crawl \S+: running; paused modules: demo_shop/);
    await waitFor("a deferral", async () => sumOf(await scrape(a), "mocra_deferrals_total") + sumOf(await scrape(b), "mocra_deferrals_total") > 0, 30_000, 250);
    expect(shop.totalHits).toBe(frozen); // nothing of the paused module was fetched
    await sleep(2000);
    expect(shop.totalHits).toBe(frozen);
    expect((await runCli(["resume", "--module", "demo_shop", "--config", configs[0]!])).out).toMatch(/running$/m);

    // the crawl finishes: every item once, and the two workers' counters add up to the shop's count
    await waitFor("every item stored", async () => (await storedItems()) >= 300, 120_000, 200);
    await quiet(1000);
    const [ma, mb] = [await scrape(a), await scrape(b)];
    const downloads = sumOf(ma, "mocra_throughput_total", { stage: "download" }) + sumOf(mb, "mocra_throughput_total", { stage: "download" });
    expect(downloads).toBe(shop.totalHits);
    expect(sumOf(ma, "mocra_items_stored_total") + sumOf(mb, "mocra_items_stored_total")).toBeGreaterThanOrEqual(300);
    expect(sumOf(ma, "mocra_throughput_total", { stage: "download" })).toBeGreaterThan(0);
    expect(sumOf(mb, "mocra_throughput_total", { stage: "download" })).toBeGreaterThan(0);
    expect(sumOf(ma, "mocra_node_up")).toBe(1);
    const nodes = await getJson<{ id: string }[]>(`${a}/nodes`, { headers: { "x-api-key": KEY } });
    expect(nodes.body).toHaveLength(2);
    expect(await storedItems()).toBe(300);

    for (const w of workers) w.child.kill("SIGTERM");
    expect(await Promise.all(workers.map((w) => w.exited))).toEqual([0, 0]);
  }, 240_000);

  it("a worker prints one line when its Redis becomes unreachable and one when it is back", async () => {
    name = uniqueName();
    const redisPort = await freePort();
    let redis = await startRedisServer(redisPort);
    try {
      shop = await startShop({ items: 5 });
      const cfg = await writeConfig(`${workerToml(shop.url, await freePort(), redisPort)}`.replace("[channel_config.redis]", "[channel_config.redis]\nreconnect_budget_secs = 60"));
      workers = [await startWorker(cfg)];
      await stopRedisServer(redis);
      await waitFor("the outage line", async () => /warning: Redis at 127\.0\.0\.1:\d+ unreachable/.test(workers[0]!.output()), 20_000);
      redis = await startRedisServer(redisPort);
      await waitFor("the recovery line", async () => /Redis at 127\.0\.0\.1:\d+ reachable again after \d+\.\d s/.test(workers[0]!.output()), 30_000);
      const out = workers[0]!.output();
      expect(out.match(/unreachable \(/g)).toHaveLength(1); // one line per outage, not one per retry
      workers[0]!.child.kill("SIGTERM");
      expect(await workers[0]!.exited).toBe(0);
    } finally {
      await stopRedisServer(redis);
    }
  }, 90_000);
});
