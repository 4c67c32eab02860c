// The standalone seen set on disk (src/state/seen-table.ts): exact against a Set of strings, across
// growth, deletes, odd keys, reopening, and crashes at each point of its write protocol.
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync, statSync, truncateSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { afterEach, describe, expect, it } from "vitest";
import { md5Hex } from "../src/model/index.ts";
import { MemoryQueue } from "../src/queue/memory-queue.ts";
import { FrontierJournal } from "../src/state/frontier-journal.ts";
import { SEEN_FILES, SeenTable } from "../src/state/seen-table.ts";

const OPTIONS = { fsync: false };
const ROOT = join(import.meta.dirname, "..");

let dir = "";
const children: ChildProcess[] = [];
afterEach(() => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = "";
});

let seed = 7;
const rnd = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 4294967296;
const hex8 = (n: number) => (n >>> 0).toString(16).padStart(8, "0");

/**
 * Random md5-shaped keys with adversarial ones mixed in: a share with the same first word (one
 * long probe run), some at the top of the range (runs that wrap to slot 0), and keys that differ
 * from another only past the words the tag is made of (same home, same tag: only the disk tells them apart).
 */
function keyMaker(): () => string {
  const made: string[] = [];
  return () => {
    const r = rnd();
    let k: string;
    if (r < 0.003) k = hex8(0x12345678) + hex8(rnd() * 4294967296) + hex8(rnd() * 4294967296) + hex8(rnd() * 4294967296);
    else if (r < 0.006) k = hex8(0xffffffff - Math.floor(rnd() * 4)) + hex8(rnd() * 4294967296) + hex8(rnd() * 4294967296) + hex8(rnd() * 4294967296);
    else if (r < 0.05 && made.length > 0) {
      const twin = made[Math.floor(rnd() * made.length)];
      // same first two words (home and tag), one different bit in the last word
      k = twin.slice(0, 24) + hex8(parseInt(twin.slice(24), 16) ^ (1 << Math.floor(rnd() * 32)));
    } else if (r < 0.07) {
      // the tag is 1 + word1 mod 255: word1 + 255 gives the same tag in another key
      const w1 = Math.floor(rnd() * 4294967040);
      k = hex8(rnd() * 4294967296) + hex8(w1 + 255 * Math.floor(rnd() * 2)) + hex8(rnd() * 4294967296) + hex8(rnd() * 4294967296);
    } else k = hex8(rnd() * 4294967296) + hex8(rnd() * 4294967296) + hex8(rnd() * 4294967296) + hex8(rnd() * 4294967296);
    made.push(k);
    return k;
  };
}

/** What the table file's size says about its slots (16-byte header, 16-byte slots). */
const slotsOnDisk = () => (statSync(join(dir, SEEN_FILES.table)).size - 16) / 16;

