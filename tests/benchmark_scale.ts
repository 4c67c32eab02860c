// tests/benchmark_scale.ts: ten million URLs (issue 27). Memory and disk per discovered URL of
// the dedup and the frontier, standalone and on Redis.
//
// Standalone: the real CLI (`run-standalone`, frontier on disk) crawls tests/bench/scale_site.ts,
// served on the fly by this process: every page links to `fanout` new URLs (plus its parent and
// some siblings: duplicates), so a crawl of P pages discovers 1 + P·fanout distinct URLs, nearly
// all of them left waiting. The crawler's RSS is read from /proc every second; once it has
// crawled enough pages it gets SIGINT (as a user stops such a crawl), and the benchmark prints
// RSS over time, bytes of RSS per discovered URL, the state folder's size per URL, pages/s over
// the first and the last tenth of the pages, how long SIGINT took, and how long `--resume` takes
// until its first page.
//
// Frontier: the standalone frontier store alone (MemoryQueue + FrontierJournal, in this process):
// memory and disk per waiting URL, links/s through fingerprint + dedup + enqueue.
//
// Links: the whole path of a followed link (tests/bench/link-path.ts): parse → canonical URL →
// fingerprint → Request → dedup → enqueue on the disk frontier, links per CPU second (target 100 000).
//
// Seen (only with --part seen): the standalone seen set alone (tests/bench/seen_store.ts, a process per run), at
// --seen-urls sizes (default 1 000 000 and --urls): the on-disk SeenTable against main's in-memory
// SeenSet + seen.log; RSS and disk per URL, links/s through seenBefore + add, the slowest page
// (a growth), and for the table how long reopening takes (--resume).
//
// Redis: its own redis-server (a free port, no persistence) and the real RedisQueue publish path
// (publish.lua, dedup and enqueue in one script): `urls` distinct request URLs published as pages
// of `fanout` links (plus repeats), once per dedup layout. The streams are trimmed as they go (a
// consumer would drain them; their memory is the waiting frontier, not the seen set), so the
// INFO used_memory delta per URL is the seen set's. Commands per page come from INFO commandstats.
//
//   npm run bench -- scale                    (all three parts, 10 000 000 URLs each)
// When publishing that many takes too long (a loaded machine), --redis-urls publishes fewer and
// --fill-urls writes the seen set of that many URLs directly in each layout (what publish.lua
// would have written), measures it, and publishes one more page through the queue on top.
//
//   npx tsx tests/benchmark_scale.ts [--urls 10000000] [--fanout 500] [--repeats 20]
//       [--part standalone|redis|frontier|links|frontier-resume|seen] [--link-urls N] [--layouts keys,buckets] [--redis-urls N] [--fill-urls N]
//       [--frontier-urls N] [--seen-urls 1000000,10000000] [--seen-impls table,memory]
//       [--concurrency 64] [--no-resume]
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import { defaultConfig } from "../src/config/index.ts";
import { Buffer } from "node:buffer";
import { fingerprint, fingerprintFields, request, type Request, uuidv7 } from "../src/model/index.ts";
import { QueueKeys, RedisQueue } from "../src/queue/redis/index.ts";
import { SEEN_BUCKETS, seenSlot } from "../src/queue/redis/keys.ts";

const EMPTY = Buffer.alloc(0);
import { enqueueRequests } from "../src/queue/enqueue-requests.ts";
import { MemoryQueue } from "../src/queue/memory-queue.ts";
import { FrontierJournal } from "../src/state/frontier-journal.ts";
import { argValue, commandDelta, commandStats, descendants, fmt, hasFlag, numArg, procRss, redisCpuMs, ROOT, runChild, sleep, table, writeResults } from "./bench/common.ts";
import { startScaleSite } from "./bench/scale_site.ts";
import { freePort, startRedisServer } from "./helpers/redis.ts";

const urls = numArg("urls", 10_000_000);
const fanout = numArg("fanout", 500);
const repeats = numArg("repeats", 20);
const concurrency = numArg("concurrency", 64);
const part = argValue("part");
const layouts = (argValue("layouts") ?? "keys,buckets").split(",");
const results: Record<string, unknown> = { urls, fanout, repeats, loadavg: loadAvg() };

function loadAvg(): string {
  try {
    return execFileSync("cat", ["/proc/loadavg"]).toString().split(" ").slice(0, 3).join(" ");
  } catch {
    return "?";
  }
}

function duBytes(path: string): number {
  try {
    return Number(execFileSync("du", ["-sb", path]).toString().split("\t")[0]);
  } catch {
    return 0;
  }
}

