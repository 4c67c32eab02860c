// tests/bench/common.ts: shared plumbing of the benchmarks (tests/benchmark_*.ts): the mock shop
// in its own process, child crawler processes pinned with taskset, /proc sampling (CPU, RSS),
// Redis INFO deltas, medians/percentiles, compact tables, and bench-results/<name>.json.
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { availableParallelism, cpus as osCpus } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Redis } from "ioredis";

// compiled, this file is dist-bench/tests/bench/common.js: the checkout is one more level up
export const ROOT = fileURLToPath(new URL(import.meta.url.endsWith(".js") ? "../../.." : "../..", import.meta.url));
export const TSX_BIN = join(ROOT, "node_modules/.bin/tsx");
const CLK_TCK = 100;

// ------------------------------------------------------------------------------ settings

/** An integer from the environment (BENCH_*), else `fallback`. */
export function envInt(name: string, fallback: number): number {
  const v = process.env[name];
  if (v === undefined || v === "") return fallback;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new Error(`${name} must be a non-negative number, got ${JSON.stringify(v)}`);
  return Math.floor(n);
}

/** A list of integers from the environment ("16,64,200"), else `fallback`. */
export function envInts(name: string, fallback: number[]): number[] {
  const v = process.env[name];
  if (v === undefined || v === "") return fallback;
  return v.split(",").map((s) => {
    const n = Number(s.trim());
    if (!Number.isInteger(n) || n < 1) throw new Error(`${name}: bad entry ${JSON.stringify(s)}`);
    return n;
  });
}

/** `--name value` / `--name=value` from argv, else undefined. */
export function argValue(name: string): string | undefined {
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === `--${name}`) return argv[i + 1];
    if (argv[i].startsWith(`--${name}=`)) return argv[i].slice(name.length + 3);
  }
  return undefined;
}

export function hasFlag(name: string): boolean {
  return process.argv.slice(2).includes(`--${name}`);
}

export function numArg(name: string, fallback: number): number {
  const v = argValue(name);
  return v === undefined ? fallback : Number(v);
}

/** Items in the mock shop: BENCH_ITEMS or --items, default 20 000. */
export function benchItems(): number {
  return Number(argValue("items") ?? envInt("BENCH_ITEMS", 20_000));
}

/** Pages a full crawl of the shop fetches: every item and every list page (robots.txt not counted). */
export function expectedPages(items: number, perPage = 50): number {
  return items + Math.ceil(items / perPage);
}

// ------------------------------------------------------------------------------ pinning

export interface Pinning {
  enabled: boolean;
  /** cpu list for the mock shop, e.g. "0" */
  shop: string | undefined;
  /** cpu list for the process under test, e.g. "1" */
  crawler: string | undefined;
  note: string;
}

/** taskset when it exists and there are >= 2 cpus (and BENCH_PIN is not 0). */
export function pinning(): Pinning {
  // the machine's cpus, not this process's affinity (the engine benchmark itself runs pinned)
  const cpus = osCpus().length;
  let taskset = false;
  try {
    execFileSync("sh", ["-c", "command -v taskset"], { stdio: "ignore" });
    taskset = true;
  } catch {
    taskset = false;
  }
  if (process.env.BENCH_PIN === "0") return { enabled: false, shop: undefined, crawler: undefined, note: "pinning off (BENCH_PIN=0)" };
  if (!taskset || cpus < 2) {
    return { enabled: false, shop: undefined, crawler: undefined, note: `no pinning (${taskset ? "" : "no taskset, "}${cpus} cpu${cpus === 1 ? "" : "s"})` };
  }
  return { enabled: true, shop: "0", crawler: "1", note: `pinned: mock shop on cpu 0, crawler on cpu 1 (taskset; ${cpus} cpus)` };
}

/**
 * BENCH_TSX=1: run the benchmarks' Node processes from their TypeScript through tsx (as before
 * round four) instead of the compiled build; for before/after figures of the build itself.
 */
export const THROUGH_TSX = process.env.BENCH_TSX === "1";

/**
 * Builds what the benchmarks run on Node when it is missing or older than its sources:
 * dist-bench/ (crawler processes, the mock shop) and dist/ (the CLI: `start-worker` processes).
 * `node scripts/build.mjs [--bench] --if-stale`, ~5 s each when it builds.
 */
export function ensureBuilds(): void {
  if (THROUGH_TSX) return;
  for (const flags of [["--bench"], []]) execFileSync(process.execPath, [join(ROOT, "scripts/build.mjs"), ...flags, "--if-stale"], { cwd: ROOT, stdio: "inherit" });
}

