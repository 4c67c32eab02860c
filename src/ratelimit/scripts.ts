// src/ratelimit/scripts.ts: the rate limiter's Lua scripts (the *.lua files beside this one; each
// file's header lists its KEYS and ARGV), registered once per connection with ioredis
// `defineCommand` (EVALSHA, falling back to EVAL after a restart or SCRIPT FLUSH).

import { readFileSync } from "node:fs";
import type { Redis } from "ioredis";

const FILES = {
  gcra: "gcra.lua",
  leaseAcquire: "lease-acquire.lua",
  leaseRenew: "lease-renew.lua",
  politeness: "politeness.lua",
} as const;

export type RateScript = keyof typeof FILES;

const SOURCES = Object.fromEntries(
  Object.entries(FILES).map(([name, file]) => [name, readFileSync(new URL(`./${file}`, import.meta.url), "utf8")]),
) as Record<RateScript, string>;

const defined = new WeakSet<Redis>();

function commandName(name: RateScript): string {
  return `mocraRate_${name}`;
}

/** Registers the scripts on a connection (idempotent). */
export function defineRateScripts(conn: Redis): void {
  if (defined.has(conn)) return;
  for (const name of Object.keys(FILES) as RateScript[]) conn.defineCommand(commandName(name), { lua: SOURCES[name] });
  defined.add(conn);
}

type ScriptCall = (numKeys: number, ...args: Array<string | number>) => Promise<unknown>;

/** Runs a script (string replies). */
export function runRateScript(conn: Redis, name: RateScript, keys: readonly string[], args: ReadonlyArray<string | number>): Promise<unknown> {
  defineRateScripts(conn);
  const fn = (conn as unknown as Record<string, ScriptCall>)[commandName(name)];
  return fn.call(conn, keys.length, ...keys, ...args);
}

/** Redis key of the rate limiter family: `<name>:rate_limiter:<kind>:<key>` (mocra's prefix). */
export function rateKey(name: string, kind: "gcra" | "leases" | "suspended" | "adaptive", key: string): string {
  return `${name}:rate_limiter:${kind}:${key}`;
}
