// ctx.enqueueLinks: CSS scope, rel=nofollow and <meta name=robots content=nofollow>, include and
// exclude by glob and regex, strategies; dropped links counted, one summary line per domain.
import { afterEach, describe, expect, it } from "vitest";
import { CrawlStats, defineModule, type EnqueueLinksOptions, EventBus } from "../src/index.ts";
import { cleanup, crawl, testConfig } from "./helpers/crawl.ts";
import { html, startServer, type TestServer } from "./helpers/http-server.ts";

let servers: TestServer[] = [];
afterEach(async () => {
  await Promise.all(servers.map((s) => s.close()));
  servers = [];
});

async function sites(): Promise<[TestServer, TestServer]> {
  const other = await startServer((req, res) => html(res, `<p>${req.url}</p>`));
  const main = await startServer((req, res) => {
    if (req.url === "/")
      return html(
        res,
        `<nav><a href="/cat/1">c1</a> <a href="/cat/2" rel="nofollow">c2</a></nav>
<main><a href="/item/1">i1</a> <a href="/item/2/reviews">reviews</a> <a href="/item/3?sort=asc">sorted</a>
<a href="${other.url}/item/4">other origin</a> <a href="javascript:void(0)">js</a></main>
<footer><a href="/about">about</a> <a href="/item/5">out of scope</a></footer>`,
      );
    if (req.url === "/cat/1") return html(res, `<meta name="robots" content="noindex, nofollow"><main><a href="/item/9">hidden</a></main>`);
    return html(res, `<p>${req.url}</p>`);
  });
  servers = [main, other];
  return [main, other];
}

const rules: EnqueueLinksOptions = { scope: "nav, main", include: ["**/cat/*", /\/item\/\d+/], exclude: ["**/reviews"] };

function linkModule(start: string, options: EnqueueLinksOptions) {
  return defineModule({
    name: "links",
    start: () => [start],
    parse(page, ctx) {
      ctx.emit({ url: page.url });
      ctx.enqueueLinks(options);
    },
  });
}

describe("enqueueLinks", () => {
  it("same-origin: scope, nofollow (rel and meta), include/exclude; drops counted in one line per domain", async () => {
    const [main, other] = await sites();
    const config = await testConfig();
    try {
      const run = await crawl(config, [linkModule(`${main.url}/`, { ...rules, strategy: "same-origin" })]);
      expect([...main.hits.keys()].filter((p) => p !== "/robots.txt").sort()).toEqual(["/", "/cat/1", "/item/1", "/item/3?sort=asc"]);
      expect([...other.hits.keys()].filter((p) => p !== "/robots.txt")).toEqual([]);
      expect(run.events.filter((e) => e.type === "warning")).toEqual([]);
      const lines = run.stats.droppedLinksLines();
      expect(lines).toHaveLength(1); // both origins are host 127.0.0.1
      expect(lines[0]).toMatch(/^links not followed on 127\.0\.0\.1: /);
      expect(lines[0]).toContain("1 excluded");
      expect(lines[0]).toContain("1 off-origin (same-origin strategy)");
    } finally {
      await cleanup(config);
    }
  }, 60_000);

  it("same-host follows the other port; the module's linkRules setting gives the defaults", async () => {
    const [main, other] = await sites();
    const config = await testConfig((c) => {
      c.modules = { links: {} };
    });
    const m = defineModule({
      name: "links",
      start: () => [`${main.url}/`],
      parse(_page, ctx) {
        ctx.enqueueLinks();
      },
      settings: { linkRules: { ...rules, strategy: "same-host" } },
    });
    try {
      await crawl(config, [m]);
      expect([...other.hits.keys()].filter((p) => p !== "/robots.txt")).toEqual(["/item/4"]);
      expect(main.hits.has("/item/2/reviews")).toBe(false);
      expect(main.hits.has("/item/5")).toBe(false);
      expect(main.hits.has("/cat/2")).toBe(false);
      expect(main.hits.has("/item/9")).toBe(false);
    } finally {
      await cleanup(config);
    }
  }, 60_000);

  it("nofollow: false follows rel=nofollow links", async () => {
    const [main] = await sites();
    const config = await testConfig();
    try {
      await crawl(config, [linkModule(`${main.url}/`, { ...rules, nofollow: false })]);
      expect(main.hits.has("/cat/2")).toBe(true);
      expect(main.hits.has("/item/9")).toBe(true);
    } finally {
      await cleanup(config);
    }
  }, 60_000);

  it("links not followed are one summary line: counts by reason in words, the top three domains", () => {
    const bus = new EventBus();
    const stats = new CrawlStats(bus);
    const drop = (domain: string, reason: string, count: number) => bus.emit({ type: "links_dropped", module: "m", domain, reason, count, example: `http://${domain}/x` });
    drop("bugs.python.org", "off-site (same-host strategy)", 2202);
    drop("docs.python.org", "off-site (same-host strategy)", 40);
    drop("docs.python.org", "nofollow", 3);
    drop("a.example", "off-site (same-host strategy)", 20);
    drop("b.example", "off-site (same-host strategy)", 1);
    expect(stats.droppedLinksSummary()).toBe(
      "links not followed: 2263 off-site (same-host strategy), 3 nofollow; most on bugs.python.org (2202), docs.python.org (43), a.example (20) and 1 more domains (per domain: --log-level debug)",
    );
    expect(stats.droppedLinksLines()).toHaveLength(4); // the detail, for debug
    stats.stop();
  });

  it("the drop summary escapes control characters that came from the network", () => {
    const bus = new EventBus();
    const stats = new CrawlStats(bus);
    bus.emit({ type: "links_dropped", module: "m", domain: "evil\u001b[2J.example", reason: "not crawlable", count: 2, example: "http://x/\u001b]0;title\u0007" });
    const [line] = stats.droppedLinksLines();
    expect(line).toBe("links not followed on evil\\u001b[2J.example: 2 not crawlable (e.g. http://x/\\u001b]0;title\\u0007)");
    expect(line).not.toMatch(/[\u0000-\u001f]/);
    stats.stop();
  });
});
