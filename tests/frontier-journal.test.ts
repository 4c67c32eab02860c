// The standalone frontier on disk: what a crash leaves is what a new queue continues from.
import { appendFileSync, mkdtempSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { request } from "../src/model/index.ts";
import { MemoryQueue } from "../src/queue/memory-queue.ts";
import { FrontierJournal } from "../src/state/frontier-journal.ts";

const OPTIONS = { segmentBytes: 4096, fsync: false };
const req = (url: string, priority: "low" | "normal" | "high" = "normal") => request({ url, priority });
const fp = (i: number) => (i + 4096).toString(16).padEnd(32, "a");

let dir = "";
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** A new queue over what is on disk now (the old one is simply dropped, as a killed process is). */
function reopen(): { queue: MemoryQueue; journal: FrontierJournal; notes: string[] } {
  const { journal, recovered, notes } = FrontierJournal.recover(dir, OPTIONS);
  return { queue: new MemoryQueue({ journal, recovered, hotEntries: 2 }), journal, notes };
}

describe("FrontierJournal", () => {
  it("a crash keeps queued, in-flight, delayed and dead entries and the seen set; acked ones are gone", async () => {
    dir = mkdtempSync(join(tmpdir(), "mocra-journal-"));
    const q = new MemoryQueue({ journal: FrontierJournal.create(dir, OPTIONS), hotEntries: 2 });
    await q.publish("request", [
      { message: req("h1", "high"), dedupKey: fp(1) },
      { message: req("n1"), dedupKey: fp(2) },
      { message: req("n2"), dedupKey: fp(3) },
      { message: req("n3"), dedupKey: fp(4) },
      { message: req("l1", "low"), dedupKey: fp(5) },
      { message: req("n4"), dedupKey: fp(6) },
    ]);
    const [h1, n1, n2, n3] = await q.read("request", 4, 0);
    await q.ack(h1);
    await q.retryLater(n1, 60_000, "503");
    await q.deadLetter(n2, "parse failed");
    void n3; // in flight when the process dies

    const { queue, notes } = reopen();
    expect(notes).toEqual([]);
    const stats = await queue.stats();
    expect(stats.request.ready).toEqual({ high: 0, normal: 2, low: 1 });
    expect(stats.request.delayed).toBe(1);
    expect(stats.request.dead).toBe(1);
    // strict priority and order survive; the in-flight one is delivered again
    expect((await queue.read("request", 10, 0)).map((d) => d.message.url)).toEqual(["n3", "n4", "l1"]);
    const [dead] = await queue.listDeadLetters("request", 10);
    expect(dead).toMatchObject({ reason: "parse failed", message: { url: "n2" } });
    // the seen set: nothing published before is accepted again
    expect(await queue.publish("request", [1, 2, 3, 4, 5, 6].map((i) => ({ message: req(`again${i}`), dedupKey: fp(i) })))).toEqual({
      accepted: 0,
      duplicates: 6,
    });
    expect(await queue.replayDeadLetters("request", 10)).toBe(1);
    const again = reopen().queue;
    expect((await again.stats()).request.dead).toBe(0);
    expect((await again.read("request", 10, 0)).map((d) => d.message.url)).toEqual(["n3", "n4", "n2", "l1"]);
  });

  it("deletes segments whose entries are all settled, from the oldest, and recovers across segments", async () => {
    dir = mkdtempSync(join(tmpdir(), "mocra-journal-"));
    const q = new MemoryQueue({ journal: FrontierJournal.create(dir, OPTIONS), hotEntries: 2 });
    for (let b = 0; b < 30; b++) await q.publish("request", Array.from({ length: 10 }, (_, i) => ({ message: req(`u${b * 10 + i}`), dedupKey: fp(b * 10 + i) })));
    const segments = () => readdirSync(dir).filter((f) => f.startsWith("frontier-")).length;
    const before = segments();
    expect(before).toBeGreaterThan(5);
    for (let i = 0; i < 250; i++) {
      const [d] = await q.read("request", 1, 0);
      expect(d.message.url).toBe(`u${i}`);
      await q.ack(d);
    }
    expect(segments()).toBeLessThan(before / 2);
    const { queue } = reopen();
    const rest = await queue.read("request", 100, 0);
    expect(rest.map((d) => d.message.url)).toEqual(Array.from({ length: 50 }, (_, i) => `u${250 + i}`));
  });

  it("drops a write cut off by a crash at the end of the newest segment, with a note", async () => {
    dir = mkdtempSync(join(tmpdir(), "mocra-journal-"));
    const q = new MemoryQueue({ journal: FrontierJournal.create(dir, { ...OPTIONS, segmentBytes: 1 << 20 }) });
    await q.publish("request", [{ message: req("kept") }]);
    appendFileSync(join(dir, "frontier-000001.log"), Buffer.from([0, 0, 1, 0, 0xff, 0xff, 0xfe, 0xff, 1, 2, 3, 4, 5]));
    const { queue, notes } = reopen();
    expect(notes.join("\n")).toMatch(/dropped 13 bytes of an interrupted write at the end of frontier-000001\.log/);
    expect((await queue.read("request", 5, 0)).map((d) => d.message.url)).toEqual(["kept"]);
    // and the next recovery finds that segment clean
    expect(reopen().notes).toEqual([]);
  });

  it("one batch bigger than segment_mb (a page with thousands of follow-ups) is spread over segments of about that size", async () => {
    dir = mkdtempSync(join(tmpdir(), "mocra-journal-"));
    const q = new MemoryQueue({ journal: FrontierJournal.create(dir, OPTIONS), hotEntries: 2 });
    // one publish, one flush: 2 000 entries (records of 8 with 4 KiB segments, ~600 B each)
    await q.publish("request", Array.from({ length: 2000 }, (_, i) => ({ message: req(`https://example.com/p/${i}`), dedupKey: fp(i) })));
    const segments = readdirSync(dir).filter((f) => f.startsWith("frontier-"));
    expect(segments.length).toBeGreaterThan(10);
    // before: one segment took the whole batch (948 MB with segment_mb = 16 for 1 000 000 follow-ups)
    for (const f of segments) expect(statSync(join(dir, f)).size).toBeLessThan(OPTIONS.segmentBytes + 1024);
    const { queue } = reopen();
    expect(await queue.depth("request")).toBe(2000);
  });
});
