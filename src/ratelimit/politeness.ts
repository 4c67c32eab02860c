// src/ratelimit/politeness.ts: how a key (a domain by default) is treated after what its server
// said — adaptive back-off on 429/503, suspension until Retry-After, a circuit breaker on
// connection failures — shared by all workers through Redis, or in memory for one process.
import type { Redis } from "ioredis";
import type { CrawlEvent } from "../events/events.ts";
import { rateKey, rateScripts } from "./scripts.ts";

/** What a request of a key must respect right now. */
export interface KeyState {
  /** ms the key stays suspended (0 = not suspended) */
  suspendedMs: number;
  /** multiplier of the configured rate, in [minFactor, 1] */
  factor: number;
  /** consecutive connection failures/timeouts so far */
  failures: number;
}

/** The shared per-key record. Each method is one atomic step (one Lua call with Redis). */
export interface PolitenessStore {
  state(key: string): Promise<KeyState>;
  /** hold the key back for `ms` (never shortens an existing suspension) */
  suspend(key: string, ms: number): Promise<KeyState>;
  /** factor = max(floor, factor x multiplier) */
  backoff(key: string, multiplier: number, floor: number): Promise<{ factor: number; changed: boolean }>;
  /** resets the failure count; counts towards recovery when `countsToRecovery` */
  success(key: string, multiplier: number, every: number, countsToRecovery: boolean): Promise<{ factor: number; recovered: boolean; previousFailures: number }>;
  /** one more consecutive failure; at `threshold` the key is suspended for `openMs` */
  failure(key: string, threshold: number, openMs: number): Promise<{ failures: number; opened: boolean }>;
}

/** Idle record lifetime: a key untouched for an hour starts again at its configured rate. */
export const ADAPTIVE_IDLE_MS = 3_600_000;

interface MemRecord {
  factor: number;
  ok: number;
  fails: number;
  suspendedUntil: number;
  touched: number;
}

/** One process's store (same logic as politeness.lua). */
export class MemoryPolitenessStore implements PolitenessStore {
  private readonly records = new Map<string, MemRecord>();
  private lastSweep = Date.now();

  private rec(key: string): MemRecord {
    const now = Date.now();
    if (now - this.lastSweep > 60_000) {
      this.lastSweep = now;
      for (const [k, r] of this.records) if (now - r.touched > ADAPTIVE_IDLE_MS && r.suspendedUntil < now) this.records.delete(k);
    }
    let r = this.records.get(key);
    if (!r) {
      r = { factor: 1, ok: 0, fails: 0, suspendedUntil: 0, touched: now };
      this.records.set(key, r);
    }
    r.touched = now;
    return r;
  }

  private view(r: MemRecord): KeyState {
    return { suspendedMs: Math.max(0, r.suspendedUntil - Date.now()), factor: r.factor, failures: r.fails };
  }

  state(key: string): Promise<KeyState> {
    const r = this.records.get(key);
    return Promise.resolve(r ? this.view(r) : { suspendedMs: 0, factor: 1, failures: 0 });
  }

  suspend(key: string, ms: number): Promise<KeyState> {
    const r = this.rec(key);
    r.suspendedUntil = Math.max(r.suspendedUntil, Date.now() + ms);
    return Promise.resolve(this.view(r));
  }

  backoff(key: string, multiplier: number, floor: number): Promise<{ factor: number; changed: boolean }> {
    const r = this.rec(key);
    const f = Math.max(floor, r.factor * multiplier);
    const changed = f < r.factor;
    r.factor = f;
    r.ok = 0;
    return Promise.resolve({ factor: f, changed });
  }

  success(key: string, multiplier: number, every: number, counts: boolean): Promise<{ factor: number; recovered: boolean; previousFailures: number }> {
    const existing = this.records.get(key);
    if (!existing || (existing.fails === 0 && existing.factor >= 1)) {
      return Promise.resolve({ factor: existing?.factor ?? 1, recovered: false, previousFailures: 0 });
    }
    const r = this.rec(key);
    const previousFailures = r.fails;
    r.fails = 0;
    let recovered = false;
    if (r.factor < 1 && counts) {
      r.ok++;
      if (r.ok >= every) {
        r.factor = Math.min(1, r.factor * multiplier);
        r.ok = 0;
        recovered = true;
      }
    }
    return Promise.resolve({ factor: r.factor, recovered, previousFailures });
  }

  failure(key: string, threshold: number, openMs: number): Promise<{ failures: number; opened: boolean }> {
    const r = this.rec(key);
    r.fails++;
    let opened = false;
    if (r.fails >= threshold) {
      r.suspendedUntil = Math.max(r.suspendedUntil, Date.now() + openMs);
      opened = true;
      r.fails = threshold - 1; // half-open: one more failure after the pause opens it again
    }
    return Promise.resolve({ failures: r.fails, opened });
  }
}

