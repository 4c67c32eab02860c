// src/ratelimit/concurrency.ts: a cap on requests in flight per key (a domain), shared by all
// workers when backed by Redis.
import type { Redis } from "ioredis";
import { uuidv4 } from "../model/index.ts";
import { rateKey, rateScripts } from "./scripts.ts";

/** One held slot. Release it exactly once (further calls are no-ops). */
export interface Lease {
  readonly key: string;
  readonly id: string;
  /** true when none was free at the first try: the caller queued for it */
  readonly waited: boolean;
  release(): Promise<void>;
}

export interface AcquireOptions {
  /**
   * How long the lease lives without renewal, ms. The holder renews it every third of that
   * while it holds it, so a long download keeps its slot; a dead worker's lease expires.
   */
  leaseMs: number;
  /** give up (resolve null) after waiting this long */
  maxWaitMs: number;
}

/** At most `limit` leases of a key are held at once. */
export interface ConcurrencyLimiter {
  /** A lease, or null when none came free within `maxWaitMs`. `limit <= 0` = no cap (a no-op lease). */
  acquire(key: string, limit: number, options: AcquireOptions): Promise<Lease | null>;
  /** leases held by this process (all keys) */
  readonly held: number;
}

const noopLease = (key: string): Lease => ({ key, id: "", waited: false, release: () => Promise.resolve() });

interface Waiter {
  resolve(lease: Lease | null): void;
  deadline: number;
  limit: number;
  leaseMs: number;
  timer?: ReturnType<typeof setTimeout>;
}

/** In-process leases: a counter per key and a FIFO of waiters woken on release (no polling). */
export class MemoryConcurrencyLimiter implements ConcurrencyLimiter {
  private readonly inUse = new Map<string, number>();
  private readonly waiters = new Map<string, Waiter[]>();
  private total = 0;

  get held(): number {
    return this.total;
  }

  acquire(key: string, limit: number, options: AcquireOptions): Promise<Lease | null> {
    if (!(limit > 0)) return Promise.resolve(noopLease(key));
    if ((this.inUse.get(key) ?? 0) < limit && !this.waiters.get(key)?.length) return Promise.resolve(this.take(key, false));
    if (options.maxWaitMs <= 0) return Promise.resolve(null);
    return new Promise((resolve) => {
      const w: Waiter = { resolve, deadline: Date.now() + options.maxWaitMs, limit, leaseMs: options.leaseMs };
      w.timer = setTimeout(() => {
        const q = this.waiters.get(key);
        const i = q?.indexOf(w) ?? -1;
        if (q && i >= 0) q.splice(i, 1);
        resolve(null);
      }, options.maxWaitMs);
      const q = this.waiters.get(key) ?? [];
      q.push(w);
      this.waiters.set(key, q);
    });
  }

  private take(key: string, waited: boolean): Lease {
    this.inUse.set(key, (this.inUse.get(key) ?? 0) + 1);
    this.total++;
    let released = false;
    return {
      key,
      id: "",
      waited,
      release: () => {
        if (released) return Promise.resolve();
        released = true;
        this.total--;
        const n = (this.inUse.get(key) ?? 1) - 1;
        if (n <= 0) this.inUse.delete(key);
        else this.inUse.set(key, n);
        this.wake(key);
        return Promise.resolve();
      },
    };
  }

  private wake(key: string): void {
    const q = this.waiters.get(key);
    while (q && q.length > 0 && (this.inUse.get(key) ?? 0) < q[0].limit) {
      const w = q.shift()!;
      clearTimeout(w.timer);
      w.resolve(this.take(key, true));
    }
    if (q && q.length === 0) this.waiters.delete(key);
  }
}

/** Backoff of a waiting acquirer: 10 ms doubling to 100 ms (plus up to 20 % jitter). */
export const LEASE_POLL_MIN_MS = 10;
export const LEASE_POLL_MAX_MS = 100;

