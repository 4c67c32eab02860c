// Adaptive back-off and the circuit breaker, against real servers: a 429 with Retry-After: 2
// pauses that domain ~2 s and not another one; connection failures open a circuit.
import type { Redis } from "ioredis";
import { afterEach, describe, expect, it } from "vitest";
import type { CrawlEvent } from "../src/events/events.ts";
import { defineModule } from "../src/modules/define.ts";
import { MemoryPolitenessStore, Politeness } from "../src/ratelimit/politeness.ts";
import { politeConfig, politeCrawl } from "./helpers/polite-crawl.ts";
import { gaps, type HostsServer, startHostsServer } from "./helpers/polite-servers.ts";
import { deleteNamespace, freePort, rawClient, requireRedis, uniqueName } from "./helpers/redis.ts";

await requireRedis("politeness-backoff");

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

async function throttlingServer(): Promise<HostsServer> {
  let throttled = false;
  return startHostsServer(["127.0.0.1", "127.0.0.2"], (req, res, hit) => {
    if (req.url === "/robots.txt") return void res.writeHead(404).end();
    if (hit.address === "127.0.0.1" && req.url === "/p/5" && !throttled) {
      throttled = true;
      return void res.writeHead(429, { "retry-after": "2", "content-type": "text/plain" }).end("slow down");
    }
    res.writeHead(200, { "content-type": "text/html" }).end("ok");
  });
}

function check429(server: HostsServer, events: CrawlEvent[], label: string) {
  const a = server.hits.filter((h) => h.address === "127.0.0.1" && h.path.startsWith("/p/"));
  const b = server.hits.filter((h) => h.address === "127.0.0.2" && h.path.startsWith("/p/"));
  const first429 = a.find((h) => h.path === "/p/5")!;
  const nextA = a.filter((h) => h.at > first429.at)[0];
  const pause = nextA.at - first429.at;
  const bDuring = b.filter((h) => h.at > first429.at && h.at < nextA.at).length;
  const bMaxGap = Math.max(...gaps(b.map((h) => h.at)));
  console.log(`${label}: 127.0.0.1 paused ${pause.toFixed(0)} ms after its 429 (Retry-After: 2); 127.0.0.2 served ${bDuring} requests meanwhile, its largest gap ${bMaxGap.toFixed(0)} ms`);
  expect(pause).toBeGreaterThan(1900);
  expect(pause).toBeLessThan(3200); // Retry-After 2 s, plus a loaded machine's lateness
  expect(bDuring).toBeGreaterThan(12); // 10 req/s kept going on the other domain
  expect(bMaxGap).toBeLessThan(600); // never paused with it (a 2 s pause would show), jitter allowed
  expect(a.filter((h) => h.path === "/p/5")).toHaveLength(2); // the throttled page was retried
  const backoff = events.filter((e) => e.type === "rate_backoff");
  const suspended = events.filter((e) => e.type === "key_suspended");
  expect(backoff.map((e) => (e as { key: string }).key)).toEqual(["127.0.0.1"]);
  expect(suspended.map((e) => (e as { key: string }).key)).toEqual(["127.0.0.1"]);
  expect(backoff[0]).toMatchObject({ status: 429, factor: 0.5, rate: 5 });
}

const twoDomains = (server: HostsServer, n: number) =>
  defineModule({
    name: "two_domains",
    start: () => Array.from({ length: n }, (_, i) => [`${server.urls["127.0.0.1"]}/p/${i}`, `${server.urls["127.0.0.2"]}/p/${i}`]).flat(),
    parse() {},
  });

describe("429 with Retry-After", () => {
  it("pauses that domain ~2 s, not the other (memory)", async () => {
    server = await throttlingServer();
    const config = await politeConfig((c) => {
      c.downloadConfig.rateLimit = 10;
    });
    const run = await politeCrawl(config, [twoDomains(server, 40)]);
    check429(server, run.events, "memory");
  });

  it("pauses that domain ~2 s for every worker sharing Redis, not the other", async () => {
    server = await throttlingServer();
    ns = uniqueName();
    conns.push(rawClient(), rawClient());
    const config = await politeConfig((c) => {
      c.name = ns!;
      c.downloadConfig.rateLimit = 10;
    });
    const run = await politeCrawl(config, [twoDomains(server, 40)], { workers: 2, redis: conns });
    check429(server, run.events, "2 workers on Redis");
    expect(Math.min(...run.fetches)).toBeGreaterThan(5);
  });
});

describe("circuit breaker", () => {
  it("consecutive connection failures open the circuit; requests then wait instead of failing", async () => {
    const dead = await freePort();
    const config = await politeConfig((c) => {
      c.crawler.obeyRobotsTxt = false; // (an unreachable robots.txt would hold the host back first)
      c.crawler.requestMaxRetries = 2;
      c.crawler.retryBaseDelayMs = 10;
      c.crawler.retryMaxDelayMs = 20;
      c.downloadConfig.circuitFailures = 3;
      c.downloadConfig.circuitOpenSecs = 0.5;
    });
    const m = defineModule({ name: "dead", start: () => Array.from({ length: 6 }, (_, i) => `http://127.0.0.3:${dead}/p/${i}`), parse() {} });
    const run = await politeCrawl(config, [m]);
    const opened = run.events.filter((e) => e.type === "circuit_opened");
    const held = run.events.filter((e) => e.type === "deferred" && /held back/.test(e.reason));
    console.log(`dead host: ${opened.length} circuit_opened, ${held.length} requests re-queued while open`);
    expect(opened.length).toBeGreaterThanOrEqual(1);
    expect(opened[0]).toMatchObject({ key: "127.0.0.3", failures: 3, ms: 500 });
    expect(held.length).toBeGreaterThan(0);
    expect((await run.queue.stats()).request.dead).toBe(6); // still dead-lettered in the end
  });

  it("a success after the pause closes it", async () => {
    let up = false;
    server = await startHostsServer(["127.0.0.1"], (req, res) => {
      if (!up) return void req.socket.destroy(); // connection dropped: a network error
      res.writeHead(200).end("ok");
    });
    const base = server.urls["127.0.0.1"];
    setTimeout(() => (up = true), 400);
    const config = await politeConfig((c) => {
      c.crawler.obeyRobotsTxt = false;
      c.crawler.requestMaxRetries = 10;
      c.crawler.retryBaseDelayMs = 10;
      c.crawler.retryMaxDelayMs = 20;
      c.downloadConfig.circuitFailures = 2;
      c.downloadConfig.circuitOpenSecs = 0.3;
    });
    const m = defineModule({ name: "flappy", start: () => [`${base}/a`, `${base}/b`], parse() {} });
    const run = await politeCrawl(config, [m]);
    const types = run.events.map((e) => e.type);
    expect(types).toContain("circuit_opened");
    expect(types).toContain("circuit_closed");
    expect(types.lastIndexOf("circuit_closed")).toBeGreaterThan(types.indexOf("circuit_opened"));
  });
});

describe("state lookups", () => {
  it("requests that miss the local cache together share one store lookup", async () => {
    const store = new MemoryPolitenessStore();
    let lookups = 0;
    const state = store.state.bind(store);
    store.state = (key: string) => {
      lookups++;
      return state(key);
    };
    const p = new Politeness(store);
    const states = await Promise.all(Array.from({ length: 64 }, () => p.state("a.test")));
    expect(lookups).toBe(1);
    expect(states.every((s) => s.factor === 1 && s.suspendedMs === 0)).toBe(true);
    await p.state("b.test");
    expect(lookups).toBe(2);
  });
});
