// tests/benchmark_compare.ts: mocra-ts standalone vs Crawlee's CheerioCrawler vs a bare fetch loop,
// on the same mock shop in the same run, alternating, each crawl in its own process:
//   mocra-ts  tests/bench/crawl-mocra.ts   runStandalone (in-memory queues), modules/demo_shop.ts
//   crawlee   tests/bench/crawl-crawlee.ts CheerioCrawler, in-memory storage, no retries, no
//                                          sessions, min = max concurrency = C, enqueueLinks
//   bare      tests/bench/crawl-bare.ts    undici Pool + parseHtml (htmlparser2 + css-select) + a Set,
//                                          C concurrent loops, no framework
// Scenarios: no latency at each concurrency of BENCH_CONCURRENCIES (16,64,200), and 50 ms latency
// per response (BENCH_LATENCY_MS) at C = 200 (ideal 4 000 pages/s). Medians over BENCH_RUNS (3)
// runs of pages/s, CPU per page (process.cpuUsage of the crawler, user+sys), peak RSS, and the
// ratios mocra-ts/Crawlee and mocra-ts/bare. The mock shop (examples/demo-shop/serve.ts) runs in its own
// process; its ceiling is measured first (which also warms its page cache).
//
//   npx tsx tests/benchmark_compare.ts [--memory]
//   BENCH_ITEMS (20000)  BENCH_RUNS (3)  BENCH_CONCURRENCIES (16,64,200)  BENCH_LATENCY_MS (50)
//   BENCH_MAX_SECS (12: time box per crawl; a crawl still running then stops taking new work and its
//   figures are rates over what it did, marked *; 0 = none)  BENCH_CRAWLERS (mocra,crawlee,bare; add
//   mocra-ky for mocra-ts with HttpClient over ky + Node's fetch, the transport Deno and proxies use;
//   mocra-metrics, on by default, is mocra-ts with the Prometheus metrics subscriber on: its cost;
//   scrapy, on by default when python3 can import scrapy (Debian's python3-scrapy; never needed by
//   npm test): tests/bench/crawl_scrapy.py, Scrapy's CrawlerProcess, same crawl, runs cold)
//   mocra-deno, on by default when the deno devDependency is installed: the same
//   tests/bench/crawl-mocra.ts under Deno 2 (its transport, ky over Deno's fetch; the heap flag
//   deno.json's tasks pass), for the Deno-vs-Node targets)
//   Not every crawler runs in every scenario (runsIn: ~15 minutes for `npm run bench`): mocra-ts on
//   Deno in A (no latency, C=64) and B (latency), mocra-ts+metrics and Scrapy in A;
//   BENCH_ALL_CELLS=1 runs every crawler in every scenario.
//   BENCH_CLIENTS=0 (skip the HTTP client table)  BENCH_PIN=0 (no taskset)
//   --memory / BENCH_MEMORY=1: also the memory-flatness run: mocra-ts standalone over
//   BENCH_MEMORY_ITEMS (200000) items at C = 200, no time box, RSS sampled every second
//   (--memory-only: that run alone).
import {
  benchItems,
  denoAvailable,
  ensureBuilds,
  environment,
  envInt,
  envInts,
  expectedPages,
  fmt,
  hasFlag,
  measureShopCeiling,
  median,
  pinning,
  runChild,
  type ShopCeiling,
  type ShopProcess,
  startShopProcess,
  table,
  writeResults,
} from "./bench/common.ts";
import { scrapyPython } from "./bench/crawl-scrapy.ts";
import { metricsCostPerPage } from "./bench/metrics-cost.ts";

const started = performance.now();
ensureBuilds();
const N = benchItems();
const RUNS = envInt("BENCH_RUNS", 3);
const CONCURRENCIES = envInts("BENCH_CONCURRENCIES", [16, 64, 200]);
const LATENCY_MS = envInt("BENCH_LATENCY_MS", 50);
const LATENCY_C = envInt("BENCH_LATENCY_CONCURRENCY", 200);
const MAX_SECS = envInt("BENCH_MAX_SECS", 12);
/** untimed warm-up crawl in each crawler process before the timed one (bare and mocra-ts; Crawlee runs cold) */
const WARMUP_SECS = envInt("BENCH_WARMUP_SECS", 2);
const CRAWLERS = (process.env.BENCH_CRAWLERS ?? `mocra,${denoAvailable() ? "mocra-deno," : ""}mocra-metrics,crawlee,bare${scrapyPython() !== undefined ? ",scrapy" : ""}`)
  .split(",")
  .filter(Boolean) as Crawler[];