/**
 * Leases in Redis, shared by all workers: a ZSET `<name>:rate_limiter:leases:<key>` with one
 * member per held lease, scored by its expiry (Redis TIME, ms). Acquire is one Lua call
 * (lease-acquire.lua: drop expired members, take one if ZCARD < limit); release is ZREM; a
 * held lease is renewed every leaseMs/3 (lease-renew.lua), so a dead worker's leases expire
 * after at most leaseMs. The ZSET has at most `limit` live members and expires 1 s after its
 * last lease.
 *
 * Waiting does not poll hot: in this process the waiters of one key queue up behind a single
 * acquirer, which retries with a backoff of 10 ms doubling to 100 ms (never later than the
 * earliest lease expiry) and is woken at once when this process releases a lease of that key.
 * So a saturated key costs at most ~10 Redis calls per second per process, whatever the
 * number of waiting requests; a lease freed by another worker is noticed within 100 ms.
 */
export class RedisConcurrencyLimiter implements ConcurrencyLimiter {
  private readonly queues = new Map<string, Waiter[]>();
  private readonly pumping = new Set<string>();
  private readonly nudges = new Map<string, () => void>();
  private total = 0;

  constructor(
    private readonly conn: Redis,
    private readonly name: string,
  ) {}

  get held(): number {
    return this.total;
  }

  async acquire(key: string, limit: number, options: AcquireOptions): Promise<Lease | null> {
    if (!(limit > 0)) return noopLease(key);
    if (!this.queues.get(key)?.length) {
      const got = await this.tryAcquire(key, limit, options.leaseMs, false);
      if (got.lease) return got.lease;
      if (options.maxWaitMs <= 0) return null;
    }
    return new Promise((resolve) => {
      const q = this.queues.get(key) ?? [];
      q.push({ resolve, deadline: Date.now() + options.maxWaitMs, limit, leaseMs: options.leaseMs });
      this.queues.set(key, q);
      void this.pump(key);
    });
  }

  private async tryAcquire(key: string, limit: number, leaseMs: number, waited: boolean): Promise<{ lease?: Lease; retryMs: number }> {
    const id = uuidv4();
    const zkey = rateKey(this.name, "leases", key);
    const [ok, ms] = (await rateScripts.run(this.conn, "leaseAcquire", [zkey], [limit, Math.ceil(leaseMs), id])) as [number, number];
    if (Number(ok) !== 1) return { retryMs: Number(ms) };
    this.total++;
    let released = false;
    const renew = setInterval(() => {
      rateScripts.run(this.conn, "leaseRenew", [zkey], [Math.ceil(leaseMs), id]).catch(() => {});
    }, Math.max(50, Math.floor(leaseMs / 3)));
    (renew as { unref?: () => void }).unref?.();
    const lease: Lease = {
      key,
      id,
      waited,
      release: async () => {
        if (released) return;
        released = true;
        clearInterval(renew);
        this.total--;
        try {
          await this.conn.zrem(zkey, id);
        } finally {
          this.nudges.get(key)?.();
        }
      },
    };
    return { lease, retryMs: 0 };
  }

  /** One loop per key and process: serves the local waiters in order. */
  private async pump(key: string): Promise<void> {
    if (this.pumping.has(key)) return;
    this.pumping.add(key);
    let backoff = LEASE_POLL_MIN_MS;
    try {
      for (;;) {
        const q = this.queues.get(key);
        if (!q || q.length === 0) break;
        const head = q[0];
        if (Date.now() >= head.deadline) {
          q.shift();
          head.resolve(null);
          continue;
        }
        let got: { lease?: Lease; retryMs: number };
        try {
          got = await this.tryAcquire(key, head.limit, head.leaseMs, true);
        } catch {
          got = { retryMs: LEASE_POLL_MAX_MS };
        }
        if (got.lease) {
          q.shift();
          head.resolve(got.lease);
          backoff = LEASE_POLL_MIN_MS;
          continue;
        }
        const sleep = Math.min(backoff * (1 + Math.random() * 0.2), Math.max(1, got.retryMs), Math.max(1, head.deadline - Date.now()));
        backoff = Math.min(backoff * 2, LEASE_POLL_MAX_MS);
        await new Promise<void>((resolve) => {
          const timer = setTimeout(done, sleep);
          function done(): void {
            clearTimeout(timer);
            resolve();
          }
          this.nudges.set(key, done);
        });
        this.nudges.delete(key);
      }
    } finally {
      this.pumping.delete(key);
      if (this.queues.get(key)?.length === 0) this.queues.delete(key);
    }
  }
}