const mb = (bytes: number) => `${(bytes / 1e6).toFixed(0)} MB`;

// ---------------------------------------------------------------------------------- standalone

/**
 * RSS of the crawl: run-standalone runs the crawl in a child of a small supervising process
 * (src/commands/supervise.ts), so the largest process of the tree is the crawl. Undefined once
 * the started process is gone.
 */
function crawlRss(pid: number): { rssMb: number; hwmMb: number; supervisorMb: number; cpuSecs: number } | undefined {
  const top = procRss(pid);
  if (!top || top.rssMb === 0) return undefined;
  let crawl = top;
  let crawlPid = pid;
  for (const p of descendants(pid)) {
    const r = procRss(p);
    if (r && r.rssMb > crawl.rssMb) {
      crawl = r;
      crawlPid = p;
    }
  }
  return { rssMb: crawl.rssMb, hwmMb: crawl.hwmMb, supervisorMb: crawl === top ? 0 : top.rssMb, cpuSecs: cpuSecsOf(crawlPid) };
}

/** user + system CPU seconds of a process so far (/proc/<pid>/stat, clock ticks of 1/100 s) */
function cpuSecsOf(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return NaN;
  }
}

interface CrawlerRun {
  child: ChildProcess;
  pages: () => number;
  firstPageAt: () => number | undefined;
  tail: () => string;
  exited: Promise<number | null>;
}

