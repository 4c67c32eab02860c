import { closeSync, existsSync, fstatSync, fsyncSync, ftruncateSync, openSync, readSync, renameSync, unlinkSync, writeSync } from "node:fs";
import { join } from "node:path";
import { crc32 } from "../codec/crc32.ts";
import { keyFingerprint, type SeenKeys } from "../queue/seen-set.ts";
import { type FileWriteFault, StateError, writeFault } from "./errors.ts";

/** files of the seen set inside a state folder */
export const SEEN_FILES = {
  table: "seen.table",
  /** the (entry number, key) pairs recorded since the table was last written */
  tail: "seen.tail",
  /** a grown table, the durable one from the next write on (renamed over `table`) */
  next: "seen.table.new",
  /** a grown table being written */
  building: "seen.table.grow",
} as const;

const MAGIC = new TextEncoder().encode("MOCRAST1");
/** magic, u32 slots, u8 "the all-zero fingerprint is in the set", 3 spare bytes */
const HEADER = 16;
const SLOT = 16;
/** small: a new state folder starts with a 1 KB table (a tiny disk fills with the crawl, not at its start) */
const INITIAL_SLOTS = 64;
/** grow (× GROWTH) past this share of slots in use: 16 B / load = 20-30 B per key on disk */
const MAX_LOAD = 0.8;
const GROWTH = 1.5;
/** slots read or written at a time when the whole table is read (open, growth, a write pass) */
const CHUNK_SLOTS = 1 << 16;
/**
 * Changed slots are kept in memory (their keys in seen.tail) until they are this share of the
 * table, then written in one sequential pass: a 16-byte pwrite costs ~4 µs at 10^7 keys (60 % of
 * the time per link when each page's keys were written at once), a pass ~1 ns per byte of table.
 */
const PASS_SHARE = 1 / 32;
/** ... or this many (their memory: ~50 B each) */
const MAX_DIRTY = 1 << 19;
/** a block of seen.tail: u32 entries, u32 crc32 of the entries */
const TAIL_HEADER = 8;
/** f64 entry number, the 16-byte fingerprint */
const TAIL_ENTRY = 24;
const ZERO_WORDS = new Uint32Array(4);

export interface SeenTableOptions {
  /** fsync the table (and the tail) at each write: survives power loss, not only a killed process */
  fsync: boolean;
}

/**
 * The standalone crawl's seen set, exact and on disk (issue 27): an open-addressing hash table
 * file of whole 128-bit fingerprints (16-byte slots, linear probing from the slot the first 32
 * bits scale to, backward-shift deletion, the all-zero slot = empty and the all-zero fingerprint
 * a flag in the header). In memory only one tag byte per slot (0 = empty, else 1 + the second
 * word mod 255): a lookup walks the tags and reads a slot from disk only where the tag matches,
 * so a new key almost never touches the disk and a known one costs one 16-byte read; ~1.25-1.9 B
 * of memory and 20-30 B of disk per key. Non-md5 keys are kept by their md5.
 *
 * Durability follows the frontier log, never leads it: a key in the table whose enqueue record
 * was lost would lose that URL. New keys change slots in memory (`dirty`); `writeTail()`, which
 * the journal calls before its log write, appends the batch's (entry number, key) pairs to
 * seen.tail, and `writeSlots()`, called after it, writes the changed slots once they are many
 * (PASS_SHARE: one sequential pass over the table instead of a write per key) and then empties
 * the tail. Recovery re-adds the tail's keys whose entry number the log reached (`replayTail`):
 * a crash anywhere loses no key and adds none without its record. Growth writes a new file
 * sequentially that replaces the old one at the next `writeSlots()`: until then the old table
 * and the tail stay the valid pair.
 */
