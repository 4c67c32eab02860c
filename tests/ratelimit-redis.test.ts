// The shared (Redis) rate limiter, concurrency leases and politeness state, against the real
// Redis, each test under its own namespace; and the same algorithms in memory.
import type { Redis } from "ioredis";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { MemoryConcurrencyLimiter, RedisConcurrencyLimiter } from "../src/ratelimit/concurrency.ts";
import { MemoryRateLimiter } from "../src/ratelimit/memory-limiter.ts";
import { MemoryPolitenessStore, Politeness, RedisPolitenessStore } from "../src/ratelimit/politeness.ts";
import { RedisRateLimiter } from "../src/ratelimit/redis-limiter.ts";
import { registrableDomain, rateLimitKey } from "../src/ratelimit/keys.ts";
import type { CrawlEvent } from "../src/events/events.ts";
import { request } from "../src/model/index.ts";
import { deleteNamespace, rawClient, requireRedis, uniqueName } from "./helpers/redis.ts";
import { gaps, summary } from "./helpers/polite-servers.ts";

await requireRedis("ratelimit-redis");
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("keys", () => {
  it("registrable domain by the public suffix list; IPs and single labels are their own key", () => {
    expect(registrableDomain("www.shop.example.co.uk")).toBe("example.co.uk");
    expect(registrableDomain("img.example.co.uk")).toBe("example.co.uk");
    expect(registrableDomain("WWW.Example.COM")).toBe("example.com");
    expect(registrableDomain("a.b.example.com.au")).toBe("example.com.au");
    expect(registrableDomain("127.0.0.1")).toBe("127.0.0.1");
    expect(registrableDomain("localhost")).toBe("localhost");
    const r = request({ url: "https://www.shop.example.co.uk:8443/x", module: "m" });
    expect(rateLimitKey(r, "domain")).toBe("example.co.uk");
    expect(rateLimitKey(r, "host")).toBe("www.shop.example.co.uk:8443");
    expect(rateLimitKey(r, "module")).toBe("module:m");
    expect(rateLimitKey(r, "proxy", "10.0.0.1:3128")).toBe("proxy:10.0.0.1:3128");
    expect(rateLimitKey(r, "proxy")).toBe("example.co.uk");
    expect(rateLimitKey({ ...r, limitId: "acc-plat-m" }, "domain")).toBe("acc-plat-m");
  });
});

describe("memory GCRA", () => {
  it("spaces reservations by exactly the interval and refuses waits over max_wait without reserving", async () => {
    const l = new MemoryRateLimiter();
    const waits: number[] = [];
    // the slot a reservation got: the clock when it was asked plus its wait (the time between two
    // calls is taken out, so a slow machine cannot blur the spacing)
    const slots: number[] = [];
    for (let i = 0; i < 10; i++) {
      const asked = performance.now();
      const r = await l.reserve("k", 20, 10_000);
      expect(r.ok).toBe(true);
      if (r.ok) {
        waits.push(r.waitMs);
        slots.push(asked + r.waitMs);
      }
    }
    for (let i = 1; i < slots.length; i++) expect(slots[i]! - slots[i - 1]!).toBeCloseTo(50, 0);
    const over = await l.reserve("k", 20, 100);
    expect(over.ok).toBe(false);
    const again = await l.reserve("k", 20, 10_000);
    expect(again.ok && again.waitMs).toBeCloseTo(waits[9] + 50, -1); // the refused call reserved nothing
  });
});

