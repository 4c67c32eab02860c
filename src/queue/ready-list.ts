import type { Priority, Topic } from "../model/index.ts";
import type { QueueEntry } from "./journal.ts";

const INITIAL = 64;

/**
 * One ready list (a topic and priority) of MemoryQueue, first in first out. Cold entries (message
 * only on disk: `message` undefined, `ref` set) that follow one another in one journal record —
 * the follow-ups of one page, numbered in a row — are kept as one run: seven numbers in
 * typed-array columns for the whole run (~40 B), so a page's 500 waiting follow-ups cost ~0.1 B
 * each. An entry is made an object again when it is taken. Other entries stay objects.
 * (Five numbers per entry, ~28 B, before runs: 280 MB for 10 000 000 waiting requests.)
 */
export class ReadyList {
  // per slot: a run of entries `from` .. `to`-1 of the record at seg/off/len, seqs from `seq`
  private seg = new Uint32Array(INITIAL);
  private off = new Float64Array(INITIAL);
  private len = new Uint32Array(INITIAL);
  private seq = new Float64Array(INITIAL);
  private attempts = new Uint32Array(INITIAL);
  private from = new Uint32Array(INITIAL);
  private to = new Uint32Array(INITIAL);
  /** entries kept as objects, by slot position (messages still in memory, or no ref) */
  private readonly objects = new Map<number, QueueEntry>();
  /** slot positions: head is the next to take, tail the next free; slot = position % capacity */
  private head = 0;
  private tail = 0;
  /** entries waiting (a run counts its entries) */
  private count = 0;

  constructor(
    private readonly topic: Topic,
    private readonly priority: Priority,
  ) {}

  get length(): number {
    return this.count;
  }

  /** slots in use: what the list's memory follows */
  get slots(): number {
    return this.tail - this.head;
  }

  push(entry: QueueEntry): void {
    this.count++;
    const ref = entry.ref;
    if (entry.message === undefined && ref !== undefined && this.tail > this.head && !this.objects.has(this.tail - 1)) {
      // the next entry of the last run?
      const i = (this.tail - 1) % this.seg.length;
      if (
        this.off[i] === ref.off && this.seg[i] === ref.seg && this.to[i] === ref.index && this.attempts[i] === entry.attempts &&
        this.seq[i] + (this.to[i] - this.from[i]) === entry.seq
      ) {
        this.to[i]++;
        return;
      }
    }
    if (this.tail - this.head === this.seg.length) this.resize(this.seg.length * 2);
    const at = this.tail++;
    if (entry.message !== undefined || ref === undefined) {
      this.objects.set(at, entry);
      return;
    }
    const i = at % this.seg.length;
    this.seg[i] = ref.seg;
    this.off[i] = ref.off;
    this.len[i] = ref.len;
    this.seq[i] = entry.seq;
    this.attempts[i] = entry.attempts;
    this.from[i] = ref.index;
    this.to[i] = ref.index + 1;
  }

  shift(): QueueEntry | undefined {
    if (this.head === this.tail) return undefined;
    this.count--;
    const at = this.head;
    let entry = this.objects.get(at);
    if (entry !== undefined) {
      this.objects.delete(at);
      this.head++;
    } else {
      const i = at % this.seg.length;
      entry = {
        topic: this.topic,
        priority: this.priority,
        message: undefined,
        attempts: this.attempts[i],
        seq: this.seq[i],
        ref: { seg: this.seg[i], off: this.off[i], len: this.len[i], index: this.from[i] },
      };
      this.seq[i]++;
      if (++this.from[i] === this.to[i]) this.head++;
    }
    if (this.head === this.tail) {
      // empty: start over at position 0 (the map is empty too), shrinking a grown list
      this.head = this.tail = 0;
      if (this.seg.length > INITIAL) this.resize(INITIAL);
    }
    return entry;
  }

  /** Copies the waiting runs into columns of `capacity` slots (>= slots in use), keeping positions. */
  private resize(capacity: number): void {
    const old = [this.seg, this.off, this.len, this.seq, this.attempts, this.from, this.to] as const;
    const oldCap = this.seg.length;
    this.seg = new Uint32Array(capacity);
    this.off = new Float64Array(capacity);
    this.len = new Uint32Array(capacity);
    this.seq = new Float64Array(capacity);
    this.attempts = new Uint32Array(capacity);
    this.from = new Uint32Array(capacity);
    this.to = new Uint32Array(capacity);
    const next = [this.seg, this.off, this.len, this.seq, this.attempts, this.from, this.to] as const;
    for (let p = this.head; p < this.tail; p++) {
      const from = p % oldCap;
      const to = p % capacity;
      for (let c = 0; c < next.length; c++) next[c][to] = old[c][from];
    }
  }
}
