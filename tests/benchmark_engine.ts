// tests/benchmark_engine.ts: the engine alone, no network and no HTML: messages per second through
// the operator chain on the in-memory queue and on the Redis queue, and what the per-page hot-path
// pieces (request building, ids, fingerprints, HTML parse and extraction) cost in µs.
//
//   npx tsx tests/benchmark_engine.ts            (BENCH_ENGINE_N=100000 memory messages; Redis gets
//                                                 BENCH_ENGINE_REDIS_N=50000; BENCH_ENGINE_PREFETCH=128;
//                                                 BENCH_ENGINE_REPS=3 runs per row, median shown)
//
// Chains (each message is one pre-published Request; the queue is filled before the clock starts):
//   minimal         fromQueue → mapJob(no-op) → ack()
//   flow            fromQueue → mapJob(download stand-in) → mapJob(parse stand-in) → route(no-op sink,
//                   queue) → retry(): the request flow's operators with no-op download and parse
//   flow+publish    as flow, and each message also emits 1 item (no-op sink) and publishes 8
//                   follow-up Requests with their fingerprints as dedup keys, all duplicates: what
//                   every item page of the shop crawl does (5 item + 3 list links, nearly all seen)
// Redis: 127.0.0.1:6379 (BENCH_REDIS_PORT), a unique namespace per run, deleted afterwards; Redis
// commands and Redis server CPU per message from INFO deltas. Target: Redis `flow` >= 30 000 msg/s.
import { Redis } from "ioredis";
import { lastValueFrom, tap } from "rxjs";
import { defaultConfig } from "../src/config/index.ts";
import { startShop } from "../examples/demo-shop/shop.ts";
import { parseHtml } from "../src/html/document.ts";
import { fingerprint, request, type Request, response, uuidv7 } from "../src/model/index.ts";
import { ModuleRegistry } from "../src/modules/registry.ts";
import { seedToRequest } from "../src/modules/requests.ts";
import { runParse } from "../src/modules/run-parse.ts";
import { URL_HEADER } from "../src/modules/page.ts";
import { MemoryQueue } from "../src/queue/memory-queue.ts";
import type { Queue } from "../src/queue/queue.ts";
import { RedisQueue } from "../src/queue/redis/index.ts";
import { SeenSet } from "../src/queue/seen-set.ts";
import type { ItemSink } from "../src/storage/sink.ts";
import { ack, type Fetched, fromQueue, mapJob, type Parsed, retry, route } from "../operators/index.ts";
import demo from "../modules/demo_shop.ts";
import { commandDelta, commandStats, environment, envInt, fmt, foreignClients, machineBusyMs, myCpus, redisCpuMs, redisTarget, table, writeResults } from "./bench/common.ts";
import { deleteNamespace, redisReachable } from "./helpers/redis.ts";

const N_MEM = envInt("BENCH_ENGINE_N", 100_000);
const N_REDIS = envInt("BENCH_ENGINE_REDIS_N", 50_000);
/** flow+publish on Redis is slow (8 payloads per message): fewer messages */
const N_REDIS_PUBLISH = envInt("BENCH_ENGINE_REDIS_PUBLISH_N", Math.min(N_REDIS, 10_000));
const PREFETCH = envInt("BENCH_ENGINE_PREFETCH", 128);
/** repetitions of each row; the row shown is the one with the median msg/s */
const REPS = Math.max(1, envInt("BENCH_ENGINE_REPS", 3));
const started = performance.now();
/** BENCH_ENGINE_ONLY="redis:flow,memory:minimal" runs just those rows (e.g. for --cpu-prof); BENCH_ENGINE_PIECES=0 skips the pieces */
const ONLY = (process.env.BENCH_ENGINE_ONLY ?? "").split(",").filter(Boolean);
const wanted = (queue: string, chain: Chain) => ONLY.length === 0 || ONLY.includes(`${queue}:${chain}`);

type Chain = "minimal" | "flow" | "flow+publish";

const nullSink: ItemSink = {
  write: () => Promise.resolve(true),
  describe: () => "null",
  close: () => Promise.resolve(),
};

const RESPONSE = response({ module: "demo_shop", content: new Uint8Array(0) });
const ITEM = { url: "http://shop.test/item/1", title: "Sturdy Oak Lamp No. 1", price: "$12.34", description: "lorem ipsum" };

