// tests/helpers/lock-worker.ts: a separate process (Node via tsx, or Deno) that uses the Redis
// lock service, for the lock tests.
//   contend <name> <iterations>: withLock("counter") N times; inside, read the counter, wait,
//     write counter+1 guarded by the lock, and log the held interval (Redis TIME) to a list
//   stale <name>: take "counter" with a 1 s lease, print "held <token>", then wait for the key
//     <name>:go and try a guarded write of "stale"; print "write ok" or "write refused"
import process from "node:process";
import { Redis } from "ioredis";
import { RedisLockService } from "../../src/sync/lock.ts";

const [mode, name, arg] = process.argv.slice(2);
const redis = new Redis({ host: "127.0.0.1", port: 6379, maxRetriesPerRequest: 2 });
const locks = new RedisLockService(redis, name);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const now = async () => {
  const [s, us] = await redis.time();
  return Number(s) * 1e6 + Number(us);
};

if (mode === "contend") {
  for (let i = 0; i < Number(arg); i++) {
    await locks.withLock(
      "counter",
      async (lock) => {
        const start = await now();
        const v = Number((await redis.get(`${name}:counter`)) ?? 0);
        await sleep(3);
        if (!(await lock.setIfHeld(`${name}:counter`, String(v + 1), 0))) throw new Error("lost the lock mid-update");
        const end = await now();
        await redis.rpush(`${name}:intervals`, `${start},${end},${lock.token}`);
      },
      { ttlMs: 2000, waitMs: 60_000 },
    );
  }
  console.log("done");
} else if (mode === "stale") {
  const lock = await locks.tryAcquire("counter", 1000);
  if (!lock) throw new Error("lock busy");
  console.log(`held ${lock.token}`);
  while ((await redis.get(`${name}:go`)) === null) await sleep(20);
  console.log((await lock.setIfHeld(`${name}:counter`, "stale", 0)) ? "write ok" : "write refused");
  console.log(`signal aborted: ${lock.signal.aborted}`);
}
await locks.close();
redis.disconnect();
