// robots.txt: the parser (RFC 9309 + Google's extensions), and obeying it in a real crawl.
import type { Redis } from "ioredis";
import { afterEach, describe, expect, it } from "vitest";
import { parseRobotsTxt, productToken, RobotsTxt } from "../src/download/robots.ts";
import { defineModule } from "../src/modules/define.ts";
import { politeConfig, politeCrawl } from "./helpers/polite-crawl.ts";
import { gaps, type HostsServer, startHostsServer, summary } from "./helpers/polite-servers.ts";
import { deleteNamespace, rawClient, requireRedis, uniqueName } from "./helpers/redis.ts";
import { RedisLockService } from "../src/sync/lock.ts";
import { TwoLevelCache } from "../src/cache/cache.ts";

await requireRedis("robots");

describe("parseRobotsTxt", () => {
  const UA = "mocra-ts/0.1 (+https://github.com/mocra-ts)";

  it("takes the product token of the user agent", () => {
    expect(productToken(UA)).toBe("mocra-ts");
    expect(productToken("Googlebot/2.1")).toBe("googlebot");
  });

  it("picks the most specific group; groups of the same agent merge; * otherwise", () => {
    const text = [
      "User-agent: *",
      "Disallow: /",
      "",
      "User-agent: mocra",
      "Disallow: /generic",
      "",
      "User-agent: MOCRA-TS",
      "User-agent: otherbot",
      "Disallow: /private",
      "Crawl-delay: 1.5",
      "",
      "User-agent: mocra-ts",
      "Disallow: /also",
      "Sitemap: https://x.test/sitemap.xml",
    ].join("\n");
    const r = parseRobotsTxt(text, UA);
    expect(r.isAllowed("https://x.test/private/a")).toBe(false);
    expect(r.isAllowed("https://x.test/also")).toBe(false);
    expect(r.isAllowed("https://x.test/generic")).toBe(true); // the shorter "mocra" group is not used
    expect(r.isAllowed("https://x.test/")).toBe(true); // not the * group
    expect(r.crawlDelaySecs).toBe(1.5);
    expect(r.sitemaps).toEqual(["https://x.test/sitemap.xml"]);
    const other = parseRobotsTxt(text, "somebot/1");
    expect(other.isAllowed("https://x.test/anything")).toBe(false);
    expect(other.crawlDelaySecs).toBeUndefined();
  });

  it("longest match wins, Allow wins a tie; * and $ patterns; query strings count", () => {
    const r = parseRobotsTxt(
      [
        "User-agent: *",
        "Disallow: /shop/",
        "Allow: /shop/public",
        "Disallow: /*.pdf$",
        "Disallow: /search?q=",
        "Allow: /tie",
        "Disallow: /tie",
        "Disallow: /a*/b",
        "Disallow: /exact$",
        "Disallow:", // empty: nothing
      ].join("\n"),
      UA,
    );
    expect(r.isAllowed("http://h/shop/cart")).toBe(false);
    expect(r.isAllowed("http://h/shop/public/1")).toBe(true);
    expect(r.isAllowed("http://h/docs/x.pdf")).toBe(false);
    expect(r.isAllowed("http://h/docs/x.pdf?v=1")).toBe(true); // $ anchors the end
    expect(r.isAllowed("http://h/search?q=shoes")).toBe(false);
    expect(r.isAllowed("http://h/search")).toBe(true);
    expect(r.isAllowed("http://h/tie")).toBe(true);
    expect(r.isAllowed("http://h/axx/b/c")).toBe(false);
    expect(r.isAllowed("http://h/exact")).toBe(false);
    expect(r.isAllowed("http://h/exactly")).toBe(true);
    expect(r.isAllowed("http://h/robots.txt")).toBe(true);
  });

  it("comments, CRLF, odd spacing and unknown lines", () => {
    const r = parseRobotsTxt("# hi\r\nUser-Agent : *   # all\r\nDisallow : /x # no\r\nFoo: bar\r\nNoise\r\n", UA);
    expect(r.isAllowed("http://h/x/1")).toBe(false);
    expect(r.isAllowed("http://h/y")).toBe(true);
    expect(parseRobotsTxt("", UA).isAllowed("http://h/x")).toBe(true);
    expect(parseRobotsTxt("Disallow: /\n", UA).isAllowed("http://h/x")).toBe(true); // rules before any group are ignored
  });
});

