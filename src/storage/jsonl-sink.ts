import { type FileHandle, mkdir, open, stat, truncate } from "node:fs/promises";
import { join } from "node:path";
import { SeenSet } from "../queue/seen-set.ts";
import { type FileWriteFault, writeFault } from "../state/errors.ts";
import type { StoredMarks } from "../state/output-marks.ts";
import { itemTexts } from "./item-text.ts";
import type { ItemBatch, ItemSink } from "./sink.ts";
import { byModule, type PendingWrite, WriteBatcher } from "./write-batcher.ts";

const encoder = new TextEncoder();

interface LinesToWrite {
  module: string;
  text: string;
  count: number;
  fingerprint: string;
}

export interface JsonlSinkOptions {
  /** "append" (default) adds to existing files; "replace" truncates each file when first opened */
  mode?: "append" | "replace";
  marks?: StoredMarks;
  /** `output.max_item_bytes` for batches that come without their texts */
  maxItemBytes?: number;
  /**
   * Called once when a file cannot be written (a full disk): the crawl should stop. The file is
   * rolled back to its last whole line, and every write after it rejects with the same fault.
   */
  onFault?: (fault: FileWriteFault) => void;
}

/**
 * Items as JSON lines in `<dir>/<module>.jsonl`, one line per item. Writes are grouped: every
 * batch that arrives while a write is running goes out in the next single write, and each
 * write() resolves once its lines are in the file. A fingerprint already written adds nothing
 * (per process: a JSONL file is per worker; the Redis sink dedups across workers). A page counts
 * as written only once its lines are in the file (and marked): an item JSON cannot hold rejects
 * with an UnstorableItemError before anything is booked.
 */
export class JsonlSink implements ItemSink {
  private readonly files = new Map<string, Promise<FileHandle>>();
  private readonly written = new SeenSet();
  /** lines appended per module by this sink */
  private readonly lines = new Map<string, number>();
  private readonly batcher = new WriteBatcher<LinesToWrite, boolean>((writes) => this.flush(writes));
  /** bytes in each open file (the end of its last whole line) */
  private readonly lengths = new Map<string, number>();
  private readonly mode: "append" | "replace";
  private readonly marks: StoredMarks | undefined;
  private fault: FileWriteFault | undefined;

  constructor(
    private readonly dir: string,
    private readonly options: JsonlSinkOptions = {},
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
    if (this.fault) return Promise.reject(this.fault);
    let text: string;
    try {
      text = itemTexts(batch, this.options.maxItemBytes).join("\n");
    } catch (err) {
      return Promise.reject(err);
    }
    if (batch.items.length > 0) text += "\n";
    // booked as written now so a copy arriving meantime adds nothing; unbooked if the write fails
    if (!this.written.add(batch.fingerprint)) return Promise.resolve(false);
    return this.batcher.add({ module: batch.module, text, count: batch.items.length, fingerprint: batch.fingerprint });
  }

  private async flush(writes: PendingWrite<LinesToWrite, boolean>[]): Promise<void> {
    await Promise.all([...byModule(writes, (w) => w.value.module)].map(([module, list]) => this.append(module, list)));
  }

  /** One write of every pending line of `module`; marked stored after it is whole in the file. */
  private async append(module: string, writes: PendingWrite<LinesToWrite, boolean>[]): Promise<void> {
    try {
      if (this.fault) throw this.fault;
      const fh = await this.file(module);
      const bytes = encoder.encode(writes.map((w) => w.value.text).join(""));
      const length = await this.appendWhole(module, fh, bytes);
      this.marks?.stored(module, length, writes.map((w) => w.value.fingerprint));
      this.lines.set(module, (this.lines.get(module) ?? 0) + writes.reduce((n, w) => n + w.value.count, 0));
      for (const w of writes) w.resolve(true);
    } catch (err) {
      const fault = err === this.fault ? this.fault : this.faulted(module, err);
      for (const w of writes) {
        this.written.delete(w.value.fingerprint);
        w.reject(fault);
      }
    }
  }

  /**
   * Writes all of `bytes` at the end of the file (a short write continues where it stopped);
   * returns the new length. On an error the file is cut back to where it ended before.
   */
  private async appendWhole(module: string, fh: FileHandle, bytes: Uint8Array): Promise<number> {
    const start = this.lengths.get(module)!;
    let done = 0;
    try {
      while (done < bytes.length) done += (await fh.write(bytes, done, bytes.length - done, start + done)).bytesWritten;
    } catch (err) {
      await fh.truncate(start).catch(() => {}); // else --resume cuts it back to the last mark
      throw err;
    }
    this.lengths.set(module, start + bytes.length);
    return start + bytes.length;
  }

  /** The first failure to write or open a file: every write from now on rejects with it. */
  private faulted(module: string, err: unknown): FileWriteFault {
    if (this.fault) return this.fault;
    this.fault = writeFault(this.pathOf(module), err);
    this.options.onFault?.(this.fault);
    return this.fault;
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
    // positioned writes (at the file's known end) rather than O_APPEND, so a short write can be continued or cut back
    const fh = await open(path, this.mode === "replace" ? "w" : "r+").catch((err: unknown) => {
      if ((err as { code?: unknown }).code === "ENOENT") return open(path, "w");
      throw err;
    });
    const length = (await fh.stat()).size;
    this.lengths.set(module, length);
    this.marks?.opened(module, length);
    return fh;
  }

  async close(): Promise<void> {
    await this.batcher.drained();
    for (const fh of this.files.values()) await (await fh.catch(() => undefined))?.close();
    this.files.clear();
  }
}
