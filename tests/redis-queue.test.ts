// Integration tests of the Redis Streams queue against the real Redis at 127.0.0.1:6379
// (skipped with a message when it is not there, except under CI=true). Every test works in its
// own namespace (t_<random>) and deletes its keys afterwards.

import { Buffer } from "node:buffer";
import { Redis } from "ioredis";
import { afterEach, describe, expect, it } from "vitest";
import { codecByName } from "../src/codec/index.ts";
import type { Config } from "../src/config/index.ts";
import { type Priority, request, type Request } from "../src/model/index.ts";
import { compressPayload, decompressPayload, initCompression } from "../src/queue/compression.ts";
import type { Delivery } from "../src/queue/queue.ts";
import { crc32, QueueKeys, RedisQueue, type RedisQueueFatalError, type RedisQueueOptions } from "../src/queue/redis/index.ts";
import { SEEN_FIELD_BYTES, seenSlot } from "../src/queue/redis/keys.ts";
import {
  deleteNamespace,
  freePort,
  rawClient,
  redisTestConfig,
  requireRedis,
  startRedisServer,
  stopRedisServer,
} from "./helpers/redis.ts";

await requireRedis("redis-queue tests");

/** mocra's streaming zstd (no content size, no checksum) of a JSON Request, made with `zstd -3 --no-content-size --no-check`. */
const MOCRA_FRAME_HEX =
  "28b52ffd0010850d00a6184721406daa0373385a19636509e8d968428414e6299f19a7214fb1f7a7f8ca1886614040003d003c0009c608609763dad844e240d7bdfc7cbd7873669b7ebe2b2666dd2223a437ff397bacb42e777345822c0ed4005108b60019480208095828343950243f4fea11014a53d95403af9baf15dbcf351138efc8370b972aab164a886db93026036adf244c753a5eef5bc56046370f86858873f836e92e37574048e0a597dddc05e97617ccb40b544d29a9ade98661e17c9f42ec4a49b14ccaab4170ba79b6626a35f8b9dc052972245e34860e37e790e95377f3c856faba41298d51728f2f658f1dad1eabfc3210afdcb5d0b6af612e5097861b1ff6654329fbdccd13e42dbe9b4776dbf7224a87365c10bb6d24956e1b7663bb31420b033b205002311055313cff8dba10006f6e27b9c81a554968298ac9b15f81305f630982bf0517f2411bc52e07a9850bf26e42512d1368b11f227a4cb8b209fc01ee4b90616b64512086de850900f0f335bea2440ba1070870290f4879031c211f15a9e0d711148fa2d906ac03382c1336d86db7a16db2d618ea9a109103c5e10205d8ae67edba725b7cd8c15f82608c0d9001";
/** mocra's golden vector: zstd encode_all of 2000 × "a" (18 bytes, frame header descriptor 0x00). */
const GOLDEN_2000A_HEX = "28b52ffd00584d00001061610100cbff000b";

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => {});
});

/** Connects a queue in `config`'s namespace; closed and cleaned up after the test. */
async function open(config: Config, options: RedisQueueOptions = {}): Promise<RedisQueue> {
  const q = await RedisQueue.connect(config, { onError: () => {}, ...options });
  // cleanups run in reverse: close first, then delete (an open queue would re-create its streams)
  cleanups.push(() => deleteNamespace(config.name, config.channelConfig.redis.redisPort));
  cleanups.push(() => q.close());
  return q;
}

function req(n: number, priority: Priority = "normal", extra: Partial<Request> = {}): Request {
  return request({ url: `https://example.com/page/${n}`, priority, ...extra });
}

async function readAll(q: RedisQueue, max: number, want: number, blockMs = 200, rounds = 50): Promise<Delivery<"request">[]> {
  const got: Delivery<"request">[] = [];
  for (let i = 0; i < rounds && got.length < want; i++) got.push(...(await q.read("request", max, blockMs)));
  return got;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("crc32 and keys", () => {
  it("shards like mocra", () => {
    expect(crc32("0190a1b2-c3d4-7e5f-8a9b-000000000001")).toBe(3767265567);
    expect(crc32("0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b")).toBe(2930607885);
    const k = new QueueKeys("crawler_prod_like", 8);
    expect(k.streamFor("request", "normal", req(0, "normal", { id: "0190a1b2-c3d4-7e5f-8a9b-000000000001" }))).toBe("{crawler_prod_like:request-normal:7}");
    expect(new QueueKeys("ns", 1).stream("task", "high", 0)).toBe("{ns:task-high}");
    expect(k.group).toBe("crawler_prod_like:crawler_group");
    expect(k.dlq("{ns:task-high:3}")).toBe("{ns:task-high:3}:dlq");
  });
});

describe("payload framing", () => {
  it("decodes mocra's zstd frames without content size, and gzip", async () => {
    const golden = decompressPayload(Buffer.from(GOLDEN_2000A_HEX, "hex"));
    expect(Buffer.from(golden).toString()).toBe("a".repeat(2000));
    const r = codecByName("json").decode("request", decompressPayload(Buffer.from(MOCRA_FRAME_HEX, "hex")));
    expect(r.id).toBe("0190a1b2-c3d4-7e5f-8a9b-000000000001");
    expect(r.url).toBe(`https://example.com/${"p".repeat(1500)}`);
    const { gzipSync } = await import("node:zlib");
    expect(Buffer.from(decompressPayload(gzipSync("hello"))).toString()).toBe("hello");
  });

  it("decodes a frame without content size whose output outgrows the first guess", async () => {
    await initCompression();
    // two raw blocks of 100 000 bytes each, no Frame_Content_Size, 2 MiB window (as mocra's)
    const block = (size: number, last: boolean, fill: number) => {
      const h = (size << 3) | (last ? 1 : 0); // block type 0 = raw
      return Buffer.concat([Buffer.from([h & 0xff, (h >> 8) & 0xff, (h >> 16) & 0xff]), Buffer.alloc(size, fill)]);
    };
    const frame = Buffer.concat([Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x58]), block(100_000, false, 0x61), block(100_000, true, 0x62)]);
    const out = Buffer.from(decompressPayload(frame));
    expect(out.length).toBe(200_000);
    expect(out[99_999]).toBe(0x61);
    expect(out[100_000]).toBe(0x62);
  });

  it("compresses above the threshold only (strictly greater), level-3 zstd", async () => {
    expect(await initCompression()).toBe(true);
    const small = new Uint8Array(1024).fill(0x61);
    expect(compressPayload(small, 1024)).toBe(small);
    const big = new Uint8Array(1025).fill(0x61);
    const z = compressPayload(big, 1024);
    expect([...z.slice(0, 4)]).toEqual([0x28, 0xb5, 0x2f, 0xfd]);
    expect(Buffer.from(decompressPayload(z))).toEqual(Buffer.from(big));
  });
});