/**
 * The store in Redis (politeness.lua, Redis TIME). Keys, both bounded by a TTL:
 * - `<name>:rate_limiter:suspended:<key>`: mocra's circuit-breaker key, the suspend-until time
 *   in ms, `SET PX <ms left>`;
 * - `<name>:rate_limiter:adaptive:<key>`: HASH {f, ok, fails}, PEXPIRE 1 h after each write.
 */
export class RedisPolitenessStore implements PolitenessStore {
  constructor(
    private readonly conn: Redis,
    private readonly name: string,
  ) {}

  private run(key: string, args: Array<string | number>): Promise<string[]> {
    const keys = [rateKey(this.name, "suspended", key), rateKey(this.name, "adaptive", key)];
    return rateScripts.run(this.conn, "politeness", keys, [args[0], ADAPTIVE_IDLE_MS, ...args.slice(1)]) as Promise<string[]>;
  }

  async state(key: string): Promise<KeyState> {
    const [left, f, fails] = await this.run(key, ["state"]);
    return { suspendedMs: Number(left), factor: Number(f), failures: Number(fails) };
  }

  async suspend(key: string, ms: number): Promise<KeyState> {
    const [left, f, fails] = await this.run(key, ["suspend", Math.ceil(ms)]);
    return { suspendedMs: Number(left), factor: Number(f), failures: Number(fails) };
  }

  async backoff(key: string, multiplier: number, floor: number): Promise<{ factor: number; changed: boolean }> {
    const [f, changed] = await this.run(key, ["backoff", multiplier, floor]);
    return { factor: Number(f), changed: changed === "1" };
  }

  async success(key: string, multiplier: number, every: number, counts: boolean): Promise<{ factor: number; recovered: boolean; previousFailures: number }> {
    const [f, recovered, prev] = await this.run(key, ["success", multiplier, every, counts ? 1 : 0]);
    return { factor: Number(f), recovered: recovered === "1", previousFailures: Number(prev) };
  }

  async failure(key: string, threshold: number, openMs: number): Promise<{ failures: number; opened: boolean }> {
    const [fails, opened] = await this.run(key, ["failure", threshold, Math.ceil(openMs)]);
    return { failures: Number(fails), opened: opened === "1" };
  }
}

export interface PolitenessOptions {
  /** rate multiplier on 429/503 (default 0.5) */
  backoffMultiplier?: number;
  /** lowest factor of the configured rate (default 0.1) */
  minFactor?: number;
  /** rate multiplier of one recovery step (default 1.1) */
  recoverMultiplier?: number;
  /** successful responses per recovery step (default 10) */
  recoverEvery?: number;
  /** consecutive connection failures/timeouts that open a key's circuit (config circuit_failures) */
  circuitFailures?: number;
  /** how long an open circuit holds the key back, ms (config circuit_open_secs) */
  circuitOpenMs?: number;
  /** suspension after a 429 without Retry-After on a key with no rate to lower, ms (default 1000) */
  unlimitedBackoffMs?: number;
  /** longest Retry-After honoured, ms (default 1 h) */
  maxSuspendMs?: number;
  /** how long a key's state is reused locally before asking the store again, ms (default 250) */
  localCacheMs?: number;
  emit?: (event: CrawlEvent) => void;
}

/** What a download told us about a key. */
export type Outcome =
  | { kind: "response"; status: number; retryAfterMs?: number }
  /** no response: a connection failure or a timeout */
  | { kind: "failure"; reason: string };

/**
 * Politeness state of every key: read before a request (suspended? at what fraction of its
 * rate?), updated from each outcome. On 429/503 the key's rate halves (floor 0.1 of the
 * configured rate) and, with a Retry-After, the key is suspended until then; every 10
 * successful (2xx/3xx) responses raise it x1.1 until it is back at the configured rate;
 * `circuitFailures` consecutive connection failures/timeouts suspend the key for
 * `circuitOpenMs` (the circuit is then half-open: one more failure opens it again, one success
 * closes it). Events: rate_backoff, rate_recovered, key_suspended, circuit_opened,
 * circuit_closed.
 *
 * The state is read through a 250 ms local cache (mocra caches its suspension check for
 * 500 ms); this process's own updates refresh it at once.
 */
export class Politeness {
  private readonly cache = new Map<string, { at: number; state: KeyState }>();
  /** store lookups in flight, by key */
  private readonly reading = new Map<string, Promise<KeyState>>();
  private readonly openCircuits = new Set<string>();
  private readonly o: Required<Omit<PolitenessOptions, "emit">>;
  private emit: (event: CrawlEvent) => void;

