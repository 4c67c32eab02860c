// src/ratelimit/scripts.ts: the rate limiter's Lua scripts (the *.lua files beside this one; each
// file's header lists its KEYS and ARGV), loaded and called through src/redis/scripts.ts.

import { ScriptSet } from "../redis/scripts.ts";

export const rateScripts = new ScriptSet("rate", new URL("./", import.meta.url), {
  gcra: "gcra.lua",
  leaseAcquire: "lease-acquire.lua",
  leaseRenew: "lease-renew.lua",
  politeness: "politeness.lua",
});

/** Redis key of the rate limiter family: `<name>:rate_limiter:<kind>:<key>` (mocra's prefix). */
export function rateKey(name: string, kind: "gcra" | "leases" | "suspended" | "adaptive", key: string): string {
  return `${name}:rate_limiter:${kind}:${key}`;
}