describe("RedisQueue", () => {
  it.each(["json", "msgpack", "bincode"] as const)("publish, read, ack round trip (%s)", async (codec) => {
    const config = redisTestConfig((c) => (c.channelConfig.queueCodec = codec));
    const q = await open(config);
    const sent = Array.from({ length: 20 }, (_, i) => req(i, (["high", "normal", "low"] as const)[i % 3]));
    expect(await q.publish("request", sent.map((message) => ({ message })))).toEqual({ accepted: 20, duplicates: 0 });
    const got = await readAll(q, 100, 20);
    expect(got).toHaveLength(20);
    expect(new Set(got.map((d) => d.message.url))).toEqual(new Set(sent.map((r) => r.url)));
    for (const d of got) {
      expect(d.attempt).toBe(1);
      expect(d.priority).toBe(sent.find((r) => r.id === d.message.id)!.priority);
      expect(d.message).toEqual(sent.find((r) => r.id === d.message.id));
    }
    let s = (await q.stats()).request;
    expect(s.inFlight).toBe(20);
    await Promise.all(got.map((d) => q.ack(d)));
    s = (await q.stats()).request;
    expect(s).toEqual({ ready: { high: 0, normal: 0, low: 0 }, inFlight: 0, delayed: 0, dead: 0 });
    expect(await q.read("request", 10, 50)).toEqual([]);
  });

  it("reads in strict priority: normal only with leftover credit, low last", async () => {
    const q = await open(redisTestConfig());
    await q.publish("request", [0, 1, 2].map((i) => ({ message: req(i, "low") })));
    await q.publish("request", [3, 4, 5].map((i) => ({ message: req(i, "normal") })));
    await q.publish("request", [6, 7, 8].map((i) => ({ message: req(i, "high") })));
    expect(await q.depth("request")).toBe(9);
    const a = await q.read("request", 4, 100);
    expect(a.map((d) => d.priority)).toEqual(["high", "high", "high", "normal"]);
    const b = await q.read("request", 4, 100);
    expect(b.map((d) => d.priority)).toEqual(["normal", "normal", "low", "low"]);
    const c = await q.read("request", 4, 100);
    expect(c.map((d) => d.priority)).toEqual(["low"]);
    // a high message published now overtakes the low ones left
    await q.publish("request", [{ message: req(9, "low") }, { message: req(10, "high") }]);
    expect((await q.read("request", 1, 100)).map((d) => d.priority)).toEqual(["high"]);
  });

  it("never returns more than the credit asked for, across shards", async () => {
    const q = await open(redisTestConfig((c) => (c.channelConfig.redis.shards = 8)));
    await q.publish("request", Array.from({ length: 100 }, (_, i) => ({ message: req(i, (["high", "normal", "low"] as const)[i % 3]) })));
    const seen = new Set<string>();
    for (const max of [1, 7, 13, 5, 29, 64]) {
      const got = await q.read("request", max, 100);
      expect(got.length).toBeLessThanOrEqual(max);
      expect(got.length).toBe(Math.min(max, 100 - seen.size));
      for (const d of got) seen.add(d.message.id);
    }
    expect(seen.size).toBe(100);
  });

  it("a blocked read wakes up when a message arrives, without polling (commands counted)", async () => {
    const config = redisTestConfig((c) => {
      c.channelConfig.redis.claimInterval = 60_000; // no janitor sweep inside the window
    });
    const q = await open(config);
    const p = await open({ ...config });
    // every command this process sends on q's blocking reader connection (<name>:<consumer>:request),
    // connection set-up (CLIENT SETNAME, INFO, ...) aside
    const reads: string[] = [];
    const proto = Redis.prototype as unknown as { sendCommand(cmd: { name: string }, ...rest: unknown[]): unknown };
    const original = proto.sendCommand;
    proto.sendCommand = function (this: Redis, cmd: { name: string }, ...rest: unknown[]) {
      const conn = String(this.options.connectionName ?? "");
      if (conn.startsWith(`${config.name}:${q.consumer}:request`) && !["client", "info", "select", "auth"].includes(cmd.name.toLowerCase())) reads.push(cmd.name);
      return original.call(this, cmd, ...rest);
    };
    let got: Delivery<"request">[];
    try {
      const t0 = Date.now();
      const pending = q.read("request", 10, 5000);
      await sleep(1_500); // idle: a polling reader would send a command every few ms here
      const idleReads = reads.length;
      await p.publish("request", [{ message: req(1, "low") }, { message: req(2, "high") }]);
      got = await pending;
      const wokeAfter = Date.now() - t0;
      console.log(`idle 1.5 s blocked read: ${idleReads} reader commands (${reads.slice(0, idleReads).join(", ")}); woke ${wokeAfter - 1_500} ms after the publish`);
      expect(idleReads).toBeGreaterThanOrEqual(1); // it did read (and block)
      expect(idleReads).toBeLessThanOrEqual(2);
      expect(wokeAfter).toBeLessThan(1_500 + 1_500);
    } finally {
      proto.sendCommand = original;
    }
    expect(got.length).toBeGreaterThanOrEqual(1);
    const rest = await readAll(q, 10, 2 - got.length);
    expect(got.length + rest.length).toBe(2);
  });

  it.each(["buckets", "keys"] as const)("dedup: one atomic check-and-enqueue, also across two queue instances (%s layout)", async (layout) => {
    const config = redisTestConfig((c) => (c.crawler.dedupLayout = layout));
    const a = await open(config);
    const b = await open({ ...config });
    const r = req(1);
    expect(await a.publish("request", [{ message: r, dedupKey: "fp1" }, { message: r, dedupKey: "fp1" }])).toEqual({ accepted: 1, duplicates: 1 });
    expect(await b.publish("request", [{ message: r, dedupKey: "fp1" }, { message: req(2), dedupKey: "fp2" }, { message: req(3) }])).toEqual({
      accepted: 2,
      duplicates: 1,
    });
    const raw = rawClient();
    cleanups.push(async () => raw.disconnect());
    const keys = new QueueKeys(config.name, 1);
    const marker = layout === "keys" ? keys.dedup("fp1") : keys.seenBucket(seenSlot("fp1").bucket);
    const ttl = await raw.ttl(marker);
    const t = config.crawler.dedupTtlSecs;
    // "buckets": the TTL written is dedup_ttl_secs + 1/4 (seen-keys.ts SeenBuckets)
    expect(ttl).toBeGreaterThan(layout === "keys" ? 0 : t);
    expect(ttl).toBeLessThanOrEqual(layout === "keys" ? t : t + Math.ceil(t / 4));
    // the other layout's key was not written
    expect(await raw.exists(layout === "keys" ? keys.seenBucket(seenSlot("fp1").bucket) : keys.dedup("fp1"))).toBe(0);
    expect(await readAll(a, 10, 3)).toHaveLength(3);
  });

  it("dedup buckets: exact across many buckets and prefix collisions, against a model (no duplicate enqueued, no new URL dropped)", async () => {
    const config = redisTestConfig();
    const a = await open(config);
    const b = await open({ ...config });
    let seed = 0x2f6b1c3d;
    const random = (): number => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
    const bytes = (n: number): Buffer => Buffer.from(Array.from({ length: n }, () => Math.floor(random() * 256)));
    const hex = (buf: Buffer): string => buf.toString("hex");
    const pool = new Set<string>();
    // random fingerprints: many buckets
    for (let i = 0; i < 600; i++) pool.add(hex(bytes(16)));
    // 400 in 4 buckets (the same first 18 bits, the rest random): prefix collisions
    for (let i = 0; i < 400; i++) {
      const fp = bytes(16);
      fp.writeUInt16BE(0xabcd, 0);
      fp[2] = (fp[2] & 0x3f) | ((i % 4) << 6);
      pool.add(hex(fp));
    }
    // pairs with the same field (last bytes) in different buckets, and pairs that differ only
    // in bit 16 or 17 (bits of the bucket that are also in the field) or in the last bit
    for (let i = 0; i < 150; i++) {
      const fp = bytes(16);
      pool.add(hex(fp));
      const otherBucket = Buffer.from(fp);
      otherBucket[0] ^= 0x80;
      pool.add(hex(otherBucket));
      const bit16 = Buffer.from(fp);
      bit16[2] ^= 0x80 >> (i % 2);
      pool.add(hex(bit16));
      const lastBit = Buffer.from(fp);
      lastBit[15] ^= 1;
      pool.add(hex(lastBit));
    }
    const all = [...pool];
    const model = new Set<string>();
    const url = (k: string) => `https://example.com/fp/${k}`;
    for (let round = 0; round < 40; round++) {
      // the two queues in turn; every 10th round a fresh one (no local knowledge of keys or buckets)
      const q = round % 10 === 9 ? await open({ ...config }) : round % 2 === 0 ? a : b;
      const batch = Array.from({ length: 20 + Math.floor(random() * 200) }, () => all[Math.floor(random() * all.length)]);
      let want = 0;
      for (const k of batch) if (!model.has(k)) model.add(k), want++;
      const r = await q.publish(
        "request",
        batch.map((k) => ({ message: request({ url: url(k) }), dedupKey: k })),
      );
      expect(r, `round ${round}`).toEqual({ accepted: want, duplicates: batch.length - want });
    }
    expect(model.size).toBeGreaterThan(1500);
    // every URL appended exactly once
    const got = await readAll(a, 500, model.size + 1, 200, 40);
    expect(got.length).toBe(model.size);
    expect(new Set(got.map((d) => d.message.url))).toEqual(new Set([...model].map(url)));
    // and the whole pool is a duplicate for a fresh queue; the buckets hold exactly the model
    const fresh = await open({ ...config });
    expect(await fresh.publish("request", all.map((k) => ({ message: request({ url: url(k) }), dedupKey: k })))).toEqual({ accepted: all.length - model.size, duplicates: model.size });
    const raw = rawClient();
    cleanups.push(async () => raw.disconnect());
    const keys = new QueueKeys(config.name, 1);
    const perBucket = new Map<number, number>();
    for (const k of all) perBucket.set(seenSlot(k).bucket, (perBucket.get(seenSlot(k).bucket) ?? 0) + 1);
    // a bucket with one fingerprint may still be the string it was created as (SET NX EX)
    let fields = 0;
    let strings = 0;
    for (const [bucket, n] of perBucket) {
      const key = keys.seenBucket(bucket);
      if ((await raw.type(key)) === "string") {
        strings++;
        expect(n).toBe(1);
        expect((await raw.getBuffer(key))!.length).toBe(SEEN_FIELD_BYTES);
        fields++;
      } else fields += await raw.hlen(key);
    }
    expect(fields).toBe(all.length);
    expect(strings).toBeGreaterThan(100);
    const crowded = keys.seenBucket(seenSlot(`abcd${"0".repeat(28)}`).bucket);
    expect(await raw.hlen(crowded)).toBeGreaterThan(50);
    expect(await raw.call("OBJECT", "ENCODING", crowded)).toBe("listpack");
    expect((await raw.hkeysBuffer(crowded))[0]).toHaveLength(SEEN_FIELD_BYTES);
    // a key that is not an md5 fingerprint is stored by its md5
    expect(await a.publish("request", [{ message: req(1), dedupKey: "custom:key" }, { message: req(1), dedupKey: "custom:key2" }])).toEqual({ accepted: 2, duplicates: 0 });
    expect(await fresh.publish("request", [{ message: req(1), dedupKey: "custom:key" }])).toEqual({ accepted: 0, duplicates: 1 });
  });

  it("dedup buckets: a bucket's TTL is written when a worker adds to a bucket it does not know, not on every addition; old string buckets are left alone", async () => {
    const config = redisTestConfig();
    const t = config.crawler.dedupTtlSecs;
    const a = await open(config);
    const raw = rawClient();
    cleanups.push(async () => raw.disconnect());
    const keys = new QueueKeys(config.name, 1);
    // the previous "buckets" format (strings at <name>:cache:seen:<4 hex>) is not read: no WRONGTYPE
    await raw.set(`${config.name}:cache:seen:abcd`, Buffer.alloc(28), "EX", 60);
    const fp = (i: number) => `abcd0${i.toString(16).padStart(27, "0")}`; // one bucket
    const bucket = keys.seenBucket(seenSlot(fp(1)).bucket);
    expect(seenSlot(fp(2)).bucket).toBe(seenSlot(fp(1)).bucket);
    // created for its first fingerprint as a string (SET NX EX), a hash from its second on
    expect(await a.publish("request", [{ message: req(1), dedupKey: fp(1) }])).toEqual({ accepted: 1, duplicates: 0 });
    expect(await raw.type(bucket)).toBe("string");
    expect(await a.publish("request", [{ message: req(1), dedupKey: fp(1) }, { message: req(4), dedupKey: fp(4) }])).toEqual({ accepted: 1, duplicates: 1 });
    expect(await raw.type(bucket)).toBe("hash");
    expect(await raw.ttl(bucket)).toBeGreaterThan(t);
    // a longer TTL set by hand: `a` knows the bucket lives long, so its next addition writes none
    await raw.expire(bucket, 3 * t);
    expect(await a.publish("request", [{ message: req(2), dedupKey: fp(2) }])).toEqual({ accepted: 1, duplicates: 0 });
    expect(await raw.ttl(bucket)).toBeGreaterThan(2 * t);
    // a queue that knows nothing of the bucket writes its TTL when it adds to it
    const b = await open({ ...config });
    expect(await b.publish("request", [{ message: req(3), dedupKey: fp(3) }, { message: req(1), dedupKey: fp(1) }])).toEqual({ accepted: 1, duplicates: 1 });
    const ttl = await raw.ttl(bucket);
    expect(ttl).toBeGreaterThan(t);
    expect(ttl).toBeLessThanOrEqual(t + Math.ceil(t / 4));
    expect(await raw.hlen(bucket)).toBe(4);
    expect(await raw.strlen(`${config.name}:cache:seen:abcd`)).toBe(28);
  });

  it("dedup: a key this queue knows to be set is a duplicate without a script call, and seenBefore says so", async () => {
    const config = redisTestConfig();
    const a = await open(config);
    const b = await open({ ...config });
    const scripts: string[] = [];
    const proto = Redis.prototype as unknown as { sendCommand(cmd: { name: string }, ...rest: unknown[]): unknown };
    const original = proto.sendCommand;
    proto.sendCommand = function (this: Redis, cmd: { name: string }, ...rest: unknown[]) {
      if (String(this.options.connectionName ?? "") === `${config.name}:${a.consumer}` && ["evalsha", "eval"].includes(cmd.name.toLowerCase())) scripts.push(cmd.name);
      return original.call(this, cmd, ...rest);
    };
    try {
      expect(a.seenBefore("fp1")).toBe(false);
      expect(await a.publish("request", [{ message: req(1), dedupKey: "fp1" }])).toEqual({ accepted: 1, duplicates: 0 });
      expect(a.seenBefore("fp1")).toBe(true);
      const calls = scripts.length;
      expect(await a.publish("request", [{ message: req(1), dedupKey: "fp1" }, { message: req(1), dedupKey: "fp1" }])).toEqual({ accepted: 0, duplicates: 2 });
      expect(scripts.length).toBe(calls); // nothing sent
      // a key another instance set: found by the script once, then known here too
      expect(await b.publish("request", [{ message: req(2), dedupKey: "fp2" }])).toEqual({ accepted: 1, duplicates: 0 });
      expect(a.seenBefore("fp2")).toBe(false);
      expect(await a.publish("request", [{ message: req(2), dedupKey: "fp2" }, { message: req(3), dedupKey: "fp3" }])).toEqual({ accepted: 1, duplicates: 1 });
      expect(a.seenBefore("fp2")).toBe(true);
      expect(a.seenBefore("fp3")).toBe(true);
    } finally {
      proto.sendCommand = original;
    }
    expect(await readAll(a, 10, 3)).toHaveLength(3);
  });

  it("dedup (keys): a key is remembered locally only until shortly before it expires in Redis", async () => {
    const config = redisTestConfig((c) => {
      c.crawler.dedupTtlSecs = 2;
      c.crawler.dedupLayout = "keys";
    });
    const a = await open(config);
    const b = await open({ ...config });
    expect(await a.publish("request", [{ message: req(1), dedupKey: "fp1" }])).toEqual({ accepted: 1, duplicates: 0 });
    expect(a.seenBefore("fp1")).toBe(true);
    await sleep(1_300); // remembered for at most TTL - 1 s
    expect(a.seenBefore("fp1")).toBe(false);
    // found by the script with its remaining TTL (< 1 s left): not remembered at all
    expect(await b.publish("request", [{ message: req(1), dedupKey: "fp1" }])).toEqual({ accepted: 0, duplicates: 1 });
    expect(b.seenBefore("fp1")).toBe(false);
    await sleep(900);
    expect(await a.publish("request", [{ message: req(1), dedupKey: "fp1" }])).toEqual({ accepted: 1, duplicates: 0 });
  });

  it("dedup (buckets): every fingerprint is remembered at least dedup_ttl_secs after it was added, and no longer locally than its bucket lives", async () => {
    const config = redisTestConfig((c) => (c.crawler.dedupTtlSecs = 2)); // buckets live 3 s from their last refresh
    const a = await open(config);
    const fp = (i: number) => `abcd0${i.toString(16).padStart(27, "0")}`; // one bucket
    expect(await a.publish("request", [{ message: req(1), dedupKey: fp(1) }])).toEqual({ accepted: 1, duplicates: 0 });
    expect(a.seenBefore(fp(1))).toBe(true);
    await sleep(1_300); // remembered locally for at most dedup_ttl_secs - 1 s
    expect(a.seenBefore(fp(1))).toBe(false);
    // added 1.3 s after the first: the bucket's TTL is written again (the worker knows it has < 3 s)
    expect(await a.publish("request", [{ message: req(2), dedupKey: fp(2) }])).toEqual({ accepted: 1, duplicates: 0 });
    await sleep(1_900); // 3.2 s after fp(1), 1.9 s after fp(2): both still there
    const b = await open({ ...config });
    expect(await b.publish("request", [{ message: req(1), dedupKey: fp(1) }, { message: req(2), dedupKey: fp(2) }])).toEqual({ accepted: 0, duplicates: 2 });
    await sleep(200);
    expect(b.seenBefore(fp(2))).toBe(false); // ~1.1 s was left in Redis: remembered for at most that less 1 s
    await sleep(1_200); // the bucket is gone 3 s after its last refresh
    expect(await a.publish("request", [{ message: req(2), dedupKey: fp(2) }])).toEqual({ accepted: 1, duplicates: 0 });
  });

  it("publish re-creates a deleted stream with its group: nothing appended is skipped", async () => {
    const config = redisTestConfig();
    const q = await open(config);
    const raw = rawClient();
    cleanups.push(async () => raw.disconnect());
    const first = req(1);
    await q.publish("request", [{ message: first }]);
    const stream = new QueueKeys(config.name, config.channelConfig.redis.shards).streamFor("request", "normal", first);
    expect(await raw.del(stream)).toBe(1);
    // the same id, so the same shard: the deleted stream
    const again = [{ ...first, url: req(2).url }, { ...first, url: req(3).url }];
    await q.publish("request", again.map((message) => ({ message })));
    const got = await readAll(q, 10, 2);
    expect(got.map((d) => d.message.url).sort()).toEqual([req(2).url, req(3).url]);
  });

  it("dedup_ttl_secs = 0 turns Redis dedup off, as in mocra (the README says so): no dedup key, every copy enqueued", async () => {
    const config = redisTestConfig((c) => (c.crawler.dedupTtlSecs = 0));
    const q = await open(config);
    const r = req(1);
    expect(await q.publish("request", [{ message: r, dedupKey: "fp1" }, { message: r, dedupKey: "fp1" }])).toEqual({ accepted: 2, duplicates: 0 });
    const raw = rawClient();
    cleanups.push(async () => raw.disconnect());
    expect(await raw.exists(`${config.name}:cache:dedup:fp1`)).toBe(0);
    expect(await raw.exists(new QueueKeys(config.name, 1).seenBucket(seenSlot("fp1").bucket))).toBe(0);
    expect(await readAll(q, 10, 2)).toHaveLength(2);
  });

  it("retryLater: re-delivered after the delay, not before, with attempt + 1", async () => {
    const q = await open(redisTestConfig(), { delayedPollMs: 1000 });
    await q.publish("request", [{ message: req(1) }]);
    const [d] = await q.read("request", 1, 100);
    expect(d.attempt).toBe(1);
    const t0 = Date.now();
    await q.retryLater(d, 400, "HTTP 503");
    expect(await q.depth("request")).toBe(1);
    expect((await q.stats()).request.delayed).toBe(1);
    expect(await q.read("request", 5, 200)).toEqual([]);
    let again: Delivery<"request">[] = [];
    while (again.length === 0 && Date.now() - t0 < 5000) again = await q.read("request", 5, 1000);
    const elapsed = Date.now() - t0;
    expect(again).toHaveLength(1);
    expect(elapsed).toBeGreaterThanOrEqual(390);
    expect(elapsed).toBeLessThan(1000);
    expect(again[0].message).toEqual(d.message);
    expect(again[0].attempt).toBe(2);
    expect((await q.stats()).request.inFlight).toBe(1);
    await q.retryLater(again[0], 0, "again");
    const third = await readAll(q, 5, 1);
    expect(third[0].attempt).toBe(3);
  });

  it("an undecodable entry goes to the dead letters with its reason; reading goes on", async () => {
    const config = redisTestConfig((c) => (c.channelConfig.redis.shards = 1));
    const q = await open(config);
    const raw = rawClient();
    cleanups.push(async () => raw.disconnect());
    const key = `{${config.name}:request-normal}`;
    await q.publish("request", [{ message: req(1) }]);
    const garbageId = await raw.xadd(key, "*", "payload", Buffer.from([0xde, 0xad, 0xbe, 0xef]));
    await raw.xadd(key, "*", "other", "no payload here");
    await raw.xadd(key, "*", "payload", Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 1, 2, 3, 4, 5])); // a broken zstd frame
    await q.publish("request", [{ message: req(2) }]);
    const got = await readAll(q, 10, 2);
    expect(got.map((d) => d.message.url)).toEqual([req(1).url, req(2).url]);
    const dead = await q.listDeadLetters("request", 10);
    expect(dead).toHaveLength(3);
    for (const d of dead) {
      expect(d.reason).toMatch(/^Deserialization failed: /);
      expect(d.message).toBeUndefined();
      expect(d.priority).toBe("normal");
    }
    expect(dead[0].originalId).toBe(garbageId);
    expect(dead[2].reason).toContain("zstd");
    expect((await q.stats()).request.dead).toBe(3);
    expect((await q.stats()).request.inFlight).toBe(2); // the poison ones are acked
  });

  it("reclaims what a killed consumer left pending", async () => {
    const config = redisTestConfig((c) => {
      c.channelConfig.redis.claimMinIdle = 200;
      c.channelConfig.redis.claimInterval = 100;
    });
    const a = await open(config);
    await a.publish("request", [1, 2, 3].map((i) => ({ message: req(i) })));
    const taken = await a.read("request", 3, 100);
    expect(taken).toHaveLength(3);
    await a.close(); // as if killed: nothing acked
    const b = await open({ ...config });
    expect(await b.read("request", 10, 100)).toEqual([]); // not idle long enough yet: nothing fresh
    const got = await readAll(b, 10, 3, 300, 30);
    expect(got.map((d) => d.message.url).sort()).toEqual(taken.map((d) => d.message.url).sort());
    for (const d of got) expect(d.attempt).toBe(2);
    await Promise.all(got.map((d) => b.ack(d)));
    expect((await b.stats()).request.inFlight).toBe(0);
  });

  it("reclaims only as much as the readers' credit (memory O(prefetch))", async () => {
    const config = redisTestConfig((c) => {
      c.channelConfig.redis.shards = 1;
      c.channelConfig.redis.claimMinIdle = 100;
      c.channelConfig.redis.claimInterval = 60_000; // swept by hand below
    });
    const a = await open(config);
    await a.publish("request", Array.from({ length: 30 }, (_, i) => ({ message: req(i) })));
    expect(await readAll(a, 30, 30)).toHaveLength(30);
    await a.close();
    const b = await open({ ...config });
    expect(await b.read("request", 4, 10)).toEqual([]);
    await sleep(150);
    await b.maintain();
    const raw = rawClient();
    cleanups.push(async () => raw.disconnect());
    const pendingOf = async (consumer: string) => {
      const consumers = (await raw.xinfo("CONSUMERS", `{${config.name}:request-normal}`, `${config.name}:crawler_group`)) as unknown[][];
      const c = consumers.map((x) => Object.fromEntries(chunk(x))).find((x) => x.name === consumer);
      return c ? Number(c.pending) : 0;
    };
    expect(await pendingOf(b.consumer)).toBe(4);
    expect((await b.stats()).request.inFlight).toBe(30);
    const got = await b.read("request", 4, 10);
    expect(got).toHaveLength(4);
    for (const d of got) expect(d.attempt).toBe(2);
    await Promise.all(got.map((d) => b.ack(d)));
    await b.maintain();
    expect(await pendingOf(b.consumer)).toBe(4);
  });

  it("dead-letters an entry delivered more than maxDeliveries times", async () => {
    const config = redisTestConfig((c) => {
      c.channelConfig.redis.claimMinIdle = 100;
      c.channelConfig.redis.claimInterval = 60_000;
    });
    const q = await open(config, { maxDeliveries: 2 });
    await q.publish("request", [{ message: req(1) }]);
    const [first] = await q.read("request", 5, 100);
    expect(first.attempt).toBe(1);
    await sleep(150);
    await q.maintain();
    const [second] = await q.read("request", 5, 100);
    expect(second.attempt).toBe(2);
    await sleep(150);
    await q.maintain();
    expect(await q.read("request", 5, 100)).toEqual([]);
    const dead = await q.listDeadLetters("request", 5);
    expect(dead).toHaveLength(1);
    expect(dead[0].reason).toBe("delivered 2 times without being acked");
    expect(dead[0].originalId).toBe(first.entryId);
    expect(dead[0].message).toEqual(first.message);
    expect((await q.stats()).request.inFlight).toBe(0);
  });

  it("touch keeps a long-running delivery from being reclaimed", async () => {
    const config = redisTestConfig((c) => {
      c.channelConfig.redis.claimMinIdle = 300;
      c.channelConfig.redis.claimInterval = 60_000;
    });
    const a = await open(config);
    const b = await open({ ...config });
    await a.publish("request", [{ message: req(1) }]);
    const [d] = await a.read("request", 1, 100);
    await b.read("request", 1, 10);
    for (let i = 0; i < 4; i++) {
      await sleep(120);
      await a.touch([d]);
    }
    await b.maintain();
    expect(await b.read("request", 1, 10)).toEqual([]);
    await a.ack(d);
  });

  it("trimming drops consumed entries only, never pending or undelivered ones", async () => {
    const config = redisTestConfig((c) => {
      c.channelConfig.redis.shards = 1;
      c.channelConfig.redis.claimInterval = 60_000;
    });
    const q = await open(config);
    const raw = rawClient();
    cleanups.push(async () => raw.disconnect());
    const key = `{${config.name}:request-normal}`;
    await q.publish("request", Array.from({ length: 300 }, (_, i) => ({ message: req(i) })));
    const got = await readAll(q, 300, 300);
    expect(got).toHaveLength(300);
    // the oldest 10 stay pending; the rest is acked; 100 more wait undelivered
    await Promise.all(got.slice(10).map((d) => q.ack(d)));
    await q.publish("request", Array.from({ length: 100 }, (_, i) => ({ message: req(1000 + i) })));
    await q.maintain();
    expect(await raw.xlen(key)).toBe(400); // the oldest pending entry holds everything after it
    for (const d of got.slice(0, 10)) expect(await raw.xrange(key, d.entryId, d.entryId)).toHaveLength(1);

    // settle the old ones; keep 5 recent ones pending
    await Promise.all(got.slice(0, 10).map((d) => q.ack(d)));
    const recent = await q.read("request", 50, 100);
    await Promise.all(recent.slice(5).map((d) => q.ack(d)));
    await q.maintain();
    const left = await raw.xlen(key);
    expect(left).toBeLessThan(400);
    for (const d of recent.slice(0, 5)) expect(await raw.xrange(key, d.entryId, d.entryId)).toHaveLength(1);
    const rest = await readAll(q, 100, 50);
    expect(rest).toHaveLength(50); // the undelivered ones are all there
    expect(new Set([...recent, ...rest].map((d) => d.message.url)).size).toBe(100);
  });

  it("with minid_time > 0 consumed entries are kept that long", async () => {
    const config = redisTestConfig((c) => {
      c.channelConfig.redis.shards = 1;
      c.channelConfig.minidTime = 1;
    });
    const q = await open(config);
    await q.publish("request", Array.from({ length: 250 }, (_, i) => ({ message: req(i) })));
    await Promise.all((await readAll(q, 250, 250)).map((d) => q.ack(d)));
    await q.maintain();
    const raw = rawClient();
    cleanups.push(async () => raw.disconnect());
    expect(await raw.xlen(`{${config.name}:request-normal}`)).toBe(250);
  });

  it("a large message travels as a zstd frame and decodes", async () => {
    const config = redisTestConfig((c) => {
      c.channelConfig.redis.shards = 1;
      c.channelConfig.queueCodec = "json";
    });
    const q = await open(config);
    const big = req(1, "normal", { url: `https://example.com/${"x".repeat(3000)}` });
    await q.publish("request", [{ message: big }, { message: req(2) }]);
    const raw = rawClient();
    cleanups.push(async () => raw.disconnect());
    const entries = await raw.xrangeBuffer(`{${config.name}:request-normal}`, "-", "+");
    const payloads = entries.map(([, f]) => f[1]);
    expect([...payloads[0].subarray(0, 4)]).toEqual([0x28, 0xb5, 0x2f, 0xfd]);
    expect(payloads[0].length).toBeLessThan(1024);
    expect(payloads[1][0]).toBe("{".charCodeAt(0)); // small: plain JSON
    const got = await readAll(q, 10, 2);
    expect(got[0].message).toEqual(big);
  });

  it("reads mocra's zstd frames (no content size) from the stream", async () => {
    const config = redisTestConfig((c) => {
      c.channelConfig.redis.shards = 1;
      c.channelConfig.queueCodec = "json"; // the frame holds a JSON Request
    });
    const q = await open(config);
    const raw = rawClient();
    cleanups.push(async () => raw.disconnect());
    await raw.xadd(`{${config.name}:request-normal}`, "*", "payload", Buffer.from(MOCRA_FRAME_HEX, "hex"));
    const [d] = await readAll(q, 10, 1);
    expect(d.message.id).toBe("0190a1b2-c3d4-7e5f-8a9b-000000000001");
    expect(d.message.module).toBe("demo");
  });

  it("dead letters: deadLetter, deadLetterMessage, list, replay, purge", async () => {
    const q = await open(redisTestConfig());
    await q.publish("request", [1, 2, 3].map((i) => ({ message: req(i, i === 1 ? "high" : "normal") })));
    const got = await readAll(q, 10, 3);
    await q.deadLetter(got[0], "HTTP 404");
    await q.deadLetter(got[0], "twice"); // settled already: no second letter
    await q.deadLetter(got[1], "parse error");
    await q.deadLetterMessage("request", req(9), "derived failed", got[2].entryId);
    await q.ack(got[2]);
    const dead = await q.listDeadLetters("request", 10);
    expect(dead.map((d) => d.reason).sort()).toEqual(["HTTP 404", "derived failed", "parse error"]);
    const first = dead.find((d) => d.reason === "HTTP 404")!;
    expect(first.originalId).toBe(got[0].entryId);
    expect(first.priority).toBe("high");
    expect(first.message).toEqual(got[0].message);
    expect(await q.listDeadLetters("request", 2)).toHaveLength(2);
    expect((await q.stats()).request).toMatchObject({ inFlight: 0, dead: 3 });

    expect(await q.replayDeadLetters("request", 1)).toBe(1);
    const replayed = await readAll(q, 10, 1);
    expect(replayed).toHaveLength(1);
    expect(replayed[0].attempt).toBe(1);
    await q.ack(replayed[0]);
    expect(await q.purgeDeadLetters("request")).toBe(2);
    expect(await q.listDeadLetters("request", 10)).toEqual([]);
  });

  it("close(): acks are flushed; read() resolves [] afterwards, also a blocked one", async () => {
    const config = redisTestConfig();
    const q = await RedisQueue.connect(config, { ackFlushMs: 10_000 });
    cleanups.push(() => deleteNamespace(config.name));
    await q.publish("request", [{ message: req(1) }]);
    const [d] = await q.read("request", 1, 100);
    const acked = q.ack(d);
    const blocked = q.read("request", 1, 10_000);
    await sleep(50);
    const t0 = Date.now();
    await q.close();
    await acked;
    expect(await blocked).toEqual([]);
    expect(Date.now() - t0).toBeLessThan(2000);
    expect(await q.read("request", 1, 100)).toEqual([]);
    const check = await open({ ...config });
    expect((await check.stats()).request.inFlight).toBe(0);
  });
});

