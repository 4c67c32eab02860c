import { type FileHandle, mkdir, open } from "node:fs/promises";
import { join } from "node:path";
import { SeenSet } from "../queue/seen-set.ts";
import type { ItemBatch, ItemSink } from "./sink.ts";

interface PendingWrite {
  module: string;
  text: string;
  count: number;
  fingerprint: string;
  resolve: (stored: boolean) => void;
  reject: (err: unknown) => void;
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

  constructor(private readonly dir: string) {}

  describe(): string {
    if (this.lines.size === 0) return `none written (files would be ${join(this.dir, "<module>.jsonl")})`;
    return [...this.lines].map(([m, n]) => `${this.pathOf(m)} (+${n} lines appended)`).join(", ");
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
              await fh.write(writes.map((w) => w.text).join(""));
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
      fh = mkdir(this.dir, { recursive: true }).then(() => open(this.pathOf(module), "a"));
      fh.catch(() => this.files.delete(module));
      this.files.set(module, fh);
    }
    return fh;
  }

  async close(): Promise<void> {
    while (this.flushing) await this.flushing;
    for (const fh of this.files.values()) await (await fh).close();
    this.files.clear();
  }
}