function makeRequests(n: number): Request[] {
  return Array.from({ length: n }, (_, i) => request({ url: `http://shop.test/item/${i}`, module: "demo_shop" }));
}

interface ChainResult {
  queue: string;
  chain: Chain;
  codec: string;
  messages: number;
  prefetch: number;
  ms: number;
  msgPerSec: number;
  usPerMsg: number;
  cpuUsPerMsg: number;
  publishPerSec?: number;
  redisCmdsPerMsg?: number;
  redisCpuUsPerMsg?: number;
  redisCommands?: Record<string, number>;
  foreignRedisClients?: number;
  /** msg/s of every repetition (the row is the median one) */
  reps?: number[];
  /** CPU used by anything else on the machine during the run (Redis excluded), in cores */
  otherCpuCores: number;
  /** process.hrtime µs of the measured run (to cut a --cpu-prof profile to it) */
  window: { fromUs: number; toUs: number };
}

async function prefill(queue: Queue, reqs: readonly Request[]): Promise<number> {
  const t0 = performance.now();
  for (let i = 0; i < reqs.length; i += 1000) {
    await queue.publish(
      "request",
      reqs.slice(i, i + 1000).map((r) => ({ message: r, dedupKey: fingerprint(r) })),
    );
  }
  return (reqs.length / (performance.now() - t0)) * 1000;
}

/** Runs one chain over `n` queued messages; resolves when all are acked. */
async function runChain(queue: Queue, chain: Chain, n: number, followUps: readonly Request[]): Promise<ChainRun> {
  const controller = new AbortController();
  let done = 0;
  const count = tap(() => {
    if (++done === n) controller.abort();
  });
  const source = fromQueue(queue, "request", { prefetch: PREFETCH, signal: controller.signal, blockMs: 200 });
  const policy = { maxRetries: 3, baseDelayMs: 1000, maxDelayMs: 60_000 };
  const cpu0 = process.cpuUsage();
  const busy0 = machineBusyMs();
  const fromUs = Number(process.hrtime.bigint() / 1000n);
  const t0 = performance.now();
  if (chain === "minimal") {
    await lastValueFrom(source.pipe(mapJob("noop", (r: Request) => r), ack(), count), { defaultValue: undefined });
  } else {
    const withOutput = chain === "flow+publish";
    await lastValueFrom(
      source.pipe(
        mapJob("download", (req: Request): Fetched => ({ response: RESPONSE, fingerprint: req.id, url: req.url })),
        mapJob(
          "parse",
          (f: Fetched): Parsed => ({
            ...f,
            module: "demo_shop",
            output: withOutput
              ? { items: [ITEM], requests: followUps as Request[], tasks: [], dropped: [] }
              : { items: [], requests: [], tasks: [], dropped: [] },
          }),
        ),
        route({ sink: nullSink, queue }),
        retry({ policy }),
        count,
      ),
      { defaultValue: undefined },
    );
  }
  const ms = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  if (done !== n) throw new Error(`${chain}: ${done} of ${n} messages came through`);
  return { ms, cpuUs: cpu.user + cpu.system, fromUs, toUs: Number(process.hrtime.bigint() / 1000n), busyMs: machineBusyMs() - busy0 };
}

interface ChainRun {
  ms: number;
  cpuUs: number;
  fromUs: number;
  toUs: number;
  /** machine-wide busy CPU ms during the run */
  busyMs: number;
}

function result(queueName: string, chain: Chain, n: number, r: ChainRun, codec = "-", redisCpuMsDelta = 0): ChainResult {
  return {
    queue: queueName,
    chain,
    codec,
    messages: n,
    prefetch: PREFETCH,
    ms: r.ms,
    msgPerSec: (n / r.ms) * 1000,
    usPerMsg: (r.ms * 1000) / n,
    cpuUsPerMsg: r.cpuUs / n,
    otherCpuCores: Math.max(0, (r.busyMs - r.cpuUs / 1000 - redisCpuMsDelta) / r.ms),
    window: { fromUs: r.fromUs, toUs: r.toUs },
  };
}

