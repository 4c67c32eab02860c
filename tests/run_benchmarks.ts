// tests/run_benchmarks.ts: `npm run bench`: every benchmark, one after the other, each in its own
// process (engine pinned to the crawler cpu when taskset is there), then all targets in one table
// and the total time. Options go to the benchmarks through the environment (BENCH_ITEMS=2000 for a
// quick run; see each tests/benchmark_*.ts); `--memory` adds the 200 000-item memory-flatness runs
// (benchmark_standalone_memory: the run-standalone CLI with its frontier on disk, on Node and on
// Deno; ~5-15 min); `--only engine,compare,production` picks benchmarks.
import { spawn } from "node:child_process";
import { existsSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { ensureBuilds, fmt, hasFlag, argValue, nodeCommand, pinning, ROOT, table } from "./bench/common.ts";

const started = performance.now();
const startedAt = Date.now();
const pin = pinning();
const all = ["engine", "compare", "production"];
// not in the default run: `npm run bench -- scale` (~10 minutes), `npm run bench -- scrapy_redis`
// (needs a scrapy-redis checkout: BENCH_SCRAPY_REDIS, see tests/benchmark_scrapy_redis.ts);
// `--memory` adds standalone_memory and standalone_memory_deno
const extraBenchmarks = ["scale", "scrapy_redis", "standalone_memory", "standalone_memory_deno"];
const named = process.argv.slice(2).filter((a, i, argv) => !a.startsWith("--") && !argv[i - 1]?.startsWith("--only"));
const only = (argValue("only") ?? (named.length > 0 ? named.join(",") : all.join(",")))
  .split(",")
  .filter((b) => all.includes(b) || extraBenchmarks.includes(b));
if (hasFlag("memory")) only.push("standalone_memory", "standalone_memory_deno");

function run(name: string): Promise<number> {
  const script = `tests/benchmark_${name.replace(/_deno$/, "")}.ts`;
  // the engine benchmark runs in this one process: pin it like the crawlers; the others pin their children
  const args = name === "standalone_memory_deno" ? ["--runtime", "deno"] : name === "scale" ? process.argv.slice(2).filter((a) => a !== "scale") : [];
  const [cmd, argv] = nodeCommand(script, args, name === "engine" ? pin.crawler : undefined);
  return new Promise((resolve) => {
    const child = spawn(cmd, argv, { cwd: ROOT, stdio: "inherit" });
    child.on("exit", (code) => resolve(code ?? 1));
  });
}

// the Node processes of the benchmarks run the compiled build (BENCH_TSX=1: the sources through tsx)
ensureBuilds();
console.log(`npm run bench: ${only.join(", ")}; BENCH_ITEMS=${process.env.BENCH_ITEMS ?? "20000 (default)"}; ${pin.note}\n`);
const times: Array<[string, number, number]> = [];
for (const name of only) {
  console.log(`\n==================== benchmark_${name} ====================`);
  const t0 = performance.now();
  const code = await run(name);
  times.push([name, (performance.now() - t0) / 1000, code]);
  if (code !== 0) console.log(`benchmark_${name} exited with ${code}`);
}

// every target in one place, from the JSON files just written
const rows: Array<[string, string, string, string]> = [];
type Targets = { targets?: Array<{ target: string; value: string; met: boolean }> };
const read = (name: string): Record<string, unknown> | undefined => {
  const f = join(ROOT, "bench-results", `${name}.json`);
  // a file from an earlier run (this one failed before writing it) is not this run's figure
  return existsSync(f) && statSync(f).mtimeMs >= startedAt ? (JSON.parse(readFileSync(f, "utf8")) as Record<string, unknown>) : undefined;
};
const addTargets = (from: string, file: string) => {
  for (const t of (read(file) as Targets | undefined)?.targets ?? []) rows.push([from, t.target, t.value, t.met ? "MET" : "MISSED"]);
};
if (only.includes("engine")) addTargets("engine", "engine");
if (only.includes("compare")) addTargets("compare", "compare");
if (only.includes("production")) addTargets("production", "production");
for (const [name, file] of [["standalone_memory", "standalone-memory"], ["standalone_memory_deno", "standalone-memory-deno"]] as const) {
  if (only.includes(name)) addTargets(name, file);
  else if (only.includes("compare")) rows.push([name, `200 000 items on ${name.endsWith("deno") ? "Deno" : "Node"}: peak RSS <= 200 MB, flat`, "not run (npm run bench -- --memory)", "NOT RUN"]);
}
console.log("\n==================== summary ====================");
console.log(table(["benchmark", "seconds", "exit"], times.map(([n, s, c]) => [n, s.toFixed(0), String(c)])));
console.log("");
console.log(table(["from", "target", "measured", ""], rows));
const missed = rows.filter((r) => r[3] === "MISSED").length;
console.log(`${rows.filter((r) => r[3] === "MET").length} met, ${missed} missed, ${rows.filter((r) => r[3] === "NOT RUN").length} not run`);
const total = (performance.now() - started) / 1000;
console.log(`\ntotal ${fmt(total)} s (${(total / 60).toFixed(1)} min)`);
process.exit(times.some(([, , c]) => c !== 0) ? 1 : 0);