describe("Redis GCRA (gcra.lua)", () => {
  let a: Redis;
  let b: Redis;
  let name: string;
  beforeAll(() => {
    a = rawClient();
    b = rawClient();
  });
  afterAll(() => {
    a.disconnect();
    b.disconnect();
  });
  afterEach(async () => {
    await deleteNamespace(name);
  });

  it("two workers' reservations are spaced by exactly the interval (Redis TIME), and they fire evenly", async () => {
    name = uniqueName();
    const w1 = new RedisRateLimiter(a, name); // worker 1
    const w2 = new RedisRateLimiter(b, name); // worker 2
    const key = `${name}:rate_limiter:gcra:example.com`;
    const rate = 20;
    const n = 30;
    // 1) the TAT each reservation leaves behind: exactly one interval after the previous one
    const tats: number[] = [];
    const firing: Array<Promise<number>> = [];
    for (let i = 0; i < n; i++) {
      const r = await (i % 2 === 0 ? w1 : w2).reserve("example.com", rate, 10_000);
      if (!r.ok) throw new Error("refused");
      // 2) each caller sleeps exactly its wait, then "sends"
      firing.push(sleep(r.waitMs).then(() => performance.now()));
      tats.push(Number(await a.get(key)));
    }
    for (let i = 1; i < n; i++) expect(tats[i] - tats[i - 1]).toBeCloseTo(1000 / rate, 2);
    const [sec, usec] = await a.time();
    const pttl = await a.pttl(key);
    const ahead = tats[n - 1] - (Number(sec) * 1000 + Number(usec) / 1000);
    expect(pttl).toBeGreaterThan(ahead + 900); // expires ~1 s after its TAT
    expect(pttl).toBeLessThanOrEqual(ahead + 1002); // PEXPIRE takes whole ms (rounded up)
    const fired = await Promise.all(firing);
    const s = summary(gaps(fired));
    console.log(`GCRA, 2 workers @ ${rate}/s: ${n} reservations, TAT steps exactly 50.000 ms; fired gaps min ${s.min.toFixed(1)} / mean ${s.mean.toFixed(1)} / max ${s.max.toFixed(1)} ms`);
    expect(s.mean).toBeGreaterThan(48);
    expect(s.mean).toBeLessThan(52);
    // timer jitter only (the slots themselves are exact, above): a few gaps pulled short or
    // stretched by late timers on a loaded machine, no burst
    expect(gaps(fired).filter((g) => g < 35).length).toBeLessThanOrEqual(2);
    expect(s.max).toBeLessThan(250);
  });

  it("a wait over max_wait reserves nothing; an idle key vanishes", async () => {
    name = uniqueName();
    const l = new RedisRateLimiter(a, name);
    for (let i = 0; i < 5; i++) expect((await l.reserve("k", 10, 10_000)).ok).toBe(true); // TAT ~ now + 500
    const refused = await l.reserve("k", 10, 200);
    expect(refused.ok).toBe(false);
    if (!refused.ok) expect(refused.retryAfterMs).toBeGreaterThan(400);
    const next = await l.reserve("k", 10, 10_000);
    expect(next.ok && next.waitMs).toBeGreaterThan(400);
    expect(next.ok && next.waitMs).toBeLessThan(510);
    await sleep(1700);
    expect(await a.exists(`${name}:rate_limiter:gcra:k`)).toBe(0);
  });
});

describe("concurrency leases", () => {
  it("memory: at most `limit` at once, waiters woken in order on release, null after max wait", async () => {
    const c = new MemoryConcurrencyLimiter();
    const l1 = await c.acquire("d", 2, { leaseMs: 1000, maxWaitMs: 0 });
    const l2 = await c.acquire("d", 2, { leaseMs: 1000, maxWaitMs: 0 });
    expect(l1 && l2).toBeTruthy();
    expect(await c.acquire("d", 2, { leaseMs: 1000, maxWaitMs: 0 })).toBeNull();
    const waiting = c.acquire("d", 2, { leaseMs: 1000, maxWaitMs: 1000 });
    await l1!.release();
    expect(await waiting).not.toBeNull();
    expect(await c.acquire("d", 2, { leaseMs: 1000, maxWaitMs: 30 })).toBeNull();
    expect(c.held).toBe(2);
  });

  describe("Redis", () => {
    let a: Redis;
    let b: Redis;
    let name: string;
    beforeAll(() => {
      a = rawClient();
      b = rawClient();
    });
    afterAll(() => {
      a.disconnect();
      b.disconnect();
    });
    afterEach(async () => {
      await deleteNamespace(name);
    });

    it("two workers share the cap; a waiter gets a lease soon after another worker releases one", async () => {
      name = uniqueName();
      const w1 = new RedisConcurrencyLimiter(a, name);
      const w2 = new RedisConcurrencyLimiter(b, name);
      const opts = { leaseMs: 5000, maxWaitMs: 0 };
      const l1 = await w1.acquire("shop.test", 3, opts);
      const l2 = await w2.acquire("shop.test", 3, opts);
      const l3 = await w1.acquire("shop.test", 3, opts);
      expect([l1, l2, l3].every(Boolean)).toBe(true);
      expect(await w2.acquire("shop.test", 3, opts)).toBeNull();
      expect(await a.zcard(`${name}:rate_limiter:leases:shop.test`)).toBe(3);
      const t0 = performance.now();
      const waiting = w2.acquire("shop.test", 3, { leaseMs: 5000, maxWaitMs: 2000 });
      await sleep(150);
      await l1!.release(); // worker 1 releases; worker 2 notices by its backoff (<= 100 ms)
      const got = await waiting;
      const waited = performance.now() - t0;
      expect(got).not.toBeNull();
      // noticed by its backoff soon after the release, not at its 2 s max wait (room for load)
      expect(waited).toBeLessThan(150 + 850);
      await Promise.all([l2!.release(), l3!.release(), got!.release()]);
      expect(await a.zcard(`${name}:rate_limiter:leases:shop.test`)).toBe(0);
    });

    it("a dead worker's lease expires; a held lease is renewed while it is held", async () => {
      name = uniqueName();
      const w = new RedisConcurrencyLimiter(a, name);
      const zkey = `${name}:rate_limiter:leases:k`;
      // a "dead worker": a lease added by hand that nobody renews
      await a.zadd(zkey, Date.now() + 300, "dead-worker-lease");
      expect(await w.acquire("k", 1, { leaseMs: 600, maxWaitMs: 0 })).toBeNull();
      const l = await w.acquire("k", 1, { leaseMs: 600, maxWaitMs: 2000 }); // granted once it expires
      expect(l).not.toBeNull();
      await sleep(1500); // well past 600 ms: kept alive by renewal
      const score = Number(await a.zscore(zkey, l!.id));
      const [sec, usec] = await a.time();
      expect(score).toBeGreaterThan(Number(sec) * 1000 + Number(usec) / 1000);
      expect(await w.acquire("k", 1, { leaseMs: 600, maxWaitMs: 0 })).toBeNull();
      await l!.release();
      expect(await a.exists(zkey)).toBe(0);
    });
  });
});