const unknown = CRAWLERS.filter((c) => !["mocra", "crawlee", "bare", "mocra-ky", "mocra-metrics", "mocra-deno", "scrapy"].includes(c));
if (unknown.length > 0) {
  console.error(`BENCH_CRAWLERS: unknown crawler(s) ${unknown.join(", ")} (mocra, mocra-deno, mocra-ky, mocra-metrics, crawlee, bare, scrapy)`);
  process.exit(2);
}
if (CRAWLERS.includes("mocra-deno") && !denoAvailable()) {
  console.error("BENCH_CRAWLERS lists mocra-deno, but node_modules/deno/deno is missing (npm ci installs the deno devDependency)");
  process.exit(2);
}
if (CRAWLERS.includes("scrapy") && scrapyPython() === undefined) {
  console.error("BENCH_CRAWLERS lists scrapy, but no python3 can import scrapy (apt-get install -y python3-scrapy, or set BENCH_PYTHON)");
  process.exit(2);
}
/** --memory-only: just the memory-flatness run */
const MEMORY_ONLY = hasFlag("memory-only");
const MEMORY = MEMORY_ONLY || hasFlag("memory") || process.env.BENCH_MEMORY === "1";
const MEMORY_ITEMS = envInt("BENCH_MEMORY_ITEMS", 200_000);
const pin = pinning();
/** workload A: the no-latency scenario every crawler runs in (C = 64, or the first concurrency) */
const A_CONCURRENCY = CONCURRENCIES.includes(64) ? 64 : CONCURRENCIES[0];
/**
 * Which crawlers run in a scenario. To keep `npm run bench` near 15 minutes, mocra-ts, Crawlee and
 * the bare loop run everywhere; mocra-ts on Deno in A and B (the latency scenario), the metrics
 * run and Scrapy (time-boxed at its ~300 pages/s) in A only. BENCH_ALL_CELLS=1: everyone everywhere.
 */
function runsIn(c: Crawler, latencyMs: number, concurrency: number): boolean {
  if (process.env.BENCH_ALL_CELLS === "1" || (latencyMs === 0 && concurrency === A_CONCURRENCY)) return true;
  if (c === "mocra-deno") return latencyMs > 0;
  return c !== "mocra-metrics" && c !== "scrapy";
}

/** "mocra-ky" (opt-in via BENCH_CRAWLERS): mocra-ts with HttpClient over ky + Node's fetch (the Deno/proxy transport) */
type Crawler = "mocra" | "crawlee" | "bare" | "mocra-ky" | "mocra-metrics" | "mocra-deno" | "scrapy";
const LABEL: Record<Crawler, string> = {
  mocra: "mocra-ts",
  crawlee: "crawlee",
  bare: "bare",
  "mocra-ky": "mocra-ts/ky",
  "mocra-metrics": "mocra-ts+metrics",
  "mocra-deno": "mocra-ts on deno",
  scrapy: "scrapy",
};

interface CrawlResult {
  machineBusyMs: number;
  pages: number;
  items: number;
  errors: number;
  partial: boolean;
  ms: number;
  cpuMs: number;
  peakRssMb: number;
  rss: { first: number; middle: number; last: number; samples?: number[] };
}

interface Run extends CrawlResult {
  crawler: Crawler;
  run: number;
  pagesPerSec: number;
  cpuMsPerPage: number;
  shopCpuShare: number;
  otherCpuCores: number;
}

interface Scenario {
  name: string;
  latencyMs: number;
  concurrency: number;
  idealPagesPerSec?: number;
  runs: Run[];
}

console.log(
  MEMORY_ONLY
    ? `benchmark_compare --memory-only: mocra-ts standalone over ${fmt(MEMORY_ITEMS)} items at C=200`
    : `benchmark_compare: N = ${fmt(N)} items (${fmt(expectedPages(N))} pages), ${RUNS} runs per crawler and scenario, alternating; ` +
        `time box ${MAX_SECS > 0 ? `${MAX_SECS} s per crawl` : "none"}`,
);
console.log(pin.note);

