import { closeSync, fstatSync, fsyncSync, ftruncateSync, openSync, writeSync } from "node:fs";
import { FileWriteFault } from "./errors.ts";

const encoder = new TextEncoder();

/**
 * An append-only file written in whole records: a write the device cuts short (a full disk) is
 * rolled back to the end of the last whole record before the error is thrown, so no later append
 * is ever glued to half a line. After a failure every append throws the same FileWriteFault (the
 * file is left as it was after its last whole record, for --resume).
 */
export class AppendFile {
  private fd: number | undefined;
  private length: number;
  private fault: FileWriteFault | undefined;

  /** Opens `path` for appends (`truncate`: emptied first). */
  constructor(
    readonly path: string,
    options: { truncate?: boolean; fsync?: boolean } = {},
  ) {
    this.fd = openSync(path, options.truncate ? "w" : "a");
    this.length = fstatSync(this.fd).size;
    this.fsync = options.fsync ?? false;
  }

  private readonly fsync: boolean;

  /** Appends `text` whole, or throws a FileWriteFault with the file as it was before. */
  append(text: string): void {
    if (this.fault) throw this.fault;
    if (this.fd === undefined) throw new FileWriteFault(this.path, new Error("written after close"));
    const bytes = encoder.encode(text);
    let done = 0;
    try {
      while (done < bytes.length) done += writeSync(this.fd, bytes, done, bytes.length - done);
      if (this.fsync) fsyncSync(this.fd);
      this.length += bytes.length;
    } catch (err) {
      this.fault = new FileWriteFault(this.path, err);
      try {
        if (done > 0) ftruncateSync(this.fd, this.length);
      } catch {
        // the cut-off line stays; recovery drops a last line without its newline
      }
      throw this.fault;
    }
  }

  close(): void {
    if (this.fd === undefined) return;
    closeSync(this.fd);
    this.fd = undefined;
  }
}
