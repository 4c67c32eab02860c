import { randomBytes } from "node:crypto";
import { mkdtemp, readdir, readFile, rm, stat, unlink } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { EventBus } from "../src/events/bus.ts";
import type { CrawlEvent } from "../src/events/events.ts";
import { type Response, response, uuidv4, uuidv7 } from "../src/model/index.ts";
import { BLOB_OFFLOAD_THRESHOLD, BlobOffloadQueue } from "../src/storage/blob-offload-queue.ts";
import { MemoryQueue } from "../src/queue/memory-queue.ts";
import { type BlobStorage, FileBlobStorage } from "../src/storage/blob-storage.ts";

const dirs: string[] = [];
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

async function tempRoot(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), "blob-"));
  dirs.push(d);
  return d;
}

/** Every file under `dir`, as paths relative to it. */
async function files(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name).slice(dir.length + 1))
    .sort();
}

function bigResponse(bytes: number) {
  return response({ id: uuidv7(), runId: uuidv4(), module: "m", content: new Uint8Array(randomBytes(bytes)) });
}

describe("FileBlobStorage", () => {
  it("puts under root/key (mkdir -p, no temp file left) and gets the returned path verbatim", async () => {
    const root = await tempRoot();
    const s = new FileBlobStorage(root);
    const bytes = new Uint8Array(randomBytes(5000));
    const path = await s.put("response/run/x.bin", bytes);
    expect(path).toBe(join(root, "response", "run", "x.bin"));
    expect(await files(root)).toEqual([join("response", "run", "x.bin")]);
    expect(Buffer.from(await s.get(path)).equals(Buffer.from(bytes))).toBe(true);
    // get does not join with the root: another instance (another root) reads the same path
    expect((await new FileBlobStorage(join(root, "elsewhere")).get(path)).length).toBe(5000);
    // overwrite replaces the whole file
    await s.put("response/run/x.bin", new Uint8Array([1, 2, 3]));
    expect([...(await s.get(path))]).toEqual([1, 2, 3]);
    await expect(s.put("../escape.bin", bytes)).rejects.toThrow(/relative path inside the root/);
    await expect(s.put("/abs.bin", bytes)).rejects.toThrow(/relative path inside the root/);
  });

  it("a relative root gives a relative path (as mocra's root.join(key))", () => {
    expect(new FileBlobStorage("blobs").pathOf("response/r/i.bin")).toBe(join("blobs", "response", "r", "i.bin"));
  });
});

