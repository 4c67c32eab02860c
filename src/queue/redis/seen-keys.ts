// src/queue/redis/seen-keys.ts: the dedup keys one RedisQueue knows to be set in Redis, so that a
// follow-up seen before is dropped (and counted as a duplicate) without a script call: most
// followed links are duplicates (a page links to the same list and item pages again and again),
// and each one cost a SET NX inside publish.lua.
//
// Why a remembered key can never drop a link that Redis would accept (in either dedup layout: a
// key's own marker in "keys", its bucket in "buckets"; a bucket's expiry only moves later (every
// worker writes the same TTL, later), and never drops one fingerprint alone):
// - Expiry. A key is remembered only until shortly before it can expire in Redis: from the time
//   the publish was sent (the script ran later, so Redis's clock for the key started later), for
//   at most the key's TTL as the script reported it (the full dedup TTL for a key it set, the
//   PTTL of a key or bucket it found) or as SeenBuckets knows its bucket to live, less a margin,
//   and never longer than LOCAL_MAX_MS.
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
 * "buckets" layout: how long each bucket is known to live in Redis, so that a bucket gets its TTL
 * refreshed (EXPIRE, in publish.lua) only when this worker adds to it and has not refreshed it
 * lately, instead of once per fingerprint added; and so that a duplicate found in a bucket known
 * to live long needs no PTTL.
 *
 * The guarantee "every fingerprint is remembered at least dedup_ttl_secs after it was added":
 * a bucket's TTL is written as ttl' = dedup_ttl_secs + dedup_ttl_secs/4. A bucket is "known"
 * while its known expiry is more than dedup_ttl_secs + dedup_ttl_secs/8 away; a fingerprint
 * added to a known bucket lives at least dedup_ttl_secs more if the script runs within
 * dedup_ttl_secs/8 of the decision (the slack), and one added to any other bucket has its bucket's
 * TTL written in the same script. Each known expiry is a lower bound by this process' clock: taken
 * from the time the publish was sent, plus the TTL the script wrote or the PTTL it read. So each
 * worker writes a bucket's TTL at most about once per dedup_ttl_secs/8 (the first time it adds to
 * a bucket it knows nothing of, then every 1/8 of the TTL while it keeps adding).
 *
 * Creating a bucket: publish.lua can create a bucket it is told is likely absent as a string,
 * SET NX EX (its first fingerprint and its TTL in one command, where a hash needs HSETNX +
 * EXPIRE); if it exists, that costs one command more (SET NX fails, then HSETNX), and a string
 * bucket that gets a second fingerprint becomes a hash (GET, DEL, HSET, EXPIRE: 3 more than an
 * HSETNX). That pays off only while nearly every new URL creates its bucket and most of those
 * buckets keep one fingerprint: a young seen set (a crawl far smaller than the bucket count). So
 * the worker asks for it while more than 9 in 10 of the buckets it tried lately were absent, and
 * otherwise for 1 bucket in 16, to notice when that changes.
 *
 * Memory: one float per bucket (2 MB for 2^18), allocated on first use.
 */
export class SeenBuckets {
  /** bucket → known expiry (performance.now() ms); 0 = unknown */
  private expiry: Float64Array | undefined;
  /** the TTL publish.lua writes on a bucket, seconds */
  readonly writeTtlSecs: number;
  private readonly knownForMs: number;
  /** of the buckets tried lately, the share that did not exist yet (moving average) */
  private absentShare = 1;
  private outcomes = 0;
  private unknownCount = 0;

  constructor(
    private readonly buckets: number,
    dedupTtlSecs: number,
  ) {
    this.writeTtlSecs = dedupTtlSecs + Math.ceil(dedupTtlSecs / 4);
    this.knownForMs = (dedupTtlSecs + Math.ceil(dedupTtlSecs / 8)) * 1000;
  }

  /** true if `bucket` lives long enough that a fingerprint added now needs no refresh of its TTL */
  known(bucket: number, now: number): boolean {
    return this.expiry !== undefined && this.expiry[bucket] - now > this.knownForMs;
  }

  /**
   * For a bucket not known: ask the script to try creating it first (see above)? `triesInBatch`:
   * how many this batch asks for already (until 16 outcomes are known, a batch asks for at most
   * 16: a new worker on a large seen set would otherwise try all of its first page's buckets).
   */
  tryCreate(triesInBatch: number): boolean {
    if (this.absentShare > 0.9) return this.outcomes >= 16 || triesInBatch < 16;
    return this.unknownCount++ % 16 === 0;
  }

  /** the outcome of a bucket the script tried to create */
  triedCreate(created: boolean): void {
    this.outcomes++;
    this.absentShare = 0.95 * this.absentShare + (created ? 0.05 : 0);
  }

  /** the known expiry of `bucket` (performance.now() ms; 0 if unknown) */
  expiresAt(bucket: number): number {
    return this.expiry?.[bucket] ?? 0;
  }

  /** Redis said `bucket` lives `ttlMs` more from a moment after `sentAt` (its TTL written, or its PTTL). */
  lives(bucket: number, ttlMs: number, sentAt: number): void {
    this.expiry ??= new Float64Array(this.buckets);
    this.expiry[bucket] = Math.max(this.expiry[bucket], sentAt + ttlMs);
  }

  clear(): void {
    this.expiry = undefined;
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
