// tests/benchmark_standalone_memory.ts: memory of a long run-standalone crawl with its frontier
// on disk. The demo shop runs in its own process; the crawler is the real CLI
// (`node dist/src/cli.js run-standalone`, or src/cli.ts on Deno with --runtime deno); its RSS is read
// from /proc every 500 ms together with the pages done (from its progress lines), and printed at
// 10/50/90/100 % of the pages, with the peak and the first- vs last-quarter means.
//
//   npx tsx tests/benchmark_standalone_memory.ts [--items 200000] [--concurrency 64] [--runtime node|deno]
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { argValue, DENO_BIN, ensureBuilds, environment, expectedPages, fmt, numArg, procCpuMs, procRss, ROOT, startShopProcess, THROUGH_TSX, writeResults } from "./bench/common.ts";

const items = numArg("items", 200_000);
const concurrency = numArg("concurrency", 64);
const runtime = argValue("runtime") ?? "node";
/** extra flags for the crawler's node (or deno), e.g. --node-flags=--max-semi-space-size=4 */
const nodeFlags = (argValue("node-flags") ?? "").split(" ").filter(Boolean);
const pages = expectedPages(items);
const dir = mkdtempSync(join(tmpdir(), "mocra-bench-memory-"));
const config = join(dir, "config.toml");

console.log(`benchmark_standalone_memory: run-standalone on ${runtime}, ${fmt(items)} items (${fmt(pages)} pages), task_concurrency ${concurrency}`);
const shop = await startShopProcess({ items });
writeFileSync(
  config,
  `name = "bench_memory"\n[crawler]\ntask_concurrency = ${concurrency}\nprogress_interval_secs = 1\nobey_robots_txt = false\n` +
    `[output]\npath = ${JSON.stringify(join(dir, "out"))}\n[state]\ndir = ${JSON.stringify(join(dir, "state"))}\n` +
    `[modules.demo_shop]\nstart_url = ${JSON.stringify(`${shop.url}/list/0`)}\n`,
);
const args = ["run-standalone", "--no-supervisor", "--config", config, "--module", "demo_shop"];
// Node: the compiled CLI, as `npm run run-standalone` runs it (BENCH_TSX=1: src/cli.ts through tsx);
// Deno: src/cli.ts with the V8 flag deno.json's run-standalone task passes (unless --node-flags names flags)
ensureBuilds();
const child =
  runtime === "deno"
    ? spawn(DENO_BIN, ["run", "-A", ...(nodeFlags.length > 0 ? nodeFlags : ["--v8-flags=--heap-growing-percent=20"]), "src/cli.ts", ...args], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] })
    : THROUGH_TSX
      ? spawn(process.execPath, [...nodeFlags, "--import", "tsx", "src/cli.ts", ...args], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] })
      : spawn(process.execPath, [...nodeFlags, "dist/src/cli.js", ...args], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
let done = 0;
let tail = "";
child.stderr!.on("data", (d: Buffer) => {
  tail = (tail + d.toString()).slice(-4000);
  for (const m of d.toString().matchAll(/pages (\d+)/g)) done = Math.max(done, Number(m[1]));
});
const started = Date.now();
const samples: { pages: number; rss: number; secs: number }[] = [];
let cpuMs = 0;
const timer = setInterval(() => {
  cpuMs = Math.max(cpuMs, procCpuMs(child.pid!));
  const r = procRss(child.pid!);
  if (r && r.rssMb > 0) samples.push({ pages: done, rss: r.rssMb, secs: (Date.now() - started) / 1000 });
}, 500);
const code = await new Promise<number | null>((resolve) => child.on("exit", resolve));
clearInterval(timer);
await shop.stop();
rmSync(dir, { recursive: true, force: true });
if (code !== 0) {
  console.log(`crawler exited with ${code}:\n${tail}`);
  process.exit(1);
}
const total = Math.max(done, pages);
const at = (share: number) => samples.find((s) => s.pages >= share * total) ?? samples[samples.length - 1];
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
const quarter = (q: number) => mean(samples.filter((s) => s.pages >= (q / 4) * total && s.pages < ((q + 1) / 4) * total).map((s) => s.rss));
const peak = Math.max(...samples.map((s) => s.rss));
const secs = (Date.now() - started) / 1000;
console.log(`pages ${fmt(done)} in ${secs.toFixed(0)} s (${fmt(done / secs)} pages/s)`);
for (const p of [0.1, 0.5, 0.9, 1]) {
  const s = at(p);
  console.log(`RSS at ${String(p * 100).padStart(3)} %: ${s.rss.toFixed(0)} MB (${fmt(s.pages)} pages, ${s.secs.toFixed(0)} s)`);
}
const first = quarter(0);
const last = quarter(3);
console.log(`peak RSS ${peak.toFixed(0)} MB; mean RSS first quarter ${first.toFixed(0)} MB, last quarter ${last.toFixed(0)} MB (difference ${(last - first).toFixed(0)} MB)`);
console.log(`bound: peak <= 200 MB ${peak <= 200 ? "met" : "NOT met"}; flat (last quarter within 30 MB of the first) ${Math.abs(last - first) <= 30 ? "met" : "NOT met"}`);
// CPU per page beside the RSS: a flat RSS bought with many more GCs shows here (start-up included; read every 500 ms)
const cpuUsPerPage = (cpuMs * 1000) / Math.max(1, done);
console.log(`crawler CPU ${fmt(cpuUsPerPage)} µs per page (start-up included)`);
const file = writeResults(runtime === "deno" ? "standalone-memory-deno" : "standalone-memory", {
  environment: environment(),
  runtime,
  items,
  concurrency,
  pages: done,
  seconds: secs,
  cpuUsPerPage,
  peakRssMb: peak,
  firstQuarterMeanMb: first,
  lastQuarterMeanMb: last,
  targets: [
    { target: `${fmt(items)} items on ${runtime} (run-standalone, frontier on disk): peak RSS <= 200 MB`, value: `${peak.toFixed(0)} MB at ${fmt(cpuUsPerPage)} CPU µs/page`, met: peak <= 200 },
    { target: `${fmt(items)} items on ${runtime}: RSS flat (last quarter within 30 MB of the first)`, value: `${first.toFixed(0)} -> ${last.toFixed(0)} MB`, met: Math.abs(last - first) <= 30 },
  ],
});
console.log(`wrote ${file}`);
