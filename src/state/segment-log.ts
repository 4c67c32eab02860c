import { closeSync, existsSync, fsyncSync, ftruncateSync, openSync, readFileSync, readSync, unlinkSync, writeSync } from "node:fs";
import { join } from "node:path";
import { crc32 } from "../codec/crc32.ts";
import { StateError, writeFault } from "./errors.ts";

/** Where a record sits: segment number, byte offset of its frame, frame length. */
export interface RecordRef {
  seg: number;
  off: number;
  len: number;
}

// the last digit is the frontier format (frontier-journal.ts FRONTIER_FORMAT)
const MAGIC = new TextEncoder().encode("MOCRAFQ2");
// u32 body length, u32 its complement (a damaged length is not mistaken for a cut-off write), u32 crc32 of the body
const FRAME_HEADER = 12;

export function segmentName(seg: number): string {
  return `frontier-${String(seg).padStart(6, "0")}.log`;
}

/**
 * A segmented append-only log of CRC-framed records (as Scrapy's disk queues and most WALs are).
 * Appends are buffered and written by `flush()` in one write per batch; a segment is deleted
 * whole once nothing in it is needed. Synchronous file calls: a batch is a few hundred KB at
 * most, and a crash can then only cut the last frame of the last segment, which recovery drops.
 */
export class SegmentLog {
  private readonly fds = new Map<number, number>();
  private current = 0;
  /** bytes of the current segment already written */
  private written = 0;
  private pending: Uint8Array[] = [];
  private pendingBytes = 0;

  constructor(
    private readonly dir: string,
    private readonly segmentBytes: number,
    private readonly fsync: boolean,
  ) {}

  get currentSegment(): number {
    return this.current;
  }

  /** Opens segment `seg` (new, empty) for appends. */
  startSegment(seg: number): void {
    this.flush();
    const path = join(this.dir, segmentName(seg));
    let fd: number;
    try {
      fd = openSync(path, "w+");
      if (writeSync(fd, MAGIC) !== MAGIC.length) throw new Error("short write of the segment header");
    } catch (err) {
      throw writeFault(path, err);
    }
    this.fds.set(seg, fd);
    this.current = seg;
    this.written = MAGIC.length;
  }

  /** Buffers one record; returns where it will be. */
  append(body: Uint8Array): RecordRef {
    const frame = new Uint8Array(FRAME_HEADER + body.length);
    const view = new DataView(frame.buffer);
    view.setUint32(0, body.length);
    view.setUint32(4, ~body.length >>> 0);
    view.setUint32(8, crc32(body));
    frame.set(body, FRAME_HEADER);
    const ref = { seg: this.current, off: this.written + this.pendingBytes, len: frame.length };
    this.pending.push(frame);
    this.pendingBytes += frame.length;
    return ref;
  }

  /** bytes of a segment without records */
  get emptyBytes(): number {
    return MAGIC.length;
  }

  get bytesInCurrent(): number {
    return this.written + this.pendingBytes;
  }

  /**
   * Writes the buffered records (one write call). A write cut short (a full disk) is rolled back
   * to the last whole record and thrown as a FileWriteFault naming the segment.
   */
  flush(): void {
    if (this.pendingBytes === 0) return;
    const fd = this.fds.get(this.current)!;
    const chunk = concat(this.pending, this.pendingBytes);
    let done = 0;
    try {
      while (done < chunk.length) done += writeSync(fd, chunk, done, chunk.length - done, this.written + done);
      if (this.fsync) fsyncSync(fd);
    } catch (err) {
      try {
        ftruncateSync(fd, this.written);
      } catch {
        // recovery drops a frame cut off at the end of the newest segment anyway
      }
      throw writeFault(join(this.dir, segmentName(this.current)), err);
    }
    this.written += chunk.length;
    this.pending = [];
    this.pendingBytes = 0;
  }

  /** The body of the record at `ref` (from the write buffer if not written yet). */
  read(ref: RecordRef): Uint8Array {
    let frame: Uint8Array;
    if (ref.seg === this.current && ref.off >= this.written) {
      frame = concat(this.pending, this.pendingBytes).subarray(ref.off - this.written, ref.off - this.written + ref.len);
    } else {
      const fd = this.fds.get(ref.seg);
      if (fd === undefined) throw new StateError(`state: ${segmentName(ref.seg)} is needed but was removed`);
      frame = new Uint8Array(ref.len);
      readSync(fd, frame, 0, ref.len, ref.off);
    }
    const view = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
    const body = frame.subarray(FRAME_HEADER);
    if (view.getUint32(0) !== body.length || view.getUint32(8) !== crc32(body)) {
      throw new StateError(`state: ${join(this.dir, segmentName(ref.seg))} is corrupted at byte ${ref.off} (checksum mismatch)`);
    }
    return body;
  }

  /** Deletes a whole segment (never the current one). */
  remove(seg: number): void {
    if (seg === this.current) return;
    const fd = this.fds.get(seg);
    if (fd !== undefined) closeSync(fd);
    this.fds.delete(seg);
    const path = join(this.dir, segmentName(seg));
    if (existsSync(path)) unlinkSync(path);
  }

  /**
   * Reads an existing segment record by record, keeping it open for reads. A frame cut off at the
   * end of the newest segment (a write the crash interrupted) is dropped and the file truncated
   * there; any other damage is a StateError naming the file and offset.
   */
  scan(seg: number, isNewest: boolean, visit: (body: Uint8Array, ref: RecordRef) => void): { truncatedBytes: number } {
    const path = join(this.dir, segmentName(seg));
    if (!existsSync(path)) throw new StateError(`state: ${path} is missing (the state folder lists it): the state is incomplete`);
    const data = readFileSync(path);
    if (data.length < MAGIC.length || !MAGIC.every((b, i) => data[i] === b)) {
      throw new StateError(`state: ${path} is not a mocra-ts frontier segment (bad header)`);
    }
    const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
    let off = MAGIC.length;
    let truncatedBytes = 0;
    while (off < data.length) {
      const headerCut = off + FRAME_HEADER > data.length;
      const len = headerCut ? 0 : view.getUint32(off);
      const lengthOk = !headerCut && view.getUint32(off + 4) === ~len >>> 0;
      const bodyCut = lengthOk && off + FRAME_HEADER + len > data.length;
      if (headerCut || bodyCut) {
        // a crash can only cut the end of the newest segment
        if (isNewest) {
          truncatedBytes = data.length - off;
          break;
        }
        throw new StateError(`state: ${path} is cut short at byte ${off} (truncated); delete the state folder to start over`);
      }
      const body = data.subarray(off + FRAME_HEADER, off + FRAME_HEADER + len);
      if (!lengthOk || view.getUint32(off + 8) !== crc32(body)) {
        throw new StateError(`state: ${path} is corrupted at byte ${off} (checksum mismatch); delete the state folder to start over`);
      }
      visit(body, { seg, off, len: FRAME_HEADER + len });
      off += FRAME_HEADER + len;
    }
    const fd = openSync(path, "r+");
    if (truncatedBytes > 0) ftruncateSync(fd, off);
    this.fds.set(seg, fd);
    return { truncatedBytes };
  }

  /** Closes every segment, first writing what is buffered unless `flush` is false (after a fault). */
  close(flush = true): void {
    if (flush) this.flush();
    for (const fd of this.fds.values()) closeSync(fd);
    this.fds.clear();
  }
}

function concat(chunks: readonly Uint8Array[], total: number): Uint8Array {
  if (chunks.length === 1) return chunks[0];
  const out = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}