async function memoryRuns(): Promise<ChainResult[]> {
  const out: ChainResult[] = [];
  for (const chain of ["minimal", "flow", "flow+publish"] as Chain[]) {
    if (!wanted("memory", chain)) continue;
    // a warm-up pass (JIT), then the measured ones
    const reps: ChainResult[] = [];
    for (let rep = 0; rep <= REPS; rep++) {
      const n = rep === 0 ? Math.min(20_000, N_MEM) : N_MEM;
      const q = new MemoryQueue();
      const reqs = makeRequests(n);
      const publishPerSec = await prefill(q, reqs);
      const r = await runChain(q, chain, n, reqs.slice(0, 8));
      await q.close();
      if (rep > 0) reps.push({ ...result("memory", chain, n, r), publishPerSec });
    }
    out.push(medianRow(reps));
  }
  return out;
}

/** The repetition with the median msg/s, with the spread of all of them. */
function medianRow(reps: ChainResult[]): ChainResult {
  const sorted = [...reps].sort((a, b) => a.msgPerSec - b.msgPerSec);
  return { ...sorted[Math.floor((sorted.length - 1) / 2)], reps: reps.map((r) => Math.round(r.msgPerSec)) };
}

async function redisRuns(): Promise<ChainResult[]> {
  const out: ChainResult[] = [];
  const admin = new Redis({ host: "127.0.0.1", port: REDIS_PORT, maxRetriesPerRequest: 1, connectionName: "bench_engine_admin" });
  try {
    // warm-up (JIT of the codec, ioredis and the read path), not measured
    {
      const config = defaultConfig();
      config.name = `bench_engine_warm_${Math.random().toString(36).slice(2, 8)}`;
      config.channelConfig.redis.redisPort = REDIS_PORT;
      const q = await RedisQueue.connect(config);
      try {
        const reqs = makeRequests(Math.min(10_000, N_REDIS));
        await prefill(q, reqs);
        await runChain(q, "flow+publish", reqs.length, reqs.slice(0, 8));
      } finally {
        await q.close();
        await deleteNamespace(config.name, REDIS_PORT);
      }
    }
    const variants: Array<[Chain, "json" | "msgpack"]> = [["minimal", "json"], ["flow", "json"], ["flow", "msgpack"], ["flow+publish", "json"]];
    for (const [chain, codec] of variants) {
      if (!wanted("redis", chain)) continue;
      const n = chain === "flow+publish" ? N_REDIS_PUBLISH : N_REDIS;
      const reps: ChainResult[] = [];
      for (let rep = 0; rep < REPS; rep++) {
        const config = defaultConfig();
        config.name = `bench_engine_${Math.random().toString(36).slice(2, 8)}`;
        config.channelConfig.redis.redisPort = REDIS_PORT;
        config.channelConfig.queueCodec = codec;
        const q = await RedisQueue.connect(config);
        try {
          const reqs = makeRequests(n);
          const publishPerSec = await prefill(q, reqs);
          const foreign = await foreignClients(admin, config.name);
          const before = await commandStats(admin);
          const cpuBefore = await redisCpuMs(admin);
          const r = await runChain(q, chain, n, reqs.slice(0, 8));
          // acks are batched (flush every 20 ms): let the last batch land before the snapshot
          await new Promise((res) => setTimeout(res, 100));
          const after = await commandStats(admin);
          const cpuAfter = await redisCpuMs(admin);
          const delta = commandDelta(before, after);
          reps.push({
            ...result("redis", chain, n, r, codec, cpuAfter - cpuBefore),
            publishPerSec,
            redisCmdsPerMsg: delta.total / n,
            redisCpuUsPerMsg: ((cpuAfter - cpuBefore) * 1000) / n,
            redisCommands: delta.byCommand,
            foreignRedisClients: foreign,
          });
        } finally {
          await q.close();
          await deleteNamespace(config.name, REDIS_PORT);
        }
      }
      out.push(medianRow(reps));
    }
  } finally {
    admin.disconnect();
  }
  return out;
}

// ------------------------------------------------------------------------------ hot-path pieces

interface Piece {
  piece: string;
  usPerOp: number;
  perPage: number;
  usPerPage: number;
  note: string;
}

/** µs per call of `fn`: the best of 3 runs of >= minMs each (the machine may be shared: the minimum is the least disturbed) */
function timeOp(fn: (i: number) => unknown, minMs = 150): number {
  for (let i = 0; i < 2000; i++) fn(i); // warm-up
  let best = Infinity;
  let sink: unknown;
  for (let rep = 0; rep < 3; rep++) {
    let n = 0;
    const t0 = performance.now();
    let t = t0;
    while (t - t0 < minMs) {
      for (let k = 0; k < 100; k++) sink = fn(n++);
      t = performance.now();
    }
    best = Math.min(best, ((t - t0) * 1000) / n);
  }
  if (sink === Symbol.for("never")) console.log(sink);
  return best;
}

