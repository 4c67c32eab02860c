// tests/bench/variants.ts: tests/bench/crawl-mocra.ts under several runtimes / V8 flags,
// alternating on one shop process, medians of CPU µs per page, pages/s, peak RSS and V8's GC
// counts (--trace-gc lines of the whole process, warm-up included). For levers that are flags,
// not code: the young generation's size, the heap growth, Node against Deno.
//
//   npx tsx tests/bench/variants.ts [--runs 3] [--items 5000] [--concurrency 64] [--warmup-secs 2]
//        --variant node --variant node:--max-semi-space-size=16 --variant deno --variant deno:--max-semi-space-size=16
//
// A variant is `node`, `node-tsx` or `deno`, then after a colon V8 flags separated by commas,
// optionally after `DIR@`: the crawler of another checkout (with its own node_modules; node
// runs its TypeScript through tsx there). Node runs the compiled crawler (dist-bench/, as the
// benchmarks do), node-tsx the TypeScript through tsx's loader (as before round four); Deno the
// TypeScript with the heap flag its tasks pass (tests/bench/common.ts denoCommand).
import { ensureBuilds, fmt, median, numArg, pinning, runChildFull, startShopProcess, table } from "./common.ts";

const runs = numArg("runs", 3);
const items = numArg("items", 5000);
const concurrency = numArg("concurrency", 64);
const warmup = numArg("warmup-secs", 2);
const variants = process.argv.flatMap((a, i, argv) => (argv[i - 1] === "--variant" ? [a] : a.startsWith("--variant=") ? [a.slice(10)] : []));
if (variants.length === 0) variants.push("node", "deno");
const pin = pinning();
ensureBuilds();

interface Crawl {
  pages: number;
  ms: number;
  cpuMs: number;
  peakRssMb: number;
  memoryAtEndMb?: { rss: number; heapTotal: number; heapUsed: number; external: number };
}
interface Measured {
  cpuUsPerPage: number;
  pagesPerSec: number;
  peakRssMb: number;
  scavenges: number;
  markCompacts: number;
  heapTotalMb: number;
  externalMb: number;
}

const shop = await startShopProcess({ items, cpu: pin.shop });
const results = new Map<string, Measured[]>(variants.map((v) => [v, []]));
try {
  for (let i = 0; i < runs; i++) {
    for (const v of variants) {
      const [dir, spec] = v.includes("@") ? v.split("@") : [undefined, v];
      const [runtime, flagList = ""] = spec.split(":");
      if (runtime !== "node" && runtime !== "deno" && runtime !== "node-tsx") throw new Error(`variant ${v}: [DIR@]node|node-tsx|deno[:flags]`);
      const flags = [...flagList.split(",").filter(Boolean), "--trace-gc"];
      const args = ["--url", shop.url, "--items", String(items), "--concurrency", String(concurrency), "--warmup-secs", String(warmup)];
      const r = await runChildFull<Crawl>("tests/bench/crawl-mocra.ts", args, { cpu: pin.crawler, runtime, nodeFlags: flags, cwd: dir });
      const m: Measured = {
        cpuUsPerPage: (r.result.cpuMs * 1000) / r.result.pages,
        pagesPerSec: (r.result.pages / r.result.ms) * 1000,
        peakRssMb: r.result.peakRssMb,
        scavenges: (r.output.match(/Scavenge/g) ?? []).length,
        markCompacts: (r.output.match(/Mark-Compact/g) ?? []).length,
        heapTotalMb: r.result.memoryAtEndMb?.heapTotal ?? NaN,
        externalMb: r.result.memoryAtEndMb?.external ?? NaN,
      };
      results.get(v)!.push(m);
      console.log(`run ${i + 1} ${v}: ${fmt(m.cpuUsPerPage)} CPU µs/page, ${fmt(m.pagesPerSec)} pages/s, ${fmt(m.peakRssMb)} MB, ${m.scavenges} scavenges, ${m.markCompacts} mark-compacts, heap ${fmt(m.heapTotalMb)} MB, external ${fmt(m.externalMb)} MB at the end`);
    }
  }
} finally {
  await shop.stop();
}
console.log(`\n${pin.note}; N = ${fmt(items)} items, C = ${concurrency}, medians of ${runs}; GC counts include the ${warmup} s warm-up`);
console.log(
  table(
    ["variant", "CPU µs/page", "pages/s", "peak RSS MB", "scavenges", "mark-compacts", "V8 heap at end MB", "external MB"],
    variants.map((v) => {
      const rs = results.get(v)!;
      const med = (f: (m: Measured) => number) => fmt(median(rs.map(f)));
      return [v, med((m) => m.cpuUsPerPage), med((m) => m.pagesPerSec), med((m) => m.peakRssMb), med((m) => m.scavenges), med((m) => m.markCompacts), med((m) => m.heapTotalMb), med((m) => m.externalMb)];
    }),
  ),
);
process.exit(0);