/** The compiled twin of a script of the checkout (tests/bench/x.ts -> dist-bench/tests/bench/x.js), if built. */
function compiledScript(script: string): string | undefined {
  if (THROUGH_TSX || !script.endsWith(".ts")) return undefined;
  const js = join("dist-bench", script.replace(/\.ts$/, ".js"));
  return existsSync(join(ROOT, js)) ? js : undefined;
}

/**
 * The command line for a script of the checkout under node, optionally pinned: its compiled
 * JavaScript from dist-bench/ (plain node, as `npm start` runs) when built, else the TypeScript
 * through tsx's loader (one process: no tsx wrapper).
 */
export function nodeCommand(script: string, args: string[], cpu?: string, nodeFlags: string[] = [], throughTsx = false): [string, string[]] {
  const js = throughTsx ? undefined : compiledScript(script);
  const node = js !== undefined ? [...nodeFlags, js, ...args] : [...nodeFlags, "--import", "tsx", script, ...args];
  return cpu !== undefined ? ["taskset", ["-c", cpu, process.execPath, ...node]] : [process.execPath, node];
}

/** The CLI as `npm run start-worker` runs it: dist/src/cli.js under plain node (BENCH_TSX=1: src/cli.ts through tsx). */
export function cliCommand(args: string[], cpu?: string): [string, string[]] {
  const cli = THROUGH_TSX ? [TSX_BIN, "src/cli.ts", ...args] : [process.execPath, "dist/src/cli.js", ...args];
  return cpu !== undefined ? ["taskset", ["-c", cpu, ...cli]] : [cli[0], cli.slice(1)];
}

/** The Deno binary the `deno` npm package installs (a devDependency). */
export const DENO_BIN = join(ROOT, "node_modules/deno/deno");

/** Whether Deno can run here (the `deno` devDependency installed its binary). */
export function denoAvailable(): boolean {
  return existsSync(DENO_BIN);
}

/**
 * The command line for the same TypeScript script under Deno, optionally pinned. The V8 heap flag
 * is the one deno.json's run-standalone/start-worker tasks pass (Deno ignores it at run time, so
 * src/runtime's preferSteadyMemory cannot set it there); `--v8-defaults` among the script's args
 * leaves V8's defaults, as it does on Node.
 */
export function denoCommand(script: string, args: string[], cpu?: string, v8Flags: string[] = []): [string, string[]] {
  const flags = args.includes("--v8-defaults") ? v8Flags : ["--heap-growing-percent=20", ...v8Flags];
  const deno = ["run", "-A", ...(flags.length > 0 ? [`--v8-flags=${flags.join(",")}`] : []), script, ...args];
  return cpu !== undefined ? ["taskset", ["-c", cpu, DENO_BIN, ...deno]] : [DENO_BIN, deno];
}

// ------------------------------------------------------------------------------ /proc

/** user+system CPU ms of a process (0 if it is gone). */
export function procCpuMs(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    // fields[0] is field 3 (state): utime is field 14, stime field 15
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLK_TCK;
  } catch {
    return 0;
  }
}

