// tests/benchmark_faults.ts: one page calling ctx.follow() with 1 000 000 URLs (an array), crawled
// by a real run-standalone process with default settings (max_follows_per_page = 10 000,
// segment_mb = 16). Prints seconds, peak RSS (VmHWM), the largest frontier segment and how the
// run ended. `--root DIR` runs the CLI of another checkout (e.g. main, for the "before" figure).
//
//   npx tsx tests/benchmark_faults.ts [--root DIR] [--limit-secs 180] [--follows N]
// It first prints what the parse deadline and the watchdog cost per call (µs).
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { ROOT } from "./helpers/worker-process.ts";
import { underDeadline } from "../src/modules/deadline.ts";
import { Watchdog } from "../src/runtime/watchdog.ts";

// What the parse deadline and the watchdog cost a page: an async no-op "parse" called directly,
// under the deadline (a timer per call), and under the deadline with the watchdog's slot marking.
{
  const N = 100_000;
  const parse = async (i: number) => i;
  const watchdog = Watchdog.start({ store: { kind: "file", path: join(tmpdir(), `mocra-bench-poison-${process.pid}.log`) } });
  const guard = { guard: watchdog, record: "12345", label: "parse of http://127.0.0.1:8080/item/12345 (module demo_shop)" };
  const rows: Record<string, number[]> = { direct: [], deadline: [], "deadline+watchdog": [] };
  for (let rep = 0; rep < 5; rep++) {
    for (const [name, call] of [
      ["direct", (i: number) => parse(i)],
      ["deadline", (i: number) => underDeadline(() => parse(i), 60, "parse")],
      ["deadline+watchdog", (i: number) => underDeadline(() => parse(i), 60, "parse", guard)],
    ] as const) {
      const t = process.cpuUsage();
      for (let i = 0; i < N; i += 100) {
        await Promise.all(Array.from({ length: 100 }, (_, j) => call(i + j)));
        await new Promise((r) => setImmediate(r)); // a turn of the event loop per batch, as I/O gives the engine
      }
      const used = process.cpuUsage(t);
      rows[name].push((used.user + used.system) / N); // CPU time, not wall time: the machine is shared
    }
  }
  await watchdog.stop();
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const base = median(rows.direct);
  for (const [name, xs] of Object.entries(rows)) console.log(`${name.padEnd(18)} ${median(xs).toFixed(2)} µs CPU per call (median of 5; +${(median(xs) - base).toFixed(2)} µs over direct)`);
}

const { values } = parseArgs({ options: { root: { type: "string" }, "limit-secs": { type: "string" }, follows: { type: "string" } } });
const root = resolve(values.root ?? ROOT);
const limitSecs = Number(values["limit-secs"] ?? 180);
const follows = Number(values.follows ?? 1_000_000);

const server = createServer((req, res) => {
  res.writeHead(200, { "content-type": "text/html" });
  res.end(req.url === "/" ? "<p>index</p>" : `<h1>${req.url}</h1>`);
});
await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

const dir = mkdtempSync(join(tmpdir(), "mocra-bench-faults-"));
writeFileSync(
  join(dir, "fanout.ts"),
  `import { defineModule } from ${JSON.stringify(join(root, "src/modules/define.ts"))};
export default defineModule({
  name: "fanout",
  settings: { url: "" },
  start: (ctx) => [String(ctx.settings.url) + "/"],
  parse(page, ctx) {
    if (!page.url.endsWith("/")) return ctx.emit({ url: page.url });
    const links = [];
    for (let i = 0; i < ${follows}; i++) links.push(page.url + "p/" + i);
    ctx.follow(links);
  },
});\n`,
);
writeFileSync(
  join(dir, "config.toml"),
  `name = "bench_faults"\n[crawler]\nmodule_paths = [${JSON.stringify(dir)}]\nobey_robots_txt = false\n` +
    `[output]\npath = ${JSON.stringify(join(dir, "out"))}\n[state]\ndir = ${JSON.stringify(join(dir, "state"))}\n` +
    `[modules.fanout]\nurl = ${JSON.stringify(url)}\n`,
);
const supervised = existsSync(join(root, "src/commands/supervise.ts"));
const args = ["--import", "tsx", "src/cli.ts", "run-standalone", ...(supervised ? ["--no-supervisor"] : []), "--config", join(dir, "config.toml"), "--module", "fanout"];
const started = Date.now();
const child = spawn(process.execPath, args, { cwd: root, stdio: ["ignore", "pipe", "pipe"] });
let tail = "";
child.stdout!.on("data", (d: Buffer) => (tail = (tail + d.toString()).slice(-3000)));
child.stderr!.on("data", (d: Buffer) => (tail = (tail + d.toString()).slice(-3000)));
let peakMb = 0;
let largestSegmentMb = 0;
const stateDir = join(dir, "state", "bench_faults");
const sample = setInterval(() => {
  try {
    peakMb = Math.max(peakMb, Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, "utf8"))?.[1] ?? 0) / 1024);
  } catch {
    // exited
  }
  try {
    for (const f of readdirSync(stateDir)) if (f.startsWith("frontier-")) largestSegmentMb = Math.max(largestSegmentMb, statSync(join(stateDir, f)).size / 1024 / 1024);
  } catch {
    // not there yet, or removed at the end
  }
}, 100);
const killer = setTimeout(() => child.kill("SIGKILL"), limitSecs * 1000);
const { code, signal } = await new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => child.on("exit", (code, signal) => r({ code, signal })));
clearTimeout(killer);
clearInterval(sample);
const secs = (Date.now() - started) / 1000;
server.close();
const done = /done in [^\n]*/.exec(tail)?.[0];
const dropped = /links not followed[^\n]*/.exec(tail)?.[0];
console.log(`root: ${root}`);
console.log(`one page following ${follows} URLs, default settings: ${signal ? `killed (${signal}${signal === "SIGKILL" && secs >= limitSecs ? `: still running after ${limitSecs} s` : ""})` : `exit ${code}`} after ${secs.toFixed(1)} s`);
console.log(`peak RSS ${peakMb.toFixed(0)} MB; largest frontier segment ${largestSegmentMb.toFixed(1)} MB (segment_mb = 16)`);
if (done) console.log(done);
if (dropped) console.log(dropped);
if (!done) console.log(`last output:\n${tail.split("\n").slice(-6).join("\n")}`);
