// src/queue/redis/seen-keys.ts: the dedup keys one RedisQueue knows to be set in Redis, so that a
// follow-up seen before is dropped (and counted as a duplicate) without a script call: most
// followed links are duplicates (a page links to the same list and item pages again and again),
// and each one cost a SET NX inside publish.lua.
//
// Why a remembered key can never drop a link that Redis would accept (in either dedup layout: a
// key's own marker in "keys", its bucket in "buckets"; a bucket's expiry only moves later, each
// time a fingerprint is added to it, and never drops one fingerprint alone):
// - Expiry. A key is remembered only until shortly before it can expire in Redis: from the time
//   the publish was sent (the script ran later, so Redis's clock for the key started later), for
//   at most the key's TTL as the script reported it (the full dedup TTL for a key it set or a
//   bucket it rewrote, the PTTL of a key or bucket it found), less a margin, and never longer
//   than LOCAL_MAX_MS.
// - Deletion. Nothing in mocra-ts deletes dedup keys or buckets (purge.lua deletes dead letters, replay.lua
//   re-appends entries without a dedup check; neither reads these keys). A Redis that restarted
//   without persistence lost them: the queue clears this cache when its connection comes back.
//   What is left is an operator deleting keys by hand while workers run; then a link is still
//   dropped, as it was before the deletion, for at most LOCAL_MAX_MS.
// - Bounded memory: at most `max` keys, in two generations of max/2 (when the current one is full
//   it becomes the previous one and the older is dropped; a hit in the previous one moves the key
//   forward, so keys still in use survive). A key it forgot costs a SET NX again, nothing else.
//   Two plain Maps instead of an LRU: a lookup per followed link (twice: seenBefore, then
//   publish), and lru-cache's recency bookkeeping cost ~19 µs per page of a Redis worker.
// The script stays the atomic check: this cache only answers "certainly seen", never "new".

/** The longest a key is remembered locally, whatever its TTL in Redis (see above). */
export const LOCAL_MAX_MS = 300_000;
/** Kept off a key's remaining TTL: Redis expires keys by its own clock. */
const MARGIN_MS = 1_000;

export class SeenKeys {
  /** key → local deadline (performance.now() ms); the current and the previous generation */
  private current = new Map<string, number>();
  private previous = new Map<string, number>();
  private readonly generationMax: number;

  constructor(max: number) {
    this.generationMax = Math.max(1, Math.floor(max / 2));
  }

  /** true if `key` is certainly set in Redis now */
  has(key: string): boolean {
    let deadline = this.current.get(key);
    if (deadline === undefined) {
      deadline = this.previous.get(key);
      if (deadline === undefined) return false;
      this.previous.delete(key);
      if (deadline <= performance.now()) return false;
      this.keep(key, deadline);
      return true;
    }
    if (deadline > performance.now()) return true;
    this.current.delete(key);
    return false;
  }

  /**
   * Remembers `key`, which Redis said lives `ttlMs` more from some moment after `sentAt` (the
   * performance.now() at which the publish was sent).
   */
  remember(key: string, ttlMs: number, sentAt: number): void {
    const deadline = sentAt + Math.min(LOCAL_MAX_MS, ttlMs - MARGIN_MS);
    if (deadline > performance.now()) this.keep(key, deadline);
  }

  clear(): void {
    this.current.clear();
    this.previous.clear();
  }

  private keep(key: string, deadline: number): void {
    if (this.current.size >= this.generationMax && !this.current.has(key)) {
      this.previous = this.current;
      this.current = new Map();
    }
    this.current.set(key, deadline);
  }
}

/**
 * The items of one publish that may be new, each with the dedup key it is published under: an
 * item whose key is known as set (`seen`) or met earlier in the same batch is a duplicate
 * without a round trip. `dedup` false (dedup_ttl_secs = 0) keeps every item, without a key.
 */
export function mayBeNew<I extends { dedupKey?: string }>(items: readonly I[], dedup: boolean, seen: SeenKeys): { item: I; dedupKey: string | undefined }[] {
  const inBatch = new Set<string>();
  const out: { item: I; dedupKey: string | undefined }[] = [];
  for (const item of items) {
    const dedupKey = dedup ? item.dedupKey : undefined;
    if (dedupKey !== undefined) {
      if (inBatch.has(dedupKey) || seen.has(dedupKey)) continue;
      inBatch.add(dedupKey);
    }
    out.push({ item, dedupKey });
  }
  return out;
}
