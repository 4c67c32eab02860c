// Issue 23, the crawler side: each row of the table as a crawl against real servers on
// 127.0.0.1 (two ports stand for two origins; `localhost` and `127.0.0.1` for two sites), plus
// the cookie rows that need real domain names (evil.example, bank.example) through the same
// parsing and jar a crawl uses.
import type { IncomingMessage, ServerResponse } from "node:http";
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { runStandalone } from "../src/engine/standalone.ts";
import { EventBus } from "../src/events/bus.ts";
import type { CrawlEvent } from "../src/events/events.ts";
import { ModuleRegistry } from "../src/modules/registry.ts";
import { TwoLevelCache } from "../src/cache/cache.ts";
import { SessionStore } from "../src/download/session-store.ts";
import type { Config } from "../src/config/index.ts";
import { defineModule } from "../src/modules/define.ts";
import { parseSetCookies } from "../src/model/cookies.ts";
import { nonPublicAddress } from "../src/runtime/ip-ranges.ts";
import { loopbackLinks, startCookieSite, startDualStackServer } from "./fixtures/trust-sites.ts";
import { cleanup, crawl, testConfig } from "./helpers/crawl.ts";
import { html, startServer, type TestServer } from "./helpers/http-server.ts";

const servers: Array<{ close(): Promise<void> }> = [];
let config: Config | undefined;
afterEach(async () => {
  for (const s of servers.splice(0)) await s.close();
  if (config) await cleanup(config);
  config = undefined;
});