/** VmRSS and VmHWM (peak) of a process in MB, or undefined when it is gone. */
export function procRss(pid: number): { rssMb: number; hwmMb: number } | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+)`, "m").exec(status)?.[1] ?? 0);
    return { rssMb: kb("VmRSS") / 1024, hwmMb: kb("VmHWM") / 1024 };
  } catch {
    return undefined;
  }
}

/** Every descendant pid of `pid`. */
export function descendants(pid: number): number[] {
  const out: number[] = [];
  const stack = [pid];
  while (stack.length > 0) {
    const p = stack.pop()!;
    let kids: number[] = [];
    try {
      kids = readFileSync(`/proc/${p}/task/${p}/children`, "utf8").trim().split(/\s+/).filter(Boolean).map(Number);
    } catch {
      kids = [];
    }
    for (const k of kids) {
      out.push(k);
      stack.push(k);
    }
  }
  return out;
}

/** The leaf process of a wrapper chain (tsx -> node, taskset exec's in place): the real worker. */
export function leafPid(pid: number): number {
  const all = [pid, ...descendants(pid)];
  const leaves = all.filter((p) => descendants(p).length === 0);
  return leaves[leaves.length - 1] ?? pid;
}

// ------------------------------------------------------------------------------ the mock shop

export interface ShopProcess {
  url: string;
  pid: number;
  /** CPU ms the shop process has used so far */
  cpuMs(): number;
  /** SIGTERM; resolves with the shop's own SHOP_STATS */
  stop(): Promise<{ hits: number; cpuMs: number; usPerHit: number }>;
}

/** Starts examples/demo-shop/serve.ts in its own process (pinned to `cpu` if given); resolves once it listens. */
export async function startShopProcess(o: { items: number; latencyMs?: number; cpu?: string }): Promise<ShopProcess> {
  const args = ["--items", String(o.items), "--stats"];
  if (o.latencyMs) args.push("--latency", String(o.latencyMs));
  const [cmd, argv] = nodeCommand("examples/demo-shop/serve.ts", args, o.cpu);
  const child = spawn(cmd, argv, { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  let err = "";
  child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (err += d.toString()));
  const exited = new Promise<void>((r) => child.once("exit", () => r()));
  const deadline = Date.now() + 20_000;
  while (!/SHOP_URL (\S+)/.test(out)) {
    if (child.exitCode !== null) throw new Error(`shop exited early: ${err}`);
    if (Date.now() > deadline) throw new Error(`shop did not start: ${err}`);
    await sleep(20);
  }
  const url = /SHOP_URL (\S+)/.exec(out)![1];
  const pid = child.pid!;
  return {
    url,
    pid,
    cpuMs: () => procCpuMs(pid),
    async stop() {
      child.kill("SIGTERM");
      await exited;
      const m = /SHOP_STATS hits=(\d+) cpu_ms=(\d+) us_per_hit=([\d.]+)/.exec(err);
      return m ? { hits: Number(m[1]), cpuMs: Number(m[2]), usPerHit: Number(m[3]) } : { hits: 0, cpuMs: 0, usPerHit: 0 };
    },
  };
}

export interface ShopCeiling {
  /** pages/s a cheap keep-alive client (undici Pool, 64 connections) gets from the shop */
  pagesPerSec: number;
  /** shop CPU per page during that measurement (us) */
  shopUsPerPage: number;
  /** shop CPU utilisation during the measurement (1 = one full core) */
  shopCpuShare: number;
  /** 1e6 / shopUsPerPage: pages/s the shop would do at 100% of its core */
  cpuBoundPagesPerSec: number;
}

/** Hammers the shop with tests/bench/shop-ceiling.ts (pinned like a crawler) and watches the shop's CPU. */
export async function measureShopCeiling(shop: ShopProcess, items: number, cpu: string | undefined, seconds = 3): Promise<ShopCeiling> {
  const c0 = shop.cpuMs();
  const r = await runChild<{ pages: number; ms: number; allPages: number }>("tests/bench/shop-ceiling.ts", ["--url", shop.url, "--items", String(items), "--seconds", String(seconds)], { cpu });
  const used = shop.cpuMs() - c0;
  // the shop's CPU over the child's whole life is spent on all its pages (warm-up included)
  const usPerPage = (used * 1000) / Math.max(1, r.allPages);
  return {
    pagesPerSec: (r.pages / r.ms) * 1000,
    shopUsPerPage: usPerPage,
    shopCpuShare: (usPerPage * r.pages) / 1000 / r.ms,
    cpuBoundPagesPerSec: usPerPage > 0 ? 1e6 / usPerPage : 0,
  };
}

// ------------------------------------------------------------------------------ children

export interface ChildRun<T> {
  result: T;
  /** everything the child printed (stdout+stderr) */
  output: string;
  pid: number;
}

/**
 * Runs a TypeScript script under node, pinned to `cpu`, and resolves with the JSON it prints on
 * a line `RESULT {...}`; rejects if it exits without one. `onStart` gets the pid (for sampling).
 */
export async function runChild<T>(
  script: string,
  args: string[],
  o: ChildOptions = {},
): Promise<T> {
  return (await runChildFull<T>(script, args, o)).result;
}

export interface ChildOptions {
  cpu?: string;
  env?: NodeJS.ProcessEnv;
  /** node flags (on Deno: V8 flags, passed as --v8-flags) */
  nodeFlags?: string[];
  timeoutMs?: number;
  onStart?: (pid: number) => void;
  /** "deno": the same script under Deno (denoCommand); "node-tsx": node through tsx even when compiled; default node */
  runtime?: "node" | "deno" | "node-tsx";
  /** another checkout to run the script of (its own node_modules; default this one) */
  cwd?: string;
}

export function runChildFull<T>(script: string, args: string[], o: ChildOptions = {}): Promise<ChildRun<T>> {
  const [cmd, argv] =
    o.runtime === "deno" ? denoCommand(script, args, o.cpu, o.nodeFlags) : nodeCommand(script, args, o.cpu, o.nodeFlags, o.runtime === "node-tsx" || o.cwd !== undefined);
  const child: ChildProcess = spawn(cmd, argv, { cwd: o.cwd ?? ROOT, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, ...o.env } });
  o.onStart?.(child.pid!);
  let out = "";
  // the RESULT line is read from stdout alone: stderr (--trace-gc on Deno, warnings) can land mid-line in `out`
  let stdout = "";
  child.stdout!.on("data", (d: Buffer) => {
    out += d.toString();
    stdout += d.toString();
  });
  child.stderr!.on("data", (d: Buffer) => (out += d.toString()));
  const timeoutMs = o.timeoutMs ?? 15 * 60_000;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`${script} timed out after ${timeoutMs} ms:\n${out.slice(-3000)}`));
    }, timeoutMs);
    child.on("exit", (code) => {
      clearTimeout(timer);
      // V8's --trace-gc prints to stdout too, unsynchronised with JavaScript's writes: the line may start mid-line
      const at = stdout.search(/RESULT [[{]/);
      const line = at >= 0 ? stdout.slice(at, stdout.indexOf("\n", at) >>> 0) : undefined;
      if (!line) {
        reject(new Error(`${script} ${args.join(" ")} exited ${code} without a RESULT line:\n${out.slice(-3000)}`));
        return;
      }
      resolve({ result: JSON.parse(line.slice(7)) as T, output: out, pid: child.pid! });
    });
  });
}

/** For child scripts: print the machine-readable result line. */
export function printResult(result: unknown): void {
  process.stdout.write(`RESULT ${JSON.stringify(result)}\n`);
}

/** CPU list this process may run on (Cpus_allowed_list). */
export function myCpus(): string {
  try {
    return /Cpus_allowed_list:\s+(\S+)/.exec(readFileSync("/proc/self/status", "utf8"))?.[1] ?? "?";
  } catch {
    return "?";
  }
}

/** Samples this process's RSS every `everyMs`; `stop()` returns first/middle/last/peak. */
export function rssSampler(everyMs: number): { stop(): { samples: number[]; first: number; middle: number; last: number; peak: number } } {
  const samples: number[] = [];
  const take = () => samples.push(process.memoryUsage.rss() / 1048576);
  take();
  const t = setInterval(take, everyMs);
  t.unref();
  return {
    stop() {
      clearInterval(t);
      take();
      return {
        samples: samples.map((s) => Math.round(s * 10) / 10),
        first: samples[0],
        middle: samples[Math.floor(samples.length / 2)],
        last: samples[samples.length - 1],
        peak: Math.max(...samples, process.resourceUsage().maxRSS / 1024),
      };
    },
  };
}

// ------------------------------------------------------------------------------ Redis INFO

/** INFO commandstats as command -> calls. */
export async function commandStats(redis: Redis): Promise<Map<string, number>> {
  const text = await redis.info("commandstats");
  const out = new Map<string, number>();
  for (const m of text.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) out.set(m[1], Number(m[2]));
  return out;
}

/** Calls per command between two snapshots (INFO/CLIENT/SCAN... of the benchmark itself excluded). */
export function commandDelta(before: Map<string, number>, after: Map<string, number>): { total: number; byCommand: Record<string, number> } {
  const skip = new Set(["info", "client|list", "client|setname", "ping", "scan", "unlink", "xlen", "hello", "select", "command|docs", "command"]);
  const byCommand: Record<string, number> = {};
  let total = 0;
  for (const [cmd, calls] of after) {
    if (skip.has(cmd)) continue;
    const d = calls - (before.get(cmd) ?? 0);
    if (d > 0) {
      byCommand[cmd] = d;
      total += d;
    }
  }
  return { total, byCommand };
}

/** used_cpu_user + used_cpu_sys of the Redis server, in ms. */
export async function redisCpuMs(redis: Redis): Promise<number> {
  const text = await redis.info("cpu");
  const user = Number(/used_cpu_user:([\d.]+)/.exec(text)?.[1] ?? 0);
  const sys = Number(/used_cpu_sys:([\d.]+)/.exec(text)?.[1] ?? 0);
  return (user + sys) * 1000;
}

/** Clients connected to Redis that are not the benchmarks' own (named `prefix...` or `bench_...`): other people's traffic. */
export async function foreignClients(redis: Redis, prefix: string): Promise<number> {
  const text = (await redis.client("LIST")) as string;
  let n = 0;
  for (const line of text.split("\n")) {
    if (!line.trim()) continue;
    const name = /\bname=(\S*)/.exec(line)?.[1] ?? "";
    const cmd = /\bcmd=(\S*)/.exec(line)?.[1] ?? "";
    if (name.startsWith(prefix) || name.startsWith("bench_") || cmd === "client|list") continue;
    n++;
  }
  return n;
}

// ------------------------------------------------------------------------------ numbers & output

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export function median(xs: readonly number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Nearest-rank percentile (p in 0..100) of unsorted values. */
export function percentile(xs: readonly number[] | Float64Array, p: number): number {
  if (xs.length === 0) return NaN;
  const s = Float64Array.from(xs).sort();
  const rank = Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1));
  return s[rank];
}

export function fmt(n: number, digits = 0): string {
  if (!Number.isFinite(n)) return "-";
  return n.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

/** A compact left/right-aligned text table. */
export function table(headers: string[], rows: (string | number)[][]): string {
  const cells = [headers, ...rows.map((r) => r.map((c) => (typeof c === "number" ? fmt(c) : c)))];
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => String(r[i] ?? "").length)));
  const line = (r: (string | number)[]) =>
    r.map((c, i) => (i === 0 ? String(c).padEnd(widths[i]) : String(c).padStart(widths[i]))).join("  ");
  return [line(cells[0]), widths.map((w) => "-".repeat(w)).join("  "), ...cells.slice(1).map(line)].join("\n");
}

/** Writes bench-results/<name>.json (the figures of one benchmark, machine-readable). */
export function writeResults(name: string, data: unknown): string {
  const dir = join(ROOT, "bench-results");
  if (!existsSync(dir)) mkdirSync(dir, { recursive: true });
  const file = join(dir, `${name}.json`);
  writeFileSync(file, JSON.stringify(data, null, 2) + "\n");
  return file;
}

/** Facts about the machine and the run, for the JSON files. */
export function environment(): Record<string, unknown> {
  let load = "";
  try {
    load = readFileSync("/proc/loadavg", "utf8").trim();
  } catch {
    load = "";
  }
  return { node: process.version, cpus: availableParallelism(), loadavg: load, date: new Date().toISOString() };
}

// ------------------------------------------------------------------------------ Redis target

export interface RedisTarget {
  port: number;
  /** a throwaway server of ours: nobody else's traffic in its INFO deltas */
  private: boolean;
  /** "shared 127.0.0.1:6379" or "private redis-server on 127.0.0.1:PORT" */
  note: string;
  stop(): Promise<void>;
}

/**
 * The Redis the benchmarks use: 127.0.0.1:6379 (or BENCH_REDIS_PORT) with a unique namespace per
 * run; with BENCH_PRIVATE_REDIS=1 a throwaway redis-server (no persistence) on a free port, so
 * that INFO commandstats/CPU deltas see no other client's traffic.
 */
export async function redisTarget(): Promise<RedisTarget> {
  const { freePort, redisReachable } = await import("../helpers/redis.ts");
  if (process.env.BENCH_PRIVATE_REDIS === "1") {
    const port = await freePort();
    // on the service cpu (with the mock shop), away from the process under test
    const cpu = pinning().shop;
    const args = ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"];
    const child = cpu !== undefined ? spawn("taskset", ["-c", cpu, "redis-server", ...args], { stdio: "ignore" }) : spawn("redis-server", args, { stdio: "ignore" });
    const deadline = Date.now() + 10_000;
    while (!(await redisReachable(port, 200))) {
      if (child.exitCode !== null || Date.now() > deadline) throw new Error(`private redis-server on port ${port} did not start`);
      await sleep(50);
    }
    const exited = new Promise<void>((r) => child.once("exit", () => r()));
    return {
      port,
      private: true,
      note: `private redis-server on 127.0.0.1:${port}${cpu !== undefined ? `, cpu ${cpu}` : ""} (BENCH_PRIVATE_REDIS=1)`,
      stop: async () => {
        if (child.exitCode === null) child.kill("SIGKILL");
        await exited;
      },
    };
  }
  const port = envInt("BENCH_REDIS_PORT", 6379);
  return { port, private: false, note: `shared Redis 127.0.0.1:${port} (not pinned), unique namespace per run`, stop: async () => {} };
}

/** Machine-wide busy CPU ms (all cpus) from /proc/stat: subtract your own processes to see other load. */
export function machineBusyMs(): number {
  try {
    const line = readFileSync("/proc/stat", "utf8").split("\n")[0];
    const f = line.trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal
    const busy = f[0] + f[1] + f[2] + f[5] + f[6] + f[7];
    return (busy * 1000) / CLK_TCK;
  } catch {
    return 0;
  }
}