async function crawl(shop: ShopProcess, crawler: Crawler, items: number, concurrency: number, maxSecs: number, run: number): Promise<Run> {
  const shop0 = shop.cpuMs();
  const args = ["--url", shop.url, "--items", String(items), "--concurrency", String(concurrency), "--max-secs", String(maxSecs)];
  const script = crawler === "mocra-ky" || crawler === "mocra-metrics" || crawler === "mocra-deno" ? "mocra" : crawler;
  if (crawler === "mocra-ky") args.push("--downloader", "ky");
  if (crawler === "mocra-metrics") args.push("--metrics");
  if (script !== "crawlee" && script !== "scrapy" && WARMUP_SECS > 0) args.push("--warmup-secs", String(WARMUP_SECS));
  const r = await runChild<CrawlResult>(`tests/bench/crawl-${script}.ts`, args, { cpu: pin.crawler, runtime: crawler === "mocra-deno" ? "deno" : "node" });
  // the shop is idle outside the child's crawl window, so its CPU over the child's life is the window's
  const shopCpu = shop.cpuMs() - shop0;
  // machine-wide busy CPU during the crawl window, less the crawler and the shop: everything else
  const busy = r.machineBusyMs;
  if (r.items === 0) throw new Error(`${crawler}: no items (errors ${r.errors})`);
  return {
    ...r,
    crawler,
    run,
    pagesPerSec: (r.pages / r.ms) * 1000,
    cpuMsPerPage: r.cpuMs / r.pages,
    shopCpuShare: shopCpu / r.ms,
    otherCpuCores: Math.max(0, (busy - r.cpuMs - shopCpu) / r.ms),
  };
}

async function scenario(name: string, latencyMs: number, concurrency: number, shop: ShopProcess): Promise<Scenario> {
  const s: Scenario = { name, latencyMs, concurrency, runs: [] };
  if (latencyMs > 0) s.idealPagesPerSec = (concurrency * 1000) / latencyMs;
  for (let run = 1; run <= RUNS; run++) {
    // rotate who goes first, so no crawler always gets the same position
    const here = CRAWLERS.filter((c) => runsIn(c, latencyMs, concurrency));
    const order = here.map((_, i) => here[(i + run - 1) % here.length]);
    for (const c of order) {
      const r = await crawl(shop, c, N, concurrency, MAX_SECS, run);
      s.runs.push(r);
      process.stdout.write(
        `  ${name.padEnd(18)} run ${run} ${LABEL[c].padEnd(10)} ${fmt(r.pagesPerSec).padStart(6)} pages/s  ${r.cpuMsPerPage.toFixed(2)} CPU ms/page  ` +
          `${r.peakRssMb.toFixed(0)} MB  ${fmt(r.pages)} pages${r.partial ? "*" : ""}  shop ${(r.shopCpuShare * 100).toFixed(0)}%  other ${r.otherCpuCores.toFixed(2)} cores\n`,
      );
    }
  }
  return s;
}

interface Summary {
  scenario: string;
  crawler: Crawler;
  pagesPerSec: number;
  cpuMsPerPage: number;
  peakRssMb: number;
  startRssMb: number;
  partialRuns: number;
  shopCpuShare: number;
  otherCpuCores: number;
}

function summarize(s: Scenario): Summary[] {
  return CRAWLERS.filter((c) => s.runs.some((r) => r.crawler === c)).map((c) => {
    const rs = s.runs.filter((r) => r.crawler === c);
    return {
      scenario: s.name,
      crawler: c,
      pagesPerSec: median(rs.map((r) => r.pagesPerSec)),
      cpuMsPerPage: median(rs.map((r) => r.cpuMsPerPage)),
      peakRssMb: median(rs.map((r) => r.peakRssMb)),
      startRssMb: median(rs.map((r) => r.rss.first)),
      partialRuns: rs.filter((r) => r.partial).length,
      shopCpuShare: median(rs.map((r) => r.shopCpuShare)),
      otherCpuCores: median(rs.map((r) => r.otherCpuCores)),
    };
  });
}

// ------------------------------------------------------------------------------ runs