  constructor(
    readonly store: PolitenessStore,
    options: PolitenessOptions = {},
  ) {
    this.o = {
      backoffMultiplier: options.backoffMultiplier ?? 0.5,
      minFactor: options.minFactor ?? 0.1,
      recoverMultiplier: options.recoverMultiplier ?? 1.1,
      recoverEvery: options.recoverEvery ?? 10,
      circuitFailures: options.circuitFailures ?? 5,
      circuitOpenMs: options.circuitOpenMs ?? 30_000,
      unlimitedBackoffMs: options.unlimitedBackoffMs ?? 1000,
      maxSuspendMs: options.maxSuspendMs ?? 3_600_000,
      localCacheMs: options.localCacheMs ?? 250,
    };
    this.emit = options.emit ?? (() => {});
  }

  /** Where events go (set once the event bus is known). */
  setEmitter(emit: (event: CrawlEvent) => void): void {
    this.emit = emit;
  }

  async state(key: string): Promise<KeyState> {
    const now = Date.now();
    const hit = this.cache.get(key);
    if (hit && now - hit.at < this.o.localCacheMs) {
      return { ...hit.state, suspendedMs: Math.max(0, hit.state.suspendedMs - (now - hit.at)) };
    }
    // requests that miss the cache together share one lookup: at 64 in flight on one domain,
    // each expiry of the cache sent a burst of identical politeness.lua calls (~0.1 per page)
    let lookup = this.reading.get(key);
    if (!lookup) {
      lookup = this.store
        .state(key)
        .then((state) => {
          this.remember(key, state);
          return state;
        })
        .finally(() => this.reading.delete(key));
      this.reading.set(key, lookup);
    }
    return { ...(await lookup) };
  }

  /**
   * Feeds one outcome back. `configuredRate` is the key's rate before adaptation (req/s, 0 =
   * unlimited), for the events and the no-rate case.
   */
  async report(key: string, outcome: Outcome, configuredRate: number): Promise<void> {
    if (outcome.kind === "failure") {
      const r = await this.store.failure(key, this.o.circuitFailures, this.o.circuitOpenMs);
      this.patch(key, { failures: r.failures });
      if (r.opened) {
        this.openCircuits.add(key);
        this.patch(key, { suspendedMs: this.o.circuitOpenMs });
        this.emit({ type: "circuit_opened", key, failures: this.o.circuitFailures, ms: this.o.circuitOpenMs });
      }
      return;
    }
    const { status } = outcome;
    if (status === 429 || status === 503) {
      if (configuredRate > 0) {
        const r = await this.store.backoff(key, this.o.backoffMultiplier, this.o.minFactor);
        this.patch(key, { factor: r.factor });
        if (r.changed) this.emit({ type: "rate_backoff", key, status, factor: r.factor, rate: configuredRate * r.factor });
      }
      let ms = outcome.retryAfterMs;
      // a 429 on a key without a rate to lower still pauses it briefly
      if (ms === undefined && status === 429 && !(configuredRate > 0)) ms = this.o.unlimitedBackoffMs;
      if (ms !== undefined && ms > 0) {
        ms = Math.min(ms, this.o.maxSuspendMs);
        const s = await this.store.suspend(key, ms);
        this.patch(key, { suspendedMs: s.suspendedMs });
        this.emit({ type: "key_suspended", key, ms, reason: `HTTP ${status}${outcome.retryAfterMs !== undefined ? " with Retry-After" : ""}` });
      }
      return;
    }
    // The server answered: the circuit closes; 2xx/3xx count towards rate recovery.
    const cached = this.cache.get(key)?.state;
    if (cached && cached.failures === 0 && cached.factor >= 1 && !this.openCircuits.has(key)) return; // nothing to update
    const r = await this.store.success(key, this.o.recoverMultiplier, this.o.recoverEvery, status < 400);
    this.patch(key, { factor: r.factor, failures: 0 });
    if (r.recovered) this.emit({ type: "rate_recovered", key, factor: r.factor, rate: configuredRate * r.factor });
    if (this.openCircuits.delete(key)) this.emit({ type: "circuit_closed", key });
  }

  private remember(key: string, state: KeyState): void {
    if (this.cache.size > 10_000) this.cache.clear();
    this.cache.set(key, { at: Date.now(), state });
  }

  private patch(key: string, p: Partial<KeyState>): void {
    const hit = this.cache.get(key);
    const base = hit ? { ...hit.state, suspendedMs: Math.max(0, hit.state.suspendedMs - (Date.now() - hit.at)) } : { suspendedMs: 0, factor: 1, failures: 0 };
    this.remember(key, { ...base, ...p });
  }
}
