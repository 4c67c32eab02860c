// src/queue/redis/scripts.ts: the queue's Lua scripts (the *.lua files beside this one; each
// file's header lists its KEYS and ARGV). They are registered on a connection with ioredis
// `defineCommand`, which sends EVALSHA and falls back to EVAL on NOSCRIPT (after a restart or
// SCRIPT FLUSH), in plain calls and in pipelines alike.

import type { Buffer } from "node:buffer";
import { readFileSync } from "node:fs";
import type { ChainableCommander, Redis } from "ioredis";

/** script name → file */
const FILES = {
  publish: "publish.lua",
  ack: "ack.lua",
  readPlan: "read-plan.lua",
  deadLetter: "dead-letter.lua",
  retryLater: "retry-later.lua",
  moveDue: "move-due.lua",
  claim: "claim.lua",
  touch: "touch.lua",
  trim: "trim.lua",
  stats: "stats.lua",
  replay: "replay.lua",
  purge: "purge.lua",
} as const;

export type ScriptName = keyof typeof FILES;
export type ScriptArg = string | number | Buffer;

const SOURCES: Record<ScriptName, string> = Object.fromEntries(
  Object.entries(FILES).map(([name, file]) => [name, readFileSync(new URL(`./${file}`, import.meta.url), "utf8")]),
) as Record<ScriptName, string>;

/** The command name a script is registered under (prefixed so it cannot shadow a Redis command). */
function commandName(name: ScriptName): string {
  return `mocraQueue_${name}`;
}

type ScriptCall<R> = (numKeys: number, ...args: ScriptArg[]) => R;

/** Registers every script on the connection (once per connection). */
export function defineScripts(conn: Redis): void {
  for (const name of Object.keys(FILES) as ScriptName[]) {
    conn.defineCommand(commandName(name), { lua: SOURCES[name] });
  }
}

/** Runs a script; string replies. */
export function runScript(conn: Redis, name: ScriptName, keys: readonly string[], args: readonly ScriptArg[]): Promise<unknown> {
  const fn = (conn as unknown as Record<string, ScriptCall<Promise<unknown>>>)[commandName(name)];
  return fn.call(conn, keys.length, ...keys, ...args);
}

/** Runs a script; bulk replies come back as Buffers (payloads are binary). */
export function runScriptBuffer(conn: Redis, name: ScriptName, keys: readonly string[], args: readonly ScriptArg[]): Promise<unknown> {
  const fn = (conn as unknown as Record<string, ScriptCall<Promise<unknown>>>)[`${commandName(name)}Buffer`];
  return fn.call(conn, keys.length, ...keys, ...args);
}

/** Queues a script call on a pipeline. */
export function pipeScript(pipe: ChainableCommander, name: ScriptName, keys: readonly string[], args: readonly ScriptArg[], buffer = false): void {
  const fn = (pipe as unknown as Record<string, ScriptCall<unknown>>)[buffer ? `${commandName(name)}Buffer` : commandName(name)];
  fn.call(pipe, keys.length, ...keys, ...args);
}