export class SeenTable implements SeenKeys {
  private fd: number;
  private readonly tailFd: number;
  private slots: number;
  private tags: Uint8Array;
  private fingerprints = 0;
  private zero = false;
  private headerDirty = false;
  /** slots changed since the last write: slot -> row of `dirtyWords` (its new 4 words, maybe all zero) */
  private dirty = new Map<number, number>();
  private dirtyWords = new Uint32Array(4 * 1024);
  private dirtyRows = 0;
  /** the next block of seen.tail: pairs journaled since the last writeTail() */
  private tail = new Uint8Array(TAIL_HEADER + TAIL_ENTRY * 1024);
  private tailView = new DataView(this.tail.buffer);
  private tailEntries = 0;
  /** bytes in seen.tail: blocks whose keys the table on disk may not hold yet */
  private tailBytes = 0;
  /** a grown table (SEEN_FILES.next) is open and becomes the durable one at the next writeSlots() */
  private renamePending = false;
  /**
   * a growth that could not be written (a full disk): the table fills up in memory past its
   * load, and the next writeTail()/writeSlots() throws this, which stops the journal's commits
   */
  private growFault: FileWriteFault | undefined;
  /** the key being looked up */
  private readonly words = new Uint32Array(4);
  /** a slot read for comparison */
  private readonly probe = new Uint32Array(4);
  private readonly slotBytes = new Uint8Array(SLOT);
  private readonly slotView = new DataView(this.slotBytes.buffer);
  /** the last key parsed, and its fingerprint: journaled() follows add() of the same key */
  private lastKey: string | undefined;
  private readonly lastWords = new Uint32Array(4);

  private constructor(
    private readonly dir: string,
    private readonly options: SeenTableOptions,
    fd: number,
    slots: number,
  ) {
    this.fd = fd;
    this.slots = slots;
    this.tags = new Uint8Array(slots);
    const tailPath = join(dir, SEEN_FILES.tail);
    try {
      this.tailFd = openSync(tailPath, existsSync(tailPath) ? "r+" : "w+");
      this.tailBytes = fstatSync(this.tailFd).size;
    } catch (err) {
      throw writeFault(tailPath, err);
    }
  }

  /** An empty seen set in `dir` (replacing one there). */
  static create(dir: string, options: SeenTableOptions): SeenTable {
    removeSeenFiles(dir);
    const path = join(dir, SEEN_FILES.table);
    let fd: number;
    try {
      fd = openSync(path, "w+");
      writeAll(fd, header(INITIAL_SLOTS, false), 0);
      writeAll(fd, new Uint8Array(INITIAL_SLOTS * SLOT), HEADER);
      if (options.fsync) fsyncSync(fd);
    } catch (err) {
      throw writeFault(path, err);
    }
    return new SeenTable(dir, options, fd, INITIAL_SLOTS);
  }

  /**
   * The seen set in `dir` as its last table write left it (a grown table not yet made durable is
   * dropped); the tags are rebuilt by one sequential read. Call `replayTail` next.
   */
  static open(dir: string, options: SeenTableOptions): SeenTable {
    const path = join(dir, SEEN_FILES.table);
    for (const stale of [SEEN_FILES.next, SEEN_FILES.building]) if (existsSync(join(dir, stale))) unlinkSync(join(dir, stale));
    if (!existsSync(path)) throw new StateError(`state: ${path} is missing: the state folder is incomplete or of an older version; delete it to start over`);
    const fd = openSync(path, "r+");
    const head = new Uint8Array(HEADER);
    const view = new DataView(head.buffer);
    const size = fstatSync(fd).size;
    const got = size >= HEADER ? readSync(fd, head, 0, HEADER, 0) : 0;
    const slots = view.getUint32(8);
    if (got !== HEADER || !MAGIC.every((b, i) => head[i] === b) || slots === 0 || size !== HEADER + slots * SLOT) {
      closeSync(fd);
      throw new StateError(`state: ${path} is not a seen table (corrupted or truncated); delete the state folder to start over`);
    }
    const table = new SeenTable(dir, options, fd, slots);
    table.zero = head[12] === 1;
    table.rebuildTags();
    return table;
  }

  get size(): number {
    return this.fingerprints + (this.zero ? 1 : 0);
  }

  /** bytes of memory the table keeps (tags and buffered changes), for benchmarks */
  get memoryBytes(): number {
    return this.tags.byteLength + this.dirtyWords.byteLength + this.tail.byteLength + this.dirty.size * 32;
  }

  /** Adds the key; returns false if it was already there. */
  add(key: string): boolean {
    this.parse(key);
    return this.addWords();
  }

  has(key: string): boolean {
    this.parse(key);
    if (isZero(this.words)) return this.zero;
    return this.find() >= 0;
  }

