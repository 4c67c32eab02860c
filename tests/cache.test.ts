// The two-level cache (lru-cache + Redis), the HTTP response cache and per-module cookies.
import type { Redis } from "ioredis";
import { afterEach, describe, expect, it } from "vitest";
import { TwoLevelCache } from "../src/cache/cache.ts";
import { SessionDownloader, SessionStore } from "../src/download/session-store.ts";
import { cookie, type Request, request, response } from "../src/model/index.ts";
import { defineModule } from "../src/modules/define.ts";
import { initCompression } from "../src/queue/compression.ts";
import { politeConfig, politeCrawl } from "./helpers/polite-crawl.ts";
import { type HostsServer, startHostsServer } from "./helpers/polite-servers.ts";
import { deleteNamespace, rawClient, requireRedis, uniqueName } from "./helpers/redis.ts";

await requireRedis("cache");

let server: HostsServer | undefined;
const conns: Redis[] = [];
let ns: string | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
  for (const c of conns.splice(0)) c.disconnect();
  if (ns) await deleteNamespace(ns);
  ns = undefined;
});

describe("TwoLevelCache", () => {
  it("L1 only: size bound and TTL", async () => {
    const c = new TwoLevelCache({ name: "x", l1MaxEntries: 2, compressionThreshold: 1024 });
    await c.setText("k", "a", "1", 60_000);
    await c.setText("k", "b", "2", 60_000);
    await c.setText("k", "c", "3", 60_000);
    expect(await c.getText("k", "a")).toBeUndefined(); // evicted (LRU)
    expect(await c.getText("k", "c")).toBe("3");
    await c.setText("k", "short", "x", 30);
    await new Promise((r) => setTimeout(r, 60));
    expect(await c.getText("k", "short")).toBeUndefined();
    expect(c.shared).toBe(false);
  });

  it("L2 in Redis: mocra's key, TTL, zstd over the threshold, shared between workers", async () => {
    ns = uniqueName();
    conns.push(rawClient());
    await initCompression();
    const w1 = new TwoLevelCache({ name: ns, redis: conns[0], l1MaxEntries: 100, compressionThreshold: 64 });
    const w2 = new TwoLevelCache({ name: ns, redis: conns[0], l1MaxEntries: 100, compressionThreshold: 64 });
    const big = "a".repeat(5000);
    await w1.setText("robots", "http://s.test", big, 10_000);
    await w1.setText("robots", "http://t.test", "small", 10_000);
    const raw = await conns[0].getBuffer(`${ns}:cache:robots:http://s.test`);
    expect([...raw!.subarray(0, 4)]).toEqual([0x28, 0xb5, 0x2f, 0xfd]); // a zstd frame
    expect(raw!.length).toBeLessThan(200);
    expect((await conns[0].get(`${ns}:cache:robots:http://t.test`))!).toBe("small"); // under the threshold: as is
    const ttl = await conns[0].pttl(`${ns}:cache:robots:http://s.test`);
    expect(ttl).toBeGreaterThan(9000);
    expect(await w2.getText("robots", "http://s.test")).toBe(big); // another worker reads it
  });
});

describe("response cache (download_config.enable_cache)", () => {
  const repeatModule = (url: string) =>
    defineModule({
      name: "repeat",
      start: () => [{ url, dedup: false, data: { round: 1 } }],
      parse(page, ctx) {
        const round = (page.data as { round: number }).round;
        ctx.emit({ round, h1: page.text("h1") });
        if (round < 3) ctx.follow({ url, dedup: false, data: { round: round + 1 } });
      },
    });

  async function pageServer(): Promise<HostsServer> {
    return startHostsServer(["127.0.0.1"], (req, res) => {
      if (req.url === "/robots.txt") return void res.writeHead(404).end();
      res.writeHead(200, { "content-type": "text/html" }).end(`<h1>served ${req.url}</h1>`);
    });
  }

  it("a repeated request (dedup off) is served from the cache, without a second hit at the server", async () => {
    server = await pageServer();
    const config = await politeConfig((c) => {
      c.downloadConfig.enableCache = true;
      c.downloadConfig.cacheTtl = 60;
    });
    const run = await politeCrawl(config, [repeatModule(`${server.urls["127.0.0.1"]}/page`)]);
    expect(run.items.map((i) => i.round).sort()).toEqual([1, 2, 3]);
    expect(run.items.every((i) => i.h1 === "served /page")).toBe(true);
    expect(server.hits.filter((h) => h.path === "/page")).toHaveLength(1);
    const received = run.events.filter((e) => e.type === "response_received");
    expect(received.map((e) => (e as { fromCache: boolean }).fromCache)).toEqual([false, true, true]);
    expect(run.events.filter((e) => e.type === "cache_hit")).toHaveLength(2);
  });

  it("off by default: every repeat goes to the server", async () => {
    server = await pageServer();
    const run = await politeCrawl(await politeConfig(), [repeatModule(`${server.urls["127.0.0.1"]}/page`)]);
    expect(run.items).toHaveLength(3);
    expect(server.hits.filter((h) => h.path === "/page")).toHaveLength(3);
  });

  it("shared in Redis under <name>:cache:response:<fingerprint> with the cache_ttl", async () => {
    server = await pageServer();
    ns = uniqueName();
    conns.push(rawClient(), rawClient());
    const config = await politeConfig((c) => {
      c.name = ns!;
      c.downloadConfig.enableCache = true;
      c.downloadConfig.cacheTtl = 30;
    });
    const url = `${server.urls["127.0.0.1"]}/page`;
    await politeCrawl(config, [repeatModule(url)], { redis: [conns[0]] });
    const keys = await conns[0].keys(`${ns}:cache:response:*`);
    expect(keys).toHaveLength(1);
    expect(keys[0]).toMatch(new RegExp(`^${ns}:cache:response:[0-9a-f]{32}$`));
    const ttl = await conns[0].pttl(keys[0]);
    expect(ttl).toBeGreaterThan(25_000);
    expect(ttl).toBeLessThanOrEqual(30_000);
    // a new worker (new process-level cache) is served from Redis
    const config2 = await politeConfig((c) => {
      c.name = ns!;
      c.downloadConfig.enableCache = true;
    });
    const run2 = await politeCrawl(config2, [repeatModule(url)], { redis: [conns[1]] });
    expect(run2.items).toHaveLength(3);
    expect(server.hits.filter((h) => h.path === "/page")).toHaveLength(1);
  });
});

