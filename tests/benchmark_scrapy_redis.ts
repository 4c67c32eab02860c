// tests/benchmark_scrapy_redis.ts: mocra-ts workers vs scrapy-redis nodes, one and two, on the same
// Redis workload — the peer a mocra user compares a fleet with. Both crawl the mock shop (N items of
// ~6 KB + N/50 list pages, every link followed and deduplicated in Redis, one item per item page
// stored in Redis): mocra-ts as `start-worker` processes (tests/benchmark_production.ts, run first
// as a child; its figures are read from bench-results/production.json), scrapy-redis as Scrapy
// processes with scrapy-redis's scheduler, dupefilter and RedisPipeline (tests/bench/crawl_scrapy_redis.py).
// One node is pinned to the crawler cpu like one worker; two run unpinned like two workers.
//
//   BENCH_SCRAPY_REDIS=/path/to/scrapy-redis npx tsx tests/benchmark_scrapy_redis.ts
//   npm run bench -- scrapy_redis              (the same, from the bench runner)
//
// scrapy-redis is not packaged: `git clone https://github.com/rmax/scrapy-redis vendor/scrapy-redis`
// (vendor/ is ignored by git) and point BENCH_SCRAPY_REDIS at it. It needs Debian's
// python3-scrapy and python3-redis (BENCH_PYTHON picks the interpreter). Without the checkout the
// benchmark says so and exits 0. BENCH_ITEMS, BENCH_PROD_CONCURRENCY (C per worker and per node),
// BENCH_PROD_MAX_SECS (time box) and BENCH_PRIVATE_REDIS=1 apply to both sides.
//
// Timing: from the moment the first 100 items are stored until N items are stored (or the time
// box): a scrapy-redis node polls for start URLs only when idle (every ~5 s), so its start-up is
// left out; mocra-ts's rate is from `submit` (start-up included, which favours scrapy-redis a little).
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { Redis } from "ioredis";
import {
  benchItems,
  commandDelta,
  commandStats,
  environment,
  envInt,
  expectedPages,
  fmt,
  pinning,
  procCpuMs,
  procRss,
  redisTarget,
  ROOT,
  sleep,
  startShopProcess,
  table,
  writeResults,
} from "./bench/common.ts";