  /** Forgets the key (e.g. when storing what it stands for failed). */
  delete(key: string): void {
    this.parse(key);
    if (isZero(this.words)) {
      if (this.zero) this.headerDirty = true;
      this.zero = false;
      return;
    }
    const at = this.find();
    if (at < 0) return;
    this.fingerprints--;
    // backward shift: pull later entries of the probe run into the gap so that every entry stays
    // reachable from its home slot without passing an empty one
    const tags = this.tags;
    const e = this.probe;
    let gap = at;
    let j = at;
    for (;;) {
      j = j + 1 === this.slots ? 0 : j + 1;
      if (tags[j] === 0) break;
      this.readSlot(j, e);
      const home = this.home(e[0]);
      // the entry at j may move to the gap unless its home lies cyclically in (gap, j]
      const stays = gap <= j ? gap < home && home <= j : gap < home || home <= j;
      if (stays) continue;
      this.setDirty(gap, e);
      tags[gap] = tags[j];
      gap = j;
    }
    this.setDirty(gap, ZERO_WORDS);
    tags[gap] = 0;
  }

  /**
   * `key` was added for the log record of entry `seq`: kept for seen.tail until the table holds
   * it, so recovery can re-add it if its record reached the log and the table write did not.
   */
  journaled(seq: number, key: string): void {
    if (key !== this.lastKey) {
      keyFingerprint(key, this.lastWords);
      this.lastKey = key;
    }
    const at = TAIL_HEADER + this.tailEntries * TAIL_ENTRY;
    if (at + TAIL_ENTRY > this.tail.length) {
      const bigger = new Uint8Array(this.tail.length * 2);
      bigger.set(this.tail);
      this.tail = bigger;
      this.tailView = new DataView(bigger.buffer);
    }
    const v = this.tailView;
    v.setFloat64(at, seq);
    for (let w = 0; w < 4; w++) v.setUint32(at + 8 + w * 4, this.lastWords[w]);
    this.tailEntries++;
  }

  /**
   * Appends the pairs journaled since the last call to seen.tail, as one CRC-checked block: call
   * before the log write that makes their records durable. A no-op when there are none.
   */
  writeTail(): void {
    if (this.growFault) throw this.growFault;
    if (this.tailEntries === 0) return;
    const end = TAIL_HEADER + this.tailEntries * TAIL_ENTRY;
    this.tailView.setUint32(0, this.tailEntries);
    this.tailView.setUint32(4, crc32(this.tail.subarray(TAIL_HEADER, end)));
    try {
      writeAll(this.tailFd, this.tail.subarray(0, end), this.tailBytes);
      if (this.options.fsync) fsyncSync(this.tailFd);
    } catch (err) {
      throw writeFault(join(this.dir, SEEN_FILES.tail), err);
    }
    this.tailBytes += end;
    this.tailEntries = 0;
  }

  /**
   * Call after the log write that made the journaled keys' records durable: a grown table
   * replaces the old one, and the changed slots are written once they are many (`all`: now),
   * after which seen.tail is emptied.
   */
  writeSlots(all = false): void {
    if (this.growFault) throw this.growFault;
    const path = join(this.dir, SEEN_FILES.table);
    try {
      if (this.renamePending) {
        if (this.options.fsync) fsyncSync(this.fd);
        renameSync(join(this.dir, SEEN_FILES.next), path);
        this.renamePending = false;
        all = true; // few changes since the growth: write them and empty the tail
      }
      if (this.dirtyRows === 0 && !this.headerDirty && this.tailBytes === 0) return;
      if (!all && this.dirtyRows < Math.min(MAX_DIRTY, Math.ceil(this.slots * PASS_SHARE))) return;
      if (this.dirtyRows > 0) this.writeDirty();
      if (this.headerDirty) {
        writeAll(this.fd, Uint8Array.of(this.zero ? 1 : 0), 12);
        this.headerDirty = false;
      }
      if (this.options.fsync) fsyncSync(this.fd);
    } catch (err) {
      throw writeFault(path, err);
    }
    if (this.tailBytes > 0) {
      try {
        // the table holds the tail's keys now
        ftruncateSync(this.tailFd, 0);
      } catch (err) {
        throw writeFault(join(this.dir, SEEN_FILES.tail), err);
      }
      this.tailBytes = 0;
    }
  }

