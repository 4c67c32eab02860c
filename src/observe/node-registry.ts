// src/engine/node-registry.ts: live workers, in mocra's node registry layout (wire FORMAT §4,
// mocra common/src/registry.rs), so `status` (and a mocra node) can list who is running.
//
//   <name>:cache:nodes:<id>               JSON {"id","ip","hostname","last_heartbeat","version",
//                                         "pid","roles","started_at","pages"} (mocra's five
//                                         fields first, ours after); SET EX ttl (30 s), every 10 s.
//                                         Bound: TTL.
//   <name>:cache:registry:nodes_index     ZSET score = last heartbeat (unix secs), member = id.
//                                         Bound: members older than the TTL are pruned on every
//                                         heartbeat and every read (mocra prunes on read), and
//                                         the key expires one TTL after the last heartbeat of
//                                         any node: size = live nodes.

import { readFileSync } from "node:fs";
import { hostname as osHostname, networkInterfaces } from "node:os";
import process from "node:process";
import type { Redis } from "ioredis";
import { cacheRedisConnection, type Config } from "../config/schema.ts";
import { uuidv4 } from "../model/index.ts";
import { openConnection } from "../redis/connection.ts";

export const HEARTBEAT_INTERVAL_MS = 10_000;
export const NODE_TTL_SECS = 30;

/** One registry row. The first five fields are mocra's; the others are ours (mocra ignores them). */
export interface NodeInfo {
  id: string;
  ip: string;
  hostname: string;
  /** unix seconds */
  last_heartbeat: number;
  version: string;
  pid?: number;
  roles?: string[];
  /** unix seconds */
  started_at?: number;
  /** pages processed by this node so far */
  pages?: number;
  /** items stored by this node so far */
  items?: number;
}

export interface NodeRegistryOptions {
  /** default: a fresh UUID v4 */
  id?: string;
  /** default: this package's version */
  version?: string;
  roles?: readonly string[];
  /** pages processed so far, reported with each heartbeat */
  pages?: () => number;
  /** items stored so far, reported with each heartbeat */
  items?: () => number;
  /** default 10 000 */
  intervalMs?: number;
  /** TTL of the node key and index entry, in seconds; default 30 */
  ttlSecs?: number;
  /** called when a heartbeat fails (the next one retries) */
  onError?: (err: unknown) => void;
}

export function nodeKey(name: string, id: string): string {
  return `${name}:cache:nodes:${id}`;
}

export function nodesIndexKey(name: string): string {
  return `${name}:cache:registry:nodes_index`;
}

const unixSecs = (): number => Math.floor(Date.now() / 1000);

/** Registers this process and keeps its row alive until stop(). */
export class NodeRegistry {
  readonly id: string;
  readonly ip: string;
  readonly hostname: string;
  readonly version: string;
  readonly startedAt = unixSecs();
  private readonly roles: readonly string[] | undefined;
  private readonly pages: (() => number) | undefined;
  private readonly items: (() => number) | undefined;
  private readonly intervalMs: number;
  private readonly ttlSecs: number;
  private readonly onError: ((err: unknown) => void) | undefined;
  private timer: ReturnType<typeof setInterval> | undefined;
  private inFlight: Promise<void> | undefined;
  private stopped = false;

  /** Uses `redis` (e.g. a shared command connection); stop() closes it only if `ownsConnection`. */
  constructor(
    private readonly redis: Redis,
    readonly name: string,
    options: NodeRegistryOptions = {},
    private readonly ownsConnection = false,
  ) {
    this.id = options.id ?? uuidv4();
    this.ip = localIp();
    this.hostname = localHostname();
    this.version = options.version ?? PACKAGE_VERSION;
    this.roles = options.roles;
    this.pages = options.pages;
    this.items = options.items;
    this.intervalMs = options.intervalMs ?? HEARTBEAT_INTERVAL_MS;
    this.ttlSecs = options.ttlSecs ?? NODE_TTL_SECS;
    this.onError = options.onError;
    if (!Number.isSafeInteger(this.ttlSecs) || this.ttlSecs < 1) throw new RangeError(`NodeRegistry: ttlSecs must be an integer >= 1, got ${this.ttlSecs}`);
    if (!(this.intervalMs > 0)) throw new RangeError(`NodeRegistry: intervalMs must be > 0, got ${this.intervalMs}`);
  }

  /**
   * Opens its own connection to the cache Redis (`[cache.redis]`, else `[channel_config.redis]`,
   * where mocra keeps its registry), writes the first heartbeat and keeps heartbeating.
   * stop() removes the node and closes the connection.
   */
  static async start(config: Config, options: NodeRegistryOptions = {}): Promise<NodeRegistry> {
    const timeoutMs = config.channelConfig.redis.connectTimeoutMs;
    const conn = await openConnection(cacheRedisConnection(config), "command", timeoutMs, `${config.name}:registry`);
    const registry = new NodeRegistry(conn, config.name, options, true);
    try {
      await registry.start();
    } catch (err) {
      conn.disconnect();
      throw err;
    }
    return registry;
  }