function startCrawler(config: string, resume: boolean): CrawlerRun {
  const args = ["--import", "tsx", "src/cli.ts", "run-standalone", "--config", config, "--module", "scale_site", ...(resume ? ["--resume"] : [])];
  const child = spawn(process.execPath, args, { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
  let pages = 0;
  let firstPageAt: number | undefined;
  let tail = "";
  const onData = (d: Buffer) => {
    const s = d.toString();
    tail = (tail + s).slice(-4000);
    for (const m of s.matchAll(/pages (\d+)/g)) pages = Math.max(pages, Number(m[1]));
    if (pages > 0 && firstPageAt === undefined) firstPageAt = performance.now();
  };
  child.stderr!.on("data", onData);
  child.stdout!.on("data", onData);
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  return { child, pages: () => pages, firstPageAt: () => firstPageAt, tail: () => tail, exited };
}

async function standalone(): Promise<void> {
  const targetPages = Math.ceil((urls - 1) / fanout);
  const site = await startScaleSite(fanout, repeats);
  const dir = mkdtempSync(join(tmpdir(), "mocra-bench-scale-"));
  const state = join(dir, "state");
  const config = join(dir, "config.toml");
  writeFileSync(
    config,
    `name = "bench_scale"\n[crawler]\ntask_concurrency = ${concurrency}\nprogress_interval_secs = 1\nobey_robots_txt = false\n` +
      `module_paths = [${JSON.stringify(join(ROOT, "tests/bench/scale_site.ts"))}]\n` +
      `[output]\npath = ${JSON.stringify(join(dir, "out"))}\n[state]\ndir = ${JSON.stringify(state)}\n` +
      `[modules.scale_site]\nstart_url = ${JSON.stringify(`${site.url}/p/0`)}\n`,
  );
  console.log(`\n--- standalone: run-standalone, ${fmt(targetPages)} pages × ${fanout} new links (+${repeats + 1} repeats) = ${fmt(targetPages * fanout + 1)} URLs`);
  const started = performance.now();
  const run = startCrawler(config, false);
  const samples: { secs: number; pages: number; rss: number; cpu: number }[] = [];
  let peak = 0;
  let supervisor = 0;
  let stopAt: number | undefined;
  let lastPrint = 0;
  while (true) {
    const r = crawlRss(run.child.pid!);
    if (!r) break; // gone (a zombie reads 0)
    supervisor = Math.max(supervisor, r.supervisorMb);
    peak = Math.max(peak, r.hwmMb);
    const secs = (performance.now() - started) / 1000;
    samples.push({ secs, pages: run.pages(), rss: r.rssMb, cpu: r.cpuSecs });
    if (secs - lastPrint >= 15) {
      lastPrint = secs;
      console.log(`  ${secs.toFixed(0).padStart(4)} s  pages ${fmt(run.pages()).padStart(7)}  URLs ${fmt(run.pages() * fanout + 1).padStart(11)}  RSS ${r.rssMb.toFixed(0)} MB  state ${mb(duBytes(state))}`);
    }
    if (stopAt === undefined && run.pages() >= targetPages) {
      stopAt = performance.now();
      run.child.kill("SIGINT");
    }
    if (run.child.exitCode !== null) break;
    await Promise.race([sleep(1000), run.exited]);
  }
  const code = await run.exited;
  const exitSecs = stopAt === undefined ? NaN : (performance.now() - stopAt) / 1000;
  const pages = run.pages();
  const discovered = pages * fanout + 1;
  const stateBytes = duBytes(state);
  if (stopAt === undefined) console.log(`  crawler exited (${code}) before ${fmt(targetPages)} pages:\n${run.tail()}`);
  const rate = (from: number, to: number) => {
    const a = samples.find((s) => s.pages >= from);
    const b = samples.find((s) => s.pages >= to) ?? samples[samples.length - 1];
    return a && b && b.secs > a.secs ? (b.pages - a.pages) / (b.secs - a.secs) : NaN;
  };
  const startRate = rate(Math.max(1, pages * 0.02), pages * 0.12);
  const endRate = rate(pages * 0.88, pages * 0.98);
  // CPU of the crawl process per page: what the crawl costs whatever else runs on the machine
  const cpuPerPage = (from: number, to: number) => {
    const a = samples.find((s) => s.pages >= from);
    const b = samples.find((s) => s.pages >= to) ?? samples[samples.length - 1];
    return a && b && b.pages > a.pages ? ((b.cpu - a.cpu) * 1000) / (b.pages - a.pages) : NaN;
  };
  const startCpu = cpuPerPage(Math.max(1, pages * 0.02), pages * 0.12);
  const endCpu = cpuPerPage(pages * 0.88, pages * 0.98);
  console.log(table(
    ["pages", "URLs discovered", "s", "RSS MB"],
    [0.1, 0.25, 0.5, 0.75, 1].map((q) => {
      const s = samples.find((x) => x.pages >= q * pages) ?? samples[samples.length - 1];
      return [fmt(s.pages), fmt(s.pages * fanout + 1), s.secs.toFixed(0), s.rss.toFixed(0)];
    }),
  ));
  const out = {
    pages,
    discovered,
    peakRssMb: Math.round(peak),
    rssBytesPerUrl: Math.round((peak * 1024 * 1024) / discovered),
    stateBytes,
    diskBytesPerUrl: Math.round(stateBytes / discovered),
    pagesPerSecStart: Math.round(startRate),
    pagesPerSecEnd: Math.round(endRate),
    cpuMsPerPageStart: Number(startCpu.toFixed(1)),
    cpuMsPerPageEnd: Number(endCpu.toFixed(1)),
    sigintExitSecs: Number(exitSecs.toFixed(1)),
    resumeFirstPageSecs: NaN,
  };
  console.log(`peak RSS of the crawl process ${out.peakRssMb} MB = ${out.rssBytesPerUrl} B per discovered URL (${fmt(discovered)} URLs, ${fmt(pages)} pages); its supervisor ${supervisor.toFixed(0)} MB`);
  console.log(`state on disk ${mb(stateBytes)} = ${out.diskBytesPerUrl} B per URL`);
  console.log(`pages/s: ${fmt(startRate)} over the first tenth, ${fmt(endRate)} over the last (${((endRate / startRate - 1) * 100).toFixed(0)} %)`);
  console.log(`CPU of the crawl process per page: ${startCpu.toFixed(1)} ms over the first tenth, ${endCpu.toFixed(1)} ms over the last (${((endCpu / startCpu - 1) * 100).toFixed(0)} %; pages/s on one core: ${fmt(1000 / startCpu)} vs ${fmt(1000 / endCpu)})`);
  console.log(`SIGINT to exit: ${exitSecs.toFixed(1)} s (exit code ${code})`);
  if (!hasFlag("no-resume") && stopAt !== undefined) {
    const t0 = performance.now();
    const again = startCrawler(config, true);
    const deadline = t0 + 300_000;
    let resumePeak = 0;
    while (again.child.exitCode === null && again.pages() === 0 && performance.now() < deadline) {
      resumePeak = Math.max(resumePeak, crawlRss(again.child.pid!)?.hwmMb ?? 0);
      await Promise.race([sleep(200), again.exited]);
    }
    const at = again.firstPageAt();
    out.resumeFirstPageSecs = at === undefined ? NaN : Number(((at - t0) / 1000).toFixed(1));
    again.child.kill("SIGINT");
    await again.exited;
    console.log(
      at === undefined
        ? `--resume: no page within ${((performance.now() - t0) / 1000).toFixed(0)} s (peak RSS ${resumePeak.toFixed(0)} MB):\n${again.tail().slice(-600)}`
        : `--resume: first progress line with pages at ${out.resumeFirstPageSecs} s (progress is printed every second; RSS peak while recovering ${resumePeak.toFixed(0)} MB)`,
    );
  }
  results.standalone = out;
  await site.stop();
  rmSync(dir, { recursive: true, force: true });
}

// ---------------------------------------------------------------------------------- redis

async function redisLayout(port: number, layout: string, urls: number): Promise<void> {
  const config = defaultConfig();
  config.name = `bench_scale_${layout}_${process.pid}`;
  config.channelConfig.redis.redisHost = "127.0.0.1";
  config.channelConfig.redis.redisPort = port;
  config.crawler.dedupLayout = layout as "buckets" | "keys";
  const raw = new Redis({ host: "127.0.0.1", port });
  const queue = await RedisQueue.connect(config, { onError: () => {} });
  const streams = new QueueKeys(config.name, config.channelConfig.redis.shards).streams("request").map((s) => s.key);
  await raw.call("MEMORY", "PURGE");
  const memBefore = Number(/used_memory:(\d+)/.exec(await raw.info("memory"))![1]);
  const cmdBefore = await commandStats(raw);
  const base = `http://site.test/p/`;
  const pages = Math.ceil(urls / fanout);
  const t0 = performance.now();
  let accepted = 0;
  let duplicates = 0;
  let printed = t0;
  // publish as a worker does: a page's links at once, a few pages in flight
  const inFlight = 8;
  let next = 0;
  const one = async (): Promise<void> => {
    while (next < pages) {
      const n = next++;
      const items: { message: Request; dedupKey: string }[] = [];
      const push = (id: number) => {
        const message = request({ url: base + id, module: "scale_site" });
        items.push({ message, dedupKey: fingerprint(message) });
      };
      for (let c = n * fanout + 1; c <= n * fanout + fanout; c++) push(c);
      if (n > 0) for (let s = 0; s < repeats; s++) push((n - 1) * fanout + 1 + s);
      const r = await queue.publish("request", items);
      accepted += r.accepted;
      duplicates += r.duplicates;
      if (n % 200 === 0) for (const s of streams) await raw.xtrim(s, "MAXLEN", 0);
      if (performance.now() - printed > 15_000) {
        printed = performance.now();
        console.log(`  ${((printed - t0) / 1000).toFixed(0).padStart(4)} s  URLs ${fmt(accepted).padStart(11)}`);
      }
    }
  };
  await Promise.all(Array.from({ length: inFlight }, one));
  const secs = (performance.now() - t0) / 1000;
  for (const s of streams) await raw.xtrim(s, "MAXLEN", 0);
  await raw.call("MEMORY", "PURGE");
  const info = await raw.info("memory");
  const memAfter = Number(/used_memory:(\d+)/.exec(info)![1]);
  const cmd = commandDelta(cmdBefore, await commandStats(raw));
  const keys = await raw.dbsize();
  const perUrl = (memAfter - memBefore) / accepted;
  const row = {
    layout,
    urls: accepted,
    duplicates,
    seconds: Math.round(secs),
    urlsPerSec: Math.round(accepted / secs),
    usedMemoryDeltaMb: Math.round((memAfter - memBefore) / 1e6),
    bytesPerUrl: Number(perUrl.toFixed(1)),
    keys,
    commandsPerPage: Number((cmd.total / pages).toFixed(1)),
    byCommand: cmd.byCommand,
  };
  console.log(
    `  ${layout}: ${fmt(accepted)} URLs (+${fmt(duplicates)} duplicates) in ${row.seconds} s; used_memory +${row.usedMemoryDeltaMb} MB = ${row.bytesPerUrl} B per seen URL; ${fmt(keys)} keys; ${row.commandsPerPage} commands per page (${Object.entries(cmd.byCommand).map(([k, v]) => `${k} ${fmt(v / pages, 1)}`).join(", ")})`,
  );
  (results.redis as unknown[]).push(row);
  await queue.close();
  // delete what this layout made (own server, but keep it clean for the next layout)
  let cursor = "0";
  do {
    const [nextCursor, found] = await raw.scan(cursor, "MATCH", `*${config.name}*`, "COUNT", 10000);
    cursor = nextCursor;
    if (found.length > 0) await raw.unlink(...found);
  } while (cursor !== "0");
  raw.disconnect();
}

/**
 * The seen set of `fillUrls` URLs written directly in a layout (the keys and values publish.lua
 * writes: keys.ts, seenSlot), for when publishing that many through the queue takes too long on a
 * loaded machine; then one page published through RedisQueue on top of it (its new links and
 * repeats), for the commands a page costs with that many URLs seen.
 */
async function redisFill(port: number, layout: string, fillUrls: number): Promise<void> {
  // the default name (its length is part of every bucket's key; the server is this benchmark's own)
  const name = defaultConfig().name;
  const raw = new Redis({ host: "127.0.0.1", port });
  const keys = new QueueKeys(name, 1);
  await raw.call("MEMORY", "PURGE");
  const memBefore = Number(/used_memory:(\d+)/.exec(await raw.info("memory"))![1]);
  const t0 = performance.now();
  // what the writer writes with the default dedup_ttl_secs (seen-keys.ts SeenBuckets: + 1/4 on a bucket)
  const ttl = layout === "buckets" ? 86_400 + 21_600 : 86_400;
  const urlOf = (id: number) => request({ url: `http://site.test/p/${id}`, module: "scale_site" });
  // the URLs the page below repeats: their real fingerprints are among those filled
  const repeated = Array.from({ length: repeats + 1 }, (_, i) => 1 + i * 997);
  if (layout === "buckets") {
    // random 128-bit fingerprints stand for md5s (uniform either way): hashing 10^7 URLs takes
    // minutes on a loaded machine; the buckets get the fields publish.lua would write
    const random = randomBytes(fillUrls * 16);
    for (let i = 0; i < repeated.length; i++) Buffer.from(fingerprintFields(urlOf(repeated[i])), "hex").copy(random, i * 16);
    // the fingerprints grouped by bucket (a counting sort of their indexes: no object per URL)
    const bucketOf = (i: number) => seenSlot(random.toString("hex", i * 16, i * 16 + 16)).bucket;
    const start = new Uint32Array(SEEN_BUCKETS + 1);
    for (let i = 0; i < fillUrls; i++) start[bucketOf(i) + 1]++;
    for (let b = 0; b < SEEN_BUCKETS; b++) start[b + 1] += start[b];
    const order = new Uint32Array(fillUrls);
    const next = start.slice(0, SEEN_BUCKETS);
    for (let i = 0; i < fillUrls; i++) order[next[bucketOf(i)]++] = i;
    let pipe = raw.pipeline();
    for (let b = 0; b < SEEN_BUCKETS; b++) {
      if (start[b + 1] === start[b]) continue;
      const args: Buffer[] = [];
      for (let j = start[b]; j < start[b + 1]; j++) {
        const i = order[j];
        args.push(seenSlot(random.toString("hex", i * 16, i * 16 + 16)).field, EMPTY);
      }
      pipe.hset(keys.seenBucket(b), ...args);
      pipe.expire(keys.seenBucket(b), ttl);
      if (pipe.length >= 1000) {
        await pipe.exec();
        pipe = raw.pipeline();
      }
    }
    await pipe.exec();
  } else {
    let pipe = raw.pipeline();
    for (let id = 1; id <= fillUrls; id++) {
      pipe.set(keys.dedup(fingerprintFields(urlOf(id))), "1", "EX", ttl, "NX");
      if (pipe.length >= 5000) {
        await pipe.exec();
        pipe = raw.pipeline();
      }
    }
    await pipe.exec();
  }
  await raw.call("MEMORY", "PURGE");
  const memAfter = Number(/used_memory:(\d+)/.exec(await raw.info("memory"))![1]);
  const perUrl = (memAfter - memBefore) / fillUrls;
  // one more page through the queue: fanout new links, and repeats of links already seen
  const config = defaultConfig();
  config.name = name;
  config.channelConfig.redis.redisHost = "127.0.0.1";
  config.channelConfig.redis.redisPort = port;
  config.crawler.dedupLayout = layout as "buckets" | "keys";
  const queue = await RedisQueue.connect(config, { onError: () => {} });
  const page = [...Array.from({ length: fanout }, (_, i) => fillUrls + 1 + i), ...repeated];
  const onePage = async (ids: number[]) => {
    const items = ids.map((id) => ({ message: urlOf(id), dedupKey: fingerprintFields(urlOf(id)) }));
    const cmdBefore = await commandStats(raw);
    const cpuBefore = await redisCpuMs(raw);
    const r = await queue.publish("request", items);
    const redisCpu = (await redisCpuMs(raw)) - cpuBefore;
    return { r, redisCpu, cmd: commandDelta(cmdBefore, await commandStats(raw)) };
  };
  // the first page of a worker that has published nothing yet ("buckets": it knows no bucket's TTL)
  const first = await onePage(page);
  // then a page of new links that fall in buckets this worker has written lately: what every page
  // costs once a worker has added to most of the 2^18 buckets (~10^6 links after it started)
  const firstBuckets = new Set(page.map((id) => seenSlot(fingerprintFields(urlOf(id))).bucket));
  const warmPage: number[] = [];
  for (let id = fillUrls + fanout + 1; warmPage.length < fanout; id++) {
    if (layout !== "buckets" || firstBuckets.has(seenSlot(fingerprintFields(urlOf(id))).bucket)) warmPage.push(id);
  }
  const warm = await onePage(warmPage);
  await queue.close();
  const show = (x: typeof first) => `${x.r.accepted} new, ${x.r.duplicates} duplicates, commands ${Object.entries(x.cmd.byCommand).map(([k, v]) => `${k} ${v}`).join(", ")}; Redis CPU ${x.redisCpu.toFixed(0)} ms`;
  const row = {
    layout,
    filledUrls: fillUrls,
    fillSeconds: Math.round((performance.now() - t0) / 1000),
    usedMemoryDeltaMb: Math.round((memAfter - memBefore) / 1e6),
    bytesPerUrl: Number(perUrl.toFixed(1)),
    pageAccepted: first.r.accepted,
    pageDuplicates: first.r.duplicates,
    commandsForThePage: first.cmd.byCommand,
    redisCpuMsForThePage: first.redisCpu,
    commandsForAWarmPage: warm.cmd.byCommand,
    redisCpuMsForAWarmPage: warm.redisCpu,
  };
  console.log(
    `  ${layout} (filled directly): ${fmt(fillUrls)} URLs seen: used_memory +${row.usedMemoryDeltaMb} MB = ${row.bytesPerUrl} B per URL; then through RedisQueue a worker's first page of ${page.length} links: ${show(first)}; and a page of ${warmPage.length} new links in buckets it wrote lately: ${show(warm)}`,
  );
  (results.redisFill as unknown[]).push(row);
  let cursor = "0";
  do {
    const [nextCursor, found] = await raw.scan(cursor, "MATCH", `*${name}*`, "COUNT", 10000);
    cursor = nextCursor;
    if (found.length > 0) await raw.unlink(...found);
  } while (cursor !== "0");
  raw.disconnect();
}

async function redis(): Promise<void> {
  const port = await freePort();
  const publishUrls = numArg("redis-urls", urls);
  const fillUrls = numArg("fill-urls", 0);
  console.log(
    `\n--- redis: own redis-server on 127.0.0.1:${port}; per layout (${layouts.join(", ")}): ${fmt(publishUrls)} URLs through RedisQueue.publish` +
      (fillUrls > 0 ? `, then ${fmt(fillUrls)} URLs written directly in the layout` : ""),
  );
  const server = await startRedisServer(port);
  results.redis = [];
  results.redisFill = [];
  try {
    for (const layout of layouts) {
      if (publishUrls > 0) await redisLayout(port, layout, publishUrls);
      if (fillUrls > 0) await redisFill(port, layout, fillUrls);
    }
  } finally {
    server.kill("SIGTERM");
  }
}

/**
 * The standalone frontier store alone, in this process: `frontierUrls` follow-ups (pages of
 * `fanout` new links plus repeats, as Requests a parse makes) published to a MemoryQueue with its
 * journal on disk (FrontierJournal, as run-standalone), nothing read: the memory and disk a
 * waiting, seen URL costs, and links per second through fingerprint + dedup + enqueue.
 */
async function frontier(frontierUrls: number): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "mocra-bench-frontier-"));
  const queue = new MemoryQueue({ journal: FrontierJournal.create(dir, { segmentBytes: 16 << 20, fsync: false }) });
  console.log(`\n--- frontier store: ${fmt(frontierUrls)} URLs published to a journaled MemoryQueue (pages of ${fanout} + ${repeats + 1} repeats), none read`);
  (globalThis as { gc?: () => void }).gc?.();
  const rss0 = process.memoryUsage().rss;
  const heap0 = process.memoryUsage().heapUsed;
  let peak = rss0;
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  const pages = Math.ceil(frontierUrls / fanout);
  let links = 0;
  let printed = t0;
  for (let n = 0; n < pages; n++) {
    const ids: number[] = [];
    for (let c = n * fanout + 1; c <= n * fanout + fanout; c++) ids.push(c);
    if (n > 0) for (let s = 0; s < repeats + 1; s++) ids.push((n - 1) * fanout + 1 + s);
    links += ids.length;
    await enqueueRequests(queue, ids.map((id) => request({ url: `http://site.test/p/${id}`, module: "scale_site" })));
    if (n % 100 === 0) peak = Math.max(peak, process.memoryUsage().rss);
    if (performance.now() - printed > 15_000) {
      printed = performance.now();
      console.log(`  ${((printed - t0) / 1000).toFixed(0).padStart(4)} s  URLs ${fmt(n * fanout).padStart(11)}  RSS ${(process.memoryUsage().rss / 1e6).toFixed(0)} MB`);
    }
  }
  const secs = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  // CPU time: what one core does, whatever else runs on a shared machine
  const cpuSecs = (cpu.user + cpu.system) / 1e6;
  (globalThis as { gc?: () => void }).gc?.();
  const rss = process.memoryUsage().rss;
  const heap = process.memoryUsage().heapUsed;
  const disk = duBytes(dir);
  // the seen set's files (seen.table and seen.tail; seen.log before issue 27) apart from the log
  const seenDisk = readdirSync(dir)
    .filter((f) => f.startsWith("seen."))
    .reduce((sum, f) => sum + statSync(join(dir, f)).size, 0);
  const row = {
    urls: frontierUrls,
    seconds: Math.round(secs),
    linksPerSec: Math.round(links / secs),
    linksPerCpuSec: Math.round(links / cpuSecs),
    rssDeltaMb: Math.round((rss - rss0) / 1e6),
    rssBytesPerUrl: Math.round((rss - rss0) / frontierUrls),
    peakRssMb: Math.round(peak / 1e6),
    heapBytesPerUrl: Math.round((heap - heap0) / frontierUrls),
    diskBytesPerUrl: Math.round(disk / frontierUrls),
    seenDiskBytesPerUrl: Math.round(seenDisk / frontierUrls),
  };
  console.log(
    `  ${fmt(frontierUrls)} URLs waiting: RSS +${row.rssDeltaMb} MB = ${row.rssBytesPerUrl} B per URL (JS heap ${row.heapBytesPerUrl} B per URL); disk ${row.diskBytesPerUrl} B per URL (the seen set's files ${row.seenDiskBytesPerUrl} B of it); ${fmt(row.linksPerSec)} links/s, ${fmt(row.linksPerCpuSec)} per CPU second (Request + fingerprint + dedup + enqueue + journal, ${row.seconds} s)`,
  );
  // --resume's part in the store: recover the folder (record headers, the seen table, acks) and rebuild the queue
  const r0 = performance.now();
  const { journal: again, recovered } = FrontierJournal.recover(dir, { segmentBytes: 16 << 20, fsync: false });
  const resumed = new MemoryQueue({ journal: again, recovered });
  const [first] = await resumed.read("request", 1, 0);
  const recoverSecs = (performance.now() - r0) / 1000;
  console.log(
    `  recovered in ${recoverSecs.toFixed(1)} s (the queue rebuilt, the seen table's tags read, first message read: ${first?.message.url}; ${fmt(await resumed.depth("request"))} waiting)`,
  );
  Object.assign(row, { recoverSecs: Number(recoverSecs.toFixed(1)) });
  results.frontier = row;
  await queue.close();
  await resumed.close();
  again.close();
  rmSync(dir, { recursive: true, force: true });
}

