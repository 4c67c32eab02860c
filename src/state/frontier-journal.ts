import { existsSync, readdirSync, readFileSync, renameSync, unlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { setImmediate } from "node:timers";
import { jsonCodec } from "../codec/index.ts";
import type { Priority, Topic, TopicMessages } from "../model/index.ts";
import type { QueueEntry, QueueJournal, RecoveredQueue } from "../queue/journal.ts";
import type { DeadLetter } from "../queue/queue.ts";
import { AppendFile } from "./append-file.ts";
import { Batch, type BatchHeader, decodeSettled, ENQUEUED, encodeBatch, encodeSettled, readBatchHeader, Reader, SETTLED } from "./compact-record.ts";
import { type FileWriteFault, StateError, writeFault } from "./errors.ts";
import { readJsonLines } from "./line-file.ts";
import { type RecordRef, SegmentLog, segmentName } from "./segment-log.ts";
import { SeenTable } from "./seen-table.ts";

/** the frontier's on-disk format (segments.json; segment files say it in their magic too) */
export const FRONTIER_FORMAT = 2;
/**
 * entries one enqueue record holds at most (a larger publish is split): 4096, fewer with small
 * segments (a record stays well inside one segment: ~30-60 B an entry plus its template)
 */
/** enqueue records kept decoded for the next reads */
const RECENT_BATCHES = 8;
const batchEntries = (segmentBytes: number) => Math.max(1, Math.min(4096, Math.floor(segmentBytes / 512)));

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
 * log (compact binary records, compact-record.ts: an enqueue record per publish, holding its
 * entries' messages as one template plus what differs; a settle record per flush with the entries
 * acked in it), the seen set in its table (SeenTable, which the queue uses through `seen`), the
 * dead letters in an append-only line file. Records buffered in one turn of the event loop go out in
 * one write, and `commit()` resolves after it, so what a caller was told is durable survives
 * `kill -9`. Segments are deleted from the oldest while nothing in them is live.
 */
export class FrontierJournal implements QueueJournal {
  private readonly log: SegmentLog;
  private readonly maxBatch: number;
  /** live entries per segment */
  private readonly live = new Map<number, number>();
  /** segments on disk, oldest first */
  private segments: number[] = [];
  /** entries settled since the last flush */
  private settledSeqs: number[] = [];
  /** enqueue records read last, by segment·2^32 + offset (see load) */
  private readonly recentBatches = new Map<number, Batch>();
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
    this.maxBatch = batchEntries(options.segmentBytes);
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

  /**
   * The frontier found in `dir`, and the queue state it holds. Reads only the records' headers (a
   * batch's entries are not decoded): no object per waiting entry until the queue asks for one.
   */
  static recover(dir: string, options: FrontierOptions): { journal: FrontierJournal; recovered: RecoveredQueue; notes: string[] } {
    const range = readSegmentsFile(dir);
    const j = new FrontierJournal(dir, options, SeenTable.open(dir, { fsync: options.fsync }));
    const notes: string[] = [];
    /** enqueue records in log order, which is seq order */
    const batches: RecoveredBatch[] = [];
    let lastSeq = 0;
    /** the batch holding `seq`, or undefined (settled long ago: its segment is gone) */
    const batchOf = (seq: number): RecoveredBatch | undefined => {
      let lo = 0;
      let hi = batches.length - 1;
      while (lo <= hi) {
        const mid = (lo + hi) >> 1;
        const h = batches[mid].header;
        if (seq < h.seq) hi = mid - 1;
        else if (seq >= h.seq + h.count) lo = mid + 1;
        else return batches[mid];
      }
      return undefined;
    };
    const settle = (seq: number): void => {
      const b = batchOf(seq);
      if (b === undefined) return;
      b.settled ??= new Set();
      const i = seq - b.header.seq;
      if (!b.settled.has(i)) {
        b.settled.add(i);
        b.left--;
      }
    };
    for (let seg = range.first; seg <= range.last; seg++) {
      const { truncatedBytes } = j.log.scan(seg, seg === range.last, (body, ref) => {
        const where = () => `${join(dir, segmentName(seg))} byte ${ref.off}`;
        try {
          if (body[0] === ENQUEUED) {
            const header = readBatchHeader(new Reader(body));
            batches.push({ ref, header, settled: undefined, left: header.count });
            lastSeq = Math.max(lastSeq, header.seq + header.count - 1);
          } else if (body[0] === SETTLED) decodeSettled(body, settle);
          else throw new StateError(`state: ${where()}: unknown record type ${body[0]}`);
        } catch (err) {
          if (err instanceof StateError) throw err;
          throw new StateError(`state: ${where()}: not a frontier record (${(err as Error).message})`);
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
      if (d.seq !== undefined) settle(d.seq);
      lastSeq = Math.max(lastSeq, Number(d.id.replace(/^dead-/, "")) || 0);
      const message = d.payload === undefined ? undefined : jsonCodec.decode(d.topic, encoder.encode(d.payload));
      dead.set(d.id, { topic: d.topic, priority: d.priority, id: d.id, reason: d.reason, originalId: d.originalId, message });
    }
    const isLive = (seq: number): boolean => {
      const b = batchOf(seq);
      return b !== undefined && !b.settled?.has(seq - b.header.seq);
    };
    const poisoned = new Map<number, { count: number; reason: string }>();
    const poisonPath = join(dir, FRONTIER_FILES.poison);
    if (existsSync(poisonPath)) {
      for (const p of readJsonLines<{ key?: unknown; reason?: unknown }>(poisonPath, notes)) {
        const seq = Number(p.key);
        if (!Number.isInteger(seq) || !isLive(seq)) continue; // settled or dead-lettered since
        const was = poisoned.get(seq);
        poisoned.set(seq, { count: (was?.count ?? 0) + 1, reason: String(p.reason ?? "blocked the process") });
      }
    }
    const live = batches.filter((b) => b.left > 0);
    const delayed: { due: number; entry: QueueEntry }[] = [];
    for (const b of live) {
      j.live.set(b.ref.seg, (j.live.get(b.ref.seg) ?? 0) + b.left);
      if (b.header.due !== undefined) for (const entry of liveEntries(b)) delayed.push({ due: b.header.due, entry });
    }
    // the seen keys whose records were written after the table's last write
    j.seen.replayTail(lastSeq);
    j.openLineFiles(false);
    j.rotate(range.last + 1);
    const ready = (function* () {
      for (const b of live) if (b.header.due === undefined) yield* liveEntries(b);
    })();
    return { journal: j, recovered: { ready, delayed, dead: [...dead.values()], lastSeq, poisoned }, notes };
  }

  enqueued(entries: readonly QueueEntry[], dedupKeys: readonly (string | undefined)[], due?: number): void {
    if (this.closed) return;
    // one record per run of entries that share priority and attempts (one publish: one or a few)
    let start = 0;
    for (let i = 1; i <= entries.length; i++) {
      const split =
        i === entries.length ||
        i - start >= this.maxBatch ||
        entries[i].priority !== entries[start].priority ||
        entries[i].attempts !== entries[start].attempts ||
        entries[i].seq !== entries[i - 1].seq + 1;
      if (split) {
        this.appendBatch(entries.slice(start, i), dedupKeys.slice(start, i), due);
        start = i;
      }
    }
  }

  private appendBatch(entries: readonly QueueEntry[], dedupKeys: readonly (string | undefined)[], due: number | undefined): void {
    for (let i = 0; i < entries.length; i++) {
      const key = dedupKeys[i];
      if (key !== undefined) this.seen.journaled(entries[i].seq, key);
    }
    const first = entries[0];
    const header: BatchHeader = { topic: first.topic, priority: first.priority, attempts: first.attempts, seq: first.seq, count: entries.length, due, seenEnd: 0 };
    const ref = this.append(encodeBatch(header, entries.map((e) => e.message!), dedupKeys));
    for (let i = 0; i < entries.length; i++) entries[i].ref = { seg: ref.seg, off: ref.off, len: ref.len, index: i };
    this.live.set(ref.seg, (this.live.get(ref.seg) ?? 0) + entries.length);
  }

  settled(entry: QueueEntry): void {
    if (this.closed) return;
    // one settle record per flush, after the enqueue records of that flush (a retry's new entry
    // is recorded before its old one is settled: a cut write duplicates, never loses)
    this.settledSeqs.push(entry.seq);
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
    const ref = entry.ref!;
    // a page's follow-ups are read one after another: one record decoded for all of them (a few
    // kept, as reads of several priorities or topics interleave)
    const at = ref.seg * 2 ** 32 + ref.off;
    let batch = this.recentBatches.get(at);
    if (batch === undefined) {
      const body = this.log.read(ref);
      try {
        batch = new Batch(body);
      } catch (err) {
        throw new StateError(`state: ${join(this.dir, segmentName(ref.seg))} byte ${ref.off}: not a frontier record (${(err as Error).message})`);
      }
      if (this.recentBatches.size >= RECENT_BATCHES) this.recentBatches.delete(this.recentBatches.keys().next().value!);
      this.recentBatches.set(at, batch);
    }
    return batch.message(ref.index);
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
        if (this.settledSeqs.length > 0) {
          const seqs = this.settledSeqs;
          this.settledSeqs = [];
          this.append(encodeSettled(seqs));
        }
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
   * Appends to the current segment, starting the next one first when the record would not fit: a
   * publish that outgrows segment_mb (a page with thousands of follow-ups, several records)
   * spreads over segments of that size.
   */
  private append(body: Uint8Array) {
    if (this.log.bytesInCurrent > this.log.emptyBytes && this.log.bytesInCurrent + body.length > this.options.segmentBytes) this.rotate(this.log.currentSegment + 1);
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
      writeFileSync(`${path}.tmp`, JSON.stringify({ format: FRONTIER_FORMAT, first: this.segments[0], last: this.segments[this.segments.length - 1] }) + "\n");
      renameSync(`${path}.tmp`, path);
    } catch (err) {
      throw writeFault(path, err);
    }
  }
}

/** An enqueue record found by recovery, and which of its entries are settled. */
interface RecoveredBatch {
  ref: RecordRef;
  header: BatchHeader;
  /** indexes of settled entries */
  settled: Set<number> | undefined;
  /** entries not settled */
  left: number;
}

function* liveEntries(b: RecoveredBatch): Generator<QueueEntry> {
  const { header, ref } = b;
  for (let i = 0; i < header.count; i++) {
    if (b.settled?.has(i)) continue;
    yield { topic: header.topic, priority: header.priority, message: undefined, attempts: header.attempts, seq: header.seq + i, ref: { seg: ref.seg, off: ref.off, len: ref.len, index: i } };
  }
}

function readSegmentsFile(dir: string): { first: number; last: number } {
  const path = join(dir, FRONTIER_FILES.segments);
  if (!existsSync(path)) throw new StateError(`state: ${path} is missing: the state folder is incomplete; delete it to start over`);
  let v: { format?: unknown; first?: unknown; last?: unknown };
  try {
    v = JSON.parse(readFileSync(path, "utf8"));
  } catch {
    throw new StateError(`state: ${path} is not valid JSON (corrupted); delete the state folder to start over`);
  }
  if (v.format !== FRONTIER_FORMAT) {
    throw new StateError(`state: ${path} is a frontier of format ${String(v.format)}, this mocra-ts reads format ${FRONTIER_FORMAT}; finish that crawl with the version that wrote it, or delete ${dir} to start over`);
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
