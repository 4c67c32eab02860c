// src/storage/redis-sink.ts: the item sink shared by every worker, on Redis. Durable (a write
// resolves once Redis has the items) and idempotent (a page whose fingerprint is stored adds
// nothing), so a redelivered response never duplicates rows.
//
// Keys (under the configured `name`; module names are [A-Za-z0-9_.-]+, so they cannot collide):
//
//   <name>:items:<module>        stream, one entry per item, fields `fingerprint` and `item`
//                                (the item's JSON). Bound: documented size. Items stay until
//                                exported with `exportItems(..., { removeExported: true })`
//                                (XTRIM MINID), or the sink's `maxLen` option trims it with
//                                MAXLEN ~ (dropping the oldest items, exported or not). Its memory
//                                is about the items' JSON plus ~20-40 bytes per entry.
//   <name>:items:<module>:seen   set of the fingerprints of pages that produced items. Bound:
//                                one member per page with items, ~60-90 bytes each with a 32-hex
//                                fingerprint (1 M pages ≈ 80 MB). It outlives an export on purpose
//                                (a redelivery after the export must still add nothing); the
//                                `seenTtlSecs` option expires it that long after the last write.
//
// Pages without items write nothing (and so take no seen-set entry).

import type { ChainableCommander, Redis } from "ioredis";
import type { Config } from "../config/schema.ts";
import { describeEndpoint, openConnection } from "../redis/connection.ts";
import { ScriptSet } from "../redis/scripts.ts";
import { type ExportFormat, type ExportTarget, type ItemSource, writeExport } from "./export.ts";
import type { ItemBatch, ItemSink } from "./sink.ts";

const sinkScripts = new ScriptSet("sink", new URL("./", import.meta.url), { storeItems: "store-items.lua" });

const MODULE_PATTERN = /^[A-Za-z0-9_.-]+$/;

/** The item stream of a module: `<name>:items:<module>`. */
export function itemStreamKey(name: string, module: string): string {
  return `${name}:items:${module}`;
}

/** The fingerprints of a module's stored pages: `<name>:items:<module>:seen`. */
export function itemSeenKey(name: string, module: string): string {
  return `${name}:items:${module}:seen`;
}

export interface RedisItemSinkOptions {
  /** MAXLEN ~ of each item stream; 0 (default) = no trim, items stay until exported */
  maxLen?: number;
  /** TTL of each seen-set, refreshed by every write; 0 (default) = no TTL */
  seenTtlSecs?: number;
  /** pages per script call (default 500); a call also stops at ~4 MiB of item JSON */
  maxPagesPerCall?: number;
}

interface PendingWrite {
  module: string;
  fingerprint: string;
  items: string[];
  bytes: number;
  resolve: (stored: boolean) => void;
  reject: (err: unknown) => void;
}

/** Item JSON per script call before a new call starts (keeps one script run short). */
const MAX_BYTES_PER_CALL = 4 * 1024 * 1024;

/**
 * Items in one Redis stream per module, each page stored exactly once across all workers:
 * one Lua script checks the page's fingerprint and appends its items in the same step.
 * Writes that arrive while a pipeline is in flight are sent together in the next one (one
 * EVALSHA per group of pages of a module), so throughput does not depend on round trips.
 */
export class RedisItemSink implements ItemSink {
  private pending: PendingWrite[] = [];
  private flushing: Promise<void> | undefined;
  private closed = false;
  private readonly maxLen: number;
  private readonly seenTtlSecs: number;
  private readonly maxPagesPerCall: number;

  /**
   * Uses `redis` (a command connection, e.g. shared with other components); it is not closed
   * by close() unless `ownsConnection`.
   */
  constructor(
    private readonly redis: Redis,
    readonly name: string,
    options: RedisItemSinkOptions = {},
    private readonly ownsConnection = false,
    private readonly endpoint = endpointOf(redis),
  ) {
    this.maxLen = nonNegativeInt(options.maxLen ?? 0, "maxLen");
    this.seenTtlSecs = nonNegativeInt(options.seenTtlSecs ?? 0, "seenTtlSecs");
    this.maxPagesPerCall = Math.max(1, nonNegativeInt(options.maxPagesPerCall ?? 500, "maxPagesPerCall"));
    sinkScripts.define(redis);
  }