describe("RobotsTxt cache and status handling", () => {
  it("fetches once per origin; 4xx = allow all; 5xx = held back, then fetched again", async () => {
    const calls: string[] = [];
    let status = 503;
    const robots = new RobotsTxt({
      userAgent: "mocra-ts/0.1",
      unavailableMs: 150,
      fetch: async (url) => {
        calls.push(url);
        if (url.startsWith("http://gone.test")) return { status: 404, body: "" };
        if (url.startsWith("http://down.test")) return { error: "ECONNREFUSED" };
        return { status, body: "User-agent: *\nDisallow: /no\n" };
      },
    });
    const [v1, v2] = await Promise.all([robots.check("http://s.test/a"), robots.check("http://s.test/b")]);
    expect(v1).toMatchObject({ allowed: false, unavailable: true });
    expect(v2).toMatchObject({ allowed: false, unavailable: true });
    expect(calls).toHaveLength(1); // one fetch for concurrent checks
    status = 200;
    expect(await robots.check("http://s.test/no")).toMatchObject({ allowed: false, unavailable: true }); // still held back
    await new Promise((r) => setTimeout(r, 200));
    expect(await robots.check("http://s.test/no")).toEqual({ allowed: false, unavailable: false });
    expect(await robots.check("http://s.test/yes")).toEqual({ allowed: true });
    expect(calls).toHaveLength(2);
    expect(await robots.check("http://gone.test/no")).toEqual({ allowed: true });
    expect(await robots.check("http://down.test/x")).toMatchObject({ allowed: false, unavailable: true, reason: /unreachable/ });
    expect(await robots.check("http://s.test:8080/no")).toEqual({ allowed: false, unavailable: false }); // another origin: its own fetch
    expect(calls).toHaveLength(5);
  });

  it("shared through the Redis cache: a second worker does not fetch it again", async () => {
    const conn: Redis = rawClient();
    const name = uniqueName();
    try {
      let fetches = 0;
      const mk = () =>
        new RobotsTxt({
          userAgent: "mocra-ts/0.1",
          cache: new TwoLevelCache({ name, redis: conn, l1MaxEntries: 10, compressionThreshold: 1024 }),
          locks: new RedisLockService(conn, name), // one fetcher per origin (src/sync)
          fetch: async () => {
            fetches++;
            await new Promise((r) => setTimeout(r, 50));
            return { status: 200, body: "User-agent: *\nDisallow: /no\n" };
          },
        });
      const [a, b] = [mk(), mk()];
      const [va, vb] = await Promise.all([a.check("http://s.test/no"), b.check("http://s.test/no")]);
      expect(va).toEqual({ allowed: false, unavailable: false });
      expect(vb).toEqual({ allowed: false, unavailable: false });
      expect(fetches).toBe(1);
      const ttl = await conn.pttl(`${name}:cache:robots:http://s.test`);
      expect(ttl).toBeGreaterThan(86_000_000);
      expect(await conn.exists(`${name}:lock:robots:http://s.test`)).toBe(0); // released after the fetch
      expect(Number(await conn.get(`${name}:lock:fence`))).toBe(1); // one fetcher took it
    } finally {
      await deleteNamespace(name);
      conn.disconnect();
    }
  });
});