/**
 * `--resume`'s frontier part alone: `n` waiting follow-ups published without dedup keys (no seen
 * set to rebuild), then the folder recovered and the queue rebuilt up to its first message.
 */
async function frontierResume(n: number): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "mocra-bench-frontier-"));
  const options = { segmentBytes: 16 << 20, fsync: false };
  const queue = new MemoryQueue({ journal: FrontierJournal.create(dir, options) });
  console.log(`\n--- frontier resume: ${fmt(n)} waiting follow-ups (pages of ${fanout}, no dedup keys: the seen set is not part of this), recovered`);
  const template = request({ url: "http://site.test/p/0", module: "scale_site" });
  for (let page = 0; page * fanout < n; page++) {
    const items = [];
    for (let c = page * fanout + 1; c <= Math.min(n, page * fanout + fanout); c++) items.push({ message: { ...template, id: uuidv7(), url: `http://site.test/p/${c}` } });
    await queue.publish("request", items);
  }
  await queue.close();
  const disk = duBytes(dir);
  const rss0 = process.memoryUsage().rss;
  const r0 = performance.now();
  const { journal, recovered } = FrontierJournal.recover(dir, options);
  const resumed = new MemoryQueue({ journal, recovered });
  const [first] = await resumed.read("request", 1, 0);
  const secs = (performance.now() - r0) / 1000;
  const row = { waiting: n, diskBytesPerEntry: Math.round(disk / n), recoverSecs: Number(secs.toFixed(2)), rssDeltaMb: Math.round((process.memoryUsage().rss - rss0) / 1e6) };
  console.log(`  ${fmt(n)} waiting, ${row.diskBytesPerEntry} B each on disk: recovered and first message read (${first?.message.url}) in ${row.recoverSecs} s; RSS +${row.rssDeltaMb} MB meanwhile`);
  results.frontierResume = row;
  await resumed.close();
  journal.close();
  rmSync(dir, { recursive: true, force: true });
}