  /**
   * Re-adds the keys of seen.tail whose log records were written (entry number <= `lastSeq`, the
   * highest the log holds: the tail is written before the log, so a pair past it had its record
   * lost), then writes the table and empties the tail. Returns how many pairs were re-added.
   */
  replayTail(lastSeq: number): number {
    const size = fstatSync(this.tailFd).size;
    const bytes = new Uint8Array(size);
    readAll(this.tailFd, bytes, size, 0);
    const v = new DataView(bytes.buffer);
    let replayed = 0;
    // blocks up to the first one cut short or damaged: that one was being written when the
    // process ended, before its log write (nothing after it was written)
    for (let at = 0; at + TAIL_HEADER <= size; ) {
      const end = at + TAIL_HEADER + v.getUint32(at) * TAIL_ENTRY;
      if (end > size || crc32(bytes.subarray(at + TAIL_HEADER, end)) !== v.getUint32(at + 4)) break;
      for (let e = at + TAIL_HEADER; e < end; e += TAIL_ENTRY) {
        if (v.getFloat64(e) > lastSeq) continue;
        for (let w = 0; w < 4; w++) this.words[w] = v.getUint32(e + 8 + w * 4);
        this.addWords();
        replayed++;
      }
      at = end;
    }
    this.tailBytes = size;
    this.writeSlots(true);
    return replayed;
  }

  /** Closes the files (call writeSlots(true) first to leave an empty tail: resuming is then quicker). */
  close(): void {
    closeSync(this.fd);
    closeSync(this.tailFd);
  }

  private parse(key: string): void {
    if (key === this.lastKey) this.words.set(this.lastWords);
    else {
      keyFingerprint(key, this.words);
      this.lastKey = key;
      this.lastWords.set(this.words);
    }
  }

  /** Adds `words`; false if it was there. */
  private addWords(): boolean {
    const w = this.words;
    if (isZero(w)) {
      if (this.zero) return false;
      this.zero = true;
      this.headerDirty = true;
      return true;
    }
    let at = this.find();
    if (at >= 0) return false;
    if ((this.fingerprints + 1) / this.slots > MAX_LOAD && this.growFault === undefined) {
      try {
        this.grow();
      } catch (err) {
        // answered from the table as it is until the journal stops on the fault (its next commit)
        this.growFault = writeFault(join(this.dir, SEEN_FILES.building), err);
      }
      at = this.find();
    }
    if (this.fingerprints + 2 > this.slots) throw this.growFault ?? new StateError("state: the seen table is full");
    const slot = -at - 1;
    this.tags[slot] = tagOf(w[1]);
    this.setDirty(slot, w);
    this.fingerprints++;
    return true;
  }

  /** the slot a key whose first word is `w0` starts probing at */
  private home(w0: number): number {
    return Math.floor((w0 / 4294967296) * this.slots);
  }

  /** Slot of `words` (>= 0), or -(empty slot where it would go) - 1. */
  private find(): number {
    const w = this.words;
    const tags = this.tags;
    const tag = tagOf(w[1]);
    let i = this.home(w[0]);
    for (;;) {
      const t = tags[i];
      if (t === 0) return -i - 1;
      if (t === tag) {
        const p = this.probe;
        this.readSlot(i, p);
        if (p[0] === w[0] && p[1] === w[1] && p[2] === w[2] && p[3] === w[3]) return i;
      }
      i = i + 1 === this.slots ? 0 : i + 1;
    }
  }

  /** The words of slot `i` as they are now (a change not yet written, else the file). */
  private readSlot(i: number, out: Uint32Array): void {
    const row = this.dirty.get(i);
    if (row !== undefined) {
      out.set(this.dirtyWords.subarray(row * 4, row * 4 + 4));
      return;
    }
    const got = readSync(this.fd, this.slotBytes, 0, SLOT, HEADER + i * SLOT);
    if (got !== SLOT) throw new StateError(`state: ${join(this.dir, SEEN_FILES.table)} ends inside slot ${i} (truncated)`);
    const v = this.slotView;
    out[0] = v.getUint32(0);
    out[1] = v.getUint32(4);
    out[2] = v.getUint32(8);
    out[3] = v.getUint32(12);
  }

