// The proxy pool: a crawl through a real forward proxy started here (absolute-URI requests and
// CONNECT), a dead proxy evicted while the crawl completes, a Request's own proxy, per-proxy
// rate limits, and the pool's rotation and health rules.
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { HttpClient } from "../src/download/http-client.ts";
import { parseProxyList, ProxiedDownloader, ProxyPool } from "../src/download/proxy-pool.ts";
import type { CrawlEvent } from "../src/events/events.ts";
import { request } from "../src/model/index.ts";
import { defineModule } from "../src/modules/define.ts";
import { proxyFetch } from "../src/runtime/proxy-fetch.ts";
import { politeConfig, politeCrawl } from "./helpers/polite-crawl.ts";
import { type ForwardProxy, gaps, type HostsServer, startForwardProxy, startHostsServer, summary } from "./helpers/polite-servers.ts";
import { freePort } from "./helpers/redis.ts";

let server: HostsServer | undefined;
let proxies: ForwardProxy[] = [];
let dir: string | undefined;
afterEach(async () => {
  await server?.close();
  for (const p of proxies) await p.close();
  if (dir) await rm(dir, { recursive: true, force: true });
  server = undefined;
  proxies = [];
  dir = undefined;
});

async function pages(): Promise<HostsServer> {
  return startHostsServer(["127.0.0.1"], (req, res) => {
    if (req.url === "/robots.txt") return void res.writeHead(404).end();
    res.writeHead(200, { "content-type": "text/html", "set-cookie": "sid=abc; Path=/" }).end(`<h1>${req.url}</h1>`);
  });
}

async function proxyFile(lines: string[]): Promise<string> {
  dir = await mkdtemp(join(tmpdir(), "mocra-proxies-"));
  const file = join(dir, "proxies.txt");
  await writeFile(file, lines.join("\n"));
  return file;
}

describe("parseProxyList", () => {
  it("reads URLs with credentials, mocra's ip:port, comments and blank lines", () => {
    const list = parseProxyList(["# proxies", "http://u%40x:p%3Aw@10.0.0.1:3128", "", "10.0.0.2:8080  # bare", "https://proxy.test:443"].join("\n"));
    expect(list.map((p) => p.hostPort)).toEqual(["10.0.0.1:3128", "10.0.0.2:8080", "proxy.test:443"]);
    expect(list[0].url).toBe("http://u%40x:p%3Aw@10.0.0.1:3128");
    expect(list[1].url).toBe("http://10.0.0.2:8080");
    expect(() => parseProxyList("socks5://h:1")).toThrow(/line 1|:1: unsupported proxy scheme/);
    expect(() => parseProxyList("ok.test:1\nnot a proxy\n", "p.txt")).toThrow(/p\.txt:2/);
  });

  it("round robin over healthy proxies; eviction after failures; back after the cool-down", async () => {
    const events: CrawlEvent[] = [];
    const pool = new ProxyPool(parseProxyList("a.test:1\nb.test:2\nc.test:3"), { maxFailures: 2, cooldownMs: 100, emit: (e) => events.push(e) });
    expect([pool.next(), pool.next(), pool.next(), pool.next()].map((e) => e?.hostPort)).toEqual(["a.test:1", "b.test:2", "c.test:3", "a.test:1"]);
    const b = pool.entries[1];
    pool.report(b, false, "ECONNREFUSED");
    pool.report(b, false, "ECONNREFUSED");
    expect(events).toEqual([{ type: "proxy_evicted", proxy: "b.test:2", reason: "ECONNREFUSED", ms: 100 }]);
    expect(pool.healthy).toBe(2);
    expect(new Set(Array.from({ length: 6 }, () => pool.next()?.hostPort))).toEqual(new Set(["a.test:1", "c.test:3"]));
    await new Promise((r) => setTimeout(r, 120));
    expect(new Set(Array.from({ length: 6 }, () => pool.next()?.hostPort))).toEqual(new Set(["a.test:1", "b.test:2", "c.test:3"]));
    expect(events[1]).toEqual({ type: "proxy_restored", proxy: "b.test:2" });
    expect(b.health).toBe(0.5);
  });
});