describe("politeness state", () => {
  const run = async (store: MemoryPolitenessStore | RedisPolitenessStore) => {
    const events: CrawlEvent[] = [];
    const p = new Politeness(store, { circuitFailures: 3, circuitOpenMs: 400, recoverEvery: 2, localCacheMs: 0, emit: (e) => events.push(e) });
    await p.report("d", { kind: "response", status: 429 }, 10);
    await p.report("d", { kind: "response", status: 503 }, 10);
    expect((await p.state("d")).factor).toBeCloseTo(0.25);
    for (let i = 0; i < 10; i++) await p.report("d", { kind: "response", status: 429 }, 10);
    expect((await p.state("d")).factor).toBeCloseTo(0.1); // floor
    for (let i = 0; i < 4; i++) await p.report("d", { kind: "response", status: 200 }, 10);
    expect((await p.state("d")).factor).toBeCloseTo(0.1 * 1.1 * 1.1); // x1.1 per 2 successes
    await p.report("d", { kind: "response", status: 429, retryAfterMs: 300 }, 10);
    const s = await p.state("d");
    expect(s.suspendedMs).toBeGreaterThan(200);
    expect(s.suspendedMs).toBeLessThanOrEqual(300);
    // circuit: 3 connection failures
    for (let i = 0; i < 3; i++) await p.report("e", { kind: "failure", reason: "ECONNREFUSED" }, 10);
    expect((await p.state("e")).suspendedMs).toBeGreaterThan(300);
    await sleep(450);
    expect((await p.state("e")).suspendedMs).toBe(0);
    await p.report("e", { kind: "response", status: 200 }, 10);
    const types = events.map((e) => e.type);
    expect(types.filter((t) => t === "rate_backoff").length).toBeGreaterThanOrEqual(4);
    expect(types).toContain("rate_recovered");
    expect(types).toContain("key_suspended");
    expect(types).toContain("circuit_opened");
    expect(types).toContain("circuit_closed");
  };

  it("memory: halves on 429/503 to a floor, recovers x1.1, Retry-After suspends, failures open the circuit", async () => {
    await run(new MemoryPolitenessStore());
  });

  it("Redis (politeness.lua, mocra's suspended key): the same", async () => {
    const conn = rawClient();
    const name = uniqueName();
    try {
      await run(new RedisPolitenessStore(conn, name));
      const v = await conn.get(`${name}:rate_limiter:suspended:d`);
      expect(v === null || /^\d+$/.test(v)).toBe(true);
      const ttl = await conn.pttl(`${name}:rate_limiter:adaptive:d`);
      expect(ttl).toBeGreaterThan(3_000_000);
    } finally {
      await deleteNamespace(name);
      conn.disconnect();
    }
  });
});
