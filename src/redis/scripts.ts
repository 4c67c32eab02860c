// src/redis/scripts.ts: the one way the engine loads and calls its Lua scripts (queue, rate
// limits, coordination, budgets, sinks, pause). Each script is a .lua file beside the code that
// uses it, its header listing KEYS and ARGV. A set of scripts is registered on a connection with
// ioredis `defineCommand`, which sends EVALSHA and answers NOSCRIPT (after a Redis restart or
// SCRIPT FLUSH) by sending the script again, in plain calls and in pipelines alike.

import type { Buffer } from "node:buffer";
import { readFileSync } from "node:fs";
import type { ChainableCommander, ClientContext, Redis, Result } from "ioredis";

export type ScriptArg = string | number | Buffer;

type ScriptCommand<Context extends ClientContext> = (numKeys: number, ...keysAndArgs: ScriptArg[]) => Result<unknown, Context>;

// Every command a ScriptSet defines is named `mocra_<set>_<script>` (and `...Buffer` for binary
// replies): this declares them to TypeScript, so calls need no cast.
declare module "ioredis" {
  interface RedisCommander<Context extends ClientContext = { type: "default" }> {
    [command: `mocra_${string}`]: ScriptCommand<Context>;
  }
}

/**
 * The Lua scripts of one part of the engine: `files` maps a script's name to its file in `dir`
 * (a `new URL("./", import.meta.url)` of the module that owns them). The files are read once.
 */
export class ScriptSet<Name extends string> {
  private readonly sources: ReadonlyMap<Name, string>;
  private readonly defined = new WeakSet<Redis>();

  constructor(
    /** a short word naming the set in command names (`queue`, `rate`, ...) */
    private readonly set: string,
    dir: URL,
    files: Readonly<Record<Name, string>>,
  ) {
    const sources = new Map<Name, string>();
    for (const name of Object.keys(files) as Name[]) sources.set(name, readFileSync(new URL(files[name], dir), "utf8"));
    this.sources = sources;
  }

  /** Registers the scripts on `conn` (once per connection). */
  define(conn: Redis): void {
    if (this.defined.has(conn)) return;
    for (const [name, lua] of this.sources) conn.defineCommand(this.command(name), { lua });
    this.defined.add(conn);
  }

  /** Runs a script; bulk replies as strings. */
  run(conn: Redis, name: Name, keys: readonly string[], args: readonly ScriptArg[]): Promise<unknown> {
    this.define(conn);
    return conn[`mocra_${this.set}_${name}`](keys.length, ...keys, ...args);
  }

  /** Runs a script; bulk replies as Buffers (binary payloads). */
  runBuffer(conn: Redis, name: Name, keys: readonly string[], args: readonly ScriptArg[]): Promise<unknown> {
    this.define(conn);
    return conn[`mocra_${this.set}_${name}Buffer`](keys.length, ...keys, ...args);
  }

  /** Queues a script call on a pipeline of a connection the set was defined on (see define()). */
  pipe(pipe: ChainableCommander, name: Name, keys: readonly string[], args: readonly ScriptArg[], buffer = false): void {
    pipe[`mocra_${this.set}_${name}${buffer ? "Buffer" : ""}`](keys.length, ...keys, ...args);
  }

  private command(name: Name): `mocra_${string}` {
    return `mocra_${this.set}_${name}`;
  }
}