describe("obeying robots.txt in a crawl", () => {
  let server: HostsServer | undefined;
  afterEach(async () => {
    await server?.close();
    server = undefined;
  });

  const links = (base: string) => ["/open/1", "/private/1", "/open/2", "/private/2", "/open/3"].map((p) => `<a href="${base}${p}">x</a>`).join("");

  it("a Disallowed path is never requested (acked with an event); Crawl-delay slows the domain", async () => {
    server = await startHostsServer(["127.0.0.1", "127.0.0.2"], (req, res, hit) => {
      if (req.url === "/robots.txt") {
        const body = hit.address === "127.0.0.1" ? "User-agent: *\nDisallow: /private/\nCrawl-delay: 0.25\n" : "User-agent: *\nDisallow: /private/\n";
        return void res.writeHead(200, { "content-type": "text/plain" }).end(body);
      }
      res.writeHead(200, { "content-type": "text/html" }).end(req.url === "/" ? links(`http://${hit.host}`) : "<h1>page</h1>");
    });
    const bases = [server.urls["127.0.0.1"], server.urls["127.0.0.2"]];
    const m = defineModule({
      name: "robots_site",
      start: () => bases.map((b) => `${b}/`),
      parse(page, ctx) {
        ctx.emit({ url: page.url });
        ctx.follow(page.links());
      },
    });
    const config = await politeConfig(); // obey_robots_txt defaults to true; no rate limit
    const run = await politeCrawl(config, [m]);
    expect(server.hits.filter((h) => h.path.startsWith("/private/"))).toHaveLength(0);
    const disallowed = run.events.filter((e) => e.type === "robots_disallowed");
    expect(disallowed).toHaveLength(4);
    expect(run.items).toHaveLength(8); // "/" and /open/1..3 on both hosts
    expect(server.hits.filter((h) => h.path === "/robots.txt")).toHaveLength(2); // once per origin
    expect((await run.queue.stats()).request.dead).toBe(0);
    const slowGaps = gaps(server.hits.filter((h) => h.address === "127.0.0.1" && h.path !== "/robots.txt").map((h) => h.at));
    const slow = summary(slowGaps);
    const fast = summary(gaps(server.hits.filter((h) => h.address === "127.0.0.2" && h.path !== "/robots.txt").map((h) => h.at)));
    console.log(`Crawl-delay 0.25: gaps on that host min ${slow.min.toFixed(0)} / mean ${slow.mean.toFixed(0)} ms (other host, no delay: min ${fast.min.toFixed(1)} ms)`);
    expect(slow.mean).toBeGreaterThan(225); // one slot per 250 ms (a first connection and the event loop jitter single gaps)
    expect(slowGaps.filter((g) => g < 120).length).toBeLessThanOrEqual(1); // no burst (a loaded machine may delay one request)
    expect(fast.min).toBeLessThan(100);
  });

  it("obey_robots_txt = false, or a module's obeyRobotsTxt: false, ignores it", async () => {
    server = await startHostsServer(["127.0.0.1"], (req, res) => {
      if (req.url === "/robots.txt") return void res.writeHead(200).end("User-agent: *\nDisallow: /\n");
      res.writeHead(200, { "content-type": "text/html" }).end("<h1>x</h1>");
    });
    const base = server.urls["127.0.0.1"];
    const m = defineModule({ name: "rude", start: () => [`${base}/a`], parse() {}, settings: { obeyRobotsTxt: false } });
    const polite = defineModule({ name: "polite", start: () => [`${base}/b`], parse() {} });
    const run = await politeCrawl(await politeConfig(), [m, polite]);
    expect(server.hits.map((h) => h.path).sort()).toEqual(["/a", "/robots.txt"]);
    expect(run.events.filter((e) => e.type === "robots_disallowed")).toHaveLength(1);
    server.hits.length = 0;
    await politeCrawl(await politeConfig((c) => (c.crawler.obeyRobotsTxt = false)), [polite]);
    expect(server.hits.map((h) => h.path)).toEqual(["/b"]);
  });

  it("a robots.txt answering 503 holds the origin back, then it is fetched again and obeyed", async () => {
    let robotsCalls = 0;
    server = await startHostsServer(["127.0.0.1"], (req, res) => {
      if (req.url === "/robots.txt") {
        robotsCalls++;
        if (robotsCalls === 1) return void res.writeHead(503).end();
        return void res.writeHead(200).end("User-agent: *\nAllow: /\n");
      }
      res.writeHead(200, { "content-type": "text/html" }).end("<h1>x</h1>");
    });
    const base = server.urls["127.0.0.1"];
    const m = defineModule({ name: "later", start: () => [`${base}/a`], parse() {} });
    const run = await politeCrawl(await politeConfig(), [m], { kitOptions: { robotsUnavailableMs: 300 } });
    expect(robotsCalls).toBe(2);
    const a = server.hits.find((h) => h.path === "/a")!;
    const firstRobots = server.hits.find((h) => h.path === "/robots.txt")!;
    expect(a.at - firstRobots.at).toBeGreaterThan(280);
    expect(run.events.some((e) => e.type === "robots_unavailable")).toBe(true);
  });
});