const checkout = process.env.BENCH_SCRAPY_REDIS;
if (!checkout || !existsSync(join(checkout, "src/scrapy_redis/scheduler.py"))) {
  console.log(
    `benchmark_scrapy_redis: skipped: set BENCH_SCRAPY_REDIS to a checkout of https://github.com/rmax/scrapy-redis` +
      (checkout ? ` (${checkout} has no src/scrapy_redis/scheduler.py)` : ""),
  );
  process.exit(0);
}
const python = [process.env.BENCH_PYTHON, "python3", "/usr/bin/python3"].find((p) => {
  if (!p) return false;
  try {
    execFileSync(p, ["-c", "import scrapy, redis"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
});
if (!python) {
  console.error("benchmark_scrapy_redis: no python3 that imports scrapy and redis (apt-get install -y python3-scrapy python3-redis, or set BENCH_PYTHON)");
  process.exit(1);
}

const N = benchItems();
const C = envInt("BENCH_PROD_CONCURRENCY", 64);
const MAX_SECS = envInt("BENCH_PROD_MAX_SECS", 20);
const PAGES = expectedPages(N);
const pin = pinning();

// mocra-ts: the production benchmark, one and two workers, in its own process
console.log("benchmark_scrapy_redis: mocra-ts start-worker processes first (tests/benchmark_production.ts)\n");
const prodCode = await new Promise<number>((resolve) => {
  const child = spawn(process.execPath, ["--import", "tsx", "tests/benchmark_production.ts"], {
    cwd: ROOT,
    stdio: "inherit",
    env: { ...process.env, BENCH_PROD_WORKERS: "1,2" },
  });
  child.on("exit", (code) => resolve(code ?? 1));
});
if (prodCode !== 0) {
  console.error(`benchmark_scrapy_redis: benchmark_production exited with ${prodCode}`);
  process.exit(1);
}
interface ProdRun {
  workers: number;
  pagesPerSec: number;
  cpuUsPerPage: number;
  peakRssMbPerWorker: number[];
  redisCmdsPerPage: number;
  partial: boolean;
}
const prod = JSON.parse(readFileSync(join(ROOT, "bench-results/production.json"), "utf8")) as { workerRuns: ProdRun[] };

interface NodeRun {
  nodes: number;
  pinning: string;
  items: number;
  pages: number;
  partial: boolean;
  pagesPerSec: number;
  cpuUsPerPage: number;
  peakRssMbPerNode: number[];
  redisCmdsPerPage: number;
}

function startNode(name: string, port: number, url: string, cpu: string | undefined): { child: ChildProcess; output: () => string; exited: Promise<void> } {
  const args = [join(ROOT, "tests/bench/crawl_scrapy_redis.py"), "--name", name, "--redis-port", String(port), "--url", url, "--concurrency", String(C)];
  const env = { ...process.env, PYTHONPATH: join(checkout!, "src") };
  const child = cpu !== undefined ? spawn("taskset", ["-c", cpu, python!, ...args], { env, stdio: ["ignore", "pipe", "pipe"] }) : spawn(python!, args, { env, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (out += d.toString()));
  const exited = new Promise<void>((r) => child.once("exit", () => r()));
  return { child, output: () => out, exited };
}

async function nodeRun(nodes: number): Promise<NodeRun> {
  const redis = await redisTarget();
  const admin = new Redis({ host: "127.0.0.1", port: redis.port, maxRetriesPerRequest: 1 });
  const shop = await startShopProcess({ items: N, cpu: pin.shop });
  const name = `bench_sr_${Math.random().toString(36).slice(2, 8)}`;
  const cpu = nodes === 1 ? pin.crawler : undefined;
  const procs = Array.from({ length: nodes }, () => startNode(name, redis.port, shop.url, cpu));
  try {
    const deadline = Date.now() + 60_000;
    while (!procs.every((p) => p.output().includes("READY"))) {
      if (Date.now() > deadline || procs.some((p) => p.child.exitCode !== null)) throw new Error(`scrapy-redis nodes did not start:\n${procs.map((p) => p.output()).join("\n---\n")}`);
      await sleep(50);
    }
    const pids = procs.map((p) => p.child.pid!);
    const peak = pids.map(() => 0);
    const sampler = setInterval(() => pids.forEach((pid, i) => (peak[i] = Math.max(peak[i], procRss(pid)?.hwmMb ?? 0))), 200);
    await admin.lpush(`${name}:start_urls`, `${shop.url}/list/0`);
    const itemKey = `${name}:items`;
    let items = 0;
    const startAt = Date.now() + 30_000;
    while (items < 100) {
      if (Date.now() > startAt) throw new Error(`scrapy-redis stored ${items} items in 30 s:\n${procs.map((p) => p.output()).join("\n---\n")}`);
      await sleep(20);
      items = await admin.llen(itemKey);
    }
    const t0 = performance.now();
    const items0 = items;
    const cpu0 = pids.map(procCpuMs);
    const cmd0 = await commandStats(admin);
    const stopAt = t0 + MAX_SECS * 1000;
    while (items < N && performance.now() < stopAt) {
      await sleep(50);
      items = await admin.llen(itemKey);
    }
    const t1 = performance.now();
    const cpu1 = pids.map(procCpuMs);
    const cmd1 = await commandStats(admin);
    clearInterval(sampler);
    pids.forEach((pid, i) => (peak[i] = Math.max(peak[i], procRss(pid)?.hwmMb ?? 0)));
    const timed = items - items0;
    const pages = (timed * PAGES) / N;
    const cpuMs = cpu1.reduce((a, b) => a + b, 0) - cpu0.reduce((a, b) => a + b, 0);
    return {
      nodes,
      pinning: cpu !== undefined ? `cpu ${cpu}` : "unpinned",
      items,
      pages,
      partial: items < N,
      pagesPerSec: (pages / (t1 - t0)) * 1000,
      cpuUsPerPage: (cpuMs * 1000) / pages,
      peakRssMbPerNode: peak,
      redisCmdsPerPage: commandDelta(cmd0, cmd1).total / pages,
    };
  } finally {
    for (const p of procs) if (p.child.exitCode === null) p.child.kill("SIGKILL");
    await Promise.all(procs.map((p) => p.exited));
    await shop.stop();
    const keys = await admin.keys(`${name}:*`);
    if (keys.length > 0) await admin.del(...keys);
    admin.disconnect();
    await redis.stop();
  }
}

console.log(`\nbenchmark_scrapy_redis: scrapy-redis nodes (${checkout}), N = ${fmt(N)} items, CONCURRENT_REQUESTS ${C} per node, time box ${MAX_SECS} s`);
const runs: NodeRun[] = [];
for (const n of [1, 2]) {
  const r = await nodeRun(n);
  runs.push(r);
  console.log(`  ${n} node(s): ${fmt(r.pagesPerSec)} pages/s${r.partial ? " (time box)" : ""}`);
}

const rows: (string | number)[][] = [];
for (const w of prod.workerRuns) {
  rows.push([`mocra-ts, ${w.workers} worker(s)`, fmt(w.pagesPerSec) + (w.partial ? "*" : ""), fmt(w.cpuUsPerPage), w.peakRssMbPerWorker.map((m) => m.toFixed(0)).join(" / "), w.redisCmdsPerPage.toFixed(1)]);
}
for (const r of runs) {
  rows.push([`scrapy-redis, ${r.nodes} node(s)`, fmt(r.pagesPerSec) + (r.partial ? "*" : ""), fmt(r.cpuUsPerPage), r.peakRssMbPerNode.map((m) => m.toFixed(0)).join(" / "), r.redisCmdsPerPage.toFixed(1)]);
}
console.log(`\nThe same Redis workload (${fmt(N)} items, ${fmt(PAGES)} pages; * = time box reached, a rate over what was done)`);
console.log(table(["", "pages/s", "CPU µs/page", "peak RSS MB each", "Redis cmds/page"], rows));
const one = prod.workerRuns.find((w) => w.workers === 1);
const two = prod.workerRuns.find((w) => w.workers === 2);
const ratios: string[] = [];
if (one) ratios.push(`one worker vs one node: ${(one.pagesPerSec / runs[0].pagesPerSec).toFixed(1)}x the pages/s, ${(runs[0].cpuUsPerPage / one.cpuUsPerPage).toFixed(1)}x less CPU per page`);
if (two) ratios.push(`two workers vs two nodes: ${(two.pagesPerSec / runs[1].pagesPerSec).toFixed(1)}x the pages/s`);
ratios.push(`scrapy-redis scaling: two nodes ${(runs[1].pagesPerSec / runs[0].pagesPerSec).toFixed(2)}x one`);
if (one && two) ratios.push(`mocra-ts scaling: two workers ${(two.pagesPerSec / one.pagesPerSec).toFixed(2)}x one`);
for (const r of ratios) console.log(r);
const file = writeResults("scrapy_redis", { environment: environment(), items: N, pages: PAGES, concurrency: C, pinning: pin.note, scrapyRedis: runs, mocra: prod.workerRuns, ratios });
console.log(`\nwrote ${file}`);
process.exit(0);
