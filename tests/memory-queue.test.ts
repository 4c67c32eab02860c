import { describe, expect, it } from "vitest";
import { fromQueue, type Job } from "../operators/index.ts";
import { type Request, request, taskModel } from "../src/model/index.ts";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { MemoryQueue } from "../src/queue/memory-queue.ts";
import { FrontierJournal } from "../src/state/frontier-journal.ts";
import { retryDelay } from "../src/queue/retry-policy.ts";
import type { QueueEntry } from "../src/queue/journal.ts";
import { ReadyList } from "../src/queue/ready-list.ts";
import { SeenSet } from "../src/queue/seen-set.ts";
import { MemoryRateLimiter } from "../src/ratelimit/memory-limiter.ts";

const req = (url: string, priority: "low" | "normal" | "high" = "normal") => request({ url, priority });

// the same contract with and without the on-disk journal (hotEntries 1: nearly every read reloads from disk)
describe.each([
  ["MemoryQueue", () => new MemoryQueue()],
  [
    "MemoryQueue with the on-disk journal",
    () => new MemoryQueue({ journal: FrontierJournal.create(mkdtempSync(join(tmpdir(), "mocra-journal-")), { segmentBytes: 4096, fsync: false }), hotEntries: 1 }),
  ],
] as const)("%s", (_name, newQueue) => {
  it("reads high before normal before low, a lower one only with credit left over", async () => {
    const q = newQueue();
    await q.publish("request", [{ message: req("l1", "low") }, { message: req("n1") }, { message: req("h1", "high") }, { message: req("h2", "high") }]);
    expect((await q.read("request", 2, 0)).map((d) => d.message.url)).toEqual(["h1", "h2"]);
    expect((await q.read("request", 5, 0)).map((d) => d.message.url)).toEqual(["n1", "l1"]);
  });

  it("never hands out more than asked", async () => {
    const q = newQueue();
    const pending = q.read("task", 3, 5_000);
    setTimeout(() => void q.publish("task", [{ message: taskModel() }, { message: taskModel() }, { message: taskModel() }, { message: taskModel() }]), 30);
    const got = await pending;
    expect(got.length).toBeGreaterThanOrEqual(1);
    expect(got.length).toBeLessThanOrEqual(3);
    expect(await q.read("task", 0, 0)).toEqual([]);
    expect((await q.read("task", 10, 0)).length).toBe(4 - got.length);
  });

  it("waits without polling when empty: one look, then woken by the publish (looks counted)", async () => {
    const q = new MemoryQueue();
    // count every look at the topic's FIFOs (the private take()) while a read waits
    const inner = q as unknown as { take(topic: string, max: number): unknown[] };
    const take = inner.take.bind(q);
    let looks = 0;
    inner.take = (topic, max) => {
      looks++;
      return take(topic, max);
    };
    const pending = q.read("response", 1, 5_000);
    await new Promise((r) => setTimeout(r, 300)); // idle: a polling reader would look every few ms
    const idleLooks = looks;
    const t0 = Date.now();
    await q.publish("response", [{ message: { id: "r1" } as never }]);
    const got = await pending;
    expect(idleLooks).toBe(1);
    expect(looks).toBe(2); // the wake-up's look
    expect(got).toHaveLength(1);
    expect(Date.now() - t0).toBeLessThan(1_000); // woken, not timed out
    // an empty read still waits its full block time
    const started = Date.now();
    expect(await q.read("response", 1, 100)).toEqual([]);
    expect(Date.now() - started).toBeGreaterThanOrEqual(95);
  });

  it("dedups atomically with the enqueue", async () => {
    const q = newQueue();
    const r = await q.publish("request", [
      { message: req("a"), dedupKey: "0123456789abcdef0123456789abcdef" },
      { message: req("a"), dedupKey: "0123456789abcdef0123456789abcdef" },
      { message: req("b"), dedupKey: "other" },
    ]);
    expect(r).toEqual({ accepted: 2, duplicates: 1 });
  });

  it("re-delivers a retried message after its delay, counting attempts, and is not drained meanwhile", async () => {
    const q = newQueue();
    await q.publish("request", [{ message: req("r") }]);
    const [d] = await q.read("request", 1, 0);
    expect(d.attempt).toBe(1);
    const t0 = Date.now();
    await q.retryLater(d, 150, "boom");
    expect(q.isDrained()).toBe(false);
    expect(await q.read("request", 1, 0)).toEqual([]);
    const [again] = await q.read("request", 1, 2_000);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(145);
    expect(again.attempt).toBe(2);
    await q.ack(again);
    expect(q.isDrained()).toBe(true);
  });

  it("keeps dead letters with their reason and can replay them", async () => {
    const q = newQueue();
    await q.publish("request", [{ message: req("x") }]);
    const [d] = await q.read("request", 1, 0);
    await q.deadLetter(d, "HTTP 500 (after 3 attempts)");
    const dead = await q.listDeadLetters("request", 10);
    expect(dead).toHaveLength(1);
    expect(dead[0].reason).toBe("HTTP 500 (after 3 attempts)");
    expect(dead[0].originalId).toBe(d.entryId);
    expect(await q.replayDeadLetters("request", 10)).toBe(1);
    expect((await q.read("request", 1, 0))[0].message.url).toBe("x");
  });
});