async function pieces(): Promise<Piece[]> {
  const shop = await startShop({ items: 1000 });
  const fetchText = async (path: string) => (await fetch(shop.url + path)).text();
  const itemHtml = await fetchText("/item/500");
  const listHtml = await fetchText("/list/3");
  await shop.close();
  const itemUrl = `${shop.url}/item/500`;
  const registry = new ModuleRegistry({ demo_shop: { start_url: `${shop.url}/list/0` } }).register(demo);
  const module = registry.get("demo_shop");
  const settings = registry.settings("demo_shop");
  const origin = { task: { account: "", platform: "", priority: "normal" as const, runId: uuidv7() }, module, settings, stepIdx: 1, baseUrl: itemUrl, timeoutSecs: 30 };
  const links = parseHtml(itemHtml, itemUrl).links("a[href*='/item/']");
  const req = seedToRequest(links[0], origin, { step: "item" }) as Request;
  const fp = fingerprint(req);
  const content = new TextEncoder().encode(itemHtml);
  const itemResponse = response({ module: "demo_shop", content, headers: [[URL_HEADER, itemUrl]], context: { ...req.context, stepIdx: 1 } });
  const seen = new SeenSet();
  const fps = Array.from({ length: 4096 }, (_, i) => fingerprint(request({ url: `http://x/${i}` })));
  const { parseDocument } = await import("htmlparser2");

  const out: Piece[] = [];
  const add = (piece: string, us: number, perPage: number, note: string) => out.push({ piece, usPerOp: us, perPage, usPerPage: us * perPage, note });
  add("uuidv7()", timeOp(() => uuidv7()), 16, "2 per Request: request() makes a default id that seedToRequest overrides");
  add("request({url}) (defaults object)", timeOp((i) => request({ url: `http://x/${i}` })), 8, "incl. 1 uuidv7, metaData(), executionMark()");
  add("new URL(href, base).href", timeOp((i) => new URL(`/item/${i}`, itemUrl).href), 8, "seedToRequest re-parses links() output");
  add("seedToRequest(link) (follow)", timeOp((i) => seedToRequest(links[i % links.length], origin, { step: "item" })), 8, "per follow-up link: URL parse, headers, 2 uuidv7, request()");
  add("fingerprint(req) (md5)", timeOp(() => fingerprint(req)), 9, "8 at enqueue (dedup key) + 1 in download()");
  add("SeenSet.add(md5 hex)", timeOp((i) => seen.add(fps[i & 4095])), 9, "regex test + parseInt(slice) per key");
  add("TextDecoder.decode(6 KB)", timeOp(() => new TextDecoder().decode(content)), 1, "Page.text()");
  add("htmlparser2 parseDocument(item)", timeOp(() => parseDocument(itemHtml)), 1, `${itemHtml.length} B item page`);
  add("htmlparser2 parseDocument(list)", timeOp(() => parseDocument(listHtml)), 0.02, `${listHtml.length} B list page, 1 per 50 pages`);
  const parseOnly = timeOp(() => parseDocument(itemHtml));
  const parseAndExtract = timeOp(() => {
    const d = parseHtml(itemHtml, itemUrl);
    return [d.text("h1.title"), d.text("span.price"), d.text("div.desc").slice(0, 200), d.links("a[href*='/item/']"), d.links("a[href*='/list/']")];
  });
  add("extraction on a parsed item page", parseAndExtract - parseOnly, 1, "3 text() + 2 links(): selector match, text collapse, URL fast path");
  add("JSON.stringify(item)", timeOp(() => JSON.stringify(ITEM)), 1, "sink");
  add(
    "runParse(item page) (whole parse step)",
    await (async () => {
      for (let i = 0; i < 500; i++) await runParse(module, itemResponse, settings, 30);
      let best = Infinity;
      for (let rep = 0; rep < 3; rep++) {
        const n = 1000;
        const t0 = performance.now();
        for (let i = 0; i < n; i++) await runParse(module, itemResponse, settings, 30);
        best = Math.min(best, ((performance.now() - t0) * 1000) / n);
      }
      return best;
    })(),
    1,
    "decode + parse + extraction + 8 seedToRequest",
  );
  return out;
}

