// tests/nats-distributed.test.ts: real `start-worker` processes with the queues on NATS
// JetStream ([channel_config.nats]) and coordination plus the idempotent sink on Redis, against a
// private nats-server (file store) started for this file: two workers crawl the demo shop
// completely; kill -9 of a worker and a restart of the server mid-crawl lose nothing and store
// nothing twice; a Deno worker shares the stream; `status` and `dlq` read JetStream.
import { jetstream } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { readStatus } from "../src/commands/status.ts";
import { loadConfig } from "../src/config/index.ts";
import { type ShopServer, startShop } from "../examples/demo-shop/shop.ts";
import { TOPICS } from "../src/model/index.ts";
import { type NatsServer, startNatsServer } from "./helpers/nats-server.ts";
import { deleteNamespace, requireRedis, sinkItems, uniqueName } from "./helpers/redis.ts";
import { killFirstWorkerMidCrawl, runCli, startWorker, waitFor, type WorkerProcess, writeConfig } from "./helpers/worker-process.ts";

await requireRedis("nats-distributed");

let nats: NatsServer;
beforeAll(async () => {
  nats = await startNatsServer();
}, 30_000);
afterAll(async () => {
  await nats?.dispose();
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

function workerToml(shopUrl: string, concurrency = 8): string {
  return `name = "${name}"
[crawler]
task_concurrency = ${concurrency}
shutdown_timeout_secs = 10
progress_interval_secs = 1
[output]
sink = "redis"
[channel_config.nats]
url = "${nats.url}"
ack_wait_ms = 3000
reconnect_budget_secs = 60
[channel_config.redis]
[modules.demo_shop]
start_url = "${shopUrl}/list/0"
`;
}

const items = () => sinkItems(name, "demo_shop");

async function idle(configFile: string): Promise<boolean> {
  const s = await readStatus(await loadConfig(configFile));
  return TOPICS.every((t) => Object.values(s.topics[t].priorities).every((p) => p.waiting === 0 && p.pending === 0));
}

describe("distributed crawl on NATS JetStream", () => {
  it("two workers (a Deno one and a Node one) crawl the shop completely, every item once; status reads JetStream; a poison message is in `dlq list` with its reason", async () => {
    name = uniqueName();
    shop = await startShop({ items: 250, latencyMs: 20 });
    const cfg = await writeConfig(workerToml(shop.url));
    workers = [await startWorker(cfg, { runtime: "deno" }), await startWorker(cfg)];
    for (const w of workers) expect(w.output()).toContain(`on NATS JetStream (${nats.url})`);
    const nc = await connect({ servers: nats.url });
    try {
      await jetstream(nc).publish(`${name}.request-normal`, new Uint8Array([1, 2, 3]));
    } finally {
      await nc.close();
    }
    expect((await runCli(["submit", "demo_shop", "--config", cfg])).code).toBe(0);
    await waitFor("some items", async () => (await items()).total > 30, 30_000);
    const during = await readStatus(await loadConfig(cfg));
    const busy = Object.values(during.topics.request.priorities).reduce((n, p) => n + p.waiting + p.pending, 0);
    expect(busy).toBeGreaterThan(0);
    expect(during.workers.length).toBe(2);
    await waitFor("250 items", async () => (await items()).total >= 250, 90_000);
    await waitFor("an idle queue", () => idle(cfg), 30_000);
    const got = await items();
    expect(got.total).toBe(250);
    expect(got.urls.size).toBe(250);
    const after = await readStatus(await loadConfig(cfg));
    expect(after.finished).toBe(true);
    expect(after.topics.request.priorities.normal.dead).toBe(1);
    const listed = await runCli(["dlq", "list", "--topic", "request", "--config", cfg]);
    expect(listed.code).toBe(0);
    expect(listed.out).toMatch(/undecodable payload/);
    for (const w of workers) w.child.kill("SIGTERM");
    expect(await Promise.all(workers.map((w) => w.exited))).toEqual([0, 0]);
    for (const w of workers) expect(w.output()).toMatch(/stopped: [1-9]\d* pages/);
  }, 150_000);

  it("kill -9 of one worker mid-crawl: its un-acked messages are re-delivered, nothing lost, no duplicate item", async () => {
    name = uniqueName();
    shop = await startShop({ items: 300, latencyMs: 20 });
    const cfg = await writeConfig(workerToml(shop.url));
    workers = [await startWorker(cfg), await startWorker(cfg)];
    expect((await runCli(["submit", "demo_shop", "--config", cfg])).code).toBe(0);
    await killFirstWorkerMidCrawl(workers, 300, items, () => idle(cfg));
    const got = await items();
    expect(got.total).toBe(300);
    expect(got.urls.size).toBe(300);
    workers[1].child.kill("SIGTERM");
    expect(await workers[1].exited).toBe(0);
  }, 150_000);

  it("NATS restarted mid-crawl (file store): the worker rides it out, every item exactly once", async () => {
    name = uniqueName();
    shop = await startShop({ items: 200, latencyMs: 10 });
    const cfg = await writeConfig(workerToml(shop.url));
    workers = [await startWorker(cfg)];
    expect((await runCli(["submit", "demo_shop", "--config", cfg])).code).toBe(0);
    await waitFor("some items", async () => (await items()).total > 40, 30_000, 50);
    await nats.stop();
    await new Promise((r) => setTimeout(r, 2000));
    await nats.start();
    await waitFor("200 items", async () => (await items()).total >= 200, 90_000);
    await waitFor("an idle queue", () => idle(cfg), 30_000);
    const got = await items();
    expect(got.total).toBe(200);
    expect(got.urls.size).toBe(200);
    expect(workers[0].child.exitCode).toBe(null);
    expect(workers[0].output()).toMatch(/nats|NATS/);
    workers[0].child.kill("SIGTERM");
    expect(await workers[0].exited).toBe(0);
  }, 150_000);
});
