import { md5Hex } from "../model/index.ts";

/** The set of dedup keys a queue keeps (in memory: SeenSet; on disk: the state folder's SeenTable). */
export interface SeenKeys {
  readonly size: number;
  /** Adds the key; returns false if it was already there. */
  add(key: string): boolean;
  has(key: string): boolean;
  /** Forgets the key (e.g. when storing what it stands for failed). */
  delete(key: string): void;
}

/** the 4 big-endian 32-bit words of the md5 fingerprint being looked up (one lookup at a time) */
const words = new Uint32Array(4);

/**
 * The 128-bit fingerprint a dedup key stands for, as 4 big-endian 32-bit words in `out`: an md5
 * key (32 lower-case hex digits) parsed, any other key by its md5 (as the Redis buckets layout
 * stores it).
 */
export function keyFingerprint(key: string, out: Uint32Array): void {
  if (!parseMd5(key, out)) parseMd5(md5Hex(key), out);
}

/**
 * Parses `key` into `out` if it is an md5 fingerprint (32 lower-case hex digits); false if it
 * is not. One pass over the characters, no slices or regex (this runs for every followed link).
 */
function parseMd5(key: string, out: Uint32Array = words): boolean {
  if (key.length !== 32) return false;
  for (let w = 0; w < 4; w++) {
    let n = 0;
    for (let i = w * 8; i < w * 8 + 8; i++) {
      const c = key.charCodeAt(i);
      let d: number;
      if (c >= 48 && c <= 57) d = c - 48;
      else if (c >= 97 && c <= 102) d = c - 87;
      else return false;
      n = n * 16 + d;
    }
    out[w] = n;
  }
  return true;
}

const WORDS = 4;
const INITIAL_SLOTS = 1024;
/** grow (× GROWTH) past this share of slots in use: linear probing stays short below it */
const MAX_LOAD = 0.8;
const GROWTH = 1.5;

/**
 * The in-memory set of dedup keys, exact. An md5 fingerprint is kept whole (all 128 bits) in an
 * open-addressing table of 32-bit words: 16 bytes a key, ~20-30 B with the table's free slots
 * (10 000 000 keys ≈ 250 MB; a Set of numbers took ~50 B a key for the first 52 bits only, so
 * two URLs could be taken for one, and stops at 2^24 keys). Linear probing from the slot the
 * key's first word scales to (keys are md5: uniform), deletion by backward shift (no
 * tombstones). The all-zero slot means empty; the all-zero fingerprint itself is a flag. Other
 * keys stay strings.
 */
export class SeenSet implements SeenKeys {
  private table = new Uint32Array(INITIAL_SLOTS * WORDS);
  private slots = INITIAL_SLOTS;
  private fingerprints = 0;
  private zero = false;
  private readonly strings = new Set<string>();

  get size(): number {
    return this.fingerprints + (this.zero ? 1 : 0) + this.strings.size;
  }

  /** Adds the key; returns false if it was already there. */
  add(key: string): boolean {
    if (!parseMd5(key)) {
      if (this.strings.has(key)) return false;
      this.strings.add(key);
      return true;
    }
    if (isZero()) {
      if (this.zero) return false;
      this.zero = true;
      return true;
    }
    const at = this.find();
    if (at >= 0) return false;
    if ((this.fingerprints + 1) / this.slots > MAX_LOAD) {
      this.grow();
      this.put(this.find());
    } else this.put(at);
    this.fingerprints++;
    return true;
  }

  has(key: string): boolean {
    if (!parseMd5(key)) return this.strings.has(key);
    if (isZero()) return this.zero;
    return this.find() >= 0;
  }

  /** Forgets the key (e.g. when storing what it stands for failed). */
  delete(key: string): void {
    if (!parseMd5(key)) {
      this.strings.delete(key);
      return;
    }
    if (isZero()) {
      this.zero = false;
      return;
    }
    const at = this.find();
    if (at < 0) return;
    this.fingerprints--;
    // backward shift: pull later entries of the probe run into the gap so that every entry stays
    // reachable from its home slot without passing an empty one
    const t = this.table;
    let gap = at;
    let j = at;
    for (;;) {
      j = j + 1 === this.slots ? 0 : j + 1;
      const o = j * WORDS;
      if ((t[o] | t[o + 1] | t[o + 2] | t[o + 3]) === 0) break;
      const home = this.home(t[o]);
      // the entry at j may move to the gap unless its home lies cyclically in (gap, j]
      const stays = gap <= j ? gap < home && home <= j : gap < home || home <= j;
      if (stays) continue;
      t.copyWithin(gap * WORDS, o, o + WORDS);
      gap = j;
    }
    t.fill(0, gap * WORDS, gap * WORDS + WORDS);
  }

  /** the slot a key whose first word is `w0` starts probing at */
  private home(w0: number): number {
    return Math.floor((w0 / 4294967296) * this.slots);
  }

  /** Slot of `words` (>= 0), or -(empty slot where it would go) - 1. */
  private find(): number {
    const t = this.table;
    const [w0, w1, w2, w3] = words;
    let i = this.home(w0);
    for (;;) {
      const o = i * WORDS;
      const a = t[o];
      if (a === w0 && t[o + 1] === w1 && t[o + 2] === w2 && t[o + 3] === w3) return i;
      if ((a | t[o + 1] | t[o + 2] | t[o + 3]) === 0) return -i - 1;
      i = i + 1 === this.slots ? 0 : i + 1;
    }
  }

  private put(found: number): void {
    this.table.set(words, (-found - 1) * WORDS);
  }

  private grow(): void {
    const old = this.table;
    const oldSlots = this.slots;
    this.slots = Math.ceil(oldSlots * GROWTH);
    this.table = new Uint32Array(this.slots * WORDS);
    const saved = words.slice();
    for (let s = 0; s < oldSlots; s++) {
      const o = s * WORDS;
      if ((old[o] | old[o + 1] | old[o + 2] | old[o + 3]) === 0) continue;
      words.set(old.subarray(o, o + WORDS));
      this.put(this.find());
    }
    words.set(saved);
  }
}

function isZero(): boolean {
  return (words[0] | words[1] | words[2] | words[3]) === 0;
}