  get key(): string {
    return nodeKey(this.name, this.id);
  }

  /** The row as it is written now. */
  info(now = unixSecs()): NodeInfo {
    const row: NodeInfo = { id: this.id, ip: this.ip, hostname: this.hostname, last_heartbeat: now, version: this.version };
    row.pid = process.pid;
    if (this.roles) row.roles = [...this.roles];
    row.started_at = this.startedAt;
    if (this.pages) row.pages = this.pages();
    if (this.items) row.items = this.items();
    return row;
  }

  /** Writes the first heartbeat (rejects if Redis refuses it), then one every interval. */
  async start(): Promise<void> {
    if (this.stopped) throw new Error("NodeRegistry: start after stop");
    if (this.timer) return;
    await this.heartbeat();
    this.timer = setInterval(() => {
      if (this.inFlight) return; // the previous one is still running: skip, do not pile up
      this.heartbeat().catch((err) => this.onError?.(err));
    }, this.intervalMs);
    // the registry never keeps a process alive on its own
    (this.timer as { unref?: () => void }).unref?.();
  }

  /** One heartbeat: the row with its TTL, the index entry, the prune, the index's own TTL. */
  heartbeat(): Promise<void> {
    const run = async () => {
      const now = unixSecs();
      const index = nodesIndexKey(this.name);
      await this.redis
        .multi()
        .set(this.key, JSON.stringify(this.info(now)), "EX", this.ttlSecs)
        .zadd(index, now, this.id)
        .zremrangebyscore(index, "-inf", `(${now - this.ttlSecs}`)
        .expire(index, this.ttlSecs)
        .exec()
        .then(throwOnError);
    };
    const p = run().finally(() => {
      if (this.inFlight === p) this.inFlight = undefined;
    });
    this.inFlight = p;
    return p;
  }

  /** Stops heartbeating and removes this node's row and index entry. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.inFlight?.catch(() => {});
    try {
      await this.redis.multi().del(this.key).zrem(nodesIndexKey(this.name), this.id).exec().then(throwOnError);
    } finally {
      if (this.ownsConnection) await this.redis.quit().catch(() => this.redis.disconnect());
    }
  }
}

function throwOnError(results: Array<[Error | null, unknown]> | null): void {
  if (results === null) throw new Error("NodeRegistry: transaction aborted");
  for (const [err] of results) if (err) throw err;
}

/**
 * The live nodes, oldest heartbeat first: index entries older than `ttlSecs` are pruned (as
 * mocra does on read), and an entry whose row has expired or cannot be parsed is left out.
 */
export async function listNodes(redis: Redis, name: string, options: { ttlSecs?: number } = {}): Promise<NodeInfo[]> {
  const ttlSecs = options.ttlSecs ?? NODE_TTL_SECS;
  const index = nodesIndexKey(name);
  const now = unixSecs();
  await redis.zremrangebyscore(index, "-inf", `(${now - ttlSecs}`);
  const ids = await redis.zrange(index, 0, "-1");
  if (ids.length === 0) return [];
  const rows = await redis.mget(ids.map((id) => nodeKey(name, id)));
  const out: NodeInfo[] = [];
  for (const row of rows) {
    if (row === null) continue;
    try {
      const info = JSON.parse(row) as NodeInfo;
      if (info && typeof info.id === "string") out.push(info);
    } catch {
      // a row we cannot read is not a node we can show
    }
  }
  return out;
}

/** The first non-internal IPv4 address (then IPv6), else 127.0.0.1. */
export function localIp(): string {
  try {
    const all = Object.values(networkInterfaces()).flatMap((list) => list ?? []);
    const external = all.filter((a) => !a.internal);
    return (external.find((a) => a.family === "IPv4") ?? external[0])?.address ?? "127.0.0.1";
  } catch {
    return "127.0.0.1"; // e.g. Deno without --allow-sys
  }
}

function localHostname(): string {
  try {
    return osHostname();
  } catch {
    return "unknown";
  }
}

/**
 * mocra-ts's own package.json (name, version, dependencies): two levels up from src/observe/ in
 * the repository, three from dist/src/observe/ in the installed package.
 */
export const OWN_PACKAGE: { name: string; version: string; dependencies: Record<string, string> } = (() => {
  for (const path of ["../../package.json", "../../../package.json"]) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(path, import.meta.url), "utf8")) as { name?: unknown; version?: unknown; dependencies?: Record<string, string> };
      if (pkg.name === "mocra-ts" && typeof pkg.version === "string") return { name: pkg.name, version: pkg.version, dependencies: pkg.dependencies ?? {} };
    } catch {
      // not there: the other layout
    }
  }
  return { name: "mocra-ts", version: "0.0.0", dependencies: {} };
})();
const PACKAGE_VERSION = OWN_PACKAGE.version;
