// tests/bench/ab.ts: before/after of an engine change: tests/bench/crawl-mocra.ts of another
// checkout (e.g. `git worktree add --detach ../base <commit>` + its node_modules) and of this one,
// alternating on one shop process, medians of CPU µs per page, pages/s and peak RSS. CPU per page
// is what to read on a shared machine: a busy neighbour moves pages/s far more than it.
//
//   npx tsx tests/bench/ab.ts --base DIR [--runs 3] [--items 20000] [--concurrency 64]
//        [--warmup-secs 2] [-- extra crawl-mocra args for both, e.g. --v8-defaults]
import { execFileSync } from "node:child_process";
import { resolve } from "node:path";
import { argValue, fmt, median, nodeCommand, numArg, pinning, ROOT, startShopProcess, table } from "./common.ts";

const base = argValue("base");
if (!base) throw new Error("--base DIR (another checkout with its node_modules) is required");
const runs = numArg("runs", 3);
const items = numArg("items", 20_000);
const concurrency = numArg("concurrency", 64);
const warmup = numArg("warmup-secs", 2);
const dd = process.argv.indexOf("--");
const extra = dd >= 0 ? process.argv.slice(dd + 1) : [];
const pin = pinning();

interface Crawl {
  pages: number;
  ms: number;
  cpuMs: number;
  peakRssMb: number;
}

const shop = await startShopProcess({ items, cpu: pin.shop });
function crawl(dir: string): Crawl {
  const args = ["--url", shop.url, "--items", String(items), "--concurrency", String(concurrency), "--warmup-secs", String(warmup), ...extra];
  const [cmd, argv] = nodeCommand("tests/bench/crawl-mocra.ts", args, pin.crawler);
  const out = execFileSync(cmd, argv, { cwd: dir, encoding: "utf8", maxBuffer: 1 << 26 });
  const line = out.split("\n").find((l) => l.startsWith("RESULT "));
  if (!line) throw new Error(`no RESULT line from ${dir}: ${out.slice(-500)}`);
  return JSON.parse(line.slice("RESULT ".length)) as Crawl;
}

const sides: Array<[string, string]> = [
  ["base", resolve(base)],
  ["this checkout", ROOT],
];
const results = new Map<string, Crawl[]>(sides.map(([name]) => [name, []]));
try {
  for (let i = 0; i < runs; i++) {
    for (const [name, dir] of sides) {
      const r = crawl(dir);
      results.get(name)!.push(r);
      console.log(`run ${i + 1} ${name}: ${fmt((r.cpuMs * 1000) / r.pages)} CPU µs/page, ${fmt((r.pages / r.ms) * 1000)} pages/s, ${fmt(r.peakRssMb)} MB`);
    }
  }
} finally {
  await shop.stop();
}
console.log(`\n${pin.note}; N = ${fmt(items)} items, C = ${concurrency}, medians of ${runs}${extra.length ? `; crawl-mocra ${extra.join(" ")}` : ""}`);
console.log(
  table(
    ["checkout", "CPU µs/page", "pages/s", "peak RSS MB"],
    sides.map(([name]) => {
      const rs = results.get(name)!;
      return [name, fmt(median(rs.map((r) => (r.cpuMs * 1000) / r.pages))), fmt(median(rs.map((r) => (r.pages / r.ms) * 1000))), fmt(median(rs.map((r) => r.peakRssMb)))];
    }),
  ),
);
process.exit(0);