describe("SeenTable", () => {
  it("agrees with a Set of strings over 150 000 random and adversarial adds, deletes and lookups, growing from 64 slots, and after reopening", () => {
    dir = mkdtempSync(join(tmpdir(), "mocra-seen-"));
    let t = SeenTable.create(dir, OPTIONS);
    const ref = new Set<string>();
    const key = keyMaker();
    const keys: string[] = [];
    const slotsSeen = new Set<number>();
    for (let i = 0; i < 150_000; i++) {
      const op = rnd();
      if (op < 0.65 || keys.length === 0) {
        const k = rnd() < 0.1 && keys.length > 0 ? keys[Math.floor(rnd() * keys.length)] : key();
        keys.push(k);
        expect(t.add(k)).toBe(!ref.has(k));
        ref.add(k);
      } else if (op < 0.75) {
        const k = keys[Math.floor(rnd() * keys.length)];
        t.delete(k);
        ref.delete(k);
      } else {
        const k = rnd() < 0.5 ? keys[Math.floor(rnd() * keys.length)] : key();
        expect(t.has(k)).toBe(ref.has(k));
      }
      // written now and then (as the journal's commits do), with changes in between
      if (i % 997 === 0) {
        t.writeTail();
        t.writeSlots();
        slotsSeen.add(slotsOnDisk());
      }
      if (i === 100_000) {
        // reopened mid-way: the tags rebuilt from the file
        t.writeSlots(true);
        t.close();
        t = SeenTable.open(dir, OPTIONS);
        expect(t.size).toBe(ref.size);
      }
    }
    expect(t.size).toBe(ref.size);
    for (const k of keys) expect(t.has(k)).toBe(ref.has(k));
    // grew several times (×1.5 from 64), and stayed under a load of 0.8
    expect(slotsSeen.size).toBeGreaterThanOrEqual(6);
    t.writeSlots(true);
    expect(ref.size / slotsOnDisk()).toBeLessThanOrEqual(0.8);
    t.close();
    const again = SeenTable.open(dir, OPTIONS);
    expect(again.size).toBe(ref.size);
    for (const k of keys) expect(again.has(k)).toBe(ref.has(k));
    for (let i = 0; i < 2000; i++) expect(again.has(key())).toBe(false);
    again.close();
  });

  it("grows across sizes with every key found, each growth one new file that replaces the old at the next write", () => {
    dir = mkdtempSync(join(tmpdir(), "mocra-seen-"));
    const t = SeenTable.create(dir, { fsync: true }); // the fsync path too
    for (const n of [500, 1_000, 5_000, 20_000, 80_000]) {
      for (let i = 0; i < n; i++) t.add(md5Hex(`n${n}-${i}`));
      // grown in memory and in seen.table.new; the durable table is still the old one
      if (n >= 5_000) expect(existsSync(join(dir, SEEN_FILES.next))).toBe(true);
      t.writeSlots();
      expect(existsSync(join(dir, SEEN_FILES.next))).toBe(false);
      const reopened = SeenTable.open(dir, OPTIONS);
      for (const m of [500, 1_000, 5_000, 20_000, 80_000].filter((m) => m <= n)) {
        for (let i = 0; i < m; i += 7) expect(reopened.has(md5Hex(`n${m}-${i}`))).toBe(true);
        expect(reopened.has(md5Hex(`n${m}-${m}`))).toBe(false);
      }
      reopened.close();
    }
    expect(t.size).toBe(106_500);
    t.close();
  });

  it("keeps the all-zero fingerprint (the empty-slot value) as a flag, and non-md5 keys by their md5", () => {
    dir = mkdtempSync(join(tmpdir(), "mocra-seen-"));
    const t = SeenTable.create(dir, OPTIONS);
    const zero = "0".repeat(32);
    expect(t.has(zero)).toBe(false);
    expect(t.add(zero)).toBe(true);
    expect(t.add(zero)).toBe(false);
    expect(t.add("https://example.com/a")).toBe(true);
    expect(t.add("https://example.com/a")).toBe(false);
    expect(t.has("https://example.com/b")).toBe(false);
    // an upper-case hex key is not an md5 key: kept by its md5, apart from the lower-case one
    const lower = md5Hex("x");
    expect(t.add(lower.toUpperCase())).toBe(true);
    expect(t.has(lower)).toBe(false);
    // a non-md5 key is stored as its md5 (as the Redis buckets layout): the two name one fingerprint
    expect(t.has(md5Hex("https://example.com/a"))).toBe(true);
    expect(t.size).toBe(3);
    t.writeSlots(true);
    const again = SeenTable.open(dir, OPTIONS);
    expect(again.has(zero)).toBe(true);
    expect(again.has("https://example.com/a")).toBe(true);
    expect(again.size).toBe(3);
    again.delete(zero);
    again.delete("https://example.com/a");
    expect(again.has(zero)).toBe(false);
    expect(again.has("https://example.com/a")).toBe(false);
    again.writeSlots(true);
    again.close();
    const third = SeenTable.open(dir, OPTIONS);
    expect(third.has(zero)).toBe(false);
    expect(third.has("https://example.com/a")).toBe(false);
    expect(third.has(lower.toUpperCase())).toBe(true);
    expect(third.size).toBe(1);
    third.close();
    t.close();
  });

  it("a crash after the tail write keeps the keys whose log records were written, and only those, also mid-growth", () => {
    dir = mkdtempSync(join(tmpdir(), "mocra-seen-"));
    const t = SeenTable.create(dir, OPTIONS);
    for (let i = 0; i < 700; i++) {
      t.add(md5Hex(`a${i}`));
      t.journaled(i + 1, md5Hex(`a${i}`));
    }
    t.writeTail();
    t.writeSlots();
    // the next batch: 700 more keys (growths past 875 and 1 313), entries 701-1400; the tail is written, the
    // log write reached entry 1000, the table write never happened
    for (let i = 700; i < 1400; i++) {
      t.add(md5Hex(`a${i}`));
      t.journaled(i + 1, md5Hex(`a${i}`));
    }
    t.writeTail();
    expect(existsSync(join(dir, SEEN_FILES.next))).toBe(true);
    // (the process dies here: t is dropped without a close)
    const back = SeenTable.open(dir, OPTIONS);
    expect(existsSync(join(dir, SEEN_FILES.next))).toBe(false);
    expect(back.size).toBe(700);
    expect(back.replayTail(1000)).toBe(300);
    for (let i = 0; i < 1400; i++) expect(back.has(md5Hex(`a${i}`))).toBe(i < 1000);
    expect(back.size).toBe(1000);
    back.close();
    // the replay was written and the tail emptied: a second recovery finds the same, nothing to re-add
    const third = SeenTable.open(dir, OPTIONS);
    expect(third.replayTail(5000)).toBe(0);
    expect(third.size).toBe(1000);
    third.close();
    t.close();
  });

  it("changes below a pass's worth stay in memory and seen.tail; a crash then re-adds them from the tail", () => {
    dir = mkdtempSync(join(tmpdir(), "mocra-seen-"));
    const t = SeenTable.create(dir, OPTIONS);
    for (let i = 0; i < 20_000; i++) t.add(md5Hex(`b${i}`));
    t.writeSlots(true);
    const tail = join(dir, SEEN_FILES.tail);
    expect(statSync(tail).size).toBe(0);
    for (let batch = 0; batch < 5; batch++) {
      for (let i = 20_000 + batch * 100; i < 20_100 + batch * 100; i++) {
        t.add(md5Hex(`b${i}`));
        t.journaled(i + 1, md5Hex(`b${i}`));
      }
      t.writeTail();
      t.writeSlots(); // 100 changes a batch: fewer than 1/32 of the slots, not written yet
    }
    expect(statSync(tail).size).toBe(5 * (8 + 100 * 24));
    const back = SeenTable.open(dir, OPTIONS);
    expect(back.size).toBe(20_000);
    expect(back.replayTail(20_450)).toBe(450);
    for (let i = 0; i < 20_500; i++) expect(back.has(md5Hex(`b${i}`))).toBe(i < 20_450);
    expect(statSync(tail).size).toBe(0);
    back.close();
    t.close();
  });

  it("a growth that cannot be written (a full disk) keeps answering exactly and fails the next write, naming the file", () => {
    dir = mkdtempSync(join(tmpdir(), "mocra-seen-"));
    const t = SeenTable.create(dir, OPTIONS);
    mkdirSync(join(dir, SEEN_FILES.building)); // opening the new table's file fails
    const keys = Array.from({ length: 58 }, (_, i) => md5Hex(`f${i}`)); // 64 slots: grows past 51
    for (const k of keys) expect(t.add(k)).toBe(true);
    for (const k of keys) expect(t.add(k)).toBe(false);
    expect(t.has(md5Hex("f58"))).toBe(false);
    expect(() => t.writeTail()).toThrow(/cannot write .*seen\.table\.grow/);
    expect(() => t.writeSlots(true)).toThrow(/cannot write .*seen\.table\.grow/);
    t.close();
  });

  it("a damaged or missing table is refused with one clear error, naming the file", () => {
    dir = mkdtempSync(join(tmpdir(), "mocra-seen-"));
    const t = SeenTable.create(dir, OPTIONS);
    t.add(md5Hex("a"));
    t.writeSlots(true);
    t.close();
    const path = join(dir, SEEN_FILES.table);
    truncateSync(path, 1000);
    expect(() => SeenTable.open(dir, OPTIONS)).toThrow(/seen\.table is not a seen table \(corrupted or truncated\); delete the state folder to start over/);
    rmSync(path);
    expect(() => SeenTable.open(dir, OPTIONS)).toThrow(/seen\.table is missing/);
  });

  for (const runtime of ["node", "deno"] as const) {
    it(`${runtime}: kill -9 while publishing (growths included), then recover: every committed key is seen, and the seen keys are exactly the enqueued ones`, async () => {
      dir = mkdtempSync(join(tmpdir(), "mocra-seen-"));
      let start = 0;
      const rounds = runtime === "node" ? 4 : 2;
      for (let round = 0; round < rounds; round++) {
        const args = ["tests/helpers/seen-table-child.ts", dir, String(start), round === 0 ? "0" : "1"];
        const child =
          runtime === "deno"
            ? spawn(join(ROOT, "node_modules/deno/deno"), ["run", "-A", ...args], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] })
            : spawn(process.execPath, ["--import", "tsx", ...args], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
        children.push(child);
        let out = "";
        child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
        child.stderr!.on("data", (d: Buffer) => (out += d.toString()));
        const exited = new Promise((r) => child.on("exit", r));
        const committedAt = () => Number([...out.matchAll(/committed (\d+)/g)].at(-1)?.[1] ?? start);
        // killed at a different point of a batch each round, after thousands of keys (several growths)
        const target = start + 6000 + round * 2300;
        const deadline = Date.now() + 60_000;
        while (committedAt() < target) {
          if (Date.now() > deadline || child.exitCode !== null) throw new Error(`the child did not get to ${target} keys: ${out}`);
          await new Promise((r) => setTimeout(r, 5));
        }
        await new Promise((r) => setTimeout(r, Math.floor(rnd() * 40)));
        child.kill("SIGKILL");
        await exited;
        const committed = committedAt();

        const { journal, recovered } = FrontierJournal.recover(dir, { segmentBytes: 64 << 10, fsync: false });
        const queue = new MemoryQueue({ journal, recovered });
        const enqueued = (await queue.read("request", await queue.depth("request"), 0)).map((d) => Number(d.message.url.slice(1)));
        const distinct = new Set(enqueued);
        // no key was taken as new twice (a key lost from the table would be), none is seen without its entry
        expect(distinct.size).toBe(enqueued.length);
        expect(journal.seen.size).toBe(enqueued.length);
        for (const i of distinct) expect(queue.seenBefore(md5Hex(`k${i}`))).toBe(true);
        for (let i = 0; i < committed; i++) expect(queue.seenBefore(md5Hex(`k${i}`))).toBe(true);
        const next = Math.max(...distinct) + 1;
        for (let i = next; i < next + 500; i++) expect(queue.seenBefore(md5Hex(`k${i}`))).toBe(false);
        journal.close();
        start = next;
      }
    }, 120_000);
  }
});
