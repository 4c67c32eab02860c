// tests/bench/crawl-crawlee.ts: the same crawl with Crawlee 3's CheerioCrawler: in-memory storage
// (persistStorage false, CRAWLEE_STORAGE_DIR in a temp dir), no retries, no session pool, fixed
// concurrency (minConcurrency = maxConcurrency = C), the same extraction (h1.title, span.price,
// div.desc, whitespace-collapsed like mocra's text()), the same link selectors followed with
// enqueueLinks (same host; the request queue dedups by uniqueKey), items with pushData.
//
//   node --import tsx tests/bench/crawl-crawlee.ts --url URL --items N --concurrency C
//
// Prints RESULT like crawl-mocra.ts (--max-secs too: crawler.stop(), in-flight requests finish).
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { argValue, machineBusyMs, numArg, printResult, rssSampler } from "./common.ts";

const storage = mkdtempSync(join(tmpdir(), "crawlee-bench-"));
process.env.CRAWLEE_STORAGE_DIR = storage;
process.env.CRAWLEE_PERSIST_STORAGE = "false";
const { CheerioCrawler, Configuration, log } = await import("@crawlee/cheerio");

const base = argValue("url");
if (!base) throw new Error("--url is required");
const items = numArg("items", 20_000);
const concurrency = numArg("concurrency", 64);
const rssEvery = numArg("rss-every", 1000);
const maxSecs = numArg("max-secs", 0);
let partial = false;

log.setLevel(log.LEVELS.ERROR);
const config = new Configuration({ persistStorage: false, purgeOnStart: true, storageClientOptions: { persistStorage: false, writeMetadata: false } });

let pages = 0;
let itemCount = 0;
let errors = 0;
const collapse = (s: string) => s.replace(/\s+/g, " ").trim();

const crawler = new CheerioCrawler(
  {
    minConcurrency: concurrency,
    maxConcurrency: concurrency,
    maxRequestRetries: 0,
    useSessionPool: false,
    persistCookiesPerSession: false,
    requestHandlerTimeoutSecs: 60,
    statusMessageLoggingInterval: 3600,
    async requestHandler({ $, request, enqueueLinks, pushData }) {
      pages++;
      if (request.url.includes("/item/")) {
        await pushData({
          url: request.loadedUrl ?? request.url,
          title: collapse($("h1.title").first().text()),
          price: collapse($("span.price").first().text()),
          description: collapse($("div.desc").first().text()).slice(0, 200),
        });
        itemCount++;
      }
      await enqueueLinks({ selector: "a[href*='/item/'], a[href*='/list/']" });
    },
    failedRequestHandler() {
      pages++;
      errors++;
    },
  },
  config,
);

const rss = rssSampler(rssEvery);
const cpu0 = process.cpuUsage();
const busy0 = machineBusyMs();
const crawlStartUs = Number(process.hrtime.bigint() / 1000n);
const t0 = performance.now();
const box =
  maxSecs > 0
    ? setTimeout(() => {
        partial = true;
        crawler.stop("time box");
      }, maxSecs * 1000)
    : undefined;
await crawler.run([`${new URL(base).origin}/list/0`]);
clearTimeout(box);
const ms = performance.now() - t0;
const crawlEndUs = Number(process.hrtime.bigint() / 1000n);
const machineBusy = machineBusyMs() - busy0;
const cpu = process.cpuUsage(cpu0);
const mem = rss.stop();
rmSync(storage, { recursive: true, force: true });
printResult({
  crawler: "crawlee",
  pages,
  items: itemCount,
  errors,
  partial,
  ms,
  cpuMs: (cpu.user + cpu.system) / 1000,
  peakRssMb: mem.peak,
  /** CPU ms all processes on the machine used during the crawl */
  machineBusyMs: machineBusy,
  crawlStartUs,
  crawlEndUs,
  rss: { first: mem.first, middle: mem.middle, last: mem.last, samples: items >= 100_000 ? mem.samples : undefined },
});
process.exit(0);
