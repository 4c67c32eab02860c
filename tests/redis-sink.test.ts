import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import type { Redis } from "ioredis";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { defaultConfig } from "../src/config/index.ts";
import { countItems, exportItems, listItemModules } from "../src/storage/export-redis.ts";
import { itemSeenKey, itemStreamKey, RedisItemSink } from "../src/storage/redis-sink.ts";
import { deleteNamespace, rawClient, REDIS_HOST, REDIS_PORT, requireRedis, uniqueName } from "./helpers/redis.ts";

await requireRedis("redis-sink tests");

describe("RedisItemSink", () => {
  const cleanups: Array<() => Promise<unknown>> = [];
  let redis: Redis;

  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });
  afterAll(() => redis?.disconnect());

  /** A fresh namespace, deleted after the test. */
  function namespace(): string {
    const name = uniqueName();
    cleanups.push(() => deleteNamespace(name));
    redis ??= rawClient();
    return name;
  }

  function sink(name: string, opts = {}): RedisItemSink {
    const s = new RedisItemSink(rawClient(), name, opts, true);
    cleanups.push(() => s.close());
    return s;
  }

  it("stores a page once: the same fingerprint twice adds nothing", async () => {
    const name = namespace();
    const s = sink(name);
    expect(await s.write({ module: "books", fingerprint: "fp1", items: [{ a: 1 }, { a: 2 }] })).toBe(true);
    expect(await s.write({ module: "books", fingerprint: "fp1", items: [{ a: 1 }, { a: 2 }] })).toBe(false);
    // also when both are in the same pipeline / script call
    const [x, y] = await Promise.all([
      s.write({ module: "books", fingerprint: "fp2", items: [{ b: 1 }] }),
      s.write({ module: "books", fingerprint: "fp2", items: [{ b: 1 }] }),
    ]);
    expect([x, y]).toEqual([true, false]);
    expect(await countItems(redis, name, "books")).toBe(3);
    expect(await redis.scard(itemSeenKey(name, "books"))).toBe(2);
    const entries = await redis.xrange(itemStreamKey(name, "books"), "-", "+");
    expect(entries.map(([, f]) => f)).toEqual([
      ["fingerprint", "fp1", "item", '{"a":1}'],
      ["fingerprint", "fp1", "item", '{"a":2}'],
      ["fingerprint", "fp2", "item", '{"b":1}'],
    ]);
    // a page without items stores nothing and takes no seen-set entry
    expect(await s.write({ module: "books", fingerprint: "empty", items: [] })).toBe(true);
    expect(await redis.sismember(itemSeenKey(name, "books"), "empty")).toBe(0);
    expect(s.describe()).toBe(`redis ${REDIS_HOST}:${REDIS_PORT} stream ${name}:items:<module>`);
  });

  it("two sinks writing the same fingerprints concurrently store each page exactly once", async () => {
    const name = namespace();
    const a = sink(name);
    const b = sink(name);
    const pages = 500;
    const write = (s: RedisItemSink, i: number) =>
      s.write({ module: i % 2 ? "odd" : "even", fingerprint: `fp${i}`, items: [{ i, k: 0 }, { i, k: 1 }] });
    const results = await Promise.all(
      Array.from({ length: pages }, (_, i) => [write(a, i), write(b, i), write(a, i)]).flat(),
    );
    // per page: exactly one of the three writes stored it
    for (let i = 0; i < pages; i++) expect(results.slice(3 * i, 3 * i + 3).filter(Boolean)).toHaveLength(1);
    expect(await countItems(redis, name, "even")).toBe(pages);
    expect(await countItems(redis, name, "odd")).toBe(pages);
    const items = (await redis.xrange(itemStreamKey(name, "even"), "-", "+")).map(([, f]) => f[3]);
    expect(new Set(items).size).toBe(pages);
    expect(await listItemModules(redis, name)).toEqual(["even", "odd"]);
  });

  it("throughput: 10 000 items", async () => {
    const name = namespace();
    const s = sink(name);
    const item = (i: number) => ({ url: `https://shop.example/p/${i}`, title: `Product ${i}`, price: i * 1.25, tags: ["a", "b"] });
    for (const [pages, perPage] of [
      [10_000, 1],
      [1_000, 10],
    ] as const) {
      const module = `m${perPage}`;
      const started = performance.now();
      const stored = await Promise.all(
        Array.from({ length: pages }, (_, p) =>
          s.write({ module, fingerprint: `fp${p}`, items: Array.from({ length: perPage }, (_, k) => item(p * perPage + k)) }),
        ),
      );
      const ms = performance.now() - started;
      expect(stored.every(Boolean)).toBe(true);
      expect(await countItems(redis, name, module)).toBe(10_000);
      console.log(
        `RedisItemSink throughput: 10000 items (${pages} pages x ${perPage}) in ${ms.toFixed(0)} ms = ${Math.round(10_000 / (ms / 1000))} items/s`,
      );
    }
  });

  it("exports exactly the items, in order, to a file, a Node stream and a web stream", async () => {
    const name = namespace();
    const s = sink(name);
    const expected: string[] = [];
    // 2 500 items: more than two XRANGE pages
    for (let p = 0; p < 500; p++) {
      const items = Array.from({ length: 5 }, (_, k) => ({ p, k, text: `ü "quoted"\n${p}/${k}` }));
      for (const it of items) expected.push(JSON.stringify(it));
      await s.write({ module: "shop", fingerprint: `fp${p}`, items });
      if (p % 100 === 0) await s.write({ module: "shop", fingerprint: `fp${p}`, items }); // redelivery
    }
    const dir = await mkdtemp(join(tmpdir(), "redis-sink-"));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));

    const file = join(dir, "out", "shop.jsonl");
    expect(await exportItems(redis, name, "shop", file)).toBe(2500);
    expect(await readFile(file, "utf8")).toBe(expected.join("\n") + "\n");

    let nodeText = "";
    const node = new Writable({
      write(chunk: Buffer, _enc, cb) {
        nodeText += chunk.toString("utf8");
        cb();
      },
    });
    expect(await exportItems(redis, name, "shop", node, { pageSize: 700 })).toBe(2500);
    expect(nodeText).toBe(expected.join("\n") + "\n");

    const chunks: Uint8Array[] = [];
    const web = new WritableStream<Uint8Array>({ write: (c) => void chunks.push(c) });
    expect(await exportItems(redis, name, "shop", web)).toBe(2500);
    expect(Buffer.concat(chunks).toString("utf8")).toBe(expected.join("\n") + "\n");

    // export and remove: the stream empties, the seen-set stays (a redelivery still adds nothing)
    expect(await exportItems(redis, name, "shop", join(dir, "again.jsonl"), { removeExported: true })).toBe(2500);
    expect(await countItems(redis, name, "shop")).toBe(0);
    expect(await s.write({ module: "shop", fingerprint: "fp7", items: [{ again: true }] })).toBe(false);
    expect(await s.write({ module: "shop", fingerprint: "new", items: [{ fresh: true }] })).toBe(true);
    expect(await exportItems(redis, name, "shop", join(dir, "rest.jsonl"))).toBe(1);
    expect(await readFile(join(dir, "rest.jsonl"), "utf8")).toBe('{"fresh":true}\n');
    expect(await exportItems(redis, name, "nothing", join(dir, "none.jsonl"))).toBe(0);
  });

  it("bounds: maxLen trims the stream, seenTtlSecs puts a TTL on the seen-set", async () => {
    const name = namespace();
    const s = sink(name, { maxLen: 100, seenTtlSecs: 60 });
    await Promise.all(Array.from({ length: 1000 }, (_, i) => s.write({ module: "m", fingerprint: `f${i}`, items: [{ i }] })));
    const len = await countItems(redis, name, "m");
    expect(len).toBeGreaterThanOrEqual(100);
    expect(len).toBeLessThan(1000);
    const ttl = await redis.ttl(itemSeenKey(name, "m"));
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(60);
    expect(await redis.ttl(itemStreamKey(name, "m"))).toBe(-1);
  });

  it("connects from a Config and rejects a module name that could collide with other keys", async () => {
    const name = namespace();
    const c = defaultConfig();
    c.name = name;
    c.channelConfig.redis.redisHost = REDIS_HOST;
    c.channelConfig.redis.redisPort = REDIS_PORT;
    const s = await RedisItemSink.connect(c);
    cleanups.push(() => s.close());
    await expect(s.write({ module: "a:seen", fingerprint: "x", items: [1] })).rejects.toThrow(/invalid module name/);
    expect(await s.write({ module: "a", fingerprint: "x", items: [1] })).toBe(true);
    await s.close();
    await expect(s.write({ module: "a", fingerprint: "y", items: [1] })).rejects.toThrow(/after close/);
  });
});