const scenarios: Scenario[] = [];
let ceiling: ShopCeiling | undefined;
let clients: Array<{ client: string; reqPerSec: number; cpuUsPerReq: number }> = [];
if (!MEMORY_ONLY) {
  const shop = await startShopProcess({ items: N, cpu: pin.shop });
  try {
    // also warms the shop's page cache (one pass over every item page) before the crawls
    ceiling = await measureShopCeiling(shop, N, pin.crawler, 4);
    console.log(
      `mock shop ceiling: ${fmt(ceiling.pagesPerSec)} pages/s to an undici Pool client (64 connections); shop CPU ${fmt(ceiling.shopUsPerPage)} µs/page ` +
        `= ${fmt(ceiling.cpuBoundPagesPerSec)} pages/s at 100% of its core (it used ${(ceiling.shopCpuShare * 100).toFixed(0)}% then)`,
    );
    if (process.env.BENCH_CLIENTS !== "0") {
      clients = await runChild("tests/bench/http-clients.ts", ["--url", shop.url, "--items", String(N), "--seconds", "3"], { cpu: pin.crawler });
    }
    for (const c of CONCURRENCIES) scenarios.push(await scenario(`no latency, C=${c}`, 0, c, shop));
  } finally {
    await shop.stop();
  }
}
if (LATENCY_MS > 0 && !MEMORY_ONLY) {
  const shop = await startShopProcess({ items: N, latencyMs: LATENCY_MS, cpu: pin.shop });
  try {
    scenarios.push(await scenario(`${LATENCY_MS} ms, C=${LATENCY_C}`, LATENCY_MS, LATENCY_C, shop));
  } finally {
    await shop.stop();
  }
}

let memory: { items: number; concurrency: number; result: CrawlResult; pagesPerSec: number } | undefined;
if (MEMORY) {
  console.log(`memory flatness: mocra-ts standalone, ${fmt(MEMORY_ITEMS)} items, C=200, no time box (this takes a while)`);
  const shop = await startShopProcess({ items: MEMORY_ITEMS, cpu: pin.shop });
  try {
    const result = await runChild<CrawlResult>(
      "tests/bench/crawl-mocra.ts",
      ["--url", shop.url, "--items", String(MEMORY_ITEMS), "--concurrency", "200", "--rss-every", "1000"],
      { cpu: pin.crawler, timeoutMs: 60 * 60_000 },
    );
    memory = { items: MEMORY_ITEMS, concurrency: 200, result, pagesPerSec: (result.pages / result.ms) * 1000 };
  } finally {
    await shop.stop();
  }
}

// ------------------------------------------------------------------------------ report

const summaries = scenarios.flatMap(summarize);
const get = (scenarioName: string, c: Crawler) => summaries.find((x) => x.scenario === scenarioName && x.crawler === c);

console.log(`\nmedians of ${RUNS} runs; N = ${fmt(N)} items; ${pin.note}; * = runs stopped by the ${MAX_SECS} s time box (rates over what they did)`);
console.log("shop CPU = the mock's share of its core during the crawl; other load = machine CPU used by anything else meanwhile (cores); RSS at start = the crawler process after its imports and warm-up (compiled JavaScript on Node unless BENCH_TSX=1)");
console.log(
  table(
    ["scenario", "crawler", "pages/s", "CPU ms/page", "peak RSS MB", "RSS at start", "shop CPU", "other load", "time-boxed"],
    summaries.map((x) => [
      x.scenario,
      LABEL[x.crawler],
      fmt(x.pagesPerSec),
      x.cpuMsPerPage.toFixed(2),
      x.peakRssMb.toFixed(0),
      x.startRssMb.toFixed(0),
      `${(x.shopCpuShare * 100).toFixed(0)}%`,
      `${x.otherCpuCores.toFixed(2)} cores`,
      x.partialRuns > 0 ? `${x.partialRuns}/${RUNS}*` : "",
    ]),
  ),
);

