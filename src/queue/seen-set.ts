/**
 * The number made of the first 52 bits of `key` if it is an md5 fingerprint (32 lower-case hex
 * digits), else -1. One pass over the characters: what `/^[0-9a-f]{32}$/` and
 * `parseInt(key.slice(0, 13), 16)` give, without the regex, the slice and the parse (this runs
 * for every followed link).
 */
function md5Prefix(key: string): number {
  if (key.length !== 32) return -1;
  let n = 0;
  for (let i = 0; i < 32; i++) {
    const c = key.charCodeAt(i);
    let d: number;
    if (c >= 48 && c <= 57) d = c - 48;
    else if (c >= 97 && c <= 102) d = c - 87;
    else return -1;
    if (i < 13) n = n * 16 + d;
  }
  return n;
}

/**
 * The in-memory set of dedup keys. An md5 fingerprint is kept as a number made of its first
 * 52 bits (about 3× less memory than the 32-character string, ~40 MB for 1 000 000 keys; the
 * chance of any false duplicate among 1 000 000 keys is about 1e-4). Other keys stay strings.
 */
export class SeenSet {
  private readonly numbers = new Set<number>();
  private readonly strings = new Set<string>();

  get size(): number {
    return this.numbers.size + this.strings.size;
  }

  /** Adds the key; returns false if it was already there. */
  add(key: string): boolean {
    const n = md5Prefix(key);
    if (n >= 0) {
      if (this.numbers.has(n)) return false;
      this.numbers.add(n);
      return true;
    }
    if (this.strings.has(key)) return false;
    this.strings.add(key);
    return true;
  }

  has(key: string): boolean {
    const n = md5Prefix(key);
    return n >= 0 ? this.numbers.has(n) : this.strings.has(key);
  }

  /** Forgets the key (e.g. when storing what it stands for failed). */
  delete(key: string): void {
    const n = md5Prefix(key);
    if (n >= 0) this.numbers.delete(n);
    else this.strings.delete(key);
  }
}