  private setDirty(slot: number, w: Uint32Array): void {
    let row = this.dirty.get(slot);
    if (row === undefined) {
      row = this.dirtyRows++;
      if (row * 4 + 4 > this.dirtyWords.length) {
        const bigger = new Uint32Array(this.dirtyWords.length * 2);
        bigger.set(this.dirtyWords);
        this.dirtyWords = bigger;
      }
      this.dirty.set(slot, row);
    }
    this.dirtyWords.set(w, row * 4);
  }

  /**
   * Writes the changed slots: when they are few, each run of neighbours in one write; else one
   * pass over the table, each chunk with a change read, patched and written back. Slots that get
   * a key before slots that are emptied (deletes), so a process ended in between finds a moved
   * key twice (harmless) rather than not at all.
   */
  private writeDirty(): void {
    const slots = Float64Array.from(this.dirty.keys()).sort(); // typed: a numeric sort without a comparator call
    const dw = this.dirtyWords;
    const emptied = (slot: number) => {
      const row = this.dirty.get(slot)! * 4;
      return dw[row] === 0 && dw[row + 1] === 0 && dw[row + 2] === 0 && dw[row + 3] === 0;
    };
    const keyed = slots.filter((slot) => !emptied(slot));
    if (keyed.length * 1024 < this.slots) this.writeRuns(keyed);
    else {
      const buf = new Uint8Array(CHUNK_SLOTS * SLOT);
      const v = new DataView(buf.buffer);
      let k = 0;
      while (k < keyed.length) {
        const from = keyed[k] - (keyed[k] % CHUNK_SLOTS);
        const n = Math.min(CHUNK_SLOTS, this.slots - from);
        readAll(this.fd, buf, n * SLOT, HEADER + from * SLOT);
        for (; k < keyed.length && keyed[k] < from + n; k++) {
          const row = this.dirty.get(keyed[k])! * 4;
          const o = (keyed[k] - from) * SLOT;
          for (let w = 0; w < 4; w++) v.setUint32(o + w * 4, dw[row + w]);
        }
        writeAll(this.fd, buf.subarray(0, n * SLOT), HEADER + from * SLOT);
      }
    }
    this.writeRuns(slots.filter(emptied));
    this.dirty.clear();
    this.dirtyRows = 0;
  }

  /** Writes the changed slots `slots` (ascending), each run of neighbours in one write. */
  private writeRuns(slots: Float64Array): void {
    const buf = new Uint8Array(slots.length * SLOT);
    const v = new DataView(buf.buffer);
    const dw = this.dirtyWords;
    let runStart = 0;
    for (let k = 0; k < slots.length; k++) {
      const row = this.dirty.get(slots[k])! * 4;
      for (let w = 0; w < 4; w++) v.setUint32(k * SLOT + w * 4, dw[row + w]);
      if (k + 1 === slots.length || slots[k + 1] !== slots[k] + 1) {
        writeAll(this.fd, buf.subarray(runStart * SLOT, (k + 1) * SLOT), HEADER + slots[runStart] * SLOT);
        runStart = k + 1;
      }
    }
  }

  /** Tags and count from the table file, one sequential read. */
  private rebuildTags(): void {
    const buf = new Uint8Array(CHUNK_SLOTS * SLOT);
    const v = new DataView(buf.buffer);
    const tags = this.tags;
    let count = 0;
    for (let from = 0; from < this.slots; from += CHUNK_SLOTS) {
      const n = Math.min(CHUNK_SLOTS, this.slots - from);
      readAll(this.fd, buf, n * SLOT, HEADER + from * SLOT);
      for (let s = 0; s < n; s++) {
        const o = s * SLOT;
        const w1 = v.getUint32(o + 4);
        if ((v.getUint32(o) | w1 | v.getUint32(o + 8) | v.getUint32(o + 12)) === 0) continue;
        tags[from + s] = tagOf(w1);
        count++;
      }
    }
    this.fingerprints = count;
  }

