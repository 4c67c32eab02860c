// robots.txt by RFC 9309: every case of tests/fixtures/robots-cases.ts against our parser, and the
// access rules of §2.3.1 (status codes, unreachable hosts, redirects) against real HTTP servers
// through the crawler's own robots.txt fetching (createPoliteness).
import type { ServerResponse } from "node:http";
import { afterEach, describe, expect, it } from "vitest";
import { defaultConfig } from "../src/config/index.ts";
import { parseRobotsTxt, productToken } from "../src/download/robots.ts";
import { createPoliteness } from "../src/engine/politeness.ts";
import { ROBOTS_CASES } from "./fixtures/robots-cases.ts";
import { startServer, type TestServer } from "./helpers/http-server.ts";

describe("RFC 9309 conformance (table)", () => {
  it.each(ROBOTS_CASES.map((c) => [c.name, c] as const))("%s", (_name, c) => {
    expect(parseRobotsTxt(c.body, c.agent).isAllowed(c.url)).toBe(c.allowed);
  });

  it("product tokens: letters, '_' and '-', lower-cased", () => {
    expect(productToken("mocra-ts/0.1 (+https://github.com/mocra-ts)")).toBe("mocra-ts");
    expect(productToken("Googlebot/2.1")).toBe("googlebot");
    expect(productToken("Mozilla/5.0 (compatible; ExampleBot/0.1; https://www.example.com/bot.html)")).toBe("examplebot");
    expect(productToken("my_bot")).toBe("my_bot");
  });

  it("Crawl-delay of the chosen group; Sitemap lines of any group", () => {
    const r = parseRobotsTxt("User-agent: *\nCrawl-delay: 9\nDisallow: /z\n\nUser-agent: examplebot\nCrawl-delay: 1.5\nUser-agent: x\nDisallow: /a\nSitemap: https://h/s.xml\n", "ExampleBot/1");
    expect(r.crawlDelaySecs).toBe(1.5);
    expect(r.sitemaps).toEqual(["https://h/s.xml"]);
    expect(parseRobotsTxt("User-agent: *\nCrawl-delay: 9\n", "ExampleBot/1").crawlDelaySecs).toBe(9);
  });
});

describe("RFC 9309 §2.3.1 access results, over HTTP", () => {
  const servers: TestServer[] = [];
  afterEach(async () => {
    await Promise.all(servers.splice(0).map((s) => s.close()));
  });
  const text = (res: ServerResponse, status: number, body = ""): void => void res.writeHead(status, { "content-type": "text/plain" }).end(body);

  /** The crawler's robots.txt handling, as the engine builds it. */
  function robots() {
    const config = defaultConfig();
    config.crawler.userAgent = "ExampleBot/1.0";
    // the test servers are on loopback, which a crawl reaches only when it names the host
    config.downloadConfig.allowPrivateHosts = ["127.0.0.1", "localhost"];
    return createPoliteness(config, undefined, { robotsUnavailableMs: 60_000 }).robots;
  }

  it("2xx: the rules are obeyed; 4xx: everything allowed; 5xx and unreachable: everything disallowed", async () => {
    const ok = await startServer((_req, res) => text(res, 200, "User-agent: *\nDisallow: /private\n"));
    const gone = await startServer((_req, res) => text(res, 404));
    const forbidden = await startServer((_req, res) => text(res, 403, "User-agent: *\nDisallow: /\n"));
    const broken = await startServer((_req, res) => text(res, 500, "User-agent: *\nAllow: /\n"));
    const dead = await startServer((_req, res) => text(res, 200));
    servers.push(ok, gone, forbidden, broken);
    const deadUrl = dead.url;
    await dead.close(); // nothing listens on this port any more
    const r = robots();
    expect(await r.check(`${ok.url}/private/1`)).toEqual({ allowed: false, unavailable: false });
    expect(await r.check(`${ok.url}/public`)).toEqual({ allowed: true });
    expect(await r.check(`${gone.url}/anything`)).toEqual({ allowed: true });
    expect(await r.check(`${forbidden.url}/anything`)).toEqual({ allowed: true }); // 4xx = unavailable = no restrictions
    expect(await r.check(`${broken.url}/anything`)).toMatchObject({ allowed: false, unavailable: true, reason: /HTTP 500/ });
    expect(await r.check(`${deadUrl}/anything`)).toMatchObject({ allowed: false, unavailable: true, reason: /unreachable/ });
  });

  it("redirects are followed up to five hops, across hosts; more than five: taken as unavailable", async () => {
    const target = await startServer((_req, res) => text(res, 200, "User-agent: *\nDisallow: /private\n"));
    // /robots.txt → /r/1 → … → /r/n → the other server's robots.txt
    const hops = (n: number) =>
      startServer((req, res) => {
        const at = req.url === "/robots.txt" ? 0 : Number(req.url?.split("/")[2]);
        const next = at + 1 < n ? `/r/${at + 1}` : `${target.url}/robots.txt`;
        res.writeHead(301, { location: next }).end();
      });
    const five = await hops(5);
    const six = await hops(6);
    servers.push(target, five, six);
    const r = robots();
    expect(await r.check(`${five.url}/private/x`)).toEqual({ allowed: false, unavailable: false });
    expect(await r.check(`${five.url}/public`)).toEqual({ allowed: true });
    expect(five.hits.get("/robots.txt")).toBe(1);
    expect(await r.check(`${six.url}/private/x`)).toEqual({ allowed: true });
    expect(target.hits.get("/robots.txt")).toBe(1); // the sixth redirect was not followed
  });

  it("a file over 500 KiB is read up to 500 KiB (§2.5), not rejected", async () => {
    const body = `User-agent: *\nDisallow: /early\n${"# padding\n".repeat(60_000)}Disallow: /late\n`;
    const big = await startServer((_req, res) => text(res, 200, body));
    servers.push(big);
    const r = robots();
    expect(await r.check(`${big.url}/early`)).toEqual({ allowed: false, unavailable: false });
    expect(await r.check(`${big.url}/late`)).toEqual({ allowed: true });
  });
});