describe("fromQueue", () => {
  it("has at most `prefetch` un-settled messages out, and reads more as they settle", async () => {
    const q = new MemoryQueue();
    await q.publish("request", Array.from({ length: 20 }, (_, i) => ({ message: req(`u${i}`) })));
    const controller = new AbortController();
    const seen: string[] = [];
    const held: Array<() => Promise<void>> = [];
    const sub = fromQueue(q, "request", { prefetch: 5, blockMs: 50, signal: controller.signal }).subscribe((job) => {
      seen.push(job.ok ? job.value.url : "?");
      held.push(() => job.message.ack());
    });
    await new Promise((r) => setTimeout(r, 100));
    expect(seen).toHaveLength(5);
    await held.shift()!();
    await held.shift()!();
    await new Promise((r) => setTimeout(r, 50));
    expect(seen).toHaveLength(7);
    controller.abort();
    sub.unsubscribe();
  });

  it("completes on abort once every message out is settled, not before", async () => {
    const q = new MemoryQueue();
    await q.publish("request", [{ message: req("a") }, { message: req("b") }]);
    const controller = new AbortController();
    const jobs: Job<Request>[] = [];
    let completed = false;
    const done = new Promise<void>((resolve) =>
      fromQueue(q, "request", { prefetch: 10, blockMs: 20, signal: controller.signal }).subscribe({
        next: (job) => jobs.push(job),
        complete: () => {
          completed = true;
          resolve();
        },
      }),
    );
    while (jobs.length < 2) await new Promise((r) => setTimeout(r, 5));
    controller.abort();
    await new Promise((r) => setTimeout(r, 60));
    expect(completed).toBe(false); // two messages still out
    await jobs[0].message.ack();
    await new Promise((r) => setTimeout(r, 60));
    expect(completed).toBe(false); // one still out
    await jobs[1].message.retry(0, "test");
    await done;
    expect(completed).toBe(true);
    expect(jobs).toHaveLength(2); // nothing read after the abort
  });
});

describe("retryDelay", () => {
  const policy = { maxRetries: 5, baseDelayMs: 1000, maxDelayMs: 8000 };
  it("grows exponentially with equal jitter, capped, and honours Retry-After", () => {
    expect(retryDelay(policy, 1, undefined, () => 0)).toBe(500);
    expect(retryDelay(policy, 1, undefined, () => 1)).toBe(1000);
    expect(retryDelay(policy, 3, undefined, () => 1)).toBe(4000);
    expect(retryDelay(policy, 10, undefined, () => 1)).toBe(8000);
    expect(retryDelay(policy, 1, 5000, () => 1)).toBe(5000);
  });
});

describe("MemoryRateLimiter (GCRA)", () => {
  it("spaces requests for one key evenly and keys independently", async () => {
    const l = new MemoryRateLimiter();
    const waits: number[] = [];
    for (let i = 0; i < 5; i++) {
      const r = await l.reserve("a.com", 10, 10_000);
      if (r.ok) waits.push(Math.round(r.waitMs));
    }
    expect(waits.map((w) => Math.round(w / 10) * 10)).toEqual([0, 100, 200, 300, 400]);
    const other = await l.reserve("b.com", 10, 10_000);
    expect(other.ok && other.waitMs).toBe(0);
  });

  it("refuses (without reserving) a wait over max_wait", async () => {
    const l = new MemoryRateLimiter();
    await l.reserve("a", 1, 0);
    const r = await l.reserve("a", 1, 100);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.retryAfterMs).toBeGreaterThan(900);
    const r2 = await l.reserve("a", 1, 2000);
    expect(r2.ok && Math.round(r2.waitMs / 100)).toBe(10);
  });
});

