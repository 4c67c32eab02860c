// What a run tells its user: the summary's status counts, HTTP errors with their URLs, dead
// letters by reason with their first URLs (and the standalone dead-letter file); the progress
// output's one warning per host that refuses connections; polite defaults on a small server.
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { readFile } from "node:fs/promises";
import { afterEach, describe, expect, it } from "vitest";
import { EventBus } from "../src/events/bus.ts";
import { CrawlStats } from "../src/events/stats.ts";
import { showProgress, summaryText } from "../src/engine/progress.ts";
import { defineModule } from "../src/modules/define.ts";
import { cleanup, crawl, testConfig } from "./helpers/crawl.ts";
import { html, startServer, type TestServer } from "./helpers/http-server.ts";
import { freePort } from "./helpers/redis.ts";

let server: TestServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

describe("the summary", () => {
  it("shows status counts, 404s with their URLs, dead letters by reason with URLs, and writes the dead letters to a file", async () => {
    server = await startServer((req, res) => {
      const path = req.url ?? "/";
      if (path === "/robots.txt") return html(res, "", 404);
      if (path === "/") return html(res, `<a href="/ok">ok</a><a href="/missing">m</a><a href="/gone">g</a><a href="/broken">b</a><a href="/crash">c</a>`);
      if (path === "/missing" || path === "/gone") return html(res, "no", 404);
      if (path === "/broken") return html(res, "down", 500);
      html(res, `<h1>${path}</h1>`);
    });
    const config = await testConfig();
    const site = defineModule({
      name: "report",
      start: () => [`${server!.url}/`],
      parse(page, ctx) {
        if (page.url.endsWith("/crash")) throw new Error("no h1 here");
        ctx.emit({ t: page.text("h1") });
        ctx.follow(page.links("a"));
      },
    });
    try {
      const run = await crawl(config, [site]);
      const text = summaryText(run.stats, run.output);
      const u = server.url;
      expect(text).toContain("2 retries, 0 deferred, 2 dead letters"); // 3 deliveries of /broken = 2 retries
      expect(text).toContain("HTTP statuses: 200 × 3, 404 × 2, 500 × 3");
      const notFound = text.split("\n").find((l) => l.includes("HTTP 404 × 2: "));
      expect(notFound?.split(": ")[1].split(", ").sort()).toEqual([`${u}/gone`, `${u}/missing`]);
      expect(text).toContain(`HTTP 500 (after 3 attempts) × 1: ${u}/broken`);
      expect(text).toContain(`parse failed in module report: no h1 here × 1: ${u}/crash`);
      expect(run.deadLetterFile).toBeDefined();
      const lines = (await readFile(run.deadLetterFile!, "utf8")).trim().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>);
      expect(lines).toEqual(
        expect.arrayContaining([
          { topic: "request", reason: "HTTP 500 (after 3 attempts)", module: "report", url: `${u}/broken` },
          { topic: "response", reason: "parse failed in module report: no h1 here", module: "report", url: `${u}/crash` },
        ]),
      );
      expect(lines).toHaveLength(2);
    } finally {
      await cleanup(config);
    }
  });
});

describe("progress output", () => {
  it("says once per host that it refuses connections and the crawl backs off", async () => {
    const dead = await freePort();
    const config = await testConfig((c) => {
      c.crawler.obeyRobotsTxt = false;
      c.crawler.requestMaxRetries = 2;
      c.crawler.retryBaseDelayMs = 10;
      c.crawler.retryMaxDelayMs = 20;
      c.downloadConfig.circuitFailures = 3;
      c.downloadConfig.circuitOpenSecs = 0.3;
    });
    const bus = new EventBus();
    const stats = new CrawlStats(bus);
    let out = "";
    const stop = showProgress(bus, stats, { intervalSecs: 60, tty: false, queued: async () => 0, write: (t) => (out += t) });
    const m = defineModule({ name: "refused", start: () => Array.from({ length: 12 }, (_, i) => `http://127.0.0.1:${dead}/p/${i}`), parse() {} });
    const { runStandalone } = await import("../src/engine/standalone.ts");
    const { ModuleRegistry } = await import("../src/modules/registry.ts");
    try {
      const result = await runStandalone({ config, registry: new ModuleRegistry().register(m), events: bus });
      stop();
      const warnings = out.split("\n").filter((l) => l.includes("refusing connections"));
      expect(warnings).toEqual([`warning: host 127.0.0.1 refusing connections or timing out (3 in a row); backing off for 300 ms at a time`]);
      expect(result.stats.deferred).toBeGreaterThan(0);
    } finally {
      stop();
      await cleanup(config);
    }
  });
});

describe("polite defaults", () => {
  let small: Server | undefined;
  afterEach(async () => {
    await new Promise<void>((r) => (small ? small.close(() => r()) : r()));
    small = undefined;
  });

  it("a server with a listen backlog of 1 is crawled with the defaults without stalling, at most 8 requests at once", async () => {
    const PAGES = 60;
    let inFlight = 0;
    let most = 0;
    const seen = new Set<string>();
    small = createServer((req, res) => {
      const path = req.url ?? "/";
      seen.add(path);
      inFlight++;
      most = Math.max(most, inFlight);
      setTimeout(() => {
        inFlight--;
        if (path === "/robots.txt") return html(res, "", 404);
        if (path === "/") return html(res, Array.from({ length: PAGES }, (_, i) => `<a href="/p/${i}">${i}</a>`).join(""));
        html(res, `<h1>${path}</h1>`);
      }, 15);
    });
    await new Promise<void>((r) => small!.listen({ port: 0, host: "127.0.0.1", backlog: 1 }, () => r()));
    const url = `http://127.0.0.1:${(small.address() as AddressInfo).port}`;
    const config = await testConfig();
    expect(config.downloadConfig.domainConcurrency).toBe(8);
    expect(config.crawler.taskConcurrency).toBeGreaterThan(8);
    const site = defineModule({
      name: "small",
      start: () => [`${url}/`],
      parse(page, ctx) {
        if (page.url.includes("/p/")) ctx.emit({ t: page.text("h1") });
        ctx.follow(page.links("a"));
      },
    });
    try {
      const started = Date.now();
      const run = await crawl(config, [site]);
      expect(run.items).toHaveLength(PAGES);
      expect(run.stats.deadLetters).toBe(0);
      expect(most).toBeLessThanOrEqual(8);
      // 61 pages of 15 ms, 8 at a time, is well under a second unloaded: 20 s is the stall bound
      expect(Date.now() - started).toBeLessThan(20_000);
    } finally {
      await cleanup(config);
    }
  }, 30_000);
});