describe("per-module cookies and headers", () => {
  it("cookies set by responses are sent with later requests of the same module only", async () => {
    const seen: Array<{ path: string; cookie: string; extra: string }> = [];
    server = await startHostsServer(["127.0.0.1"], (req, res) => {
      if (req.url === "/robots.txt") return void res.writeHead(404).end();
      seen.push({ path: req.url ?? "", cookie: String(req.headers.cookie ?? ""), extra: String(req.headers["x-extra"] ?? "") });
      const headers: Record<string, string | string[]> = { "content-type": "text/html" };
      if (req.url === "/login") headers["set-cookie"] = ["sid=abc123; Path=/", "gone=1; Max-Age=0"];
      res.writeHead(200, headers).end(req.url === "/login" ? `<a href="/account">a</a>` : "<h1>x</h1>");
    });
    const base = server.urls["127.0.0.1"];
    const a = defineModule({
      name: "with_session",
      start: () => [`${base}/login`],
      parse(page, ctx) {
        ctx.follow(page.links());
      },
    });
    const config = await politeConfig();
    const run = await politeCrawl(config, [a]);
    const account = seen.find((s) => s.path === "/account")!;
    expect(account.cookie).toBe("sid=abc123");
    expect(seen.find((s) => s.path === "/login")!.cookie).toBe("");
    // another module does not get them
    const sessions = new SessionStore(run.kits[0].cache, 60_000);
    expect((await sessions.cookies("with_session")).map((c) => c.name)).toEqual(["sid"]);
    expect(await sessions.cookies("other")).toEqual([]);
  });

  it("stored headers and cookies are added to a module's requests; the request's own win", async () => {
    const store = new SessionStore(new TwoLevelCache({ name: "x", l1MaxEntries: 10, compressionThreshold: 1024 }), 60_000);
    await store.setHeaders("m", [{ key: "x-extra", value: "1" }, { key: "user-agent", value: "stored" }]);
    await store.addCookies("m", [cookie({ name: "a", value: "1", domain: "s.test" }), cookie({ name: "b", value: "2", domain: "s.test", path: "/admin" })]);
    let sent: Request | undefined;
    const d = new SessionDownloader({ fetch: async (r) => ((sent = r), response({ statusCode: 200 })) }, store);
    const req = request({ url: "http://s.test/x", module: "m", headers: [{ key: "User-Agent", value: "own" }], cookies: [cookie({ name: "a", value: "own" })] });
    await d.fetch(req);
    expect(sent!.headers).toEqual([{ key: "x-extra", value: "1" }, { key: "User-Agent", value: "own" }]);
    expect(sent!.cookies.map((c) => `${c.name}=${c.value}`)).toEqual(["a=own"]); // b is for /admin only
    expect(req.headers).toHaveLength(1); // the original request is not changed
  });

  it("kept in Redis as mocra's JSON under <name>:cache:cookies:<module>", async () => {
    ns = uniqueName();
    conns.push(rawClient());
    const cache = new TwoLevelCache({ name: ns, redis: conns[0], l1MaxEntries: 10, compressionThreshold: 1024 });
    const store = new SessionStore(cache, 60_000);
    await store.addCookies("m", [cookie({ name: "sid", value: "v", domain: "shop.test", maxAge: 3600 })]);
    const raw = JSON.parse((await conns[0].get(`${ns}:cache:cookies:m`))!);
    expect(raw.cookies[0]).toMatchObject({ name: "sid", value: "v", domain: "shop.test", path: "/", max_age: null, secure: false });
    expect(raw.cookies[0].expires).toBeGreaterThan(Date.now() / 1000 + 3500);
    expect((await store.cookiesFor("m", "http://www.shop.test/x")).map((c) => c.name)).toEqual(["sid"]);
    expect(await store.cookiesFor("m", "http://other.test/x")).toEqual([]);
    await store.setHeaders("m", [{ key: "authorization", value: "Bearer t" }]);
    expect(JSON.parse((await conns[0].get(`${ns}:cache:headers:m`))!)).toEqual({ headers: [{ key: "authorization", value: "Bearer t" }] });
  });
});
