// src/bounds/budget-store.ts: where a run's budgets are counted — in this process, or in Redis
// for every worker of the run at once (one Lua call per admitted request, atomic).

import type { Redis } from "ioredis";
import type { Config } from "../config/schema.ts";
import { ScriptSet } from "../redis/scripts.ts";

/** Which budget a run spent. */
export type BudgetName = "max_requests" | "max_items";

/** Admission of one request: "ok", "ok" and the request budget is now spent ("last"), or refused with the budget that is spent. */
export type TakeResult = "ok" | "last" | { refused: Spent };

/** The counters of one run and module, as `status` shows them. */
export interface BudgetState {
  runId: string;
  module: string;
  requests: number;
  items: number;
  /** the budget spent, if one is */
  exhausted?: BudgetName;
  limit?: number;
}

export interface BudgetStore {
  /** Counts this fingerprint against `maxRequests` (0 = no cap) unless counted before; refuses once a budget is spent. */
  takeRequest(key: BudgetKey, fingerprint: string, maxRequests: number): Promise<TakeResult>;
  /** Adds stored items; says which budget is spent (now or before), if one is. */
  addItems(key: BudgetKey, count: number, maxItems: number): Promise<Spent | undefined>;
  /** Every run's counters this store knows (Redis: a SCAN of `<name>:budget:*`). */
  list(): Promise<BudgetState[]>;
}

/** A spent budget and its limit. */
export interface Spent {
  budget: BudgetName;
  limit: number;
}

export interface BudgetKey {
  runId: string;
  module: string;
}

/** One process's budgets. */
export class MemoryBudgetStore implements BudgetStore {
  private readonly runs = new Map<string, { key: BudgetKey; counted: Set<string>; items: number; exhausted?: BudgetName; limit?: number }>();

  private run(key: BudgetKey) {
    const id = `${key.runId}:${key.module}`;
    let r = this.runs.get(id);
    if (!r) {
      r = { key, counted: new Set(), items: 0 };
      this.runs.set(id, r);
    }
    return r;
  }

  takeRequest(key: BudgetKey, fingerprint: string, maxRequests: number): Promise<TakeResult> {
    const r = this.run(key);
    if (maxRequests > 0 && r.counted.has(fingerprint)) return Promise.resolve("ok");
    if (r.exhausted) return Promise.resolve({ refused: { budget: r.exhausted, limit: r.limit ?? 0 } });
    if (maxRequests === 0) return Promise.resolve("ok");
    r.counted.add(fingerprint);
    if (r.counted.size >= maxRequests) {
      r.exhausted = "max_requests";
      r.limit = maxRequests;
      return Promise.resolve("last");
    }
    return Promise.resolve("ok");
  }

  addItems(key: BudgetKey, count: number, maxItems: number): Promise<Spent | undefined> {
    const r = this.run(key);
    r.items += count;
    if (maxItems > 0 && r.items >= maxItems && !r.exhausted) {
      r.exhausted = "max_items";
      r.limit = maxItems;
    }
    return Promise.resolve(r.exhausted ? { budget: r.exhausted, limit: r.limit ?? 0 } : undefined);
  }

  list(): Promise<BudgetState[]> {
    return Promise.resolve(
      [...this.runs.values()].map((r) => ({ ...r.key, requests: r.counted.size, items: r.items, exhausted: r.exhausted, limit: r.limit })),
    );
  }
}

/** How long a run's counters live after their last change: crawler.dedup_ttl_secs (1 day when 0). */
export function budgetTtlSecs(config: Config): number {
  return config.crawler.dedupTtlSecs > 0 ? config.crawler.dedupTtlSecs : 86_400;
}

const budgetScripts = new ScriptSet("budget", new URL("./", import.meta.url), { take: "take-request.lua", items: "count-items.lua" });

/**
 * Budgets shared by every worker through Redis: `<name>:budget:<run id>:<module>` (a hash:
 * requests, items, exhausted, limit) and `...:requests` (the fingerprints counted, at most
 * max_requests of them), both expiring `ttlSecs` after their last change.
 */
export class RedisBudgetStore implements BudgetStore {
  constructor(
    private readonly redis: Redis,
    private readonly name: string,
    private readonly ttlSecs: number,
  ) {
    budgetScripts.define(redis);
  }

  private hashKey(key: BudgetKey): string {
    return `${this.name}:budget:${key.runId}:${key.module}`;
  }


  async takeRequest(key: BudgetKey, fingerprint: string, maxRequests: number): Promise<TakeResult> {
    const h = this.hashKey(key);
    const r = (await budgetScripts.run(this.redis, "take", [`${h}:requests`, h], [fingerprint, maxRequests, this.ttlSecs])) as number | [number, string, number];
    if (r === 2) return "last";
    if (r === 1) return "ok";
    const [, budget, limit] = r as [number, string, number];
    return { refused: { budget: budget === "max_items" ? "max_items" : "max_requests", limit } };
  }

  async addItems(key: BudgetKey, count: number, maxItems: number): Promise<Spent | undefined> {
    const [, spent, limit] = (await budgetScripts.run(this.redis, "items", [this.hashKey(key)], [count, maxItems, this.ttlSecs])) as [number, string, number];
    return spent === "max_items" || spent === "max_requests" ? { budget: spent, limit } : undefined;
  }

  async list(): Promise<BudgetState[]> {
    const prefix = `${this.name}:budget:`;
    const out: BudgetState[] = [];
    let cursor = "0";
    do {
      const [next, keys] = await this.redis.scan(cursor, "MATCH", `${prefix}*`, "COUNT", 500);
      cursor = next;
      for (const k of keys) {
        if (k.endsWith(":requests")) continue;
        const rest = k.slice(prefix.length);
        const at = rest.indexOf(":");
        if (at < 0) continue;
        const h = await this.redis.hgetall(k);
        out.push({
          runId: rest.slice(0, at),
          module: rest.slice(at + 1),
          requests: Number(h.requests ?? 0),
          items: Number(h.items ?? 0),
          exhausted: h.exhausted === "max_requests" || h.exhausted === "max_items" ? h.exhausted : undefined,
          limit: h.limit === undefined ? undefined : Number(h.limit),
        });
      }
    } while (cursor !== "0");
    return out.sort((a, b) => a.runId.localeCompare(b.runId) || a.module.localeCompare(b.module));
  }
}