// ---------------------------------------------------------------------------------- seen set

interface SeenRow {
  impl: string;
  urls: number;
  links: number;
  linksPerCpuSec: number;
  linksPerSec: number;
  slowestPageCpuMs: number;
  tableMemoryBytesPerUrl?: number;
  firstTenthLinksPerSec: number;
  lastTenthLinksPerSec: number;
  slowestPageMs: number;
  rssBytesPerUrl: number;
  retainedBytesPerUrl: number;
  peakRssMb: number;
  diskBytesPerUrl: number;
  reopenMs?: number;
}

/** The standalone seen set alone at each size, each implementation in its own process. */
async function seenSet(): Promise<void> {
  const sizes = (argValue("seen-urls") ?? `1000000,${urls}`).split(",").map(Number);
  const impls = (argValue("seen-impls") ?? "table,memory").split(",");
  console.log(`\n--- seen set alone: pages of ${fanout} new + ${repeats + 1} seen links, seenBefore + add per link, written after every page`);
  const rows: SeenRow[] = [];
  for (const n of [...new Set(sizes)]) {
    for (const impl of impls) {
      const r = await runChild<SeenRow>("tests/bench/seen_store.ts", ["--impl", impl, "--urls", String(n), "--fanout", String(fanout), "--repeats", String(repeats)], {
        nodeFlags: ["--expose-gc"],
        timeoutMs: 30 * 60_000,
      });
      rows.push(r);
      console.log(
        `  ${impl === "table" ? "SeenTable (disk)" : "SeenSet + seen.log"}, ${fmt(r.urls)} URLs: RSS ${r.rssBytesPerUrl} B per URL (live heap + typed arrays ${r.retainedBytesPerUrl} B${r.tableMemoryBytesPerUrl === undefined ? "" : `, the table's own ${r.tableMemoryBytesPerUrl} B`}), peak ${r.peakRssMb} MB; disk ${r.diskBytesPerUrl} B per URL; ${fmt(r.linksPerCpuSec)} links per CPU second (first tenth ${fmt(r.firstTenthLinksPerSec)}, last tenth ${fmt(r.lastTenthLinksPerSec)}; ${fmt(r.linksPerSec)} per wall second); slowest page ${r.slowestPageCpuMs} ms CPU, ${r.slowestPageMs} ms wall${r.reopenMs === undefined ? "" : `; reopened in ${r.reopenMs} ms`}`,
      );
    }
  }
  results.seen = rows;
}