  /** Opens its own connection to `[channel_config.redis]` (closed by close()). */
  static async connect(config: Config, options: RedisItemSinkOptions = {}): Promise<RedisItemSink> {
    const r = config.channelConfig.redis;
    const conn = await openConnection(r, "command", r.connectTimeoutMs, `${config.name}:sink`);
    return new RedisItemSink(conn, config.name, options, true, describeEndpoint(r));
  }

  describe(): string {
    return `redis ${this.endpoint} stream ${itemStreamKey(this.name, "<module>")}`;
  }

  write(batch: ItemBatch): Promise<boolean> {
    if (this.closed) return Promise.reject(new Error("RedisItemSink: write after close"));
    if (!MODULE_PATTERN.test(batch.module)) {
      return Promise.reject(new Error(`RedisItemSink: invalid module name ${JSON.stringify(batch.module)}`));
    }
    // a page without items stores nothing, so a redelivery of it adds nothing either
    if (batch.items.length === 0) return Promise.resolve(true);
    const items: string[] = [];
    let bytes = batch.fingerprint.length;
    try {
      for (const item of batch.items) {
        const text = JSON.stringify(item) ?? "null";
        items.push(text);
        bytes += text.length;
      }
    } catch (err) {
      return Promise.reject(err);
    }
    return new Promise((resolve, reject) => {
      this.pending.push({ module: batch.module, fingerprint: batch.fingerprint, items, bytes, resolve, reject });
      this.flushing ??= this.flushLoop();
    });
  }

  private async flushLoop(): Promise<void> {
    try {
      while (this.pending.length > 0) {
        const batch = this.pending;
        this.pending = [];
        await this.send(batch);
      }
    } finally {
      this.flushing = undefined;
    }
  }

  /** One pipeline for everything pending: one script call per module and chunk. */
  private async send(writes: PendingWrite[]): Promise<void> {
    const byModule = new Map<string, PendingWrite[]>();
    for (const w of writes) {
      const list = byModule.get(w.module);
      if (list) list.push(w);
      else byModule.set(w.module, [w]);
    }
    const calls: PendingWrite[][] = [];
    const pipe = this.redis.pipeline();
    for (const [module, list] of byModule) {
      let chunk: PendingWrite[] = [];
      let bytes = 0;
      const emit = () => {
        if (chunk.length === 0) return;
        this.queueCall(pipe, module, chunk);
        calls.push(chunk);
        chunk = [];
        bytes = 0;
      };
      for (const w of list) {
        if (chunk.length >= this.maxPagesPerCall || (chunk.length > 0 && bytes + w.bytes > MAX_BYTES_PER_CALL)) emit();
        chunk.push(w);
        bytes += w.bytes;
      }
      emit();
    }
    let results: Array<[Error | null, unknown]> | null;
    try {
      results = await pipe.exec();
    } catch (err) {
      for (const w of writes) w.reject(err);
      return;
    }
    calls.forEach((chunk, i) => {
      const [err, flags] = results?.[i] ?? [new Error("RedisItemSink: no reply from Redis"), null];
      if (err || !Array.isArray(flags) || flags.length !== chunk.length) {
        const why = err ?? new Error(`RedisItemSink: unexpected reply ${JSON.stringify(flags)}`);
        for (const w of chunk) w.reject(why);
        return;
      }
      chunk.forEach((w, j) => w.resolve(Number(flags[j]) === 1));
    });
  }

  private queueCall(pipe: ChainableCommander, module: string, chunk: readonly PendingWrite[]): void {
    const args: Array<string | number> = [this.maxLen, this.seenTtlSecs];
    for (const w of chunk) args.push(w.fingerprint, w.items.length, ...w.items);
    sinkScripts.pipe(pipe, "storeItems", [itemStreamKey(this.name, module), itemSeenKey(this.name, module)], args);
  }

