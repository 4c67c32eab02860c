// tests/bench/profile-crawl.ts: profiles one crawl of the mock shop: the shop in its own process
// (pinned to cpu 0), the crawler under `node --cpu-prof` (pinned to cpu 1), then the per-page CPU
// breakdown of the crawl window (profile-summary.ts) printed and written to bench-results/.
//
//   npx tsx tests/bench/profile-crawl.ts [--crawler mocra|bare|crawlee] [--items 20000]
//        [--concurrency 64] [--max-secs 0] [--interval 500] [--top 15] [-- extra crawler args,
//        e.g. --downloader undici]
//
// Sampling costs: expect ~20-30% more CPU per page under the profiler than without it.
import { readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { argValue, benchItems, measureShopCeiling, numArg, pinning, runChildFull, startShopProcess, writeResults } from "./common.ts";
import { printSummary, summarize } from "./profile-summary.ts";

const crawler = argValue("crawler") ?? "mocra";
const items = benchItems();
const concurrency = numArg("concurrency", 64);
const maxSecs = numArg("max-secs", 0);
const interval = numArg("interval", 500);
const top = numArg("top", 15);
const dd = process.argv.indexOf("--");
const extra = dd >= 0 ? process.argv.slice(dd + 1) : [];
const pin = pinning();
const dir = join(tmpdir(), `mocra-prof-${crawler}-${process.pid}`);
rmSync(dir, { recursive: true, force: true });

const shop = await startShopProcess({ items, cpu: pin.shop });
interface R {
  pages: number;
  ms: number;
  cpuMs: number;
  crawlStartUs: number;
  crawlEndUs: number;
}
let result: R;
try {
  await measureShopCeiling(shop, items, pin.crawler, 3); // warms the shop's page cache
  const r = await runChildFull<R>(
    `tests/bench/crawl-${crawler}.ts`,
    ["--url", shop.url, "--items", String(items), "--concurrency", String(concurrency), "--max-secs", String(maxSecs), ...extra],
    { cpu: pin.crawler, nodeFlags: ["--cpu-prof", "--cpu-prof-dir", dir, "--cpu-prof-interval", String(interval)] },
  );
  result = r.result;
} finally {
  await shop.stop();
}
// the main thread's profile is the biggest (the other one is tsx's loader thread)
const files = readdirSync(dir)
  .filter((f) => f.endsWith(".cpuprofile"))
  .map((f) => join(dir, f))
  .sort((a, b) => statSync(b).size - statSync(a).size);
const profile = JSON.parse(readFileSync(files[0], "utf8"));
const s = summarize(profile, result.pages, result.crawlStartUs, result.crawlEndUs, top);
console.log(
  `${crawler} ${extra.join(" ")}: ${result.pages} pages in ${(result.ms / 1000).toFixed(1)} s under the profiler ` +
    `(${((result.cpuMs * 1000) / result.pages).toFixed(0)} CPU µs/page by process.cpuUsage); ${pin.note}; profile ${files[0]}\n`,
);
console.log(printSummary(s, top));
const file = writeResults(`profile-${crawler}${extra.length ? "-" + extra.join("-").replace(/[^a-z0-9]+/gi, "_") : ""}`, { crawler, extra, items, concurrency, result, summary: s });
console.log(`\nwrote ${file}`);
process.exit(0);
