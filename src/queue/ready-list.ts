import type { Priority, Topic } from "../model/index.ts";
import type { QueueEntry } from "./journal.ts";

const INITIAL = 1024;

/**
 * One ready list (a topic and priority) of MemoryQueue, first in first out. A cold entry (message
 * only on disk: `message` undefined, `ref` set) is kept as five numbers in typed-array columns,
 * ~28 B, and made an object again when it is taken; other entries stay objects. A crawl that
 * leaves 10 000 000 requests waiting held ~110 B a cold entry as objects (the entry, its ref, the
 * array slot), ~1 GB.
 */
export class ReadyList {
  private seq = new Float64Array(INITIAL);
  private attempts = new Uint32Array(INITIAL);
  private seg = new Uint32Array(INITIAL);
  private off = new Float64Array(INITIAL);
  private len = new Uint32Array(INITIAL);
  /** entries kept as objects, by position (messages still in memory, or no ref) */
  private readonly objects = new Map<number, QueueEntry>();
  /** positions: head is the next to take, tail the next free; slot = position % capacity */
  private head = 0;
  private tail = 0;

  constructor(
    private readonly topic: Topic,
    private readonly priority: Priority,
  ) {}

  get length(): number {
    return this.tail - this.head;
  }

  push(entry: QueueEntry): void {
    if (this.tail - this.head === this.seq.length) this.resize(this.seq.length * 2);
    const at = this.tail++;
    const ref = entry.ref;
    if (entry.message !== undefined || ref === undefined) {
      this.objects.set(at, entry);
      return;
    }
    const i = at % this.seq.length;
    this.seq[i] = entry.seq;
    this.attempts[i] = entry.attempts;
    this.seg[i] = ref.seg;
    this.off[i] = ref.off;
    this.len[i] = ref.len;
  }

  shift(): QueueEntry | undefined {
    if (this.head === this.tail) return undefined;
    const at = this.head++;
    let entry = this.objects.get(at);
    if (entry !== undefined) this.objects.delete(at);
    else {
      const i = at % this.seq.length;
      entry = {
        topic: this.topic,
        priority: this.priority,
        message: undefined,
        attempts: this.attempts[i],
        seq: this.seq[i],
        ref: { seg: this.seg[i], off: this.off[i], len: this.len[i] },
      };
    }
    if (this.head === this.tail) {
      // empty: start over at position 0 (the map is empty too), shrinking a grown list
      this.head = this.tail = 0;
      if (this.seq.length > INITIAL) this.resize(INITIAL);
    }
    return entry;
  }

  /** Copies the waiting entries into columns of `capacity` slots (>= length), keeping positions. */
  private resize(capacity: number): void {
    const old = { seq: this.seq, attempts: this.attempts, seg: this.seg, off: this.off, len: this.len };
    const oldCap = this.seq.length;
    this.seq = new Float64Array(capacity);
    this.attempts = new Uint32Array(capacity);
    this.seg = new Uint32Array(capacity);
    this.off = new Float64Array(capacity);
    this.len = new Uint32Array(capacity);
    for (let p = this.head; p < this.tail; p++) {
      const from = p % oldCap;
      const to = p % capacity;
      this.seq[to] = old.seq[from];
      this.attempts[to] = old.attempts[from];
      this.seg[to] = old.seg[from];
      this.off[to] = old.off[from];
      this.len[to] = old.len[from];
    }
  }
}