/**
 * The whole path of a followed link (tests/bench/link-path.ts): parse → canonical URL →
 * fingerprint → Request → dedup → enqueue on the disk frontier, links per CPU second on one core.
 */
async function linkPath(n: number): Promise<void> {
  console.log(`\n--- link path: ${fmt(n)} URLs followed from pages of ${fanout} new + ${repeats + 1} seen links (runParse + enqueueRequests, frontier on disk)`);
  const r = await runChild<{ links: number; linksPerCpuSec: number; linksPerSec: number; cpuSecs: number }>(
    "tests/bench/link-path.ts",
    ["--urls", String(n), "--fanout", String(fanout), "--repeats", String(repeats)],
    { timeoutMs: 30 * 60_000 },
  );
  const met = r.linksPerCpuSec >= 100_000;
  console.log(`  ${fmt(r.links)} links: ${fmt(r.linksPerCpuSec)} links per CPU second (${fmt(r.linksPerSec)} per wall second) — target >= 100,000 on one core: ${met ? "MET" : "MISSED"}`);
  results.linkPath = { ...r, target: 100_000, met };
}

console.log(`benchmark_scale: ${fmt(urls)} URLs, fanout ${fanout} (+${repeats + 1} repeated links a page); load average ${results.loadavg} on ${(await import("node:os")).cpus().length} cpus`);
if (part === undefined || part === "standalone") await standalone();
if (part === undefined || part === "redis") await redis();
if (part === undefined || part === "frontier") await frontier(numArg("frontier-urls", urls));
// not in the default run (which must stay under 15 minutes): the frontier part's recovery includes it
if (part === "frontier-resume") await frontierResume(numArg("frontier-urls", urls));
// not in the default run either (~8 minutes at 10^7): the seen set alone, table against in memory
if (part === "seen") await seenSet();
if (part === undefined || part === "links") await linkPath(numArg("link-urls", urls));
console.log(`\nresults: ${writeResults("scale", results)}`);
process.exit(0);