async function server(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<TestServer> {
  const s = await startServer(handler);
  servers.push(s);
  return s;
}

const port = (s: TestServer) => new URL(s.url).port;

/** Every link on every page is followed (no allowedDomains): the crawl goes wherever pages lead. */
function followAll(name: string, start: string, settings: Record<string, unknown> = {}) {
  return defineModule({
    name,
    settings,
    start: () => [start],
    parse(page, ctx) {
      ctx.emit({ url: page.url, body: page.text("body") });
      ctx.follow(page.links());
    },
  });
}

describe("cookies by RFC 6265", () => {
  async function jarAfter(setCookies: string[], from: string, to: string): Promise<string[]> {
    const store = new SessionStore(new TwoLevelCache({ name: "t", l1MaxEntries: 10, compressionThreshold: 1 << 20 }), 60_000);
    await store.addCookies("m", parseSetCookies(setCookies, from));
    return (await store.cookiesFor("m", to)).map((c) => `${c.name}=${c.value}`);
  }

  it("a cookie for another site, or for a public suffix, is not stored; one without Domain is host-only", async () => {
    expect(await jarAfter(["s=1; Domain=bank.example"], "http://www.evil.example/", "http://bank.example/")).toEqual([]);
    expect(await jarAfter(["s=1; Domain=com"], "http://www.evil.com/", "http://other.com/")).toEqual([]);
    expect(await jarAfter(["s=1"], "http://shop.example/", "http://www.shop.example/")).toEqual([]);
    expect(await jarAfter(["s=1"], "http://shop.example/", "http://shop.example/x")).toEqual(["s=1"]);
    expect(await jarAfter(["s=1; Domain=shop.example"], "http://www.shop.example/", "http://img.shop.example/")).toEqual(["s=1"]);
  });

  it("over HTTP: Domain=localhost and an empty Domain from 127.0.0.1 stay with 127.0.0.1; no Path means the directory; Max-Age=-1 deletes", async () => {
    const site = await startCookieSite();
    servers.push(site);
    const cookieHeaders = site.seen;
    config = await testConfig((c) => {
      c.crawler.obeyRobotsTxt = false;
      c.downloadConfig.allowPrivateHosts = ["localhost"];
    });
    await crawl(config, [followAll("cookies", `${site.url}/dir/set`)]);
    expect(cookieHeaders.get(`localhost/check`)).toBe("");
    expect(cookieHeaders.get(`127.0.0.1/other`)).toBe("ho=1");
    // `de` (empty Domain: host-only) and `dp` took the default path /dir; longer paths go first
    expect(cookieHeaders.get(`127.0.0.1/dir/next`)).toBe("de=1; dp=1; ho=1");
  });
});

describe("credentials stay with their origin", () => {
  it("Authorization and a module-sensitive header do not follow a redirect or a link to another origin", async () => {
    const seen = new Map<string, IncomingMessage["headers"]>();
    const other = await server((req, res) => {
      seen.set(`B${req.url}`, req.headers);
      html(res, "other origin");
    });
    const first = await server((req, res) => {
      seen.set(`A${req.url}`, req.headers);
      if (req.url === "/go") {
        res.writeHead(302, { location: `${other.url}/landing` });
        return res.end();
      }
      html(res, `<a href="/go">go</a> <a href="${other.url}/linked">linked</a>`);
    });
    config = await testConfig((c) => {
      c.crawler.obeyRobotsTxt = false;
    });
    const mod = followAll("creds", `${first.url}/`, { headers: { authorization: "Bearer s3cret", "x-api-key": "k3y" }, sensitiveHeaders: ["X-Api-Key"] });
    await crawl(config, [mod]);
    expect(seen.get("A/")?.authorization).toBe("Bearer s3cret");
    expect(seen.get("A/go")?.["x-api-key"]).toBe("k3y");
    for (const path of ["B/landing", "B/linked"]) {
      expect(seen.has(path), path).toBe(true);
      expect(seen.get(path)?.authorization, path).toBeUndefined();
      expect(seen.get(path)?.["x-api-key"], path).toBeUndefined();
    }
  });
});

describe("userinfo in URLs", () => {
  it("user:pass@ in a followed URL reaches no item, event, dead letter or frontier log, and is not sent", async () => {
    const seen = new Map<string, string | undefined>();
    const site = await server((req, res) => {
      seen.set(req.url!, req.headers.authorization);
      if (req.url === "/") return html(res, `<a href="http://crawler:pa55word@127.0.0.1:${port(site)}/secret">s</a> <a href="http://u:hunter2@127.0.0.1:${port(site)}/gone">g</a>`);
      if (req.url === "/gone") return html(res, "gone", 404);
      html(res, "secret page");
    });
    config = await testConfig((c) => {
      c.crawler.obeyRobotsTxt = false;
      c.state.dir = join(c.output.path, "state");
    });
    const registry = new ModuleRegistry(config.modules);
    registry.register(followAll("userinfo", `${site.url}/`) as never);
    const bus = new EventBus();
    const events: CrawlEvent[] = [];
    bus.events$.subscribe((e) => events.push(e));
    await runStandalone({ config, registry, events: bus, state: { resume: false } });
    expect(seen.has("/secret")).toBe(true);
    expect(seen.get("/secret")).toBeUndefined();
    const written: string[] = [JSON.stringify(events)];
    const walk = async (dir: string): Promise<void> => {
      for (const e of await readdir(dir, { withFileTypes: true })) {
        const p = join(dir, e.name);
        if (e.isDirectory()) await walk(p);
        else written.push((await readFile(p)).toString("latin1"));
      }
    };
    await walk(config.output.path); // items (JSONL) and the state folder (frontier log)
    const all = written.join("\n");
    expect(all).toContain("/secret");
    expect(all).not.toContain("pa55word");
    expect(all).not.toContain("hunter2");
    expect(all).not.toContain("crawler:");
  });
});

describe("private networks are opt-in", () => {
  it("classifies the non-public ranges, IPv6 forms embedding IPv4 included; public addresses pass", () => {
    const refused = ["127.0.0.1", "127.255.1.2", "10.1.2.3", "172.16.0.1", "172.31.255.255", "192.168.1.1", "169.254.169.254", "100.64.0.1", "100.127.255.254", "0.0.0.0", "224.0.0.1", "255.255.255.255", "::", "::1", "fc00::1", "fd12:3456::1", "fe80::1", "ff02::1", "::ffff:127.0.0.1", "::ffff:7f00:1", "::127.0.0.1", "64:ff9b::a9fe:a9fe", "2002:c0a8:0101::1", "[::1]", "fe80::1%eth0"];
    for (const a of refused) expect(nonPublicAddress(a), a).toBeDefined();
    const open = ["8.8.8.8", "1.1.1.1", "172.32.0.1", "100.128.0.1", "192.169.0.1", "11.0.0.1", "2606:4700:4700::1111", "::ffff:8.8.8.8", "2002:0808:0808::1", "not-an-ip", "example.com"];
    for (const a of open) expect(nonPublicAddress(a), a).toBeUndefined();
  });

  it("a crawl started at http://localhost:A/ makes no request to 127.0.0.1:B, 0x7f.1:B, 2130706433:B or [::1]:B", async () => {
    const b = await startDualStackServer();
    const hits = b.hits;
    servers.push(b);
    const a = await server((req, res) => html(res, req.url === "/" ? loopbackLinks(b.port) : "none"));
    config = await testConfig();
    const run = await crawl(config, [followAll("ssrf", `http://localhost:${port(a)}/`)]);
    expect(hits).toEqual([]);
    expect(a.hits.get("/")).toBe(1);
    const reasons = run.events.flatMap((e) => (e.type === "dead_lettered" ? [e.reason] : []));
    expect(reasons.length).toBeGreaterThan(0);
    for (const r of reasons) expect(r).toMatch(/refused: .*loopback/);
  });

  it("the same crawl reaches port B when the config names 127.0.0.1 (allow_private_hosts), or allows private networks", async () => {
    for (const patch of [(c: Config) => (c.downloadConfig.allowPrivateHosts = ["127.0.0.1"]), (c: Config) => (c.downloadConfig.allowPrivateNetworks = true)]) {
      const b = await startDualStackServer();
      const hits = b.hits;
      servers.push(b);
      const a = await server((req, res) => html(res, req.url === "/" ? `<a href="http://127.0.0.1:${b.port}/p">b</a>` : "none"));
      config = await testConfig(patch);
      await crawl(config, [followAll("ssrf_allowed", `http://localhost:${port(a)}/`)]);
      expect(hits).toContain(`127.0.0.1:${b.port}/p`);
      await cleanup(config);
    }
  });
});