describe("BlobOffloadQueue", () => {
  it("sends a 100 KiB body through a file and hands it back byte-identical", async () => {
    const root = await tempRoot();
    const inner = new MemoryQueue();
    const q = new BlobOffloadQueue(inner, new FileBlobStorage(root));
    const r = bigResponse(100 * 1024);
    const original = Buffer.from(r.content);
    expect(await q.publish("response", [{ message: r }])).toEqual({ accepted: 1, duplicates: 0 });
    // the caller's message is untouched
    expect(r.content.length).toBe(100 * 1024);
    expect(r.storagePath).toBeNull();

    // exactly <root>/response/<run_id>/<id>.bin, holding the raw body
    const rel = join("response", r.runId, `${r.id}.bin`);
    expect(await files(root)).toEqual([rel]);
    expect((await readFile(join(root, rel))).equals(original)).toBe(true);

    // what the inner queue holds: storage_path set to the full path, content empty
    const raw = await inner.read("response", 10, 0);
    expect(raw).toHaveLength(1);
    expect(raw[0].message.storagePath).toBe(join(root, rel));
    expect(raw[0].message.content.length).toBe(0);
    await inner.retryLater(raw[0], 0, "put it back");

    const got = await q.read("response", 10, 0);
    expect(got).toHaveLength(1);
    expect(Buffer.from(got[0].message.content).equals(original)).toBe(true);
    expect(got[0].message.storagePath).toBe(join(root, rel)); // stays set after reload (mocra)
    expect(got[0].message.id).toBe(r.id);

    // settling the reloaded delivery settles the inner one, which keeps the offloaded form
    await q.retryLater(got[0], 0, "again");
    const again = await inner.read("response", 10, 0);
    expect(again).toHaveLength(1);
    expect(again[0].message.content.length).toBe(0);
    expect(again[0].attempt).toBe(3);
    await inner.ack(again[0]);
    expect((await q.stats()).response.inFlight).toBe(0);
  });

  it("keeps bodies up to 64 KiB inline (strict >), and leaves other topics alone", async () => {
    const root = await tempRoot();
    const q = new BlobOffloadQueue(new MemoryQueue(), new FileBlobStorage(root));
    const small = bigResponse(10 * 1024);
    const edge = bigResponse(BLOB_OFFLOAD_THRESHOLD);
    const over = bigResponse(BLOB_OFFLOAD_THRESHOLD + 1);
    await q.publish("response", [{ message: small }, { message: edge }, { message: over }]);
    expect(await files(root)).toEqual([join("response", over.runId, `${over.id}.bin`)]);
    const got = await q.read("response", 10, 0);
    expect(got.map((d) => d.message.content.length)).toEqual([10 * 1024, BLOB_OFFLOAD_THRESHOLD, BLOB_OFFLOAD_THRESHOLD + 1]);
    expect(got.map((d) => d.message.storagePath !== null)).toEqual([false, false, true]);
    expect(Buffer.from(got[0].message.content).equals(Buffer.from(small.content))).toBe(true);
    for (const d of got) await q.ack(d);
    expect((await q.stats()).response.inFlight).toBe(0);
  });

  it("a blob that cannot be read dead-letters that delivery with the reason and does not return it", async () => {
    const root = await tempRoot();
    const inner = new MemoryQueue();
    const q = new BlobOffloadQueue(inner, new FileBlobStorage(root));
    const lost = bigResponse(100 * 1024);
    const kept = bigResponse(100 * 1024);
    const small = bigResponse(100);
    await q.publish("response", [{ message: lost }, { message: kept }, { message: small }]);
    await unlink(join(root, "response", lost.runId, `${lost.id}.bin`));

    const got = await q.read("response", 10, 0);
    expect(got.map((d) => d.message.id)).toEqual([kept.id, small.id]);
    const dead = await q.listDeadLetters("response", 10);
    expect(dead).toHaveLength(1);
    expect(dead[0].reason).toMatch(/^Blob reload failed: /);
    expect(dead[0].reason).toMatch(/ENOENT/);
    expect((dead[0].message as Response | undefined)?.id).toBe(lost.id);
    const stats = await q.stats();
    expect(stats.response.dead).toBe(1);
    expect(stats.response.inFlight).toBe(2);
  });

  it("publishes inline when the blob write fails, and reports it", async () => {
    const failing: BlobStorage = {
      put: () => Promise.reject(new Error("disk full")),
      get: () => Promise.reject(new Error("unused")),
    };
    const events = new EventBus();
    const seen: CrawlEvent[] = [];
    events.events$.subscribe((e) => seen.push(e));
    const q = new BlobOffloadQueue(new MemoryQueue(), failing, { events });
    const r = bigResponse(100 * 1024);
    await q.publish("response", [{ message: r }]);
    const got = await q.read("response", 1, 0);
    expect(got[0].message.content.length).toBe(100 * 1024);
    expect(got[0].message.storagePath).toBeNull();
    expect(seen).toEqual([{ type: "warning", message: expect.stringMatching(/disk full/) }]);
  });

  it("the temp-then-rename write never leaves a partial file under the final name", async () => {
    const root = await tempRoot();
    const s = new FileBlobStorage(root);
    const body = new Uint8Array(randomBytes(2 * 1024 * 1024));
    const path = s.pathOf("response/r/big.bin");
    const writing = s.put("response/r/big.bin", body);
    let sawPartial = false;
    let done = false;
    void writing.then(() => (done = true));
    while (!done) {
      const st = await stat(path).catch(() => undefined);
      if (st && st.size !== body.length) sawPartial = true;
      await new Promise((r) => setImmediate(r));
    }
    expect(sawPartial).toBe(false);
    expect(await files(root)).toEqual([join("response", "r", "big.bin")]);
  });
});