// ------------------------------------------------------------------------------ main

const redisAt = await redisTarget();
const REDIS_PORT = redisAt.port;
console.log(`benchmark_engine: node ${process.version}, cpus ${myCpus()}, prefetch ${PREFETCH}; ${redisAt.note}`);
const mem = await memoryRuns();
let redis: ChainResult[] = [];
let redisNote = "";
if (await redisReachable(REDIS_PORT)) redis = await redisRuns();
else redisNote = `no Redis at 127.0.0.1:${REDIS_PORT}: Redis rows skipped`;
await redisAt.stop();
const parts = process.env.BENCH_ENGINE_PIECES === "0" ? [] : await pieces();

const rows = [...mem, ...redis];
console.log(
  `\nOperator chain throughput (messages: memory ${fmt(N_MEM)}, Redis ${fmt(N_REDIS)} (flow+publish ${fmt(N_REDIS_PUBLISH)}); prefetch ${PREFETCH}; ` +
    `one process, cpu ${myCpus()}; median of ${REPS} runs, all runs' msg/s in the last column)`,
);
console.log(
  table(
    ["queue", "chain", "codec", "msg/s", "µs/msg", "CPU µs/msg", "publish msg/s", "redis cmds/msg", "redis CPU µs/msg", "other load", "runs (msg/s)"],
    rows.map((r) => [
      r.queue,
      r.chain,
      r.codec,
      fmt(r.msgPerSec),
      r.usPerMsg.toFixed(1),
      r.cpuUsPerMsg.toFixed(1),
      fmt(r.publishPerSec ?? NaN),
      r.redisCmdsPerMsg === undefined ? "-" : r.redisCmdsPerMsg.toFixed(2),
      r.redisCpuUsPerMsg === undefined ? "-" : r.redisCpuUsPerMsg.toFixed(1),
      `${r.otherCpuCores.toFixed(2)} cores`,
      (r.reps ?? []).map((x) => fmt(x)).join(" "),
    ]),
  ),
);
if (redisNote) console.log(redisNote);
if (ONLY.length > 0) for (const r of rows) console.log(`window ${r.queue}:${r.chain} --from ${r.window.fromUs} --to ${r.window.toUs}`);
const foreign = redisAt.private ? 0 : Math.max(0, ...redis.map((r) => r.foreignRedisClients ?? 0));
if (foreign > 0) console.log(`note: ${foreign} other client(s) were connected to Redis: commandstats/CPU deltas may include their traffic`);
const redisFlow = redis.find((r) => r.chain === "flow" && r.codec === "json");
const target = redisFlow ? `Redis queue plane (flow chain): ${fmt(redisFlow.msgPerSec)} msg/s vs target 30 000: ${redisFlow.msgPerSec >= 30_000 ? "MET" : `MISSED (${((redisFlow.msgPerSec / 30_000) * 100).toFixed(0)}% of target)`}` : "";
if (target) console.log(target);
if (redis.length > 0) {
  console.log("Redis commands per message by command (flow+publish): " +
    Object.entries(redis.find((r) => r.chain === "flow+publish")?.redisCommands ?? {})
      .sort((a, b) => b[1] - a[1])
      .map(([c, n]) => `${c} ${(n / N_REDIS_PUBLISH).toFixed(2)}`)
      .join(", "));
}

console.log("\nHot-path pieces (µs per call, best of 3 single-threaded loops, GC included; 'per page' = calls per crawled item page)");
console.log(table(["piece", "µs/op", "per page", "µs/page", "note"], parts.map((p) => [p.piece, p.usPerOp.toFixed(2), String(p.perPage), p.usPerPage.toFixed(1), p.note])));

const file = writeResults("engine", { environment: environment(), cpus: myCpus(), redis: redisAt.note, prefetch: PREFETCH, chains: rows, pieces: parts, redisNote, target, targets: redisFlow ? [{ target: "Redis queue plane (flow chain) >= 30 000 msg/s", value: `${fmt(redisFlow.msgPerSec)} msg/s`, met: redisFlow.msgPerSec >= 30_000 }] : [] });
console.log(`\nwrote ${file}; total ${((performance.now() - started) / 1000).toFixed(1)} s`);
process.exit(0);
