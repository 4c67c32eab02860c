import { existsSync, readdirSync, readFileSync, renameSync, unlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { setImmediate } from "node:timers";
import { jsonCodec } from "../codec/index.ts";
import { PRIORITIES, type Priority, TOPICS, type Topic, type TopicMessages } from "../model/index.ts";
import type { QueueEntry, QueueJournal, RecoveredQueue } from "../queue/journal.ts";
import type { DeadLetter } from "../queue/queue.ts";
import { AppendFile } from "./append-file.ts";
import { type FileWriteFault, StateError, writeFault } from "./errors.ts";
import { readJsonLines } from "./line-file.ts";
import { SegmentLog, segmentName } from "./segment-log.ts";
import { SeenTable } from "./seen-table.ts";

const ENQUEUED = 1;
const SETTLED = 2;

/** files of the frontier inside a state folder */
export const FRONTIER_FILES = { segments: "segments.json", dead: "dead.log", poison: "poison.log" } as const;
/** the seen set of earlier versions (JSON lines; now seen-table.ts): removed with a frontier */
const OLD_SEEN_LOG = "seen.log";

export interface FrontierOptions {
  /** a segment is closed and a new one started past this size */
  segmentBytes: number;
  /** fsync every batch (survives power loss, not only a killed process) */
  fsync: boolean;
  /**
   * Called once when a frontier file cannot be written (a full disk): every commit after it
   * rejects with the same fault, and the files stay as they were after their last whole record.
   */
  onFault?: (fault: FileWriteFault) => void;
}

interface EnqueuedHeader {
  s: number;
  t: Topic;
  p: Priority;
  a: number;
  d?: number;
}

interface DeadLine {
  id: string;
  topic: Topic;
  priority: Priority;
  reason: string;
  originalId: string;
  /** the entry this dead letter settled */
  seq?: number;
  payload?: string;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * The standalone frontier on disk, as MemoryQueue's journal: entries in a segmented CRC-framed
 * log (an enqueue record with the message, a settle record per ack), the seen set in its table
 * (SeenTable, which the queue uses through `seen`), the dead letters in an append-only line file. Records buffered in one turn of the event loop go out in
 * one write, and `commit()` resolves after it, so what a caller was told is durable survives
 * `kill -9`. Segments are deleted from the oldest while nothing in them is live.
 */
export class FrontierJournal implements QueueJournal {
  private readonly log: SegmentLog;
  /** live entries per segment */
  private readonly live = new Map<number, number>();
  /** segments on disk, oldest first */
  private segments: number[] = [];
  private deadLines = "";
  private commitWaiters: Array<() => void> = [];
  private commitError: FileWriteFault | undefined;
  private scheduled = false;
  private closed = false;
  private deadFile: AppendFile | undefined;

  private constructor(
    private readonly dir: string,
    private readonly options: FrontierOptions,
    /** the queue's seen set (the dedup keys of the enqueued entries), on disk */
    readonly seen: SeenTable,
  ) {
    this.log = new SegmentLog(dir, options.segmentBytes, options.fsync);
  }

  /** Opens dead.log for appends (emptied for a new frontier). */
  private openLineFiles(truncate: boolean): void {
    this.deadFile = new AppendFile(join(this.dir, FRONTIER_FILES.dead), { truncate });
  }

  /** An empty frontier in `dir` (existing frontier files are removed). */
  static create(dir: string, options: FrontierOptions): FrontierJournal {
    removeFrontierFiles(dir);
    const j = new FrontierJournal(dir, options, SeenTable.create(dir, { fsync: options.fsync }));
    j.openLineFiles(true);
    j.rotate(1);
    return j;
  }

  /** The frontier found in `dir`, and the queue state it holds. */
  static recover(dir: string, options: FrontierOptions): { journal: FrontierJournal; recovered: RecoveredQueue; notes: string[] } {
    const range = readSegmentsFile(dir);
    const j = new FrontierJournal(dir, options, SeenTable.open(dir, { fsync: options.fsync }));
    const notes: string[] = [];
    const live = new Map<number, { entry: QueueEntry; due?: number }>();
    let lastSeq = 0;
    for (let seg = range.first; seg <= range.last; seg++) {
      const { truncatedBytes } = j.log.scan(seg, seg === range.last, (body, ref) => {
        const { type, header, payload } = parseRecord(body);
        if (type === ENQUEUED) {
          const h = header as EnqueuedHeader;
          if (!TOPICS.includes(h.t) || !PRIORITIES.includes(h.p) || typeof h.s !== "number") {
            throw new StateError(`state: ${join(dir, segmentName(seg))} byte ${ref.off}: not a frontier record`);
          }
          live.set(h.s, { entry: { topic: h.t, priority: h.p, message: undefined, attempts: h.a, seq: h.s, ref }, due: h.d });
          lastSeq = Math.max(lastSeq, h.s);
          if (payload.length === 0) throw new StateError(`state: ${join(dir, segmentName(seg))} byte ${ref.off}: an enqueue record without its message`);
        } else if (type === SETTLED) {
          live.delete((header as { s: number }).s);
        } else {
          throw new StateError(`state: ${join(dir, segmentName(seg))} byte ${ref.off}: unknown record type ${type}`);
        }
      });
      if (truncatedBytes > 0) notes.push(`dropped ${truncatedBytes} bytes of an interrupted write at the end of ${segmentName(seg)}`);
      j.segments.push(seg);
    }
    const dead = new Map<string, DeadLetter>();
    for (const d of readJsonLines<DeadLine | { removed: string[] }>(join(dir, FRONTIER_FILES.dead), notes)) {
      if ("removed" in d) {
        for (const id of d.removed) dead.delete(id);
        continue;
      }
      if (d.seq !== undefined) live.delete(d.seq);
      lastSeq = Math.max(lastSeq, Number(d.id.replace(/^dead-/, "")) || 0);
      const message = d.payload === undefined ? undefined : jsonCodec.decode(d.topic, encoder.encode(d.payload));
      dead.set(d.id, { topic: d.topic, priority: d.priority, id: d.id, reason: d.reason, originalId: d.originalId, message });
    }
    const poisoned = new Map<number, { count: number; reason: string }>();
    const poisonPath = join(dir, FRONTIER_FILES.poison);
    if (existsSync(poisonPath)) {
      for (const p of readJsonLines<{ key?: unknown; reason?: unknown }>(poisonPath, notes)) {
        const seq = Number(p.key);
        if (!Number.isInteger(seq) || !live.has(seq)) continue; // settled or dead-lettered since
        const was = poisoned.get(seq);
        poisoned.set(seq, { count: (was?.count ?? 0) + 1, reason: String(p.reason ?? "blocked the process") });
      }
    }
    const ready: QueueEntry[] = [];
    const delayed: { due: number; entry: QueueEntry }[] = [];
    for (const { entry, due } of live.values()) {
      j.live.set(entry.ref!.seg, (j.live.get(entry.ref!.seg) ?? 0) + 1);
      if (due === undefined) ready.push(entry);
      else delayed.push({ due, entry });
    }
    // the seen keys whose records were written after the table's last write
    j.seen.replayTail(lastSeq);
    j.openLineFiles(false);
    j.rotate(range.last + 1);
    return { journal: j, recovered: { ready, delayed, dead: [...dead.values()], lastSeq, poisoned }, notes };
  }

  enqueued(entry: QueueEntry, dedupKey?: string, due?: number): void {
    if (this.closed) return;
    const header: EnqueuedHeader = { s: entry.seq, t: entry.topic, p: entry.priority, a: entry.attempts };
    if (dedupKey !== undefined) this.seen.journaled(entry.seq, dedupKey);
    if (due !== undefined) header.d = due;
    entry.ref = this.append(record(ENQUEUED, header, jsonCodec.encode(entry.topic, entry.message!)));
    this.live.set(entry.ref.seg, (this.live.get(entry.ref.seg) ?? 0) + 1);
  }

  settled(entry: QueueEntry): void {
    if (this.closed) return;
    this.append(record(SETTLED, { s: entry.seq }));
    this.release(entry);
  }

  deadLettered(entry: QueueEntry | undefined, letter: DeadLetter): void {
    if (this.closed) return;
    const line: DeadLine = { id: letter.id, topic: letter.topic, priority: letter.priority, reason: letter.reason, originalId: letter.originalId };
    if (entry) line.seq = entry.seq;
    const message = letter.message ?? (entry?.ref ? this.load(entry) : undefined);
    if (message !== undefined) line.payload = decoder.decode(jsonCodec.encode(letter.topic, message));
    this.deadLines += JSON.stringify(line) + "\n";
    if (entry) this.release(entry);
  }

  deadLettersRemoved(_topic: Topic, ids: readonly string[]): void {
    if (ids.length > 0) this.deadLines += JSON.stringify({ removed: ids }) + "\n";
  }

  load(entry: QueueEntry): TopicMessages[Topic] {
    const { payload } = parseRecord(this.log.read(entry.ref!));
    return jsonCodec.decode(entry.topic, payload);
  }

  /** Resolves once all recorded so far is written. After close() it never settles: work still running then was abandoned. */
  commit(): Promise<void> {
    return new Promise((resolve, reject) => {
      if (this.closed) return;
      this.commitWaiters.push(() => (this.commitError === undefined ? resolve() : reject(this.commitError)));
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  /** Writes everything buffered now (also called by close). */
  flush(): void {
    this.scheduled = false;
    const waiters = this.commitWaiters;
    this.commitWaiters = [];
    // after a fault nothing more is written: the files end at their last whole record
    if (this.commitError === undefined) {
      try {
        // seen table: its tail (the batch's keys) before the log, its slots after it, so the
        // table never holds a key whose record was lost and a crash between loses no key
        this.seen.writeTail();
        this.log.flush();
        this.seen.writeSlots();
        if (this.deadLines) this.deadFile!.append(this.deadLines);
        this.deadLines = "";
        this.dropSettledSegments();
        if (this.log.bytesInCurrent >= this.options.segmentBytes) this.rotate(this.log.currentSegment + 1);
      } catch (err) {
        this.commitError = writeFault(this.dir, err);
        this.options.onFault?.(this.commitError);
      }
    }
    for (const w of waiters) w();
  }

  /** The fault that stopped the frontier's writes, if one did. */
  get fault(): FileWriteFault | undefined {
    return this.commitError;
  }

  close(): void {
    this.flush();
    try {
      // the whole seen table written: the next --resume has no tail to re-add
      if (this.commitError === undefined) this.seen.writeSlots(true);
    } catch (err) {
      this.commitError = writeFault(this.dir, err);
      this.options.onFault?.(this.commitError);
    }
    this.log.close(this.commitError === undefined);
    this.seen.close();
    this.deadFile?.close();
    this.closed = true;
  }

  /**
   * Appends to the current segment, starting the next one first when it is full: a batch that
   * outgrows segment_mb (a page with thousands of follow-ups) spreads over segments of that size.
   */
  private append(body: Uint8Array) {
    if (this.log.bytesInCurrent >= this.options.segmentBytes) this.rotate(this.log.currentSegment + 1);
    return this.log.append(body);
  }

  private release(entry: QueueEntry): void {
    const seg = entry.ref?.seg;
    if (seg !== undefined) this.live.set(seg, (this.live.get(seg) ?? 1) - 1);
  }

  /**
   * Deletes the oldest segments with nothing live. Only from the front: a settle record in a
   * later segment may be what marks an entry of an earlier one as done.
   */
  private dropSettledSegments(): void {
    while (this.segments.length > 1 && (this.live.get(this.segments[0]) ?? 0) === 0) {
      const seg = this.segments.shift()!;
      this.live.delete(seg);
      this.writeSegmentsFile();
      this.log.remove(seg);
    }
  }

  private rotate(seg: number): void {
    this.seen.writeTail(); // starting a segment writes the batch so far to the log
    this.log.startSegment(seg);
    this.segments.push(seg);
    this.writeSegmentsFile();
  }

  private writeSegmentsFile(): void {
    const path = join(this.dir, FRONTIER_FILES.segments);
    try {
      writeFileSync(`${path}.tmp`, JSON.stringify({ format: 1, first: this.segments[0], last: this.segments[this.segments.length - 1] }) + "\n");
      renameSync(`${path}.tmp`, path);
    } catch (err) {
      throw writeFault(path, err);
    }
  }
}

function record(type: number, header: object, payload?: Uint8Array): Uint8Array {
  const h = encoder.encode(JSON.stringify(header));
  const out = new Uint8Array(3 + h.length + (payload?.length ?? 0));
  out[0] = type;
  out[1] = h.length >> 8;
  out[2] = h.length & 0xff;
  out.set(h, 3);
  if (payload) out.set(payload, 3 + h.length);
  return out;
}

function parseRecord(body: Uint8Array): { type: number; header: unknown; payload: Uint8Array } {
  const hlen = (body[1] << 8) | body[2];
  return { type: body[0], header: JSON.parse(decoder.decode(body.subarray(3, 3 + hlen))), payload: body.subarray(3 + hlen) };
}

function readSegmentsFile(dir: string): { first: number; last: number } {
  const path = join(dir, FRONTIER_FILES.segments);
  if (!existsSync(path)) throw new StateError(`state: ${path} is missing: the state folder is incomplete; delete it to start over`);
  let v: { first?: unknown; last?: unknown };
  try {
    v = JSON.parse(readFileSync(path, "utf8"));
  } catch {
    throw new StateError(`state: ${path} is not valid JSON (corrupted); delete the state folder to start over`);
  }
  if (!Number.isInteger(v.first) || !Number.isInteger(v.last) || (v.first as number) > (v.last as number)) {
    throw new StateError(`state: ${path} does not name a segment range (corrupted)`);
  }
  return { first: v.first as number, last: v.last as number };
}

function removeFrontierFiles(dir: string): void {
  for (const name of readdirSync(dir)) {
    if (/^frontier-\d+\.log$/.test(name) || name === OLD_SEEN_LOG || Object.values(FRONTIER_FILES).includes(name as never)) unlinkSync(join(dir, name));
  }
}
