// Throughput of the Redis Streams queue on one worker: publish N small requests in batches of
// 100, then read them with credit 256 and ack every one. Printed per codec (json, msgpack, bincode), with dedup, with a
// pass-through codec (the queue's own cost, without JSON/msgpack work), and with publisher and
// reader running at the same time (as in a worker). Also the speed of the zstd framing.
// Needs Redis at 127.0.0.1:6379. Run: npx tsx tests/benchmark_queue_redis.ts [N]

import { Buffer } from "node:buffer";
import { type Codec, codecByName } from "../src/codec/index.ts";
import { request, type Request, type Topic, type TopicMessages } from "../src/model/index.ts";
import { compressPayload, decompressPayload, initCompression } from "../src/queue/compression.ts";
import { RedisQueue } from "../src/queue/redis/index.ts";
import { deleteNamespace, redisReachable, redisTestConfig } from "./helpers/redis.ts";

const N = Number(process.argv[2] ?? 50_000);
const BATCH = 100;
const CREDIT = 256;

/** Bytes made once per message and a shared decoded value: what is left is the queue's own work. */
function passThroughCodec(): Codec {
  const bytes = new WeakMap<object, Uint8Array>();
  const json = codecByName("json");
  const sample = request({ url: "https://shop.example/item/0" });
  return {
    name: "json",
    encode<K extends Topic>(topic: K, m: TopicMessages[K]): Uint8Array {
      let b = bytes.get(m);
      if (!b) bytes.set(m, (b = json.encode(topic, m)));
      return b;
    },
    decode<K extends Topic>(_topic: K, _b: Uint8Array): TopicMessages[K] {
      return sample as TopicMessages[K];
    },
  };
}

function rate(n: number, ms: number): string {
  return `${Math.round((n / ms) * 1000).toLocaleString("en-US")}/s`.padStart(9);
}

interface Variant {
  label: string;
  codec: "json" | "msgpack" | "bincode";
  dedup?: boolean;
  passThrough?: boolean;
  concurrent?: boolean;
}

async function run(v: Variant): Promise<void> {
  const config = redisTestConfig((c) => (c.channelConfig.queueCodec = v.codec));
  const codec = v.passThrough ? passThroughCodec() : undefined;
  const q = await RedisQueue.connect(config, codec ? { codec } : {});
  const messages: Request[] = Array.from({ length: N }, (_, i) => request({ url: `https://shop.example/item/${i}`, module: "bench" }));
  if (codec) for (const m of messages) codec.encode("request", m); // pre-encode outside the clock
  const publishAll = async () => {
    for (let i = 0; i < N; i += BATCH) {
      await q.publish("request", messages.slice(i, i + BATCH).map((message) => (v.dedup ? { message, dedupKey: message.id } : { message })));
    }
  };
  const readAll = async () => {
    let got = 0;
    const acks: Promise<void>[] = [];
    while (got < N) {
      const ds = await q.read("request", CREDIT, 2000);
      if (ds.length === 0) throw new Error(`read stalled after ${got} of ${N}`);
      got += ds.length;
      for (const d of ds) acks.push(q.ack(d));
    }
    await Promise.all(acks);
  };
  try {
    const t0 = performance.now();
    if (v.concurrent) {
      await Promise.all([publishAll(), readAll()]);
      const t1 = performance.now();
      console.log(`${v.label.padEnd(34)} publish ‖ read+ack      end to end ${rate(N, t1 - t0)}  (${((t1 - t0) / 1000).toFixed(2)} s)`);
    } else {
      await publishAll();
      const t1 = performance.now();
      await readAll();
      const t2 = performance.now();
      console.log(
        `${v.label.padEnd(34)} publish ${rate(N, t1 - t0)}  read+ack ${rate(N, t2 - t1)}  end to end ${rate(N, t2 - t0)}  (${((t2 - t0) / 1000).toFixed(2)} s)`,
      );
    }
    const left = (await q.stats()).request;
    if (left.inFlight !== 0 || left.ready.normal !== 0) throw new Error(`left over: ${JSON.stringify(left)}`);
  } finally {
    await q.close();
    await deleteNamespace(config.name);
  }
}

function codecSpeed(): void {
  const m = request({ url: "https://shop.example/item/1", module: "bench" });
  for (const name of ["json", "msgpack", "bincode"] as const) {
    const c = codecByName(name);
    const b = c.encode("request", m);
    const rounds = 20_000;
    let t = performance.now();
    for (let i = 0; i < rounds; i++) c.encode("request", m);
    const enc = performance.now() - t;
    t = performance.now();
    for (let i = 0; i < rounds; i++) c.decode("request", b);
    const dec = performance.now() - t;
    const us = (((enc + dec) / rounds) * 1000).toFixed(1);
    console.log(`codec ${name.padEnd(7)} ${b.length} B: encode ${rate(rounds, enc)}  decode ${rate(rounds, dec)}  (${us} µs per message, encode + decode)`);
  }
}

function zstdSpeed(): void {
  const bytes = codecByName("json").encode("request", request({ url: `https://shop.example/search?q=${"shoes+".repeat(400)}` }));
  const rounds = 5000;
  let t = performance.now();
  let frame: Uint8Array = bytes;
  for (let i = 0; i < rounds; i++) frame = compressPayload(bytes, 1024);
  const enc = performance.now() - t;
  t = performance.now();
  for (let i = 0; i < rounds; i++) decompressPayload(frame);
  const dec = performance.now() - t;
  const mb = (bytes.length * rounds) / 1e6;
  console.log(
    `zstd ${bytes.length} B -> ${frame.length} B: encode ${((mb / enc) * 1000).toFixed(0)} MB/s (${rate(rounds, enc).trim()}), ` +
      `decode ${((mb / dec) * 1000).toFixed(0)} MB/s (${rate(rounds, dec).trim()})`,
  );
  // mocra's frames carry no content size (2 MiB window): decoded into a guessed buffer
  const noSize = Buffer.from("28b52ffd00584d00001061610100cbff000b", "hex");
  t = performance.now();
  for (let i = 0; i < rounds; i++) decompressPayload(noSize);
  console.log(`zstd frame without content size (-> 2000 B): decode ${rate(rounds, performance.now() - t).trim()}`);
}

if (!(await redisReachable())) {
  console.error("benchmark_queue_redis: no Redis at 127.0.0.1:6379");
  process.exit(1);
}
await initCompression();
console.log(`Redis queue, one worker: N = ${N} small requests, publish batches of ${BATCH}, read credit ${CREDIT}, 8 shards`);
await run({ label: "json", codec: "json" });
await run({ label: "msgpack", codec: "msgpack" });
await run({ label: "bincode", codec: "bincode" });
await run({ label: "json, dedup key per request", codec: "json", dedup: true });
await run({ label: "pass-through codec (queue only)", codec: "json", passThrough: true });
await run({ label: "json, concurrent", codec: "json", concurrent: true });
await run({ label: "pass-through codec, concurrent", codec: "json", passThrough: true, concurrent: true });
codecSpeed();
zstdSpeed();