describe("RedisQueue connection handling", () => {
  it("fails to connect to an unreachable Redis with a clear message, within the bound", async () => {
    const config = redisTestConfig((c) => {
      c.channelConfig.redis.redisPort = 1;
      c.channelConfig.redis.connectTimeoutMs = 700;
    });
    const t0 = Date.now();
    await expect(RedisQueue.connect(config)).rejects.toThrow(/cannot connect to Redis at 127\.0\.0\.1:1 within 700 ms.*ECONNREFUSED/);
    expect(Date.now() - t0).toBeLessThan(1500);
  });

  it("dropped connections: workers pause, reconnect and resume without losing or duplicating work", async () => {
    const port = await freePort();
    let server = await startRedisServer(port);
    cleanups.push(() => stopRedisServer(server));
    const config = redisTestConfig((c) => (c.channelConfig.redis.reconnectBudgetSecs = 30), port);
    const q = await open(config);
    const admin = rawClient(port);
    cleanups.push(async () => admin.disconnect());

    const sent = Array.from({ length: 200 }, (_, i) => req(i));
    await q.publish("request", sent.slice(0, 100).map((message) => ({ message, dedupKey: message.id })));
    const first = await readAll(q, 50, 50);
    expect(first).toHaveLength(50);

    // drop every client connection of the server (ours included), then keep working
    await admin.call("CLIENT", "KILL", "TYPE", "normal");
    const acks = Promise.all(first.map((d) => q.ack(d)));
    const published = await q.publish("request", sent.slice(100).map((message) => ({ message, dedupKey: message.id })));
    expect(published).toEqual({ accepted: 100, duplicates: 0 });
    await acks;
    const rest = await readAll(q, 64, 150, 200, 100);
    await Promise.all(rest.map((d) => q.ack(d)));
    const ids = [...first, ...rest].map((d) => d.message.id);
    expect(ids).toHaveLength(200);
    expect(new Set(ids)).toEqual(new Set(sent.map((r) => r.id)));
    expect((await q.stats()).request).toEqual({ ready: { high: 0, normal: 0, low: 0 }, inFlight: 0, delayed: 0, dead: 0 });

    // the server goes away for a while: reads return [] after their block time, no busy loop
    await stopRedisServer(server);
    const t0 = Date.now();
    expect(await q.read("request", 10, 300)).toEqual([]);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(250);
    const publishing = q.publish("request", [{ message: req(500) }]); // waits for the reconnect
    // it comes back (empty: no persistence); the queue re-creates its groups and goes on
    server = await startRedisServer(port);
    expect(await publishing).toEqual({ accepted: 1, duplicates: 0 });
    const after = await readAll(q, 10, 1, 300, 40);
    expect(after.map((d) => d.message.url)).toEqual([req(500).url]);
    await q.ack(after[0]);
    // its dedup keys went with it: the queue forgot the ones it knew, so a link is new again
    expect(q.seenBefore(sent[0].id)).toBe(false);
    expect(await q.publish("request", [{ message: sent[0], dedupKey: sent[0].id }])).toEqual({ accepted: 1, duplicates: 0 });
  });

  it("Redis gone past reconnect_budget_secs is fatal, with a clear message", async () => {
    const port = await freePort();
    const server = await startRedisServer(port);
    cleanups.push(() => stopRedisServer(server));
    const config = redisTestConfig((c) => (c.channelConfig.redis.reconnectBudgetSecs = 1), port);
    let fatal: RedisQueueFatalError | undefined;
    const q = await RedisQueue.connect(config, { onError: () => {}, onFatal: (e) => (fatal = e) });
    cleanups.push(() => q.close());
    await q.publish("request", [{ message: req(1) }]);
    const [d] = await q.read("request", 1, 100);
    await stopRedisServer(server);
    const ack = q.ack(d).catch((e: unknown) => e); // handled now: it rejects while we wait
    const t0 = Date.now();
    while (!fatal && Date.now() - t0 < 5000) await sleep(50);
    expect(fatal?.message).toMatch(new RegExp(`Redis at 127\\.0\\.0\\.1:${port} unreachable for more than 1 s`));
    expect(String(await ack)).toMatch(/RedisQueueFatalError: .*unreachable/);
    await expect(q.read("request", 1, 100)).rejects.toThrow(/unreachable/);
    await expect(q.publish("request", [{ message: req(2) }])).rejects.toThrow(/unreachable/);
  });
});

function chunk(flat: unknown[]): Array<[string, unknown]> {
  const out: Array<[string, unknown]> = [];
  for (let i = 0; i + 1 < flat.length; i += 2) out.push([String(flat[i]), flat[i + 1]]);
  return out;
}
