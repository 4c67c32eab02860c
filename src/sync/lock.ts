// src/sync/lock.ts: distributed locks with a lease and a fencing token. A holder renews its
// lease every third of it while it holds the lock; stop() releases what it holds; a holder that
// dies loses the lock when the lease runs out. Every acquisition gets a token greater than all
// before it (one counter per crawl), and a write guarded by the lock (`setIfHeld`) checks the
// holder in the same Lua step, so a holder that was paused past its lease cannot write.
import { Buffer } from "node:buffer";
import type { Redis } from "ioredis";
import { uuidv4 } from "../model/index.ts";
import { syncScripts } from "./scripts.ts";

export interface LockOptions {
  /** lease, ms (renewed while held; default 10 000) */
  ttlMs?: number;
  /** how long to wait for the lock, ms (default 30 000; 0 = one try) */
  waitMs?: number;
}

/** A lock this process holds. */
export interface HeldLock {
  readonly name: string;
  /** the fencing token: greater than every token handed out before, for any lock of the crawl */
  readonly token: number;
  /** aborted when the lock is lost (the lease ran out before a renewal got through) */
  readonly signal: AbortSignal;
  /** asks the store whether this holder still holds the lock */
  isHeld(): Promise<boolean>;
  /** SET `key` (full Redis key; PX `ttlMs`, 0 = none) only if still held, checked atomically */
  setIfHeld(key: string, value: string | Uint8Array, ttlMs: number): Promise<boolean>;
}

export type WithLock<T> = (lock: HeldLock) => Promise<T> | T;

/** The lock could not be taken within `waitMs`. */
export class LockTimeoutError extends Error {}

interface Handle extends HeldLock {
  release(): Promise<void>;
}

/** Locks shared by every worker of a crawl (Redis) or by one process (memory). */
export interface LockService {
  /** one attempt; undefined when someone else holds it */
  tryAcquire(name: string, ttlMs?: number): Promise<Handle | undefined>;
  /** runs `fn` holding the lock, then releases it (also when `fn` throws) */
  withLock<T>(name: string, fn: WithLock<T>, options?: LockOptions): Promise<T>;
  /** releases every lock still held and stops renewing */
  close(): Promise<void>;
}

const DEFAULT_TTL_MS = 10_000;
const DEFAULT_WAIT_MS = 30_000;

abstract class BaseLockService implements LockService {
  protected readonly held = new Set<Handle>();
  protected closed = false;

  abstract tryAcquire(name: string, ttlMs?: number): Promise<Handle | undefined>;

  async withLock<T>(name: string, fn: WithLock<T>, options: LockOptions = {}): Promise<T> {
    const ttl = options.ttlMs ?? DEFAULT_TTL_MS;
    const deadline = Date.now() + (options.waitMs ?? DEFAULT_WAIT_MS);
    let lock = await this.tryAcquire(name, ttl);
    for (let delay = 10; !lock; delay = Math.min(delay * 2, 200)) {
      if (this.closed) throw new LockTimeoutError(`lock ${name}: lock service closed`);
      if (Date.now() + delay > deadline) throw new LockTimeoutError(`lock ${name}: not acquired within ${options.waitMs ?? DEFAULT_WAIT_MS} ms`);
      await new Promise((r) => setTimeout(r, delay * (0.5 + Math.random() / 2)));
      lock = await this.tryAcquire(name, ttl);
    }
    try {
      return await fn(lock);
    } finally {
      await lock.release();
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all([...this.held].map((h) => h.release().catch(() => {})));
  }
}

/**
 * Redis locks: `<name>:lock:<lock name>` = "<owner>:<token>" with a PX lease, tokens from
 * `<name>:lock:fence`. Renewal runs every ttl/3; a failed renewal (lost, or Redis unreachable
 * until the lease is over) aborts the holder's signal.
 */
export class RedisLockService extends BaseLockService {
  private readonly owner = uuidv4();