  /** Waits for pending writes; closes the connection if the sink opened it. */
  async close(): Promise<void> {
    this.closed = true;
    while (this.flushing) await this.flushing;
    if (this.ownsConnection) await this.redis.quit().catch(() => this.redis.disconnect());
  }
}

function endpointOf(redis: Redis): string {
  const o = redis.options;
  if (o.path) return o.path;
  return `${o.host ?? "127.0.0.1"}:${o.port ?? 6379}${o.db ? `/${o.db}` : ""}`;
}

function nonNegativeInt(v: number, what: string): number {
  if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`RedisItemSink: ${what} must be an integer >= 0, got ${v}`);
  return v;
}

// ------------------------------------------------------------------------------------ export

export type { ExportTarget } from "./export.ts";

export interface ExportOptions {
  /** entries per XRANGE (default 1000) */
  pageSize?: number;
  /** export only entries after this stream id (exclusive); default: from the start */
  after?: string;
  /** jsonl (default), json (one array) or csv (header = union of the item keys) */
  format?: ExportFormat;
  /**
   * After everything is written, remove the exported entries (XTRIM MINID, so entries added
   * meanwhile stay). The seen-set stays: a redelivered page still adds nothing.
   */
  removeExported?: boolean;
}

/**
 * Writes every item of `module` (stream order, up to the last entry there when the export
 * starts) to `out`: a file path (written to a temporary name and renamed; parent directories
 * are created) or a stream, which is left open. Returns the item count.
 */
export async function exportItems(redis: Redis, name: string, module: string, out: ExportTarget, opts: ExportOptions = {}): Promise<number> {
  if (!MODULE_PATTERN.test(module)) throw new Error(`exportItems: invalid module name ${JSON.stringify(module)}`);
  const pageSize = opts.pageSize ?? 1000;
  if (!Number.isSafeInteger(pageSize) || pageSize < 1) throw new RangeError(`exportItems: pageSize must be an integer >= 1, got ${pageSize}`);
  const key = itemStreamKey(name, module);
  const last = await redis.xrevrange(key, "+", "-", "COUNT", 1);
  const lastId = last[0]?.[0];
  const source: ItemSource = {
    async *pages() {
      if (lastId === undefined) return;
      let start = opts.after === undefined ? "-" : `(${opts.after}`;
      for (;;) {
        const entries = await redis.xrange(key, start, lastId, "COUNT", pageSize);
        if (entries.length === 0) return;
        const page: string[] = [];
        for (const [, fields] of entries) {
          for (let i = 0; i + 1 < fields.length; i += 2) {
            if (fields[i] === "item") {
              page.push(fields[i + 1]);
              break;
            }
          }
        }
        yield page;
        const end = entries[entries.length - 1][0];
        if (entries.length < pageSize || end === lastId) return;
        start = `(${end}`;
      }
    },
  };
  const count = await writeExport(source, opts.format ?? "jsonl", out);
  if (opts.removeExported) await removeThrough(redis, key, lastId);
  return count;
}

/** Removes every entry up to and including `lastId`. */
async function removeThrough(redis: Redis, key: string, lastId: string | undefined): Promise<void> {
  if (lastId === undefined) return;
  const [ms, seq] = lastId.split("-");
  await redis.xtrim(key, "MINID", `${ms}-${(BigInt(seq) + 1n).toString()}`);
}

/** The modules that have an item stream under `name`, sorted (SCAN, for the CLI). */
export async function listItemModules(redis: Redis, name: string): Promise<string[]> {
  const prefix = `${name}:items:`;
  const pattern = `${prefix.replace(/[*?[\]\\]/g, "\\$&")}*`;
  const found = new Set<string>();
  let cursor = "0";
  do {
    const [next, keys] = await redis.scan(cursor, "MATCH", pattern, "COUNT", 1000, "TYPE", "stream");
    cursor = next;
    for (const k of keys) {
      const module = k.slice(prefix.length);
      if (MODULE_PATTERN.test(module)) found.add(module);
    }
  } while (cursor !== "0");
  return [...found].sort();
}

/** Items held for `module` (XLEN of its stream). */
export function countItems(redis: Redis, name: string, module: string): Promise<number> {
  return redis.xlen(itemStreamKey(name, module));
}
