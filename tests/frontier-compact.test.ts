// The standalone frontier's compact records (state format 2, src/state/compact-record.ts): what
// goes in comes back byte for byte, order survives a restart, and a long crawl killed with -9
// resumes with nothing lost.
import { mkdtempSync, readdirSync, rmSync, statSync } from "node:fs";
import { readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { type ShopServer, startShop } from "../examples/demo-shop/shop.ts";
import { jsonCodec } from "../src/codec/index.ts";
import { cookie, executionMark, fingerprint, metaData, type Priority, request, type Request, taskModel } from "../src/model/index.ts";
import { MemoryQueue } from "../src/queue/memory-queue.ts";
import { Batch, encodeBatch, REQUEST_FIELDS_COMPARED, sameExceptIdAndUrl } from "../src/state/compact-record.ts";
import { FrontierJournal } from "../src/state/frontier-journal.ts";
import { readItems, runStandaloneProcess, type StandaloneDirs, standaloneDirs, until } from "./helpers/standalone-process.ts";

const OPTIONS = { segmentBytes: 1 << 20, fsync: false };
let dir = "";
let shop: ShopServer | undefined;
let dirs: StandaloneDirs | undefined;
afterEach(async () => {
  if (dir) rmSync(dir, { recursive: true, force: true });
  await shop?.close();
  if (dirs) await rm(dirs.dir, { recursive: true, force: true });
  dir = "";
  shop = dirs = undefined;
});

function reopen(hotEntries = 0): MemoryQueue {
  const { journal, recovered, notes } = FrontierJournal.recover(dir, OPTIONS);
  expect(notes).toEqual([]);
  return new MemoryQueue({ journal, recovered, hotEntries });
}

/** Follow-ups as a page makes them (one template), and some that differ from it in every way. */
function variedRequests(): Request[] {
  const base = (url: string) =>
    request({ url, module: "shop", account: "acc", platform: "web", meta: metaData({ task: { private_hosts: ["127.0.0.1"] } }), context: executionMark({ stepIdx: 1 }) });
  return [
    base("https://example.com/a"),
    base("https://example.com/a/b?x=1"),
    base("https://example.com/ü/例え?q=é"), // non-ASCII
    base("https://other.example/"),
    { ...base("https://example.com/headers"), headers: [{ key: "X-A", value: "1" }] },
    { ...base("https://example.com/body"), method: "POST", body: new Uint8Array([0, 255, 1, 128, 10]) },
    { ...base("https://example.com/json"), method: "POST", json: { a: [1, null, "x"], b: { c: true } } },
    { ...base("https://example.com/form"), method: "POST", form: { q: "1" } },
    { ...base("https://example.com/params"), params: [["a", "1"], ["b", "ü"]] as Array<[string, string]> },
    { ...base("https://example.com/cookies"), cookies: [cookie({ name: "s", value: "v" })] },
    { ...base("https://example.com/meta"), meta: metaData({ task: { deep: [{ x: 1 }] }, loginInfo: "li", moduleConfig: 3, traitMeta: null }) },
    { ...base("https://example.com/hash"), hashStr: "my-own-key" },
    { ...base("https://example.com/upper"), id: "0190A1B2-C3D4-7E5F-8A9B-0C1D2E3F4A5B" }, // not canonical: kept whole
    { ...base("https://example.com/misc"), timeSleepSecs: 2, enableLocker: true, timeout: 7, retryTimes: 3, proxy: null, downloadMiddleware: ["m1"] },
    base("https://example.com/last"),
  ];
}

describe("compact frontier records", () => {
  it("give back every message byte for byte (template entries, whole entries, binary bodies, meta), a new object each read", async () => {
    dir = mkdtempSync(join(tmpdir(), "mocra-compact-"));
    const q = new MemoryQueue({ journal: FrontierJournal.create(dir, OPTIONS), hotEntries: 0 });
    const sent = variedRequests();
    const keys = sent.map((m, i) => (i % 5 === 4 ? undefined : i % 5 === 3 ? `custom:${i}` : fingerprint(m)));
    await q.publish("request", sent.map((message, i) => ({ message, dedupKey: keys[i] })));
    await q.publish("task", [{ message: taskModel({ module: ["shop"] }) }]);
    const check = async (queue: MemoryQueue) => {
      const got = await queue.read("request", 100, 0);
      expect(got.map((d) => d.message.url)).toEqual(sent.map((m) => m.url));
      for (const [i, d] of got.entries()) {
        expect(Buffer.from(jsonCodec.encode("request", d.message)).toString()).toBe(Buffer.from(jsonCodec.encode("request", sent[i])).toString());
        expect(d.message).toEqual(jsonCodec.decode("request", jsonCodec.encode("request", sent[i])));
        expect(d.message).not.toBe(sent[i]);
      }
      return got;
    };
    const first = await check(q);
    // after a restart: the same bytes, and every key is seen
    const q2 = reopen();
    await check(q2);
    expect((await q2.read("task", 5, 0)).length).toBe(1);
    const repeat = await q2.publish("request", sent.map((message, i) => ({ message, dedupKey: keys[i] })));
    const keyless = keys.filter((k) => k === undefined).length;
    expect(repeat).toEqual({ accepted: keyless, duplicates: sent.length - keyless }); // those without a key are never duplicates
  });

  it("stores a page's follow-ups in a few dozen bytes each", () => {
    const template = request({ url: "http://127.0.0.1:8080/p/0", module: "scale_site", meta: metaData({ task: { private_hosts: ["127.0.0.1"] } }) });
    const messages = Array.from({ length: 500 }, (_, i) => ({ ...template, id: request({ url: "x" }).id, url: `http://127.0.0.1:8080/p/${1_000_000 + i}` }));
    const body = encodeBatch({ topic: "request", priority: "normal", attempts: 0, seq: 1, count: 500, due: undefined, seenEnd: 0 }, messages, messages.map((m) => fingerprint(m)));
    expect(body.length / 500).toBeLessThan(30);
    const batch = new Batch(body);
    for (const i of [0, 1, 499]) {
      expect(batch.message(i)).toEqual(messages[i]);
      expect(batch.dedupKey(i)).toBe(fingerprint(messages[i]));
    }
    // follow-ups that carry their own meta: the template plus the differing part of each
    const own = messages.map((m, i) => ({ ...m, meta: metaData({ task: { private_hosts: ["127.0.0.1"] }, traitMeta: { title: `link ${i}` } }) }));
    const ownBody = encodeBatch({ topic: "request", priority: "normal", attempts: 0, seq: 1, count: 500, due: undefined, seenEnd: 0 }, own, own.map((m) => fingerprint(m)));
    expect(ownBody.length / 500).toBeLessThan(80);
    const ownBatch = new Batch(ownBody);
    for (const i of [0, 1, 250, 499]) expect(ownBatch.message(i)).toEqual(own[i]);
    // a new object each read (the journal keeps the record read last): a consumer may change what it got
    const given = batch.message(1) as Request;
    given.meta.task = "changed";
    given.headers.push({ key: "k", value: "v" });
    expect(batch.message(1)).toEqual(messages[1]);
  });

  it("keeps strict priorities and first-in-first-out order across a restart (retries at the end of their list)", async () => {
    dir = mkdtempSync(join(tmpdir(), "mocra-compact-"));
    const q = new MemoryQueue({ journal: FrontierJournal.create(dir, { ...OPTIONS, segmentBytes: 64 << 10 }), hotEntries: 3 });
    const priorities: Priority[] = ["low", "normal", "high"];
    const expected: Record<Priority, string[]> = { high: [], normal: [], low: [] };
    let n = 0;
    for (let page = 0; page < 60; page++) {
      // a page's follow-ups, mostly of one priority, some of others (records split by priority)
      const items = Array.from({ length: 40 }, (_, i) => {
        const priority = i % 7 === 0 ? priorities[(page + i) % 3] : priorities[page % 3];
        const message = request({ url: `https://example.com/${page}/${i}`, priority });
        return { message, dedupKey: fingerprint(message), priority };
      });
      await q.publish("request", items);
      for (const it of items) expected[it.priority].push(it.message.url);
      // a consumer takes some: acks most, retries a few (they go to the end of their list)
      for (const d of await q.read("request", 25, 0)) {
        const list = expected[d.priority];
        expect(list.shift()).toBe(d.message.url);
        if (++n % 9 === 0) {
          await q.retryLater(d, 0, "503");
          list.push(d.message.url);
        } else await q.ack(d);
      }
    }
    const inFlight = await q.read("request", 5, 0); // in flight at the crash: delivered again, first
    for (const d of inFlight) expect(expected[d.priority].slice(0, 5)).toContain(d.message.url);
    const q2 = reopen(3);
    const after = await q2.read("request", 10_000, 0);
    expect(after.map((d) => d.message.url)).toEqual([...expected.high, ...expected.normal, ...expected.low]);
    expect(after.some((d) => d.attempt > 1)).toBe(true); // retried ones count their deliveries
  });

  it("a publish of mixed priorities is one record per priority, each list in publish order", async () => {
    dir = mkdtempSync(join(tmpdir(), "mocra-compact-"));
    const q = new MemoryQueue({ journal: FrontierJournal.create(dir, OPTIONS), hotEntries: 0 });
    const priorities: Priority[] = ["low", "high", "normal"];
    const sent = Array.from({ length: 300 }, (_, i) => request({ url: `https://example.com/${i}`, priority: priorities[i % 3] }));
    await q.publish("request", sent.map((message) => ({ message, dedupKey: fingerprint(message) })));
    // three templates (~1 KB) and 300 entries of a few dozen bytes: not one record per entry
    expect(statSync(join(dir, "frontier-000001.log")).size).toBeLessThan(3 * 1200 + 300 * 40);
    const expected = ["high", "normal", "low"].flatMap((p) => sent.filter((m) => m.priority === p).map((m) => m.url));
    expect((await q.read("request", 300, 0)).map((d) => d.message.url)).toEqual(expected);
    expect((await reopen().read("request", 300, 0)).map((d) => d.message.url)).toEqual(expected);
  });

  it("keeps the dedup keys across a crash, a custom key included (the seen table and its tail)", async () => {
    dir = mkdtempSync(join(tmpdir(), "mocra-compact-"));
    const q = new MemoryQueue({ journal: FrontierJournal.create(dir, OPTIONS) });
    const sent = Array.from({ length: 30 }, (_, i) => request({ url: `https://example.com/${i}` }));
    await q.publish("request", sent.slice(0, 10).map((message) => ({ message, dedupKey: fingerprint(message) })));
    await q.publish("request", sent.slice(10).map((message, i) => ({ message, dedupKey: i === 0 ? "custom" : fingerprint(message) })));
    // (the process dies here: q is dropped without a close)
    const q2 = reopen();
    const again = await q2.publish("request", sent.map((message, i) => ({ message, dedupKey: i === 10 ? "custom" : fingerprint(message) })));
    expect(again).toEqual({ accepted: 0, duplicates: 30 });
  });

  it("a state folder of the older format (1) gets one clear line on --resume", async () => {
    dirs = await standaloneDirs("http://127.0.0.1:1/list/0");
    const folder = join(dirs.state, "resume_test");
    await import("node:fs/promises").then((fs) => fs.mkdir(folder, { recursive: true }));
    await writeFile(join(folder, "state.json"), JSON.stringify({ format: 1, name: "resume_test", modules: ["demo_shop"], status: "running", started: "x", updated: "x" }));
    const run = runStandaloneProcess(dirs, "node", ["--resume"]);
    const { code } = await run.exited;
    expect(code, run.output()).toBe(2);
    const lines = run.output().trim().split("\n");
    expect(lines.length, run.output()).toBe(1);
    expect(lines[0]).toMatch(/saved by an older mocra-ts \(state format 1; this version reads format 2\): finish it with that version, or run without --resume/);
  }, 60_000);
});

describe("a long crawl killed with -9", () => {
  it("resumes with nothing lost: every item once, every page fetched", async () => {
    const ITEMS = 3000;
    // list pages of 250 item links: one compact record each
    shop = await startShop({ items: ITEMS, perPage: 250, latencyMs: 1 });
    dirs = await standaloneDirs(`${shop.url}/list/0`);
    const pageHits = () => [...shop!.hits].reduce((n, [path, c]) => (path === "/robots.txt" ? n : n + c), 0);
    for (const [i, at] of [400, 1200, 2100, 2800].entries()) {
      const run = runStandaloneProcess(dirs, "node", i > 0 ? ["--resume"] : []);
      const reached = await until(run, () => pageHits() >= at, 120_000);
      if (reached) run.child.kill("SIGKILL");
      await run.exited;
      // what was in flight may still land: wait until the hits stop moving
      for (let still = 0, before = pageHits(); still < 5; ) {
        await new Promise((r) => setTimeout(r, 50));
        still = pageHits() === before ? still + 1 : 0;
        before = pageHits();
      }
    }
    const last = runStandaloneProcess(dirs, "node", ["--resume"]);
    expect((await last.exited).code, last.output()).toBe(0);
    const items = await readItems(dirs);
    expect(new Set(items.map((i) => new URL(i.url).pathname)).size).toBe(ITEMS);
    expect(items.length).toBe(ITEMS);
    const pages = [...shop.hits.keys()].filter((p) => p !== "/robots.txt");
    expect(pages.length).toBe(ITEMS + Math.ceil(ITEMS / 250));
    const state = JSON.parse(await readFile(join(dirs.state, "resume_test", "state.json"), "utf8"));
    expect(state.status).toBe("finished");
    expect(readdirSync(join(dirs.state, "resume_test")).filter((f) => f.startsWith("frontier-")).length).toBeLessThanOrEqual(2);
  }, 300_000);
});

describe("sameExceptIdAndUrl", () => {
  it("compares every field the codec writes but id and url", () => {
    const a = request({ url: "https://example.com/a", module: "m" });
    expect(sameExceptIdAndUrl(a, { ...a, id: request({ url: "x" }).id, url: "https://example.com/b" })).toBe(true);
    // each field the JSON codec writes (REQUEST_FIELDS_COMPARED, from the schema) changed alone
    for (const key of REQUEST_FIELDS_COMPARED) {
      const v = (a as unknown as Record<string, unknown>)[key];
      const changed =
        key === "meta" ? { ...a.meta, moduleConfig: 1 } : key === "context" ? { ...a.context, stepIdx: 9 } :
        typeof v === "string" ? v + "x" : typeof v === "number" ? v + 1 : typeof v === "boolean" ? !v : Array.isArray(v) ? [...v, "x"] : v === null || v === undefined ? "set" : { ...(v as object), extra: 1 };
      expect(sameExceptIdAndUrl(a, { ...a, [key]: changed } as Request), key).toBe(false);
    }
    expect(sameExceptIdAndUrl({ ...a, body: new Uint8Array([1, 2]) }, { ...a, body: new Uint8Array([1, 3]) })).toBe(false);
    expect(sameExceptIdAndUrl({ ...a, meta: metaData({ task: { a: [1] } }) }, { ...a, meta: metaData({ task: { a: [1] } }) })).toBe(true);
    expect(sameExceptIdAndUrl({ ...a, meta: metaData({ task: { a: [1] } }) }, { ...a, meta: metaData({ task: { a: [2] } }) })).toBe(false);
    for (const c of ["moduleId", "epoch", "stayCurrentStep"] as const) expect(sameExceptIdAndUrl(a, { ...a, context: { ...a.context, [c]: c === "stayCurrentStep" ? true : "7" } } as Request), c).toBe(false);
  });
});
