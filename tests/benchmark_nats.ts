// tests/benchmark_nats.ts: the queue engines side by side in one run: real `start-worker`
// processes crawl the demo shop (own process) with the queues on Redis Streams, then on NATS
// JetStream (a private nats-server, file store), for 1 and 2 workers. Coordination and the item
// sink are on Redis in both (as a NATS deployment runs). Per run: pages/s, worker CPU per page,
// and the queue server's CPU per page (redis-server's INFO cpu, or the nats-server process).
//
//   npx tsx tests/benchmark_nats.ts
//   BENCH_ITEMS (3000)  BENCH_NATS_CONCURRENCY (32, task_concurrency per worker)
//   BENCH_NATS_MAX_SECS (30: time box per run)  BENCH_NATS_WORKERS (1,2)  BENCH_NATS_ROUNDS (1)
//   BENCH_NATS_ENGINES (redis,nats)  BENCH_NATS_PROFILE (a directory: the workers' CPU profiles)
//
// Timing: from `submit` returning until the Redis item stream holds N items; each run first
// crawls the whole shop once untimed as another account (warm JIT, consumers created).
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import { itemStreamKey } from "../src/storage/redis-sink.ts";
import { envInt, expectedPages, fmt, leafPid, machineBusyMs, median, procCpuMs, redisCpuMs, ROOT, sleep, startShopProcess, table, TSX_BIN } from "./bench/common.ts";
import { startNatsServer } from "./helpers/nats-server.ts";
import { deleteNamespace, redisReachable } from "./helpers/redis.ts";

const N = envInt("BENCH_ITEMS", 3000);
const C = envInt("BENCH_NATS_CONCURRENCY", 32);
const MAX_SECS = envInt("BENCH_NATS_MAX_SECS", 30);
const ROUNDS = envInt("BENCH_NATS_ROUNDS", 1);
const WORKERS = (process.env.BENCH_NATS_WORKERS ?? "1,2").split(",").map(Number);
const ENGINES = (process.env.BENCH_NATS_ENGINES ?? "redis,nats").split(",") as Engine[];
const PAGES = expectedPages(N);
const REDIS_PORT = 6379;

if (!(await redisReachable(REDIS_PORT))) {
  console.error(`benchmark_nats: no Redis at 127.0.0.1:${REDIS_PORT}`);
  process.exit(1);
}
const admin = new Redis({ host: "127.0.0.1", port: REDIS_PORT, maxRetriesPerRequest: 1, connectionName: "bench_nats_admin" });
const nats = await startNatsServer();
const natsPid = Number((await import("node:child_process")).execSync(`pgrep -f -- "-p ${nats.port} -sd"`).toString().trim().split("\n")[0]);

console.log(`benchmark_nats: N = ${fmt(N)} items (${fmt(PAGES)} pages), task_concurrency ${C} per worker, time box ${MAX_SECS} s, ${ROUNDS} round(s)`);
console.log(`machine: ${(await import("node:os")).cpus().length} cpus, load average ${(await import("node:os")).loadavg().map((l) => l.toFixed(1)).join(" ")} (shared with other work)`);

type Engine = "redis" | "nats";
interface Run {
  engine: Engine;
  workers: number;
  items: number;
  seconds: number;
  pagesPerSec: number;
  cpuUsPerPage: number;
  serverCpuUsPerPage: number;
  otherCpuCores: number;
}

function spawnProc(args: string[]): { child: ChildProcess; output: () => string; exited: Promise<number | null> } {
  // BENCH_NATS_PROFILE=<dir>: workers write a V8 CPU profile there (node --cpu-prof)
  const profile = process.env.BENCH_NATS_PROFILE;
  const child =
    profile && args[0] === "start-worker"
      ? spawn(process.execPath, ["--import", "tsx", "--cpu-prof", `--cpu-prof-dir=${profile}`, "src/cli.ts", ...args], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] })
      : spawn(TSX_BIN, ["src/cli.ts", ...args], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
  return { child, output: () => out, exited };
}

async function submit(configFile: string, account?: string): Promise<void> {
  const p = spawnProc(["submit", "demo_shop", "--config", configFile, ...(account ? ["--account", account] : [])]);
  if ((await p.exited) !== 0) throw new Error(`submit failed: ${p.output()}`);
}

