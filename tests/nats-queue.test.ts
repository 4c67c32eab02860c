// tests/nats-queue.test.ts: the Queue on NATS JetStream against a private nats-server (file
// store, free port) started for this file: mocra 0.4.1's layout and headers, golden bytes, strict
// priorities with credit, delayed retries, dead letters, re-delivery of un-acked messages, and a
// server restart with nothing lost.
import { readFileSync } from "node:fs";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect, headers as natsHeaders, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { codecByName } from "../src/codec/index.ts";
import type { Config } from "../src/config/index.ts";
import { parseConfig } from "../src/config/index.ts";
import { type Priority, request, type Request, type TaskModel } from "../src/model/index.ts";
import { NatsQueue, type NatsQueueOptions } from "../src/queue/nats/nats-queue.ts";
import { JetStreamNames, sanitize } from "../src/queue/nats/names.ts";
import type { Delivery } from "../src/queue/queue.ts";
import { deleteNamespace, requireRedis } from "./helpers/redis.ts";
import { type NatsServer, natsTestConfig, startNatsServer } from "./helpers/nats-server.ts";

await requireRedis("nats-queue tests");

let nats: NatsServer;
let raw: NatsConnection;
beforeAll(async () => {
  nats = await startNatsServer();
  raw = await connect({ servers: nats.url, maxReconnectAttempts: -1, reconnectTimeWait: 100 });
}, 30_000);
afterAll(async () => {
  await raw?.close();
  await nats?.dispose();
});

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => {});
});

async function open(config: Config, options: NatsQueueOptions = {}): Promise<NatsQueue> {
  const q = await NatsQueue.connect(config, { onError: () => {}, ...options });
  cleanups.push(() => deleteNamespace(config.name));
  cleanups.push(() => q.close());
  return q;
}

function req(n: number, priority: Priority = "normal"): Request {
  return request({ url: `https://example.com/page/${n}`, priority });
}

