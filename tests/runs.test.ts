// tests/runs.test.ts: a distributed run that ends and reports. The run's open count lives in
// the queue's scripts (publish/ack/dead-letter), so `submit --wait` ends exactly when nothing
// of the run is left anywhere, with the fleet's figures, even after a worker was killed -9;
// and the read-only `dashboard` shows it in a real headless Chromium.
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { type ShopServer, startShop } from "../examples/demo-shop/shop.ts";
import { request as requestModel, taskModel } from "../src/model/index.ts";
import { isFinished, RedisQueue } from "../src/queue/redis/index.ts";
import { runReason } from "../src/queue/redis/runs.ts";
import { deleteNamespace, freePort, rawClient, redisTestConfig, requireRedis, sinkItems, uniqueName } from "./helpers/redis.ts";
import { cliPid, readItems, runStandaloneProcess, standaloneDirs } from "./helpers/standalone-process.ts";
import { startProcess, startWorker, waitFor, type WorkerProcess, writeConfig, shopWorkerToml } from "./helpers/worker-process.ts";

beforeAll(async () => {
  await requireRedis("runs");
});

const CHROMIUM = "/usr/bin/chromium";

function haveChromium(): boolean {
  if (existsSync(CHROMIUM)) return true;
  if (process.env.CI === "true") throw new Error(`runs: no ${CHROMIUM} (CI=true: .ci/run installs Debian's chromium)`);
  console.warn(`runs: no ${CHROMIUM}: the dashboard part is skipped (apt-get install -y chromium)`);
  return false;
}

/**
 * The read-only dashboard after the run, on its first load: badge finished (no worker left),
 * the fleet's counters, the run listed, and the chart drawn from the server's history.
 */
async function checkDashboard(port: number, expected: { pages: number; items: number }): Promise<void> {
  const profile = await mkdtemp(join(tmpdir(), "mocra-chromium-"));
  const browser = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  try {
    const page = await browser.newPage();
    await page.goto(`http://127.0.0.1:${port}/`);
    await page.waitForFunction(() => document.getElementById("state")?.textContent !== "connecting", undefined, { timeout: 15_000 });
    expect(await page.locator("#state").textContent()).toBe("finished");
    expect(Number(await page.locator("#pages").textContent())).toBe(expected.pages);
    expect(Number(await page.locator("#items").textContent())).toBe(expected.items);
    expect(await page.locator("#fleet-scope").textContent()).toContain("all workers");
    expect(await page.locator("#runs tbody tr").count()).toBe(1);
    expect(await page.locator("#runs tbody tr td").nth(2).textContent()).toBe("finished");
    // the pages line (#1565c0) is on the canvas at the first render: history kept server-side
    const blue = await page.evaluate(() => {
      const c = document.getElementById("chart") as HTMLCanvasElement;
      const d = c.getContext("2d")!.getImageData(0, 0, c.width, c.height).data;
      let n = 0;
      for (let i = 0; i < d.length; i += 4) if (d[i] < 60 && d[i + 1] > 70 && d[i + 1] < 130 && d[i + 2] > 160) n++;
      return n;
    });
    expect(blue).toBeGreaterThan(5); // a line, however short the run (the label is grey)
  } finally {
    await browser.close();
    await rm(profile, { recursive: true, force: true });
  }
}

let shops: ShopServer[] = [];
let procs: WorkerProcess[] = [];
/** processes besides the workers and submit (the dashboard) */
let others: WorkerProcess[] = [];
let name = "";

afterEach(async () => {
  await Promise.all([...procs, ...others].map(stopProcess));
  procs = [];
  others = [];
  for (const s of shops) await s.close();
  shops = [];
  if (name) await deleteNamespace(name);
  name = "";
});

/**
 * Stops a CLI process started through the tsx wrapper: SIGTERM (tsx relays it; the command drains
 * and exits), then SIGKILL to the CLI itself and the wrapper (SIGKILL of the wrapper alone would
 * leave the CLI running).
 */
async function stopProcess(p: WorkerProcess): Promise<void> {
  if (p.child.exitCode !== null || p.child.signalCode !== null) return;
  const cli = cliPid(p.child.pid!);
  p.child.kill("SIGTERM");
  const done = await Promise.race([p.exited.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 15_000))]);
  if (done) return;
  if (cli !== undefined) process.kill(cli, "SIGKILL");
  p.child.kill("SIGKILL");
}

const workerToml = (shopUrl: string) => shopWorkerToml(name, shopUrl, 4);

/** Seconds left on a run's hash (-1: no expiry). */
function rawTtl(runId: string): Promise<number> {
  const r = rawClient();
  return r.ttl(`${name}:run:${runId}`).finally(() => r.disconnect());
}

/** `submit --wait` as a process (its exit is the point). */
function submitWait(cfg: string, extra: string[] = []): Promise<WorkerProcess> {
  return startProcess("src/cli.ts", ["submit", "demo_shop", "--config", cfg, "--wait", ...extra], { ready: "submitted" });
}

