// tests/dashboard-fleet.test.ts: the read-only `dashboard` command of a distributed crawl in a
// real headless Chromium, after the run: the badge says finished (no worker is left), the
// counters are the fleet's (equal to what the site served), and the chart has history on the
// first load (the server sampled it while the run went on).
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type BrowserContext, chromium } from "playwright-core";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { type ShopServer, startShop } from "../src/demo/shop.ts";
import { deleteNamespace, freePort, requireRedis, uniqueName } from "./helpers/redis.ts";
import { startProcess, type WorkerProcess, writeConfig } from "./helpers/worker-process.ts";

const CHROMIUM = "/usr/bin/chromium";

beforeAll(async () => {
  await requireRedis("dashboard-fleet");
});

let shop: ShopServer | undefined;
let procs: WorkerProcess[] = [];
let browser: BrowserContext | undefined;
let profile = "";
let name = "";

afterEach(async () => {
  await browser?.close();
  for (const p of procs) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill("SIGKILL");
  procs = [];
  await shop?.close();
  if (profile) await rm(profile, { recursive: true, force: true });
  if (name) await deleteNamespace(name);
  browser = shop = undefined;
  profile = name = "";
});

describe("dashboard of a distributed crawl, in headless Chromium", () => {
  it("after the run: badge finished with no worker left, fleet pages equal the site's hits, chart non-empty on first load", async () => {
    if (!existsSync(CHROMIUM)) {
      if (process.env.CI === "true") throw new Error(`no ${CHROMIUM}`);
      console.warn(`dashboard-fleet: no ${CHROMIUM}: skipping`);
      return;
    }
    name = uniqueName();
    shop = await startShop({ items: 40, latencyMs: 20 });
    const port = await freePort();
    const cfg = await writeConfig(`name = "${name}"
[crawler]
task_concurrency = 4
progress_interval_secs = 1
[output]
sink = "redis"
[download_config]
rate_limit = 30
[modules.demo_shop]
start_url = "${shop.url}/list/0"
`);
    const dashboard = await startProcess("src/cli.ts", ["dashboard", "--config", cfg, "--port", String(port), "--host", "127.0.0.1"], { ready: "dashboard of" });
    procs.push(dashboard);
    const submit = await startProcess("src/cli.ts", ["submit", "demo_shop", "--config", cfg, "--wait"], { ready: "submitted" });
    procs.push(submit);
    const worker = await startProcess("src/cli.ts", ["start-worker", "--config", cfg, "--exit-when-idle", "2"], { ready: "joined" });
    procs.push(worker);
    expect(await submit.exited, submit.output()).toBe(0);
    expect(await worker.exited, worker.output()).toBe(0);
    const served = [...shop.hits].filter(([p]) => p !== "/robots.txt").reduce((n, [, c]) => n + c, 0);

    profile = await mkdtemp(join(tmpdir(), "mocra-chromium-"));
    browser = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
    });
    const page = await browser.newPage();
    await page.goto(`http://127.0.0.1:${port}/`);
    await page.waitForFunction(() => document.getElementById("state")?.textContent !== "connecting", undefined, { timeout: 15_000 });
    expect(await page.locator("#state").textContent()).toBe("finished");
    expect(Number(await page.locator("#pages").textContent())).toBe(served);
    expect(Number(await page.locator("#items").textContent())).toBe(40);
    expect(await page.locator("#fleet-scope").textContent()).toContain("all workers");
    expect(await page.locator("#runs tbody tr").count()).toBe(1);
    expect(await page.locator("#runs tbody tr td").nth(2).textContent()).toBe("finished");
    // the chart was drawn from the server's history at the first render: its pages line is there
    const blue = await page.evaluate(() => {
      const c = document.getElementById("chart") as HTMLCanvasElement;
      const d = c.getContext("2d")!.getImageData(0, 0, c.width, c.height).data;
      let n = 0;
      for (let i = 0; i < d.length; i += 4) if (d[i] < 60 && d[i + 1] > 70 && d[i + 1] < 130 && d[i + 2] > 160) n++;
      return n;
    });
    expect(blue).toBeGreaterThan(50);
  }, 180_000);
});
