// src/sync/scripts.ts: the coordination Lua scripts (the *.lua files beside this one; each
// file's header lists its KEYS and ARGV), registered per connection with ioredis
// `defineCommand` (EVALSHA, falling back to EVAL after a restart or SCRIPT FLUSH).
import type { Buffer } from "node:buffer";
import { readFileSync } from "node:fs";
import type { Redis } from "ioredis";

const FILES = {
  lockAcquire: "lock-acquire.lua",
  lockRenew: "lock-renew.lua",
  lockRelease: "lock-release.lua",
  lockFencedSet: "lock-fenced-set.lua",
  leaderAcquire: "leader-acquire.lua",
  leaderResign: "lock-release.lua",
} as const;

export type SyncScript = keyof typeof FILES;

const SOURCES = Object.fromEntries(
  Object.entries(FILES).map(([name, file]) => [name, readFileSync(new URL(`./${file}`, import.meta.url), "utf8")]),
) as Record<SyncScript, string>;

const defined = new WeakSet<Redis>();
type ScriptCall = (numKeys: number, ...args: Array<string | number | Buffer>) => Promise<unknown>;

/** Runs a script (string replies), registering the scripts on the connection first. */
export function runSyncScript(conn: Redis, name: SyncScript, keys: readonly string[], args: ReadonlyArray<string | number | Buffer>): Promise<unknown> {
  if (!defined.has(conn)) {
    for (const n of Object.keys(FILES) as SyncScript[]) conn.defineCommand(`mocraSync_${n}`, { lua: SOURCES[n] });
    defined.add(conn);
  }
  const fn = (conn as unknown as Record<string, ScriptCall>)[`mocraSync_${name}`];
  return fn.call(conn, keys.length, ...keys, ...args);
}