async function run(engine: Engine, workers: number): Promise<Run> {
  const shop = await startShopProcess({ items: N });
  const name = `bench_nats_${Math.random().toString(36).slice(2, 8)}`;
  const dir = await mkdtemp(join(tmpdir(), "mocra-bench-nats-"));
  const configFile = join(dir, "config.toml");
  await writeFile(
    configFile,
    [
      `name = "${name}"`,
      `[crawler]`,
      `task_concurrency = ${C}`,
      `shutdown_timeout_secs = 10`,
      `progress_interval_secs = 3600`,
      `[download_config]`,
      `domain_concurrency = 0`,
      `[channel_config.redis]`,
      `redis_host = "127.0.0.1"`,
      `redis_port = ${REDIS_PORT}`,
      ...(engine === "nats" ? [`[channel_config.nats]`, `url = "${nats.url}"`] : []),
      `[output]`,
      `sink = "redis"`,
      `[modules.demo_shop]`,
      `start_url = "${shop.url}/list/0"`,
      "",
    ].join("\n"),
  );
  const procs = Array.from({ length: workers }, () => spawnProc(["start-worker", "--config", configFile]));
  const itemKey = itemStreamKey(name, "demo_shop");
  try {
    const deadline = Date.now() + 60_000;
    while (!procs.every((p) => p.output().includes("joined"))) {
      if (Date.now() > deadline || procs.some((p) => p.child.exitCode !== null)) throw new Error(`workers did not join:\n${procs.map((p) => p.output()).join("\n---\n")}`);
      await sleep(50);
    }
    const leaves = procs.map((p) => leafPid(p.child.pid!));
    // warm-up: the whole shop once as another account
    await submit(configFile, "warmup");
    let before = 0;
    const warmEnd = performance.now() + MAX_SECS * 1000;
    while (before < N && performance.now() < warmEnd) {
      await sleep(50);
      before = await admin.xlen(itemKey);
    }
    await submit(configFile);
    const t0 = performance.now();
    const w0 = leaves.map(procCpuMs).reduce((a, b) => a + b, 0);
    const s0 = engine === "nats" ? procCpuMs(natsPid) : await redisCpuMs(admin);
    const busy0 = machineBusyMs();
    const shop0 = shop.cpuMs();
    let items = 0;
    const stopAt = t0 + MAX_SECS * 1000;
    while (items < N && performance.now() < stopAt) {
      await sleep(25);
      items = (await admin.xlen(itemKey)) - before;
    }
    const ms = performance.now() - t0;
    const w1 = leaves.map(procCpuMs).reduce((a, b) => a + b, 0);
    const s1 = engine === "nats" ? procCpuMs(natsPid) : await redisCpuMs(admin);
    const busy1 = machineBusyMs();
    const shop1 = shop.cpuMs();
    const pages = (items * PAGES) / N;
    return {
      engine,
      workers,
      items,
      seconds: ms / 1000,
      pagesPerSec: (pages / ms) * 1000,
      cpuUsPerPage: ((w1 - w0) * 1000) / pages,
      serverCpuUsPerPage: ((s1 - s0) * 1000) / pages,
      otherCpuCores: Math.max(0, (busy1 - busy0 - (w1 - w0) - (shop1 - shop0) - (s1 - s0)) / ms),
    };
  } finally {
    for (const p of procs) p.child.kill("SIGTERM");
    await Promise.race([Promise.all(procs.map((p) => p.exited)), sleep(15_000)]);
    for (const p of procs) if (p.child.exitCode === null) p.child.kill("SIGKILL");
    await shop.stop();
    await rm(dir, { recursive: true, force: true });
    await deleteNamespace(name, REDIS_PORT);
  }
}

const runs: Run[] = [];
try {
  for (let round = 0; round < ROUNDS; round++) {
    for (const workers of WORKERS) {
      for (const engine of ENGINES) {
        const r = await run(engine, workers);
        runs.push(r);
        console.log(
          `${engine.padEnd(5)} ${workers} worker(s): ${fmt(r.pagesPerSec)} pages/s, worker CPU ${fmt(r.cpuUsPerPage)} us/page, ${engine === "nats" ? "nats-server" : "redis-server"} ${fmt(r.serverCpuUsPerPage)} us/page` +
            `${r.items < N ? ` (partial: ${r.items} of ${N} items in ${MAX_SECS} s)` : ""}; other load ${r.otherCpuCores.toFixed(2)} cores`,
        );
      }
    }
  }
} finally {
  admin.disconnect();
  await nats.dispose();
}

const rows: (string | number)[][] = [];
for (const workers of WORKERS) {
  for (const engine of ENGINES) {
    const rs = runs.filter((r) => r.engine === engine && r.workers === workers);
    rows.push([engine, workers, fmt(median(rs.map((r) => r.pagesPerSec))), fmt(median(rs.map((r) => r.cpuUsPerPage))), fmt(median(rs.map((r) => r.serverCpuUsPerPage))), median(rs.map((r) => r.otherCpuCores)).toFixed(2)]);
  }
  const ratio = (e: Engine) => median(runs.filter((r) => r.engine === e && r.workers === workers).map((r) => r.pagesPerSec));
  if (ENGINES.length === 2) console.log(`${workers} worker(s): JetStream / Redis pages/s = ${(ratio("nats") / ratio("redis")).toFixed(2)}`);
}
console.log(table(["engine", "workers", "pages/s", "worker CPU us/page", "queue server CPU us/page", "other load (cores)"], rows));