  /** Reads slots [from, from + n) as they are now (the file with the unwritten changes on top) into `buf`. */
  private readCurrent(from: number, n: number, buf: Uint8Array, dirtySorted: Float64Array): void {
    readAll(this.fd, buf, n * SLOT, HEADER + from * SLOT);
    const v = new DataView(buf.buffer, buf.byteOffset);
    // first changed slot >= from
    let lo = 0;
    let hi = dirtySorted.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (dirtySorted[mid] < from) lo = mid + 1;
      else hi = mid;
    }
    for (let k = lo; k < dirtySorted.length && dirtySorted[k] < from + n; k++) {
      const row = this.dirty.get(dirtySorted[k])! * 4;
      const o = (dirtySorted[k] - from) * SLOT;
      for (let w = 0; w < 4; w++) v.setUint32(o + w * 4, this.dirtyWords[row + w]);
    }
  }

  /**
   * Grows the table × GROWTH into a new file written front to back. Linear probing without
   * tombstones leaves every key in the run of occupied slots that starts at or before its home
   * and ends at an empty slot, and home slots follow the first word in order: so the runs, each
   * sorted by first word, are the keys in new-home order, and each goes to max(its new home, the
   * slot after the previous key). The run that wraps past the end is split into its keys homed
   * at the front (placed first) and at the back (placed last); keys pushed past the new end take
   * the first empty slots at the front, written last.
   */
  private grow(): void {
    const oldSlots = this.slots;
    const newSlots = Math.ceil(oldSlots * GROWTH);
    const oldTags = this.tags;
    const newTags = new Uint8Array(newSlots);
    const dirtySorted = Float64Array.from(this.dirty.keys()).sort();
    const buildPath = join(this.dir, SEEN_FILES.building);
    let out: number;
    try {
      out = openSync(buildPath, "w+");
      writeAll(out, header(newSlots, this.zero), 0);
    } catch (err) {
      throw writeFault(buildPath, err);
    }
    const outBuf = new Uint8Array(CHUNK_SLOTS * SLOT);
    const outView = new DataView(outBuf.buffer);
    let outStart = 0;
    const writeOut = () => {
      const n = Math.min(CHUNK_SLOTS, newSlots - outStart);
      writeAll(out, outBuf.subarray(0, n * SLOT), HEADER + outStart * SLOT);
      outBuf.fill(0);
      outStart += CHUNK_SLOTS;
    };
    let prev = -1;
    const overflow: number[] = [];
    const place = (w0: number, w1: number, w2: number, w3: number) => {
      const pos = Math.max(Math.floor((w0 / 4294967296) * newSlots), prev + 1);
      if (pos >= newSlots) {
        overflow.push(w0, w1, w2, w3);
        return;
      }
      while (pos >= outStart + CHUNK_SLOTS) writeOut();
      const o = (pos - outStart) * SLOT;
      outView.setUint32(o, w0);
      outView.setUint32(o + 4, w1);
      outView.setUint32(o + 8, w2);
      outView.setUint32(o + 12, w3);
      newTags[pos] = tagOf(w1);
      prev = pos;
    };
    const first = oldTags.indexOf(0);
    const last = oldTags.lastIndexOf(0);
    const inBuf = new Uint8Array(CHUNK_SLOTS * SLOT);
    const inView = new DataView(inBuf.buffer);
    // the wrapping run: slots [0, first) and (last, end)
    const low = new Rows();
    const high = new Rows();
    /** visits the current slots [from, to) in order, read a chunk at a time (empty ones too) */
    const eachSlot = (from: number, to: number, visit: (w0: number, w1: number, w2: number, w3: number) => void) => {
      for (let s = from; s < to; s += CHUNK_SLOTS) {
        const n = Math.min(CHUNK_SLOTS, to - s);
        this.readCurrent(s, n, inBuf, dirtySorted);
        for (let k = 0; k < n; k++) {
          const o = k * SLOT;
          visit(inView.getUint32(o), inView.getUint32(o + 4), inView.getUint32(o + 8), inView.getUint32(o + 12));
        }
      }
    };
    const collect = (from: number, to: number) =>
      eachSlot(from, to, (w0, w1, w2, w3) => {
        if ((w0 | w1 | w2 | w3) !== 0) (this.home(w0) < first ? low : high).push(w0, w1, w2, w3);
      });
    try {
      collect(0, first);
      collect(last + 1, oldSlots);
      low.sortAndEach(place);
      // the runs between, in order
      const run = new Rows();
      eachSlot(first + 1, last, (w0, w1, w2, w3) => {
        if ((w0 | w1 | w2 | w3) !== 0) run.push(w0, w1, w2, w3);
        else if (run.length > 0) run.sortAndEach(place);
      });
      if (run.length > 0) run.sortAndEach(place); // slot `last` is empty
      high.sortAndEach(place);
      while (outStart < newSlots) writeOut();
      const slotBuf = new Uint8Array(SLOT);
      const sv = new DataView(slotBuf.buffer);
      let free = 0;
      for (let k = 0; k < overflow.length; k += 4) {
        while (newTags[free] !== 0) free++;
        for (let w = 0; w < 4; w++) sv.setUint32(w * 4, overflow[k + w]);
        writeAll(out, slotBuf, HEADER + free * SLOT);
        newTags[free] = tagOf(overflow[k + 1]);
      }
      renameSync(buildPath, join(this.dir, SEEN_FILES.next));
    } catch (err) {
      closeSync(out);
      try {
        unlinkSync(buildPath); // its space back (a full disk)
      } catch {
        // open() removes it
      }
      throw writeFault(buildPath, err);
    }
    // the old table file stays the durable one until writeSlots() (the new one may hold keys whose records are not written yet)
    closeSync(this.fd);
    this.fd = out;
    this.renamePending = true;
    this.slots = newSlots;
    this.tags = newTags;
    this.dirty.clear();
    this.dirtyRows = 0;
    this.headerDirty = false;
  }
}

