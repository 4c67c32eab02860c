import { type FileHandle, mkdir, open, stat, truncate } from "node:fs/promises";
import { join } from "node:path";
import { SeenSet } from "../queue/seen-set.ts";
import type { StoredMarks } from "../state/output-marks.ts";
import type { ItemBatch, ItemSink } from "./sink.ts";

const encoder = new TextEncoder();

interface PendingWrite {
  module: string;
  text: string;
  count: number;
  fingerprint: string;
  resolve: (stored: boolean) => void;
  reject: (err: unknown) => void;
}


export interface JsonlSinkOptions {
  /** "append" (default) adds to existing files; "replace" truncates each file when first opened */
  mode?: "append" | "replace";
  marks?: StoredMarks;
}

/**
 * Items as JSON lines in `<dir>/<module>.jsonl`, one line per item. Writes are grouped: every
 * batch that arrives while a write is running goes out in the next single write, and each
 * write() resolves once its lines are in the file. A fingerprint already written adds nothing
 * (per process: a JSONL file is per worker; the Redis sink dedups across workers).
 */
export class JsonlSink implements ItemSink {
  private readonly files = new Map<string, Promise<FileHandle>>();
  private readonly written = new SeenSet();
  /** lines appended per module by this sink */
  private readonly lines = new Map<string, number>();
  private pending: PendingWrite[] = [];
  private flushing: Promise<void> | undefined;
  /** bytes in each open file */
  private readonly lengths = new Map<string, number>();
  private readonly mode: "append" | "replace";
  private readonly marks: StoredMarks | undefined;

  constructor(
    private readonly dir: string,
    options: JsonlSinkOptions = {},
  ) {
    this.marks = options.marks;
    // a resumed run continues its files: never replace them
    this.mode = this.marks?.restored ? "append" : (options.mode ?? "append");
    for (const fp of this.marks?.restored?.fingerprints ?? []) this.written.add(fp);
  }

  describe(): string {
    if (this.lines.size === 0) return `none written (files would be ${join(this.dir, "<module>.jsonl")})`;
    const how = this.marks?.restored ? "appended on resume" : this.mode === "replace" ? "written, file replaced" : "appended";
    return [...this.lines].map(([m, n]) => `${this.pathOf(m)} (+${n} lines ${how})`).join(", ");
  }

  pathOf(module: string): string {
    return join(this.dir, `${module}.jsonl`);
  }

  write(batch: ItemBatch): Promise<boolean> {
    if (!this.written.add(batch.fingerprint)) return Promise.resolve(false);
    let text = "";
    for (const item of batch.items) text += JSON.stringify(item) + "\n";
    return new Promise((resolve, reject) => {
      this.pending.push({ module: batch.module, text, count: batch.items.length, fingerprint: batch.fingerprint, resolve, reject });
      this.flushing ??= this.flushLoop();
    });
  }

  private async flushLoop(): Promise<void> {
    try {
      while (this.pending.length > 0) {
        const batch = this.pending;
        this.pending = [];
        const byModule = new Map<string, PendingWrite[]>();
        for (const w of batch) {
          const list = byModule.get(w.module);
          if (list) list.push(w);
          else byModule.set(w.module, [w]);
        }
        await Promise.all(
          [...byModule].map(async ([module, writes]) => {
            try {
              const fh = await this.file(module);
              const bytes = encoder.encode(writes.map((w) => w.text).join(""));
              await fh.write(bytes);
              const length = this.lengths.get(module)! + bytes.length;
              this.lengths.set(module, length);
              this.marks?.stored(module, length, writes.map((w) => w.fingerprint));
              this.lines.set(module, (this.lines.get(module) ?? 0) + writes.reduce((n, w) => n + w.count, 0));
              for (const w of writes) w.resolve(true);
            } catch (err) {
              for (const w of writes) {
                this.written.delete(w.fingerprint);
                w.reject(err);
              }
            }
          }),
        );
      }
    } finally {
      this.flushing = undefined;
    }
  }

  private file(module: string): Promise<FileHandle> {
    let fh = this.files.get(module);
    if (!fh) {
      fh = mkdir(this.dir, { recursive: true }).then(() => this.openFile(module));
      fh.catch(() => this.files.delete(module));
      this.files.set(module, fh);
    }
    return fh;
  }

  /** Opens a module's file per the mode; on resume, first cuts off lines written after the last mark. */
  private async openFile(module: string): Promise<FileHandle> {
    const path = this.pathOf(module);
    const committed = this.marks?.restored?.committed.get(module);
    if (committed !== undefined) {
      const size = await stat(path).then((s) => s.size, () => undefined);
      if (size !== undefined && size > committed) await truncate(path, committed);
    }
    const fh = await open(path, this.mode === "replace" ? "w" : "a");
    const length = (await fh.stat()).size;
    this.lengths.set(module, length);
    this.marks?.opened(module, length);
    return fh;
  }

  async close(): Promise<void> {
    while (this.flushing) await this.flushing;
    for (const fh of this.files.values()) await (await fh).close();
    this.files.clear();
  }
}
