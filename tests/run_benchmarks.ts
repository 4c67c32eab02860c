// tests/run_benchmarks.ts: `npm run bench`: every benchmark, one after the other, each in its own
// process (engine pinned to the crawler cpu when taskset is there), then all targets in one table
// and the total time. Options go to the benchmarks through the environment (BENCH_ITEMS=2000 for a
// quick run; see each tests/benchmark_*.ts); `--memory` adds the 200 000-item memory-flatness run;
// `--only engine,compare,production` picks benchmarks.
import { spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fmt, hasFlag, argValue, nodeCommand, pinning, ROOT, table } from "./bench/common.ts";

const started = performance.now();
const pin = pinning();
const all = ["engine", "compare", "production"];
// not in the default run: `npm run bench -- scale` (~10 minutes), `npm run bench -- scrapy_redis`
// (needs a scrapy-redis checkout: BENCH_SCRAPY_REDIS, see tests/benchmark_scrapy_redis.ts)
const extraBenchmarks = ["scale", "scrapy_redis"];
const named = process.argv.slice(2).filter((a, i, argv) => !a.startsWith("--") && !argv[i - 1]?.startsWith("--only"));
const only = (argValue("only") ?? (named.length > 0 ? named.join(",") : all.join(","))).split(",").filter((b) => all.includes(b) || extraBenchmarks.includes(b));
const extra = hasFlag("memory") ? ["--memory"] : [];

function run(name: string): Promise<number> {
  const script = `tests/benchmark_${name}.ts`;
  // the engine benchmark runs in this one process: pin it like the crawlers; the others pin their children
  const args = name === "compare" ? extra : name === "scale" ? process.argv.slice(2).filter((a) => a !== "scale") : [];
  const [cmd, argv] = nodeCommand(script, args, name === "engine" ? pin.crawler : undefined);
  return new Promise((resolve) => {
    const child = spawn(cmd, argv, { cwd: ROOT, stdio: "inherit" });
    child.on("exit", (code) => resolve(code ?? 1));
  });
}

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
const rows: Array<[string, string, string]> = [];
const read = (name: string): Record<string, unknown> | undefined => {
  const f = join(ROOT, "bench-results", `${name}.json`);
  return existsSync(f) ? (JSON.parse(readFileSync(f, "utf8")) as Record<string, unknown>) : undefined;
};
if (only.includes("engine")) {
  const e = read("engine");
  if (e?.target) rows.push(["engine", String(e.target), ""]);
}
if (only.includes("compare")) {
  const c = read("compare") as { targets?: Array<{ target: string; value: string; met: boolean }> } | undefined;
  for (const t of c?.targets ?? []) rows.push(["compare", `${t.target}: ${t.value}`, t.met ? "MET" : "MISSED"]);
}
if (only.includes("production")) {
  const p = read("production");
  if (p?.target) rows.push(["production", String(p.target), ""]);
  if (p?.redisTarget) rows.push(["production", String(p.redisTarget), ""]);
}
console.log("\n==================== summary ====================");
console.log(table(["benchmark", "seconds", "exit"], times.map(([n, s, c]) => [n, s.toFixed(0), String(c)])));
console.log("");
console.log(table(["from", "target", ""], rows));
const total = (performance.now() - started) / 1000;
console.log(`\ntotal ${fmt(total)} s (${(total / 60).toFixed(1)} min)`);
process.exit(times.some(([, , c]) => c !== 0) ? 1 : 0);