/** "done in 3.2 s: 215 pages, 200 items, ..." → pages, items, dead letters */
function figures(out: string): { pages: number; items: number; dead: number } {
  const m = /done in [\d.]+ s: (\d+) pages, (\d+) items, .* (\d+) dead letters/.exec(out);
  if (!m) throw new Error(`no summary line in:\n${out}`);
  return { pages: Number(m[1]), items: Number(m[2]), dead: Number(m[3]) };
}

describe("runs in Redis", () => {
  it("a run's open count: publish opens, ack and dead-letter settle, a reclaimed entry counts once", async () => {
    name = uniqueName();
    const config = redisTestConfig((c) => {
      c.name = name;
      c.channelConfig.redis.claimMinIdle = 100;
      c.channelConfig.redis.claimInterval = 600_000; // reclaims only when the test sweeps (maintain): no surprise under load
    });
    const a = await RedisQueue.connect(config, { consumerName: "a", maxDeliveries: 2 });
    let b: RedisQueue | undefined;
    try {
      const task = taskModel({ module: ["m"] });
      await a.runs().record(task.runId, ["m"]);
      const req = (i: number) => requestModel({ url: `http://127.0.0.1/${i}`, module: "m", runId: task.runId });
      await a.publish("request", [1, 2, 3].map((i) => ({ message: req(i) })));
      expect((await a.runs().read(task.runId))!.open).toBe(3);
      const got = await a.read("request", 3, 100);
      expect(got).toHaveLength(3);
      // a's 1st: acked with counts; 2nd: dead letter; 3rd: a "dies" holding it (never settled)
      a.countForRun(task.runId, "pages", 1);
      await a.ack(got[0]);
      await a.deadLetter(got[1], "HTTP 404");
      let run = (await a.runs().read(task.runId))!;
      expect([run.open, run.pages, run.dead, run.deadByReason.get("HTTP 404")]).toEqual([1, 1, 1, 1]);
      expect(isFinished(run)).toBe(false);
      await a.close(); // "killed" holding the 3rd
      b = await RedisQueue.connect(config, { consumerName: "b", maxDeliveries: 2 });
      // b reclaims the 3rd after claim_min_idle and acks it: finished, counted once
      await new Promise((r) => setTimeout(r, 150)); // idle past claim_min_idle
      let again = await b.read("request", 3, 50); // (gives the reader credit for the sweep)
      for (let i = 0; i < 50 && again.length === 0; i++) {
        await b.maintain();
        again = await b.read("request", 3, 100);
      }
      expect(again.map((d) => d.message.url)).toEqual([got[2].message.url]);
      await b.ack(again[0]);
      await b.ack(got[2]); // the first delivery acked late (XACK 0): no second count
      run = (await b.runs().read(task.runId))!;
      expect(run.open).toBe(0);
      expect(isFinished(run)).toBe(true);
      const listed = await b.runs().list();
      expect(listed.map((r) => r.runId)).toContain(task.runId);
      // its dead letter replayed: the run is open again (and kept while open) until it is settled
      expect(await b.replayDeadLetters("request", 10)).toBe(1);
      run = (await b.runs().read(task.runId))!;
      expect([run.open, isFinished(run)]).toEqual([1, false]);
      expect(await rawTtl(task.runId)).toBe(-1);
      const replayed = await b.read("request", 3, 500);
      expect(replayed.map((d) => d.message.url)).toEqual([got[1].message.url]);
      await b.ack(replayed[0]);
      run = (await b.runs().read(task.runId))!;
      expect([run.open, isFinished(run)]).toEqual([0, true]);
      expect(await rawTtl(task.runId)).toBeGreaterThan(0);

      // a poison entry (delivered more than maxDeliveries times) is dead-lettered by the janitor
      // and counted off its run
      const t2 = taskModel({ module: ["m"] });
      const q = b;
      await q.publish("request", [{ message: requestModel({ url: "http://127.0.0.1/poison", module: "m", runId: t2.runId }) }]);
      // b takes it, and again on each reclaim, never settling it, until it is poison
      await waitFor("the poison entry settled", async () => {
        await q.read("request", 1, 50);
        await new Promise((r) => setTimeout(r, 120)); // idle past claim_min_idle
        await q.maintain();
        return (await q.runs().read(t2.runId))?.open === 0;
      }, 15_000, 10);
      const r2 = (await q.runs().read(t2.runId))!;
      expect(r2.dead).toBe(1);
      expect(isFinished(r2)).toBe(true);
    } finally {
      await a.close();
      await b?.close();
    }
  }, 30_000);

  it("two workers + submit --wait: ends with the summary when the site is crawled, same figures as run-standalone; --exit-when-idle ends the workers with 0; the dashboard (Chromium) says finished with the fleet's figures", async () => {
    name = uniqueName();
    const shop = await startShop({ items: 60, latencyMs: 5 });
    shops.push(shop);
    const cfg = await writeConfig(workerToml(shop.url));
    // the read-only dashboard watches from the start (its chart history is sampled server-side)
    const port = await freePort();
    const dashboard = await startProcess("src/cli.ts", ["dashboard", "--config", cfg, "--port", String(port), "--host", "127.0.0.1"], { ready: "dashboard of" });
    others.push(dashboard);
    // a batch job: the run is submitted first, then workers that stop once it is all done
    const submit = await submitWait(cfg);
    const workerArgs = ["start-worker", "--config", cfg, "--exit-when-idle", "3"];
    procs.push(await startProcess("src/cli.ts", workerArgs, { ready: "joined" }), await startProcess("src/cli.ts", workerArgs, { ready: "joined" }));
    procs.push(submit);
    expect(await submit.exited, submit.output()).toBe(0);
    // when it said done, every page had been served and every item stored
    const dist = figures(submit.output());
    expect((await sinkItems(name, "demo_shop")).total).toBe(60);
    expect(dist.items).toBe(60);
    const served = [...shop.hits].filter(([path]) => path !== "/robots.txt").reduce((n, [, c]) => n + c, 0);
    expect(dist.pages).toBe(served);
    expect(submit.output()).toMatch(/HTTP statuses: 200 × \d+/);
    // the workers see the queues empty for 3 s and stop by themselves, exit 0
    const codes = await Promise.all(procs.slice(0, 2).map((w) => w.exited));
    expect(codes, procs[0].output()).toEqual([0, 0]);
    expect(procs[0].output()).toContain("--exit-when-idle");
    // the API's runs route: the run, finished, with its figures and how long it is kept
    const runs = (await (await fetch(`http://127.0.0.1:${port}/runs`)).json()) as Array<Record<string, unknown>>;
    expect(runs).toHaveLength(1);
    expect(runs[0]).toMatchObject({ state: "finished", pages: served, items: 60, open: 0, dead_letters: 0, modules: ["demo_shop"] });
    expect(Date.parse(String(runs[0].expires_at)) - Date.parse(String(runs[0].finished_at))).toBe(7 * 24 * 3600 * 1000);
    const one = await fetch(`http://127.0.0.1:${port}/runs/${String(runs[0].run_id)}`);
    expect(((await one.json()) as { pages: number }).pages).toBe(served);
    expect((await fetch(`http://127.0.0.1:${port}/runs/nope`)).status).toBe(404);
    if (haveChromium()) await checkDashboard(port, { pages: served, items: 60 });
    dashboard.child.kill("SIGTERM");
    expect(await dashboard.exited).toBe(0);

    // the same site crawled by run-standalone: the same figures
    const solo = await startShop({ items: 60, latencyMs: 5 });
    shops.push(solo);
    const dirs = await standaloneDirs(`${solo.url}/list/0`);
    const run = runStandaloneProcess(dirs, "node");
    expect((await run.exited).code, run.output()).toBe(0);
    const alone = figures(run.output());
    expect(alone).toEqual(dist);
    expect((await readItems(dirs)).length).toBe(60);
  }, 180_000);

  it("kill -9 of a worker mid-run does not end the run early: submit --wait ends after the re-delivered pages", async () => {
    name = uniqueName();
    const shop = await startShop({ items: 160, latencyMs: 30 });
    shops.push(shop);
    const cfg = await writeConfig(workerToml(shop.url));
    procs.push(await startWorker(cfg), await startWorker(cfg));
    const submit = await submitWait(cfg);
    procs.push(submit);
    await waitFor("a quarter of the items", async () => (await sinkItems(name, "demo_shop")).total > 40, 60_000, 50);
    // kill -9 of the worker itself (the CLI process under the tsx wrapper)
    const victim = cliPid(procs[0].child.pid!);
    expect(victim, "the worker process under tsx").toBeDefined();
    process.kill(victim!, "SIGKILL");
    expect(await submit.exited, submit.output()).toBe(0);
    // submit said done only once every item was stored (the killed worker's pages were
    // reclaimed after claim_min_idle and fetched again)
    const got = await sinkItems(name, "demo_shop");
    expect(got.total).toBe(160);
    expect(got.urls.size).toBe(160);
    // the summary's item count can miss the items of pages the killed worker had stored but not
    // acked (its counts died with it; the Redis sink stores the re-delivery's items no second time)
    const reported = figures(submit.output()).items;
    expect(reported).toBeLessThanOrEqual(160);
    expect(reported).toBeGreaterThanOrEqual(160 - 16); // at most its in-flight pages (task_concurrency 4 × 4 prefetch)
    procs[1].child.kill("SIGTERM");
    expect(await procs[1].exited).toBe(0);
  }, 180_000);
});

describe("dead letters counted by reason", () => {
  it("one cause is one count, whatever page or timing it met", () => {
    const watchdog = (secs: string, calls: number) =>
      `parse timed out after 5 s: it blocked the process (${secs} s without a turn of the event loop: a loop in module code?) [one of ${calls} calls in flight]`;
    expect(runReason(watchdog("12.3", 2))).toBe(runReason(watchdog("7.81", 3)));
    expect(runReason("refused: http://10.0.0.1/a?b=1 is private")).toBe(runReason("refused: https://intranet.example/x is private"));
    // the status and the cause stay apart
    expect(runReason("HTTP 404")).not.toBe(runReason("HTTP 500"));
    expect(runReason("x".repeat(500))).toHaveLength(100);
  });
});
