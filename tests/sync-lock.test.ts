import { type ChildProcess, spawn } from "node:child_process";
import { join } from "node:path";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { MemoryLockService, RedisLockService } from "../src/sync/lock.ts";
import { deleteNamespace, rawClient, requireRedis, uniqueName } from "./helpers/redis.ts";
import { ROOT } from "./helpers/worker-process.ts";

const hasRedis = await requireRedis("sync-lock.test");
const redis = rawClient();
const names: string[] = [];
const children: ChildProcess[] = [];
afterEach(async () => {
  for (const c of children.splice(0)) if (c.exitCode === null) c.kill("SIGKILL");
  for (const n of names.splice(0)) await deleteNamespace(n);
});
afterAll(() => redis.disconnect());

function ns(): string {
  const n = uniqueName();
  names.push(n);
  return n;
}

function spawnWorker(runtime: "node" | "deno", args: string[]): { child: ChildProcess; out: () => string; exited: Promise<number | null> } {
  const script = "tests/helpers/lock-worker.ts";
  const child =
    runtime === "deno"
      ? spawn(join(ROOT, "node_modules/deno/deno"), ["run", "-A", script, ...args], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] })
      : // node itself (not the tsx wrapper), so that kill -9 and SIGSTOP reach the process holding the lock
        spawn(process.execPath, ["--import", "tsx", script, ...args], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
  children.push(child);
  let out = "";
  child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (out += d.toString()));
  return { child, out: () => out, exited: new Promise((r) => child.on("exit", (code) => r(code))) };
}

async function until(what: string, cond: () => boolean | Promise<boolean>, ms = 60_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe("locks in process (standalone)", () => {
  it("excludes, hands out increasing tokens, and lets a lost holder not write", async () => {
    const locks = new MemoryLockService();
    const a = await locks.tryAcquire("x", 100);
    expect(a).toBeDefined();
    expect(await locks.tryAcquire("x", 100)).toBeUndefined();
    await a!.release();
    const b = await locks.tryAcquire("x", 60);
    expect(b!.token).toBeGreaterThan(a!.token);
    expect(await b!.setIfHeld("k", "v", 0)).toBe(true);
    await locks.close();
    expect(await b!.setIfHeld("k", "w", 0)).toBe(false);
    expect(locks.values.get("k")).toBe("v");
  });
});

describe.skipIf(!hasRedis)("Redis locks (src/sync/lock.ts)", () => {
  it("renews while held, releases on close, and a holder that stops renewing loses it after the lease", async () => {
    const name = ns();
    const w1 = new RedisLockService(redis, name);
    const w2 = new RedisLockService(redis, name);
    const a = await w1.tryAcquire("job", 300);
    expect(a).toBeDefined();
    await new Promise((r) => setTimeout(r, 900)); // three leases: renewal kept it
    expect(await a!.isHeld()).toBe(true);
    expect(await w2.tryAcquire("job", 300)).toBeUndefined();
    await w1.close();
    expect(await redis.exists(`${name}:lock:job`)).toBe(0);
    const b = await w2.tryAcquire("job", 300);
    expect(b!.token).toBeGreaterThan(a!.token);
    await w2.close();
  });

  it("a holder killed with kill -9 loses the lock after its lease", async () => {
    const name = ns();
    const holder = spawnWorker("node", ["stale", name]);
    await until("holder", () => holder.out().includes("held"));
    const t0 = Date.now();
    holder.child.kill("SIGKILL");
    const locks = new RedisLockService(redis, name);
    await locks.withLock("counter", async () => {}, { ttlMs: 1000, waitMs: 5000 });
    expect(Date.now() - t0).toBeLessThan(2500); // lease 1 s (+ polling)
    await locks.close();
  });

  it("three worker processes contending: mutual exclusion measured, no lost update", async () => {
    const name = ns();
    const n = 25;
    const ws = [0, 1, 2].map(() => spawnWorker("node", ["contend", name, String(n)]));
    const codes = await Promise.all(ws.map((w) => w.exited));
    expect(codes, ws.map((w) => w.out()).join("\n")).toEqual([0, 0, 0]);
    expect(Number(await redis.get(`${name}:counter`))).toBe(3 * n);
    const intervals = (await redis.lrange(`${name}:intervals`, 0, -1)).map((l) => l.split(",").map(Number));
    expect(intervals).toHaveLength(3 * n);
    intervals.sort((x, y) => x[0] - y[0]);
    for (let i = 1; i < intervals.length; i++) {
      expect(intervals[i][0], `interval ${i} starts before ${i - 1} ended`).toBeGreaterThanOrEqual(intervals[i - 1][1]);
      expect(intervals[i][2], "fencing tokens grow with every acquisition").toBeGreaterThan(intervals[i - 1][2]);
    }
  });

  it("fencing: a holder paused past its lease (SIGSTOP) cannot write after another took the lock", async () => {
    const name = ns();
    const stale = spawnWorker("node", ["stale", name]);
    await until("stale holder", () => stale.out().includes("held"));
    const staleToken = Number(/held (\d+)/.exec(stale.out())![1]);
    stale.child.kill("SIGSTOP");
    const locks = new RedisLockService(redis, name);
    const fresh = await (async () => {
      for (let i = 0; i < 100; i++) {
        const h = await locks.tryAcquire("counter", 10_000);
        if (h) return h;
        await new Promise((r) => setTimeout(r, 50));
      }
      throw new Error("lock never freed");
    })();
    expect(fresh.token).toBeGreaterThan(staleToken);
    expect(await fresh.setIfHeld(`${name}:counter`, "fresh", 0)).toBe(true);
    stale.child.kill("SIGCONT");
    await redis.set(`${name}:go`, "1");
    await stale.exited;
    expect(stale.out()).toContain("write refused");
    expect(await redis.get(`${name}:counter`)).toBe("fresh");
    await locks.close();
  });

  it("works the same from Deno: contention between a Deno and a Node process", async () => {
    const name = ns();
    const ws = [spawnWorker("deno", ["contend", name, "15"]), spawnWorker("node", ["contend", name, "15"])];
    const codes = await Promise.all(ws.map((w) => w.exited));
    expect(codes, ws.map((w) => w.out()).join("\n")).toEqual([0, 0]);
    expect(Number(await redis.get(`${name}:counter`))).toBe(30);
  });
});
