// src/storage/export.ts: writing stored items out as JSON lines, one JSON array, or CSV, from
// any source that can page through a fixed snapshot of them (the Redis sink's stream, a
// PostgreSQL items table). A file target is written to a temporary name and renamed, so a
// reader never sees half an export.

import { randomBytes } from "node:crypto";
import { mkdir, open, rename, unlink } from "node:fs/promises";
import { dirname } from "node:path";
import { stringify } from "csv-stringify/sync";

export type ExportFormat = "jsonl" | "json" | "csv";
export const EXPORT_FORMATS: readonly ExportFormat[] = ["jsonl", "json", "csv"];

/** A Node writable (e.g. process.stdout, fs.createWriteStream) or a web WritableStream. */
export type ExportTarget = string | NodeJS.WritableStream | WritableStream<Uint8Array>;

/**
 * Stored items, as their JSON texts in stored order. Every call of `pages()` walks the same
 * snapshot (items stored after the source was made are not included), so CSV can take two passes.
 */
export interface ItemSource {
  pages(): AsyncIterable<readonly string[]>;
}

/** Writes every item of `source` to `out` in `format`; returns the item count. */
export async function writeExport(source: ItemSource, format: ExportFormat, out: ExportTarget): Promise<number> {
  if (typeof out === "string") {
    await mkdir(dirname(out), { recursive: true });
    const tmp = `${out}.${randomBytes(6).toString("hex")}.tmp`;
    const fh = await open(tmp, "w");
    let count: number;
    try {
      count = await writeFormatted(source, format, (text) => fh.writeFile(text));
      await fh.sync();
    } catch (err) {
      await fh.close().catch(() => {});
      await unlink(tmp).catch(() => {});
      throw err;
    }
    await fh.close();
    await rename(tmp, out);
    return count;
  }
  if ("getWriter" in out) {
    const writer = out.getWriter();
    const enc = new TextEncoder();
    try {
      return await writeFormatted(source, format, (text) => writer.write(enc.encode(text)));
    } finally {
      writer.releaseLock();
    }
  }
  const stream = out;
  return writeFormatted(source, format, (text) => new Promise<void>((resolve, reject) => void stream.write(text, (err) => (err ? reject(err) : resolve()))));
}

async function writeFormatted(source: ItemSource, format: ExportFormat, write: (text: string) => Promise<void>): Promise<number> {
  let count = 0;
  switch (format) {
    case "jsonl":
      for await (const page of source.pages()) {
        if (page.length === 0) continue;
        await write(`${page.join("\n")}\n`);
        count += page.length;
      }
      return count;
    case "json":
      await write("[");
      for await (const page of source.pages()) {
        if (page.length === 0) continue;
        await write(`${count === 0 ? "\n" : ",\n"}${page.join(",\n")}`);
        count += page.length;
      }
      await write(count === 0 ? "]\n" : "\n]\n");
      return count;
    case "csv": {
      // pass 1: the header is the union of the items' keys, in first-seen order
      const columns = new Map<string, number>();
      for await (const page of source.pages()) {
        for (const text of page) {
          const item: unknown = JSON.parse(text);
          for (const k of isObject(item) ? Object.keys(item) : ["value"]) if (!columns.has(k)) columns.set(k, columns.size);
        }
      }
      const header = [...columns.keys()];
      if (header.length === 0) return 0;
      await write(stringify([header]));
      for await (const page of source.pages()) {
        const rows = page.map((text) => {
          const item: unknown = JSON.parse(text);
          const obj = isObject(item) ? item : { value: item };
          return header.map((k) => csvCell(obj[k]));
        });
        if (rows.length === 0) continue;
        await write(stringify(rows));
        count += rows.length;
      }
      return count;
    }
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** A CSV cell: strings as they are, numbers and booleans as text, nested values as JSON, absent as empty. */
function csvCell(v: unknown): string {
  if (v === undefined || v === null) return "";
  if (typeof v === "string") return v;
  if (typeof v === "number" || typeof v === "boolean") return String(v);
  return JSON.stringify(v);
}