describe("ReadyList", () => {
  it("keeps first-in-first-out order over cold (runs in columns) and hot (objects) entries, across growth, wrap-around and emptying", () => {
    const list = new ReadyList("request", "low");
    const made: QueueEntry[] = [];
    let n = 0;
    // records of 1-40 entries; now and then a hot entry, a gap or other attempts break a run
    let record = { seg: 1, off: 0, len: 0, next: 0, size: 1 };
    const entry = (): QueueEntry => {
      n++;
      if (n % 37 === 0 || record.next >= record.size) record = { seg: 1 + (n % 7), off: n * 100, len: 50 + (n % 11), next: 0, size: 1 + (n % 40) };
      const cold = n % 13 !== 0;
      const index = record.next++;
      if (n % 29 === 0) record.next++; // an entry of the record not in this list
      return { topic: "request", priority: "low", message: cold ? undefined : req(`https://example.com/${n}`, "low"), attempts: n % 31 === 0 ? 3 : 0, seq: n + (n % 29 === 0 ? 1 : 0), ref: { seg: record.seg, off: record.off, len: record.len, index } };
    };
    const taken: QueueEntry[] = [];
    let maxSlots = 0;
    // bursts of pushes larger than what is taken: the ring grows while its head is mid-way
    for (let round = 0; round < 12; round++) {
      for (let i = 0; i < 700; i++) {
        const e = entry();
        made.push({ ...e });
        list.push(e);
      }
      maxSlots = Math.max(maxSlots, list.slots);
      for (let i = 0; i < 400; i++) taken.push(list.shift()!);
    }
    while (list.length > 0) taken.push(list.shift()!);
    expect(list.shift()).toBeUndefined();
    expect(taken).toEqual(made);
    // runs: far fewer slots than entries
    expect(maxSlots).toBeLessThan((12 * 300 + 700) / 3);
    // empty again: reused from the start
    const again = entry();
    list.push(again);
    expect(list.length).toBe(1);
    expect(list.shift()).toEqual(again);
  });

  it("holds a page's follow-ups waiting in one record as one slot", () => {
    const list = new ReadyList("request", "normal");
    for (let i = 0; i < 10_000; i++) list.push({ topic: "request", priority: "normal", message: undefined, attempts: 0, seq: 100 + i, ref: { seg: 3, off: 4096, len: 300_000, index: i } });
    expect(list.length).toBe(10_000);
    expect(list.slots).toBe(1);
    const first = list.shift()!;
    expect(first).toEqual({ topic: "request", priority: "normal", message: undefined, attempts: 0, seq: 100, ref: { seg: 3, off: 4096, len: 300_000, index: 0 } });
    expect(list.shift()!.ref!.index).toBe(1);
  });
});

describe("SeenSet", () => {
  it("keeps md5 keys compactly and other keys as strings", () => {
    const s = new SeenSet();
    expect(s.add("00b22979947e3c69e203f326272420e3")).toBe(true);
    expect(s.add("00b22979947e3c69e203f326272420e3")).toBe(false);
    expect(s.add("parser_task:1")).toBe(true);
    expect(s.has("parser_task:1")).toBe(true);
    s.delete("00b22979947e3c69e203f326272420e3");
    expect(s.has("00b22979947e3c69e203f326272420e3")).toBe(false);
    expect(s.size).toBe(1);
  });

  it("is exact: fingerprints sharing their first 52 bits (or 96) are different keys", () => {
    const s = new SeenSet();
    const a = "0123456789abcdef0123456789abcdef";
    const b = "0123456789abcdef0123456789abcde0"; // the last digit differs
    const c = "0123456789abc000ffffffffffffffff"; // the first 52 bits of a
    expect(s.add(a)).toBe(true);
    expect(s.add(b)).toBe(true);
    expect(s.add(c)).toBe(true);
    expect(s.has(b) && s.has(c)).toBe(true);
    expect(s.add("00000000000000000000000000000000")).toBe(true); // the all-zero fingerprint (the empty slot's pattern)
    expect(s.has("00000000000000000000000000000000")).toBe(true);
    expect(s.size).toBe(4);
  });

  it("agrees with a Set of strings over 60 000 random adds, deletes and lookups, clustered keys and wrap-around included", () => {
    const s = new SeenSet();
    const ref = new Set<string>();
    let seed = 42;
    const rnd = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 4294967296);
    const hex8 = (n: number) => (n >>> 0).toString(16).padStart(8, "0");
    const key = () => {
      const r = rnd();
      // a few hundred share their first word (long probe runs), some at the top of the range (runs wrap to slot 0)
      const w0 = r < 0.002 ? 0x12345678 : r < 0.004 ? 0xffffffff : Math.floor(rnd() * 4294967296);
      return hex8(w0) + hex8(rnd() * 4294967296) + hex8(rnd() * 64) + hex8(rnd() * 4294967296);
    };
    const keys: string[] = [];
    for (let i = 0; i < 60_000; i++) {
      const op = rnd();
      if (op < 0.6 || keys.length === 0) {
        const k = key();
        keys.push(k);
        expect(s.add(k)).toBe(!ref.has(k));
        ref.add(k);
      } else if (op < 0.8) {
        const k = keys[Math.floor(rnd() * keys.length)];
        s.delete(k);
        ref.delete(k);
      } else {
        const k = rnd() < 0.5 ? keys[Math.floor(rnd() * keys.length)] : key();
        expect(s.has(k)).toBe(ref.has(k));
      }
    }
    expect(s.size).toBe(ref.size);
    for (const k of keys) expect(s.has(k)).toBe(ref.has(k));
  });
});
