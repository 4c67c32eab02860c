// src/cache/cache.ts: the two-level cache — an LRU in the process (L1) in front of Redis (L2,
// shared by all workers). Keys are mocra's: `<name>:cache:<kind>:<key>`; values longer than
// `cache.compression_threshold` are stored as a zstd frame (mocra's CacheService does the same),
// and a reader sniffs the zstd/gzip magic.
import { Buffer } from "node:buffer";
import type { Redis } from "ioredis";
import { LRUCache } from "lru-cache";
import { compressPayload, decompressPayload, initCompression } from "../queue/compression.ts";
import type { HeldLock } from "../sync/lock.ts";

/** A byte cache with per-entry TTL, grouped by kind ("robots", "response", "cookies", ...). */
export interface Cache {
  /** `fresh`: skip L1 (ask the shared level; e.g. while waiting for another worker's write) */
  get(kind: string, key: string, options?: { fresh?: boolean }): Promise<Uint8Array | undefined>;
  /** with `lock`: written only while that lock is still held (checked in the same Redis step) */
  set(kind: string, key: string, value: Uint8Array, ttlMs: number, lock?: HeldLock): Promise<void>;
  delete(kind: string, key: string): Promise<void>;
  getText(kind: string, key: string, options?: { fresh?: boolean }): Promise<string | undefined>;
  setText(kind: string, key: string, value: string, ttlMs: number, lock?: HeldLock): Promise<void>;
  /** true when the cache is shared with other workers */
  readonly shared: boolean;
}

export interface TwoLevelCacheOptions {
  /** the instance name (`name` in config): L2 keys are `<name>:cache:<kind>:<key>` */
  name: string;
  /** L2; without it the cache is L1 only */
  redis?: Redis;
  /** L1 size bound, entries (config cache.l1_max_entries) */
  l1MaxEntries: number;
  /**
   * Longest time an entry is served from L1 when there is an L2, ms (default 10 s): what other
   * workers write is seen within that (a miss is remembered for 1 s). Without L2, L1 keeps
   * entries for their full TTL.
   */
  l1MaxTtlMs?: number;
  /** values longer than this are zstd-compressed in L2 (config cache.compression_threshold) */
  compressionThreshold: number;
}

const encoder = new TextEncoder();
/** L1 marker of "not in L2 either" (kept at most NEGATIVE_TTL_MS, so misses do not hit Redis every time). */
const MISSING = new Uint8Array(0);
const NEGATIVE_TTL_MS = 1000;
const decoder = new TextDecoder();

export class TwoLevelCache implements Cache {
  private readonly l1: LRUCache<string, Uint8Array>;
  private readonly l1MaxTtlMs: number;

  constructor(private readonly options: TwoLevelCacheOptions) {
    this.l1 = new LRUCache({ max: Math.max(1, options.l1MaxEntries), ttlAutopurge: false });
    this.l1MaxTtlMs = options.redis ? (options.l1MaxTtlMs ?? 10_000) : Infinity;
    if (options.redis) void initCompression();
  }

  /** The Redis key of an entry. */
  redisKey(kind: string, key: string): string {
    return `${this.options.name}:cache:${kind}:${key}`;
  }

  private l1Key(kind: string, key: string): string {
    return `${kind}\u0000${key}`;
  }

  async get(kind: string, key: string, options?: { fresh?: boolean }): Promise<Uint8Array | undefined> {
    const hit = options?.fresh && this.options.redis ? undefined : this.l1.get(this.l1Key(kind, key));
    if (hit === MISSING) return undefined;
    if (hit !== undefined || !this.options.redis) return hit;
    const k = this.redisKey(kind, key);
    const [stored, pttl] = await Promise.all([this.options.redis.getBuffer(k), this.options.redis.pttl(k)]);
    if (stored === null) {
      this.l1.set(this.l1Key(kind, key), MISSING, { ttl: Math.min(NEGATIVE_TTL_MS, this.l1MaxTtlMs) });
      return undefined;
    }
    const value = decompressPayload(stored);
    if (pttl > 0) this.l1.set(this.l1Key(kind, key), value, { ttl: Math.min(pttl, this.l1MaxTtlMs) });
    return value;
  }

  async set(kind: string, key: string, value: Uint8Array, ttlMs: number, lock?: HeldLock): Promise<void> {
    if (!(ttlMs > 0)) return;
    if (this.options.redis && lock) {
      // a fenced fill: only the lock's current holder may write (a stale one is refused)
      const stored = compressPayload(value, this.options.compressionThreshold);
      if (await lock.setIfHeld(this.redisKey(kind, key), stored, Math.ceil(ttlMs))) {
        this.l1.set(this.l1Key(kind, key), value, { ttl: Math.min(ttlMs, this.l1MaxTtlMs) });
      }
      return;
    }
    this.l1.set(this.l1Key(kind, key), value, { ttl: Math.min(ttlMs, this.l1MaxTtlMs) });
    if (!this.options.redis) return;
    const stored = compressPayload(value, this.options.compressionThreshold);
    await this.options.redis.set(this.redisKey(kind, key), Buffer.from(stored.buffer, stored.byteOffset, stored.byteLength), "PX", Math.ceil(ttlMs));
  }

  get shared(): boolean {
    return this.options.redis !== undefined;
  }

  async delete(kind: string, key: string): Promise<void> {
    this.l1.delete(this.l1Key(kind, key));
    if (this.options.redis) await this.options.redis.del(this.redisKey(kind, key));
  }

  async getText(kind: string, key: string, options?: { fresh?: boolean }): Promise<string | undefined> {
    const v = await this.get(kind, key, options);
    return v === undefined ? undefined : decoder.decode(v);
  }

  setText(kind: string, key: string, value: string, ttlMs: number, lock?: HeldLock): Promise<void> {
    return this.set(kind, key, encoder.encode(value), ttlMs, lock);
  }

  /** entries in L1 */
  get size(): number {
    return this.l1.size;
  }
}