interface Ratio {
  scenario: string;
  vsCrawlee: number;
  vsScrapy: number;
  vsBare: number;
  cpuVsBare: number;
  ofIdeal?: number;
}
const ratios: Ratio[] = scenarios.map((s) => {
  const m = get(s.name, "mocra");
  const cr = get(s.name, "crawlee");
  const sc = get(s.name, "scrapy");
  const b = get(s.name, "bare");
  return {
    scenario: s.name,
    vsCrawlee: m && cr ? m.pagesPerSec / cr.pagesPerSec : NaN,
    vsScrapy: m && sc ? m.pagesPerSec / sc.pagesPerSec : NaN,
    vsBare: m && b ? m.pagesPerSec / b.pagesPerSec : NaN,
    cpuVsBare: m && b ? m.cpuMsPerPage / b.cpuMsPerPage : NaN,
    ofIdeal: s.idealPagesPerSec && m ? m.pagesPerSec / s.idealPagesPerSec : undefined,
  };
});
console.log("\nmocra-ts ratios (pages/s; CPU per page)");
console.log(
  table(
    ["scenario", "mocra-ts/crawlee", "mocra-ts/scrapy", "mocra-ts/bare", "CPU mocra-ts/bare", "of ideal"],
    ratios.map((r) => [r.scenario, `${r.vsCrawlee.toFixed(2)}x`, Number.isNaN(r.vsScrapy) ? "" : `${r.vsScrapy.toFixed(2)}x`, `${(r.vsBare * 100).toFixed(0)}%`, `${r.cpuVsBare.toFixed(2)}x`, r.ofIdeal === undefined ? "" : `${(r.ofIdeal * 100).toFixed(0)}%`]),
  ),
);

if (clients.length > 0) {
  console.log("\nHTTP client CPU per page (item pages, 64 concurrent, body as text; client side only)");
  console.log(table(["client", "req/s", "CPU µs/req"], clients.map((c) => [c.client, fmt(c.reqPerSec), fmt(c.cpuUsPerReq)])));
}