  constructor(
    private readonly redis: Redis,
    private readonly name: string,
    private readonly onLost: (lock: string) => void = () => {},
  ) {
    super();
  }

  lockKey(lock: string): string {
    return `${this.name}:lock:${lock}`;
  }

  async tryAcquire(lock: string, ttlMs = DEFAULT_TTL_MS): Promise<Handle | undefined> {
    if (this.closed) return undefined;
    const ttl = Math.max(1, Math.ceil(ttlMs));
    const key = this.lockKey(lock);
    const [token] = (await syncScripts.run(this.redis, "lockAcquire", [key, `${this.name}:lock:fence`], [this.owner, ttl])) as [number, number];
    if (!token) return undefined;
    const value = `${this.owner}:${token}`;
    const controller = new AbortController();
    const redis = this.redis;
    let leaseEnd = Date.now() + ttl;
    const lose = () => {
      if (controller.signal.aborted) return;
      clearInterval(timer);
      this.held.delete(handle);
      controller.abort(new Error(`lock ${lock} lost`));
      this.onLost(lock);
    };
    const timer = setInterval(() => {
      const asked = Date.now();
      syncScripts.run(redis, "lockRenew", [key], [value, ttl]).then(
        (ok) => (ok === 1 ? (leaseEnd = asked + ttl) : lose()),
        () => Date.now() >= leaseEnd && lose(),
      );
    }, Math.max(1, Math.floor(ttl / 3)));
    (timer as { unref?: () => void }).unref?.();
    const handle: Handle = {
      name: lock,
      token,
      signal: controller.signal,
      isHeld: async () => !controller.signal.aborted && (await redis.get(key)) === value,
      setIfHeld: async (target, v, ttlMs) => {
        const data = typeof v === "string" ? v : Buffer.from(v.buffer, v.byteOffset, v.byteLength);
        const ok = (await syncScripts.run(redis, "lockFencedSet", [key, target], [value, data, Math.max(0, Math.ceil(ttlMs))])) === 1;
        if (!ok) lose();
        return ok;
      },
      release: async () => {
        clearInterval(timer);
        if (!this.held.delete(handle)) return;
        controller.abort(new Error(`lock ${lock} released`));
        await syncScripts.run(redis, "lockRelease", [key], [value]);
      },
    };
    this.held.add(handle);
    return handle;
  }
}

/** In-process locks with the same contract (standalone runs, tests). `setIfHeld` writes to `values`. */
export class MemoryLockService extends BaseLockService {
  private fence = 0;
  private readonly locks = new Map<string, { token: number; until: number }>();
  /** what `setIfHeld` wrote, by key (no Redis in standalone) */
  readonly values = new Map<string, string | Uint8Array>();

  async tryAcquire(lock: string, ttlMs = DEFAULT_TTL_MS): Promise<Handle | undefined> {
    if (this.closed) return undefined;
    const now = Date.now();
    const cur = this.locks.get(lock);
    if (cur && cur.until > now) return undefined;
    const token = ++this.fence;
    const state = { token, until: now + ttlMs };
    this.locks.set(lock, state);
    const controller = new AbortController();
    const holds = () => this.locks.get(lock) === state && state.until > Date.now();
    const timer = setInterval(() => {
      if (holds()) state.until = Date.now() + ttlMs;
      else {
        clearInterval(timer);
        controller.abort(new Error(`lock ${lock} lost`));
      }
    }, Math.max(1, Math.floor(ttlMs / 3)));
    (timer as { unref?: () => void }).unref?.();
    const handle: Handle = {
      name: lock,
      token,
      signal: controller.signal,
      isHeld: async () => holds(),
      setIfHeld: async (key, value) => {
        if (!holds()) return false;
        this.values.set(key, value);
        return true;
      },
      release: async () => {
        clearInterval(timer);
        this.held.delete(handle);
        if (this.locks.get(lock) === state) this.locks.delete(lock);
        controller.abort(new Error(`lock ${lock} released`));
      },
    };
    this.held.add(handle);
    return handle;
  }
}