async function readAll(q: NatsQueue, max: number, want: number, blockMs = 300, rounds = 40): Promise<Delivery<"request">[]> {
  const got: Delivery<"request">[] = [];
  for (let i = 0; i < rounds && got.length < want; i++) got.push(...(await q.read("request", max, blockMs)));
  return got;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** mocra's golden vector of a message (tests/fixtures/wire/golden_vectors.txt). */
function golden(name: string): { json: string; msgpack: string } {
  const text = readFileSync(new URL("./fixtures/wire/golden_vectors.txt", import.meta.url), "utf8");
  const block = text.split("===== ").find((b) => b.startsWith(`${name}\n`));
  if (!block) throw new Error(`no golden vector ${name}`);
  const json = /^json \(\d+ B\): (.*)$/m.exec(block)?.[1];
  const msgpack = /^msgpack rmp_serde::to_vec \(\d+ B\): ([0-9a-f]+)$/m.exec(block)?.[1];
  if (!json || !msgpack) throw new Error(`golden vector ${name} incomplete`);
  return { json, msgpack };
}

describe("mocra 0.4.1's names", () => {
  it("sanitises and names stream, subjects, consumers and dead letters as nats.rs does", () => {
    expect(sanitize("a.b*c>d e\tf")).toBe("a_b_c_d_e_f");
    const n = new JetStreamNames("my.crawl-1");
    expect(n.stream).toBe("my_crawl-1_stream");
    expect(n.streamSubjects()).toBe("my_crawl-1.>");
    expect(n.subject("parser_task", "high")).toBe("my_crawl-1.parser_task-high");
    expect(n.deadSubject("request", "low")).toBe("my_crawl-1._dlq.request-low");
    // format!("{}_{}_c", ns, topic).replace('-', "_"): every "-", the namespace's too
    expect(n.durable("request", "normal")).toBe("my_crawl_1_request_normal_c");
  });

  it("reads [channel_config.nats] and nack_max_retries; refuses NATS without a Redis for coordination", () => {
    const c = parseConfig(`name = "x"\n[channel_config]\nnack_max_retries = 4\nnack_backoff_ms = 250\n[channel_config.nats]\nurl = "nats://10.0.0.1:4222,nats://10.0.0.2:4222"\ntoken = "t"\n[channel_config.redis]\nredis_port = 6380\n`);
    expect(c.channelConfig.nats).toMatchObject({ url: "nats://10.0.0.1:4222,nats://10.0.0.2:4222", token: "t", username: "", ackWaitMs: 30000 });
    expect(c.channelConfig.nackMaxRetries).toBe(4);
    expect(c.channelConfig.nackBackoffMs).toBe(250);
    expect(parseConfig(`name = "x"\n`).channelConfig.nats).toBeNull();
    expect(() => parseConfig(`[channel_config.nats]\nurl = "nats://127.0.0.1:4222"\n`)).toThrow(/need Redis: add \[channel_config.redis\]/);
    expect(() => parseConfig(`[channel_config.nats]\nurl = "http://x"\n[channel_config.redis]\n`)).toThrow(/channel_config\.nats\.url/);
    expect(() => parseConfig(`[channel_config]\nnack_max_retries = -1\n`)).toThrow(/nack_max_retries/);
  });
});

describe("NatsQueue on JetStream", () => {
  it("publishes mocra's bytes (golden msgpack vector) with mocra's headers on {ns}.task-high, read back by the durable consumer", async () => {
    const config = natsTestConfig(nats, (c) => (c.channelConfig.queueCodec = "msgpack"));
    const q = await open(config);
    const g = golden("TaskModel");
    const task = codecByName("json").decode("task", new TextEncoder().encode(g.json)) as TaskModel;
    const before = Date.now();
    expect(await q.publish("task", [{ message: task }])).toEqual({ accepted: 1, duplicates: 0 });
    const jsm = await jetstreamManager(raw);
    const stored = await jsm.streams.getMessage(`${config.name}_stream`, { last_by_subj: `${config.name}.task-high` });
    expect(Buffer.from(stored!.data).toString("hex")).toBe(g.msgpack);
    expect(stored!.header!.get("x-attempt")).toBe("0");
    const created = Number(stored!.header!.get("x-created-at"));
    expect(created).toBeGreaterThanOrEqual(before);
    expect(created).toBeLessThanOrEqual(Date.now());
    const [d] = await q.read("task", 10, 500);
    expect(d.message).toEqual(task);
    expect(d.attempt).toBe(1);
    expect(d.priority).toBe("high");
    const info = await jsm.consumers.info(`${config.name}_stream`, `${config.name}_task_high_c`);
    expect(info.config.ack_policy).toBe("explicit");
    expect(info.config.filter_subject).toBe(`${config.name}.task-high`);
    await q.ack(d);
    await sleep(200);
    expect((await jsm.consumers.info(`${config.name}_stream`, `${config.name}_task_high_c`)).num_ack_pending).toBe(0);
  });

  it("a message mocra published (x-attempt 0, no Msg-Id) is read; attempts count from x-attempt", async () => {
    const config = natsTestConfig(nats);
    const q = await open(config);
    const h = natsHeaders();
    h.set("x-attempt", "2");
    const js = (await import("@nats-io/jetstream")).jetstream(raw);
    await js.publish(`${config.name}.request-normal`, codecByName("bincode").encode("request", req(1)), { headers: h });
    const [d] = await readAll(q, 5, 1);
    expect(d.attempt).toBe(3);
    await q.ack(d);
  });

  it("strict priority within the credit: high, then normal with what is left; never more than asked", async () => {
    const config = natsTestConfig(nats);
    const q = await open(config);
    await q.publish("request", [0, 1, 2, 3, 4].map((i) => ({ message: req(100 + i, "low") })));
    await q.publish("request", [0, 1, 2, 3, 4].map((i) => ({ message: req(200 + i, "normal") })));
    await q.publish("request", [0, 1, 2, 3, 4].map((i) => ({ message: req(300 + i, "high") })));
    const first = await q.read("request", 7, 500);
    expect(first.map((d) => d.priority)).toEqual(["high", "high", "high", "high", "high", "normal", "normal"]);
    const second = await q.read("request", 4, 500);
    expect(second.map((d) => d.priority)).toEqual(["normal", "normal", "normal", "low"]);
    for (const d of [...first, ...second]) await q.ack(d);
    const stats = await q.stats();
    expect(stats.request.ready).toEqual({ high: 0, normal: 0, low: 4 });
  });

  it("dedup keys: a key seen before (in Redis, by any worker) is a duplicate; the same key published at once by two queues is stored once", async () => {
    const config = natsTestConfig(nats);
    const { openQueue } = await import("../src/queue/open-queue.ts");
    const a = (await openQueue(config)) as NatsQueue;
    const b = (await openQueue(config)) as NatsQueue;
    cleanups.push(() => deleteNamespace(config.name), () => a.close(), () => b.close());
    const items = [0, 1, 2].map((i) => ({ message: req(i), dedupKey: `k${i}` }));
    const [ra, rb] = await Promise.all([a.publish("request", items), b.publish("request", items)]);
    expect(ra.accepted + rb.accepted).toBe(3);
    expect(await a.publish("request", items)).toEqual({ accepted: 0, duplicates: 3 });
    expect(await b.depth("request")).toBe(3);
  });

  it("retryLater republishes with x-attempt + 1 and x-nack-reason, held until due; defer keeps the attempt", async () => {
    const config = natsTestConfig(nats);
    const q = await open(config);
    await q.publish("request", [{ message: req(1) }]);
    const [d1] = await readAll(q, 5, 1);
    const t0 = Date.now();
    await q.retryLater(d1, 800, "HTTP 503");
    const early = await q.read("request", 5, 300);
    expect(early).toHaveLength(0);
    const [d2] = await readAll(q, 5, 1);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(750);
    expect(d2.attempt).toBe(2);
    const jsm = await jetstreamManager(raw);
    const m = await jsm.streams.getMessage(`${config.name}_stream`, { last_by_subj: `${config.name}.request-normal` });
    expect(m!.header!.get("x-attempt")).toBe("1");
    expect(m!.header!.get("x-nack-reason")).toBe("HTTP 503");
    await q.defer(d2, 100, "robots.txt");
    const [d3] = await readAll(q, 5, 1);
    expect(d3.attempt).toBe(2);
    await q.ack(d3);
  });

  it("a poison (undecodable) message goes to {ns}._dlq.{topic} with the reason; deadLetter too; list, replay, purge", async () => {
    const config = natsTestConfig(nats);
    const q = await open(config);
    const js = (await import("@nats-io/jetstream")).jetstream(raw);
    await js.publish(`${config.name}.request-normal`, new Uint8Array([0xde, 0xad, 0xbe, 0xef]));
    await q.publish("request", [{ message: req(7) }]);
    const got = await readAll(q, 5, 1);
    expect(got.map((d) => d.message.url)).toEqual(["https://example.com/page/7"]);
    await q.deadLetter(got[0], "parse failed: boom");
    await sleep(300);
    const jsm = await jetstreamManager(raw);
    const poison = await jsm.streams.getMessage(`${config.name}_stream`, { next_by_subj: `${config.name}._dlq.request-normal`, seq: 1 } as never);
    expect(Buffer.from(poison!.data)).toEqual(Buffer.from([0xde, 0xad, 0xbe, 0xef]));
    expect(poison!.header!.get("x-nack-reason")).toMatch(/^undecodable payload/);
    const letters = await q.listDeadLetters("request", 10);
    expect(letters.map((l) => l.reason)).toEqual([expect.stringMatching(/^undecodable payload/), "parse failed: boom"]);
    expect(letters[1].message).toMatchObject({ url: "https://example.com/page/7" });
    expect((await q.stats()).request.dead).toBe(2);
    expect(await q.replayDeadLetters("request", 10)).toBe(2);
    expect((await q.stats()).request.dead).toBe(0);
    const again = await readAll(q, 5, 1);
    expect(again.map((d) => d.message.url)).toEqual(["https://example.com/page/7"]);
    expect(again[0].attempt).toBe(1);
    await q.deadLetter(again[0], "again");
    await sleep(200);
    expect(await q.purgeDeadLetters("request")).toBeGreaterThanOrEqual(2);
  });

  it("an un-acked delivery goes to another reader after ack_wait, as attempt 2; touch (+WPI) keeps it", async () => {
    const config = natsTestConfig(nats, (c) => (c.channelConfig.nats!.ackWaitMs = 1500));
    const a = await open(config);
    const b = await open(config);
    await a.publish("request", [{ message: req(1) }, { message: req(2) }]);
    const held = await readAll(a, 2, 2);
    expect(held).toHaveLength(2);
    // keep one alive for 3 s (twice ack_wait); let the other lapse
    for (let i = 0; i < 6; i++) {
      await a.touch([held[0]]);
      await sleep(500);
    }
    const taken = await readAll(b, 5, 1, 500);
    expect(taken.map((d) => d.message.url)).toEqual([held[1].message.url]);
    expect(taken[0].attempt).toBe(2);
    await a.ack(held[0]);
    await b.ack(taken[0]);
    await sleep(200);
    expect(await a.depth("request")).toBe(0);
  });

  it("a delivery re-delivered maxDeliveries times without an ack is dead-lettered", async () => {
    const config = natsTestConfig(nats, (c) => (c.channelConfig.nats!.ackWaitMs = 1000));
    const q = await open(config, { maxDeliveries: 1 });
    await q.publish("request", [{ message: req(1) }]);
    expect(await readAll(q, 1, 1)).toHaveLength(1); // never acked
    await sleep(1300);
    expect(await q.read("request", 1, 500)).toHaveLength(0);
    await sleep(300);
    const [letter] = await q.listDeadLetters("request", 5);
    expect(letter.reason).toBe("delivered 2 times without being acked");
  });

  it("survives a server restart (file store): what was published and not acked is all there; a publish during the outage completes", async () => {
    const config = natsTestConfig(nats);
    const q = await open(config);
    await q.publish("request", Array.from({ length: 50 }, (_, i) => ({ message: req(i) })));
    const first = await readAll(q, 10, 10);
    for (const d of first) await q.ack(d);
    await sleep(300); // the acks reach the server
    await nats.stop();
    const during = q.publish("request", [{ message: req(50) }]);
    await sleep(1000);
    await nats.start();
    expect(await during).toEqual({ accepted: 1, duplicates: 0 });
    const rest = await readAll(q, 20, 41, 500, 60);
    const urls = new Set(rest.map((d) => d.message.url));
    expect(urls.size).toBe(41);
    for (const d of first) expect(urls.has(d.message.url)).toBe(false);
    for (const d of rest) await q.ack(d);
  }, 60_000);
});
