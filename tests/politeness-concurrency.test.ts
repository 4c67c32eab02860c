// download_config.domain_concurrency: requests in flight per domain never exceed the cap, as
// counted by the server — one worker in memory, and two workers sharing the leases in Redis.
import type { Redis } from "ioredis";
import { afterEach, describe, expect, it } from "vitest";
import { defineModule } from "../src/modules/define.ts";
import { politeConfig, politeCrawl } from "./helpers/polite-crawl.ts";
import { type HostsServer, startHostsServer } from "./helpers/polite-servers.ts";
import { deleteNamespace, rawClient, requireRedis, uniqueName } from "./helpers/redis.ts";

await requireRedis("politeness-concurrency");

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

/** Every page takes 80 ms; the server counts requests in flight per address. */
async function slowServer(): Promise<{ server: HostsServer; maxPerHost: Map<string, number> }> {
  const inFlight = new Map<string, number>();
  const maxPerHost = new Map<string, number>();
  const s = await startHostsServer(["127.0.0.1", "127.0.0.2"], async (req, res, hit) => {
    if (req.url === "/robots.txt") return void res.writeHead(404).end();
    const n = (inFlight.get(hit.address) ?? 0) + 1;
    inFlight.set(hit.address, n);
    maxPerHost.set(hit.address, Math.max(maxPerHost.get(hit.address) ?? 0, n));
    await new Promise((r) => setTimeout(r, 80));
    inFlight.set(hit.address, (inFlight.get(hit.address) ?? 1) - 1);
    res.writeHead(200, { "content-type": "text/html" }).end("ok");
  });
  return { server: s, maxPerHost };
}

const module = (bases: string[], n: number) =>
  defineModule({
    name: "slow",
    start: () => bases.flatMap((b) => Array.from({ length: n }, (_, i) => `${b}/p/${i}`)),
    parse() {},
  });

describe("per-domain concurrency cap", () => {
  it("cap 3 is never exceeded at the server (one worker, 16 download slots, two domains)", async () => {
    const s = await slowServer();
    server = s.server;
    const config = await politeConfig((c) => {
      c.downloadConfig.domainConcurrency = 3;
      c.crawler.taskConcurrency = 16;
    });
    const run = await politeCrawl(config, [module([server.urls["127.0.0.1"], server.urls["127.0.0.2"]], 30)]);
    console.log(`cap 3, 1 worker: max in flight at the server per domain ${[...s.maxPerHost.values()].join(", ")}; overall ${server.maxConcurrent}; ${run.elapsedMs.toFixed(0)} ms`);
    expect(s.maxPerHost.get("127.0.0.1")).toBe(3);
    expect(s.maxPerHost.get("127.0.0.2")).toBe(3);
    expect(server.hits.filter((h) => h.path.startsWith("/p/"))).toHaveLength(60);
    expect(run.kits[0].concurrency.held).toBe(0); // every lease released
  });

  it("two workers sharing the leases in Redis: cap 3 in total, leases gone afterwards", async () => {
    const s = await slowServer();
    server = s.server;
    ns = uniqueName();
    conns.push(rawClient(), rawClient());
    const config = await politeConfig((c) => {
      c.name = ns!;
      c.downloadConfig.domainConcurrency = 3;
      c.crawler.taskConcurrency = 16;
    });
    const run = await politeCrawl(config, [module([server.urls["127.0.0.1"]], 40)], { workers: 2, redis: conns });
    console.log(`cap 3, 2 workers on Redis: max in flight at the server ${s.maxPerHost.get("127.0.0.1")}; downloads per worker ${run.fetches.join(" + ")}; ${run.elapsedMs.toFixed(0)} ms`);
    expect(s.maxPerHost.get("127.0.0.1")).toBe(3);
    expect(Math.min(...run.fetches)).toBeGreaterThan(5);
    expect(server.hits.filter((h) => h.path.startsWith("/p/"))).toHaveLength(40);
    expect(await conns[0].exists(`${ns}:rate_limiter:leases:127.0.0.1`)).toBe(0);
  });
});
