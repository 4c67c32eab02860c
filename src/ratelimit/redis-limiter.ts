import type { Redis } from "ioredis";
import type { RateLimiter, Reservation } from "./limiter.ts";
import { rateKey, rateScripts } from "./scripts.ts";

/**
 * GCRA with reservation on Redis, shared by every worker: one atomic Lua call (gcra.lua) reads
 * Redis `TIME` (no client clock is trusted), takes the key's theoretical arrival time (TAT),
 * and — if `TAT - now <= maxWaitMs` — advances it by one interval and returns the wait. The
 * caller sleeps exactly that wait (no polling); requests of one key from all workers are
 * evenly spaced by `1000 / ratePerSec` ms. A wait over `maxWaitMs` reserves nothing and comes
 * back as `{ ok: false, retryAfterMs }` (the caller re-queues). Same algorithm as
 * MemoryRateLimiter.
 *
 * Redis key: `<name>:rate_limiter:gcra:<key>` (a string: the TAT in ms), PX = TAT - now + 1 s,
 * so an idle key vanishes about a second after its last slot.
 */
export class RedisRateLimiter implements RateLimiter {
  constructor(
    private readonly conn: Redis,
    private readonly name: string,
  ) {}

  async reserve(key: string, ratePerSec: number, maxWaitMs: number): Promise<Reservation> {
    if (!(ratePerSec > 0) || ratePerSec === Infinity) return { ok: true, waitMs: 0 };
    const interval = 1000 / ratePerSec;
    const reply = (await rateScripts.run(this.conn, "gcra", [rateKey(this.name, "gcra", key)], [interval.toFixed(3), Math.max(0, maxWaitMs)])) as [number, string];
    const waitMs = Number(reply[1]);
    return Number(reply[0]) === 1 ? { ok: true, waitMs } : { ok: false, retryAfterMs: Math.ceil(waitMs) };
  }
}