// targets (2-core machine)
const targets: Array<{ target: string; value: string; met: boolean }> = [];
const noLat = scenarios.filter((s) => s.latencyMs === 0);
for (const s of noLat) {
  const r = ratios.find((x) => x.scenario === s.name)!;
  if (CRAWLERS.includes("crawlee")) targets.push({ target: `${s.name}: mocra-ts >= 10x Crawlee`, value: `${r.vsCrawlee.toFixed(1)}x`, met: r.vsCrawlee >= 10 });
  if (CRAWLERS.includes("bare")) {
    targets.push({ target: `${s.name}: mocra-ts >= 60% of bare`, value: `${(r.vsBare * 100).toFixed(0)}%`, met: r.vsBare >= 0.6 });
    targets.push({ target: `${s.name}: CPU/page <= 1.7x bare`, value: `${r.cpuVsBare.toFixed(2)}x`, met: r.cpuVsBare <= 1.7 });
  }
}
let metricsCost: ReturnType<typeof metricsCostPerPage> | undefined;
if (CRAWLERS.includes("mocra-metrics")) {
  // side by side in one process: steadier than pages/s on a loaded machine
  metricsCost = metricsCostPerPage();
  const mocraCpuUs = Math.min(...noLat.map((s) => (get(s.name, "mocra")?.cpuMsPerPage ?? Infinity) * 1000));
  console.log(
    `\nmetrics subscriber: ${metricsCost.costUs.toFixed(1)} µs of CPU per page (events of one page: ${metricsCost.withoutUs.toFixed(1)} µs without, ${metricsCost.withUs.toFixed(1)} µs with)` +
      (Number.isFinite(mocraCpuUs) ? `; ${((metricsCost.costUs / mocraCpuUs) * 100).toFixed(1)} % of mocra-ts's ${fmt(mocraCpuUs)} µs per page` : ""),
  );
  for (const s of noLat) {
    const off = get(s.name, "mocra");
    const on = get(s.name, "mocra-metrics");
    if (off && on) {
      const share = on.pagesPerSec / off.pagesPerSec;
      targets.push({ target: `${s.name}: metrics on >= 95% of metrics off (pages/s)`, value: `${(share * 100).toFixed(0)}%`, met: share >= 0.95 });
    }
  }
}
const lat = scenarios.find((s) => s.latencyMs > 0);
if (lat && CRAWLERS.includes("bare")) {
  const r = ratios.find((x) => x.scenario === lat.name)!;
  targets.push({ target: `${lat.name}: mocra-ts >= 90% of bare`, value: `${(r.vsBare * 100).toFixed(0)}%`, met: r.vsBare >= 0.9 });
}
for (const s of scenarios.filter((x) => x.concurrency >= 200)) {
  const m = get(s.name, "mocra");
  if (m) targets.push({ target: `${s.name}: mocra-ts peak RSS <= 150 MB`, value: `${m.peakRssMb.toFixed(0)} MB at ${m.cpuMsPerPage.toFixed(2)} CPU ms/page${m.partialRuns > 0 ? " (time-boxed runs: partial crawl)" : ""}`, met: m.peakRssMb <= 150 });
}
if (memory) {
  const r = memory.result.rss;
  targets.push({ target: `${fmt(memory.items)} items, C=200 (in-memory queue): peak RSS <= 200 MB`, value: `${memory.result.peakRssMb.toFixed(0)} MB`, met: memory.result.peakRssMb <= 200 });
  // flat: after the first 10% of the crawl (start-up, frontier ramp) RSS grows by less than 20%
  const samples = r.samples ?? [];
  const at10 = samples[Math.floor(samples.length / 10)] ?? r.first;
  const peakAfter = Math.max(...samples.slice(Math.floor(samples.length / 10)), r.last);
  targets.push({
    target: `${fmt(memory.items)} items: RSS flat (peak after 10% < 1.2x RSS at 10%)`,
    value: `first ${r.first.toFixed(0)} / at 10% ${at10.toFixed(0)} / middle ${r.middle.toFixed(0)} / last ${r.last.toFixed(0)} / peak ${peakAfter.toFixed(0)} MB`,
    met: peakAfter < 1.2 * at10,
  });
}
// Deno beside Node: the same crawl-mocra.ts source, same shop, same scenario, alternating
if (CRAWLERS.includes("mocra-deno")) {
  for (const s of scenarios) {
    const node = get(s.name, "mocra");
    const deno = get(s.name, "mocra-deno");
    if (!node || !deno) continue;
    const share = deno.pagesPerSec / node.pagesPerSec;
    const rss = deno.peakRssMb / node.peakRssMb;
    targets.push({ target: `${s.name}: Deno >= 90% of Node (pages/s)`, value: `${(share * 100).toFixed(0)}% (${fmt(deno.pagesPerSec)} vs ${fmt(node.pagesPerSec)}; CPU/page ${deno.cpuMsPerPage.toFixed(2)} vs ${node.cpuMsPerPage.toFixed(2)} ms)`, met: share >= 0.9 });
    targets.push({ target: `${s.name}: Deno peak RSS within 10% of Node`, value: `${deno.peakRssMb.toFixed(0)} vs ${node.peakRssMb.toFixed(0)} MB (${rss >= 1 ? "+" : ""}${((rss - 1) * 100).toFixed(0)}%)`, met: rss <= 1.1 });
  }
}
console.log("\ntargets (2-core machine)");
console.log(table(["target", "measured", ""], targets.map((t) => [t.target, t.value, t.met ? "MET" : "MISSED"])));

if (memory) {
  const s = memory.result.rss.samples ?? [];
  const picks = Array.from({ length: 11 }, (_, i) => s[Math.min(s.length - 1, Math.round((i / 10) * (s.length - 1)))]);
  console.log(
    `\nmemory flatness: ${fmt(memory.result.pages)} pages in ${(memory.result.ms / 1000).toFixed(0)} s (${fmt(memory.pagesPerSec)} pages/s); ` +
      `RSS first ${memory.result.rss.first.toFixed(0)} MB, middle ${memory.result.rss.middle.toFixed(0)} MB, last ${memory.result.rss.last.toFixed(0)} MB, peak ${memory.result.peakRssMb.toFixed(0)} MB`,
  );
  console.log(`RSS at 0%,10%,...,100% of the crawl (MB): ${picks.map((x) => (x ?? NaN).toFixed(0)).join(" ")}`);
}

const file = writeResults(MEMORY_ONLY ? "compare-memory" : "compare", {
  environment: environment(),
  items: N,
  pages: expectedPages(N),
  runsPerCell: RUNS,
  timeBoxSecs: MAX_SECS,
  pinning: pin.note,
  shopCeiling: ceiling,
  httpClients: clients,
  scenarios,
  medians: summaries,
  ratios,
  metricsCost,
  targets,
  memory,
});
console.log(`\nwrote ${file}; total ${((performance.now() - started) / 1000).toFixed(1)} s`);
process.exit(0);
