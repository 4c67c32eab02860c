// tests/bench/seen_store.ts: the standalone seen set alone, one implementation at one size, in its
// own process (so its RSS is its own); run by tests/benchmark_scale.ts --part seen.
//   --impl table   SeenTable (src/state/seen-table.ts, on disk), written after every page as
//                  FrontierJournal does (tail, then slots)
//   --impl memory  SeenSet in memory plus seen.log, a JSON line per key (main before issue 27)
//   --urls N --fanout 500 --repeats 20
// Pages of `fanout` new links plus `repeats`+1 links seen before go through what a crawl does per
// link: seenBefore (has), then for a new one add + the journal's note of it; the page's write
// follows. Timed: those calls only (the md5 of each URL is made before), in CPU time of this
// process (user + system: what one core spends, whatever else the machine runs), and in wall
// time. Prints RESULT {...}.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { md5Hex } from "../../src/model/index.ts";
import { SeenSet } from "../../src/queue/seen-set.ts";
import { AppendFile } from "../../src/state/append-file.ts";
import { SeenTable } from "../../src/state/seen-table.ts";
import { argValue, numArg, printResult } from "./common.ts";
import { execFileSync } from "node:child_process";

const impl = argValue("impl") ?? "table";
const urls = numArg("urls", 1_000_000);
const fanout = numArg("fanout", 500);
const repeats = numArg("repeats", 20);
const gc = (globalThis as { gc?: () => void }).gc ?? (() => {});

const dir = mkdtempSync(join(tmpdir(), "mocra-bench-seen-"));
gc();
const rss0 = process.memoryUsage().rss;
/** live JS heap + typed arrays: what the set holds, without the garbage V8 has not returned */
const retained = () => process.memoryUsage().heapUsed + process.memoryUsage().arrayBuffers;
const retained0 = retained();
const table = impl === "table" ? SeenTable.create(dir, { fsync: false }) : undefined;
const memory = impl === "memory" ? new SeenSet() : undefined;
const seenLog = impl === "memory" ? new AppendFile(join(dir, "seen.log"), { truncate: true }) : undefined;
const seen = (table ?? memory)!;

const pages = Math.ceil(urls / fanout);
const pageMs = new Float64Array(pages);
/** CPU ms (user + system) per page */
const pageCpuMs = new Float64Array(pages);
let links = 0;
let accepted = 0;
let seq = 0;
let peak = rss0;
const keys: string[] = [];
for (let n = 0; n < pages; n++) {
  keys.length = 0;
  for (let c = n * fanout + 1; c <= n * fanout + fanout; c++) keys.push(md5Hex(`http://site.test/p/${c}`));
  if (n > 0) for (let s = 0; s <= repeats; s++) keys.push(md5Hex(`http://site.test/p/${(n - 1) * fanout + 1 + s}`));
  const t = performance.now();
  const c0 = process.cpuUsage();
  let lines = "";
  for (const k of keys) {
    if (seen.has(k)) continue;
    if (!seen.add(k)) continue;
    accepted++;
    seq++;
    if (table) table.journaled(seq, k);
    else lines += JSON.stringify(k) + "\n";
  }
  if (table) {
    table.writeTail();
    table.writeSlots();
  } else seenLog!.append(lines);
  pageMs[n] = performance.now() - t;
  const c = process.cpuUsage(c0);
  pageCpuMs[n] = (c.user + c.system) / 1000;
  links += keys.length;
  if (n % 200 === 0) peak = Math.max(peak, process.memoryUsage().rss);
}
gc();
const rss = process.memoryUsage().rss;
const retainedBytes = retained() - retained0;
peak = Math.max(peak, rss);
const disk = Number(execFileSync("du", ["-sb", dir]).toString().split("\t")[0]);
const totalMs = pageMs.reduce((a, b) => a + b, 0);
const totalCpuMs = pageCpuMs.reduce((a, b) => a + b, 0);
const tenth = Math.max(1, Math.floor(pages / 10));
const rate = (from: number, to: number) => {
  let ms = 0;
  for (let i = from; i < to; i++) ms += pageCpuMs[i];
  return Math.round(((to - from) * (fanout + repeats + 1)) / (ms / 1000));
};
let reopenMs: number | undefined;
const tableMemory = table?.memoryBytes ?? 0;
if (table) {
  table.close();
  const t = performance.now();
  const back = SeenTable.open(dir, { fsync: false });
  back.replayTail(seq);
  reopenMs = Math.round(performance.now() - t);
  if (back.size !== accepted) throw new Error(`reopened with ${back.size} keys, not ${accepted}`);
  back.close();
} else seenLog!.close();
rmSync(dir, { recursive: true, force: true });
printResult({
  impl,
  urls: accepted,
  links,
  /** links per second of CPU time (one core) */
  linksPerCpuSec: Math.round(links / (totalCpuMs / 1000)),
  /** links per second of wall time (on a loaded machine: the share of a core it got) */
  linksPerSec: Math.round(links / (totalMs / 1000)),
  slowestPageCpuMs: Math.round(Math.max(...pageCpuMs)),
  firstTenthLinksPerSec: rate(0, tenth),
  lastTenthLinksPerSec: rate(pages - tenth, pages),
  slowestPageMs: Math.round(Math.max(...pageMs)),
  rssBytesPerUrl: Math.round((rss - rss0) / accepted),
  retainedBytesPerUrl: Math.round((retainedBytes / accepted) * 10) / 10,
  peakRssMb: Math.round(peak / 1e6),
  diskBytesPerUrl: Math.round((disk / accepted) * 10) / 10,
  reopenMs,
  /** what the table itself keeps in memory (tags, buffers) */
  tableMemoryBytesPerUrl: table ? Math.round((tableMemory / accepted) * 10) / 10 : undefined,
});
