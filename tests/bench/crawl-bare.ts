// tests/bench/crawl-bare.ts: the no-framework baseline: C concurrent loops over a shared FIFO, an
// undici Pool (C keep-alive connections), the same HTML layer as mocra (src/html/document.ts's
// parseHtml: htmlparser2 10 + css-select), the same extraction and link selectors as
// modules/demo_shop.ts, a Set of seen URLs for dedup, items appended to a JSONL file.
//
//   node --import tsx tests/bench/crawl-bare.ts --url URL --items N --concurrency C
//
// Prints RESULT like crawl-mocra.ts (--max-secs too).
import { createWriteStream, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Pool } from "undici";
import { parseHtml } from "../../src/html/document.ts";
import { argValue, machineBusyMs, numArg, printResult, rssSampler } from "./common.ts";

const base = argValue("url");
if (!base) throw new Error("--url is required");
const items = numArg("items", 20_000);
const concurrency = numArg("concurrency", 64);
const rssEvery = numArg("rss-every", 1000);
const maxSecs = numArg("max-secs", 0);
/** a time-boxed crawl of the same shop first, untimed: the timed crawl starts with warm JIT code, as a long crawl runs */
const warmupSecs = numArg("warmup-secs", 0);

const dir = mkdtempSync(join(tmpdir(), "bare-bench-"));
let sink = createWriteStream(join(dir, "warmup.jsonl"));
const origin = new URL(base).origin;
const pool = new Pool(origin, { connections: concurrency, pipelining: 1 });

/** One crawl from /list/0 with fresh state; stops taking new pages at `deadline` (performance.now() ms). */
async function crawlShop(deadline: number): Promise<{ pages: number; items: number; errors: number; partial: boolean }> {
  const seen = new Set<string>();
  const queue: string[] = [];
  let head = 0;
  let active = 0;
  let pages = 0;
  let itemCount = 0;
  let errors = 0;
  let waiters: Array<() => void> = [];
  let partial = false;

  function wakeAll(): void {
    if (waiters.length === 0) return;
    const w = waiters;
    waiters = [];
    for (const wake of w) wake();
  }

  function push(url: string): void {
    if (seen.has(url) || !url.startsWith(origin)) return;
    seen.add(url);
    queue.push(url);
    wakeAll();
  }

  async function crawl(url: string): Promise<void> {
    const res = await pool.request({ path: url.slice(origin.length), method: "GET" });
    const html = await res.body.text();
    pages++;
    if (res.statusCode !== 200) {
      errors++;
      return;
    }
    const doc = parseHtml(html, url);
    if (url.includes("/item/")) {
      sink.write(
        JSON.stringify({
          url,
          title: doc.text("h1.title"),
          price: doc.text("span.price"),
          description: doc.text("div.desc").slice(0, 200),
        }) + "\n",
      );
      itemCount++;
    }
    for (const link of doc.links("a[href*='/item/']")) push(link);
    for (const link of doc.links("a[href*='/list/']")) push(link);
  }

  async function loop(): Promise<void> {
    for (;;) {
      if (performance.now() > deadline) {
        partial = partial || head < queue.length;
        // the loops parked for work see the deadline too (else, once the last active one ends
        // here, they wait forever and the process exits 13 with the crawl unsettled)
        wakeAll();
        return;
      }
      if (head < queue.length) {
        const url = queue[head++];
        if (head > 4096 && head * 2 > queue.length) {
          queue.splice(0, head);
          head = 0;
        }
        active++;
        try {
          await crawl(url);
        } catch {
          errors++;
        } finally {
          active--;
        }
        continue;
      }
      if (active === 0) {
        // nothing queued and nobody working: done; wake the others so they see it too
        wakeAll();
        return;
      }
      await new Promise<void>((r) => waiters.push(r));
    }
  }

  push(`${origin}/list/0`);
  await Promise.all(Array.from({ length: concurrency }, () => loop()));
  return { pages, items: itemCount, errors, partial };
}

if (warmupSecs > 0) {
  await crawlShop(performance.now() + warmupSecs * 1000);
  await new Promise<void>((r) => sink.end(r));
  sink = createWriteStream(join(dir, "items.jsonl"));
}
const rss = rssSampler(rssEvery);
const cpu0 = process.cpuUsage();
const busy0 = machineBusyMs();
const crawlStartUs = Number(process.hrtime.bigint() / 1000n);
const t0 = performance.now();
const { pages, items: itemCount, errors, partial } = await crawlShop(maxSecs > 0 ? t0 + maxSecs * 1000 : Infinity);
await new Promise<void>((r) => sink.end(r));
const ms = performance.now() - t0;
const crawlEndUs = Number(process.hrtime.bigint() / 1000n);
const machineBusy = machineBusyMs() - busy0;
const cpu = process.cpuUsage(cpu0);
const mem = rss.stop();
await pool.close();
rmSync(dir, { recursive: true, force: true });
printResult({
  crawler: "bare",
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