describe("crawling through proxies", () => {
  it("every request (robots.txt included) goes through the proxy; a dead proxy is evicted and the crawl completes", async () => {
    server = await pages();
    const proxy = await startForwardProxy();
    proxies.push(proxy);
    const dead = await freePort();
    const file = await proxyFile(["# the pool", `127.0.0.1:${dead}`, `http://crawler:s3cret@127.0.0.1:${proxy.port}`]);
    const base = server.urls["127.0.0.1"];
    const m = defineModule({ name: "via_proxy", start: () => Array.from({ length: 20 }, (_, i) => `${base}/p/${i}`), parse: (page, ctx) => ctx.emit({ url: page.url }) });
    const config = await politeConfig((c) => {
      c.crawler.proxyPath = file;
      c.downloadConfig.proxyMaxFailures = 2;
    });
    const run = await politeCrawl(config, [m]);
    expect(run.items).toHaveLength(20);
    expect((await run.queue.stats()).request.dead).toBe(0);
    const direct = server.hits.filter((h) => !proxy.upstreamPorts.has(h.remotePort));
    console.log(`through the proxy: ${server.hits.length} requests at the server (${proxy.tunnels} CONNECT tunnels, ${proxy.forwarded} absolute-URI requests), ${direct.length} direct`);
    expect(direct).toHaveLength(0);
    expect(server.hits.some((h) => h.path === "/robots.txt")).toBe(true);
    expect(proxy.auth.length).toBeGreaterThan(0);
    expect(new Set(proxy.auth)).toEqual(new Set([`Basic ${Buffer.from("crawler:s3cret").toString("base64")}`]));
    const evicted = run.events.filter((e) => e.type === "proxy_evicted");
    expect(evicted).toHaveLength(1);
    expect(evicted[0]).toMatchObject({ proxy: `127.0.0.1:${dead}` });
    expect(run.kits[0].proxies?.healthy).toBe(1);
  });

  it("rate_limit_key = \"proxy\": the rate applies per proxy; proxy_rate_limit limits each proxy", async () => {
    server = await pages();
    const p1 = await startForwardProxy();
    const p2 = await startForwardProxy();
    proxies.push(p1, p2);
    const file = await proxyFile([p1.url, p2.url]);
    const base = server.urls["127.0.0.1"];
    const m = defineModule({ name: "per_proxy", start: () => Array.from({ length: 40 }, (_, i) => `${base}/p/${i}`), parse() {} });
    const config = await politeConfig((c) => {
      c.crawler.proxyPath = file;
      c.crawler.obeyRobotsTxt = false;
      c.downloadConfig.rateLimitKey = "proxy";
      c.downloadConfig.rateLimit = 10; // per proxy: 20 req/s for the domain in total
    });
    const run = await politeCrawl(config, [m]);
    const via1 = server.hits.filter((h) => p1.upstreamPorts.has(h.remotePort)).map((h) => h.at);
    const via2 = server.hits.filter((h) => p2.upstreamPorts.has(h.remotePort)).map((h) => h.at);
    const g1 = summary(gaps(via1));
    console.log(`rate 10/s per proxy: ${via1.length} + ${via2.length} requests; proxy 1 gaps min ${g1.min.toFixed(0)} / mean ${g1.mean.toFixed(0)} ms; all in ${run.elapsedMs.toFixed(0)} ms`);
    expect(via1.length + via2.length).toBe(40);
    expect(Math.abs(via1.length - via2.length)).toBeLessThanOrEqual(2);
    expect(g1.mean).toBeGreaterThan(90);
    // the two proxies ran in parallel (~2 s together, not 4 one after the other): their request
    // spans overlap, whatever a loaded machine does to the total
    const span = (t: number[]) => [Math.min(...t), Math.max(...t)];
    const [a1, b1] = span(via1);
    const [a2, b2] = span(via2);
    const overlap = Math.min(b1, b2) - Math.max(a1, a2);
    expect(overlap).toBeGreaterThan(0.7 * Math.min(b1 - a1, b2 - a2));

    server.hits.length = 0;
    const config2 = await politeConfig((c) => {
      c.crawler.proxyPath = file;
      c.crawler.obeyRobotsTxt = false;
      c.downloadConfig.proxyRateLimit = 5; // each proxy at most 5/s; the domain itself unlimited
    });
    const m2 = defineModule({ name: "per_proxy2", start: () => Array.from({ length: 12 }, (_, i) => `${base}/q/${i}`), parse() {} });
    await politeCrawl(config2, [m2]);
    const q1gaps = gaps(server.hits.filter((h) => p1.upstreamPorts.has(h.remotePort)).map((h) => h.at));
    const q1 = summary(q1gaps);
    expect(q1.mean).toBeGreaterThan(180); // 5/s = 200 ms apart
    expect(q1gaps.filter((g) => g < 120).length).toBeLessThanOrEqual(1); // no burst (a loaded machine may delay one request)
  });

  it("a Request's own proxy (mocra's ProxyEnum) is used, through undici on Node", async () => {
    server = await pages();
    const proxy = await startForwardProxy();
    proxies.push(proxy);
    const http = (fetch?: typeof globalThis.fetch) => new HttpClient({ userAgent: "t/1", maxBodyBytes: 1e6, maxRedirects: 3, fetch });
    const d = new ProxiedDownloader(undefined, http(), (url) => http(proxyFetch(url)));
    const req = request({
      url: `${server.urls["127.0.0.1"]}/own`,
      proxy: { kind: "IpProxy", value: { ip: "127.0.0.1", port: proxy.port, username: "u", password: "p", proxyType: "http", rateLimit: 0 } },
    });
    const res = await d.fetch(req);
    expect(res.statusCode).toBe(200);
    expect(res.cookies.map((c) => c.name)).toEqual(["sid"]);
    expect(proxy.upstreamPorts.has(server.hits[0].remotePort)).toBe(true);
    expect(proxy.auth).toEqual([`Basic ${Buffer.from("u:p").toString("base64")}`]);
    const plain = await d.fetch(request({ url: `${server.urls["127.0.0.1"]}/direct` }));
    expect(plain.statusCode).toBe(200);
    expect(proxy.upstreamPorts.has(server.hits[1].remotePort)).toBe(false);
  });
});
