// src/storage/export-redis.ts: exporting the Redis sink's item streams (see redis-sink.ts for
// the key layout) as JSON lines, one JSON array or CSV, and listing what is there.
import type { Redis } from "ioredis";
import { type ExportFormat, type ExportTarget, type ItemSource, writeExport } from "./export.ts";
import { itemStreamKey, MODULE_PATTERN } from "./redis-sink.ts";

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
