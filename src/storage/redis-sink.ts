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
import { itemTexts } from "./item-text.ts";
import type { ItemBatch, ItemSink } from "./sink.ts";
import { byModule, type PendingWrite, WriteBatcher } from "./write-batcher.ts";

const sinkScripts = new ScriptSet("sink", new URL("./", import.meta.url), { storeItems: "store-items.lua" });

export const MODULE_PATTERN = /^[A-Za-z0-9_.-]+$/;

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
  /** `output.max_item_bytes` for batches that come without their texts */
  maxItemBytes?: number;
}

interface PageItems {
  module: string;
  fingerprint: string;
  items: readonly string[];
  bytes: number;
}

type Write = PendingWrite<PageItems, boolean>;

/** Item JSON per script call before a new call starts (keeps one script run short). */
const MAX_BYTES_PER_CALL = 4 * 1024 * 1024;

/**
 * Items in one Redis stream per module, each page stored exactly once across all workers:
 * one Lua script checks the page's fingerprint and appends its items in the same step.
 * Writes that arrive while a pipeline is in flight are sent together in the next one (one
 * EVALSHA per group of pages of a module), so throughput does not depend on round trips.
 */
export class RedisItemSink implements ItemSink {
  private readonly batcher = new WriteBatcher<PageItems, boolean>((writes) => this.send(writes));
  private closed = false;
  private readonly maxLen: number;
  private readonly seenTtlSecs: number;
  private readonly maxPagesPerCall: number;
  private readonly maxItemBytes: number | undefined;

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
    this.maxItemBytes = options.maxItemBytes;
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
    let items: readonly string[];
    try {
      items = itemTexts(batch, this.maxItemBytes);
    } catch (err) {
      return Promise.reject(err);
    }
    let bytes = batch.fingerprint.length;
    for (const text of items) bytes += text.length;
    return this.batcher.add({ module: batch.module, fingerprint: batch.fingerprint, items, bytes });
  }

  /** One pipeline for everything pending: one script call per module and chunk. */
  private async send(writes: Write[]): Promise<void> {
    const calls: Write[][] = [];
    const pipe = this.redis.pipeline();
    for (const [module, list] of byModule(writes, (w) => w.value.module)) {
      let chunk: Write[] = [];
      let bytes = 0;
      const emit = () => {
        if (chunk.length === 0) return;
        this.queueCall(pipe, module, chunk);
        calls.push(chunk);
        chunk = [];
        bytes = 0;
      };
      for (const w of list) {
        if (chunk.length >= this.maxPagesPerCall || (chunk.length > 0 && bytes + w.value.bytes > MAX_BYTES_PER_CALL)) emit();
        chunk.push(w);
        bytes += w.value.bytes;
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

  private queueCall(pipe: ChainableCommander, module: string, chunk: readonly Write[]): void {
    const args: Array<string | number> = [this.maxLen, this.seenTtlSecs];
    for (const { value: w } of chunk) args.push(w.fingerprint, w.items.length, ...w.items);
    sinkScripts.pipe(pipe, "storeItems", [itemStreamKey(this.name, module), itemSeenKey(this.name, module)], args);
  }

  /** Waits for pending writes; closes the connection if the sink opened it. */
  async close(): Promise<void> {
    this.closed = true;
    await this.batcher.drained();
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
