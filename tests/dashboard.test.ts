// The dashboard (GET /) in a real headless Chromium (Debian's chromium, driven by
// playwright-core): live counters of a running crawl, the pause and resume buttons, and a
// hostile dead-letter reason shown as inert text.
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type BrowserContext, chromium } from "playwright-core";
import { afterEach, describe, expect, it } from "vitest";
import type { Config } from "../src/config/index.ts";
import { defineModule } from "../src/index.ts";
import { type ApiCrawl, crawlWithApi } from "./helpers/api.ts";
import { cleanup, testConfig } from "./helpers/crawl.ts";
import { html, startServer, type TestServer } from "./helpers/http-server.ts";
import { freePort } from "./helpers/redis.ts";

const CHROMIUM = "/usr/bin/chromium";
const HOSTILE = "\u001b]0;owned\u0007\u001b[31m<script>window.__pwned = 1</script><img src=x onerror=\"window.__pwned = 2\">";

function haveChromium(): boolean {
  if (existsSync(CHROMIUM)) return true;
  if (process.env.CI === "true") throw new Error(`dashboard: no ${CHROMIUM} (CI=true: .ci/run installs Debian's chromium)`);
  console.warn(`dashboard: no ${CHROMIUM}: skipping (apt-get install -y chromium)`);
  return false;
}

let server: TestServer | undefined;
let run: ApiCrawl | undefined;
let config: Config | undefined;
let browser: BrowserContext | undefined;
let profile = "";

afterEach(async () => {
  await browser?.close();
  run?.pause.apply({ all: false, modules: [] });
  await run?.done;
  await run?.close();
  await server?.close();
  if (config) await cleanup(config);
  if (profile) await rm(profile, { recursive: true, force: true });
  browser = run = server = config = undefined;
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const totalHits = () => [...server!.hits.values()].reduce((a, b) => a + b, 0);

describe("dashboard in headless Chromium", () => {
  it("shows the live counters of a running crawl, pauses and resumes it, and renders a hostile reason inert", async () => {
    if (!haveChromium()) return;
    const pages = 400;
    server = await startServer(async (req, res) => {
      await sleep(15);
      const i = Number(req.url?.split("/")[2] ?? 0);
      const links = [i + 1].filter((j) => j < pages).map((j) => `<a href="/p/${j}">${j}</a>`);
      if (i === 1) links.push('<a href="/bad/0">bad</a>');
      html(res, `<html><body><h1>page ${i}</h1>${links.join("")}</body></html>`);
    });
    const base = server.url;
    const module = defineModule({
      name: "chain",
      start: () => [`${base}/p/0`],
      parse(page, ctx) {
        if (page.url.includes("/bad/")) throw new Error(HOSTILE);
        ctx.emit({ url: page.url });
        ctx.follow(page.links("a"));
      },
    });
    const port = await freePort();
    config = await testConfig((c) => {
      c.crawler.obeyRobotsTxt = false;
      c.api.port = port;
      c.api.apiKey = "dash-key";
    });
    run = await crawlWithApi(config, [module]);

    profile = await mkdtemp(join(tmpdir(), "mocra-chromium-"));
    browser = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
    });
    const page = await browser.newPage();
    await page.goto(`${run.base}/`);
    const counter = async (id: string) => Number(await page.locator(`#${id}`).textContent());

    // live: the pages counter climbs while the page stays open (no reload)
    await page.waitForFunction(() => Number(document.getElementById("pages")?.textContent) >= 5, undefined, { timeout: 30_000 });
    const first = await counter("pages");
    await page.waitForFunction((n) => Number(document.getElementById("pages")?.textContent) > n, first, { timeout: 30_000 });
    expect(await page.locator("#state").textContent()).toBe("running");
    await expect.poll(() => page.locator("#queues tbody tr").count()).toBeGreaterThan(0);

    // without the key the dead letters are a count only (their payloads need the key); with it, listed
    expect(await page.locator("#dead-letters-hidden").isVisible()).toBe(true);
    expect(await page.locator("#dead-letters tbody tr").count()).toBe(0);
    await page.fill("#api-key", "dash-key");
    await page.locator("#api-key").dispatchEvent("change");
    // the hostile reason is shown as text: no script ran, no element was made from it
    await page.waitForFunction(() => (document.querySelector("#dead-letters tbody")?.textContent ?? "").includes("owned"), undefined, { timeout: 30_000 });
    const cellText = await page.locator("#dead-letters tbody tr td").nth(1).textContent();
    expect(cellText).toContain("\\u001b]0;owned\\u0007\\u001b[31m<script>");
    expect(cellText).not.toMatch(/[\u0000-\u001f]/);
    expect(await page.evaluate(() => (window as unknown as { __pwned?: number }).__pwned)).toBeUndefined();
    expect(await page.locator("#dead-letters script, #dead-letters img").count()).toBe(0);

    // pause with the key: the badge says so and the server sees no new request
    await page.fill("#api-key", "dash-key");
    await page.click("#pause");
    await page.waitForFunction(() => document.getElementById("state")?.textContent === "paused", undefined, { timeout: 10_000 });
    expect(run.pause.paused).toBe(true);
    let last = totalHits();
    for (let quietSince = Date.now(); Date.now() - quietSince < 700; ) {
      await sleep(100);
      if (totalHits() !== last) [last, quietSince] = [totalHits(), Date.now()];
    }
    await sleep(2000);
    expect(totalHits()).toBe(last);
    expect(last).toBeLessThan(pages + 1);

    // with a module named, the buttons pause and resume that module only
    await page.fill("#module", "chain");
    await page.click("#pause");
    await expect.poll(() => run!.pause.isModulePaused("chain")).toBe(true);
    await page.waitForFunction(() => document.getElementById("state")?.textContent === "paused", undefined, { timeout: 10_000 });
    expect(run.pause.paused).toBe(true);
    await page.click("#resume");
    await expect.poll(() => run!.pause.isModulePaused("chain")).toBe(false);
    expect(run.pause.paused).toBe(true);
    await page.fill("#module", "");

    // resume: the crawl runs to its end
    await page.click("#resume");
    await page.waitForFunction(() => document.getElementById("state")?.textContent === "running", undefined, { timeout: 10_000 });
    const result = await run.done;
    expect(result.stats.pages).toBe(pages + 1);
    expect(totalHits()).toBe(pages + 1);
  }, 120_000);
});