/** Fingerprints (4 words each) of one probe run, sorted by first word before placing. */
class Rows {
  private words = new Uint32Array(64);
  length = 0;

  push(w0: number, w1: number, w2: number, w3: number): void {
    if (this.length * 4 + 4 > this.words.length) {
      const bigger = new Uint32Array(this.words.length * 2);
      bigger.set(this.words);
      this.words = bigger;
    }
    const o = this.length++ * 4;
    this.words[o] = w0;
    this.words[o + 1] = w1;
    this.words[o + 2] = w2;
    this.words[o + 3] = w3;
  }

  /** Calls `f` for each row in first-word order, then empties. Runs are short and nearly sorted: insertion sort. */
  sortAndEach(f: (w0: number, w1: number, w2: number, w3: number) => void): void {
    const a = this.words;
    if (this.length > 256) {
      // a long wrapping run (a small table): index sort
      const order = Array.from({ length: this.length }, (_, i) => i).sort((x, y) => a[x * 4] - a[y * 4]);
      for (const i of order) f(a[i * 4], a[i * 4 + 1], a[i * 4 + 2], a[i * 4 + 3]);
    } else {
      for (let i = 1; i < this.length; i++) {
        const w0 = a[i * 4];
        const w1 = a[i * 4 + 1];
        const w2 = a[i * 4 + 2];
        const w3 = a[i * 4 + 3];
        let j = i - 1;
        while (j >= 0 && a[j * 4] > w0) {
          a.copyWithin((j + 1) * 4, j * 4, j * 4 + 4);
          j--;
        }
        a[(j + 1) * 4] = w0;
        a[(j + 1) * 4 + 1] = w1;
        a[(j + 1) * 4 + 2] = w2;
        a[(j + 1) * 4 + 3] = w3;
      }
      for (let i = 0; i < this.length; i++) f(a[i * 4], a[i * 4 + 1], a[i * 4 + 2], a[i * 4 + 3]);
    }
    this.length = 0;
  }
}

function tagOf(w1: number): number {
  return 1 + (w1 % 255);
}

function isZero(w: Uint32Array): boolean {
  return (w[0] | w[1] | w[2] | w[3]) === 0;
}

function header(slots: number, zero: boolean): Uint8Array {
  const h = new Uint8Array(HEADER);
  h.set(MAGIC);
  new DataView(h.buffer).setUint32(8, slots);
  h[12] = zero ? 1 : 0;
  return h;
}

function writeAll(fd: number, bytes: Uint8Array, position: number): void {
  let done = 0;
  while (done < bytes.length) done += writeSync(fd, bytes, done, bytes.length - done, position + done);
}

function readAll(fd: number, buf: Uint8Array, length: number, position: number): void {
  let done = 0;
  while (done < length) {
    const got = readSync(fd, buf, done, length - done, position + done);
    if (got === 0) throw new StateError(`state: a seen table ends early (truncated); delete the state folder to start over`);
    done += got;
  }
}

/** Removes the seen set's files from `dir`. */
export function removeSeenFiles(dir: string): void {
  for (const name of Object.values(SEEN_FILES)) if (existsSync(join(dir, name))) unlinkSync(join(dir, name));
}
