// tests/bench/link-path.ts: links per CPU second through what a followed link costs the engine
// (issue 27: "≥ 100 000 links per second through canonicalise + dedup + enqueue on one core"):
// a parse that follows a page's links (runParse, as operators/parse.ts runs it, with the queue's
// seenBefore) → canonical URL, fingerprint, Request for the new ones → enqueueRequests on the
// standalone frontier store (MemoryQueue + FrontierJournal on disk, as run-standalone). Pages as
// tests/bench/scale_site.ts writes them (fanout new links, the parent and `repeats` siblings).
//
//   npx tsx tests/bench/link-path.ts [--urls 1000000] [--fanout 500] [--repeats 20] [--html]
//
// Without --html the parse follows the link strings page.links() would return (absolute URLs),
// so HTML parsing is left out; with --html it parses each page's HTML and selects its links too.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { executionMark, metaData, response } from "../../src/model/index.ts";
import { defineModule } from "../../src/modules/define.ts";
import { URL_HEADER } from "../../src/modules/page.ts";
import { runParse } from "../../src/modules/run-parse.ts";
import { enqueueRequests } from "../../src/queue/enqueue-requests.ts";
import { MemoryQueue } from "../../src/queue/memory-queue.ts";
import { FrontierJournal } from "../../src/state/frontier-journal.ts";
import { fmt, hasFlag, numArg } from "./common.ts";
import { pageHtml } from "./scale_site.ts";

const urls = numArg("urls", 1_000_000);
const fanout = numArg("fanout", 500);
const repeats = numArg("repeats", 20);
const html = hasFlag("html");
const SITE = "http://site.test";

/** the absolute links of page n, as page.links() returns them */
function linksOf(n: number): string[] {
  const out: string[] = [];
  for (let c = n * fanout + 1; c <= n * fanout + fanout; c++) out.push(`${SITE}/p/${c}`);
  if (n > 0) {
    const parent = Math.floor((n - 1) / fanout);
    out.push(`${SITE}/p/${parent}`);
    const firstSibling = parent * fanout + 1;
    for (let s = 0; s < repeats; s++) out.push(`${SITE}/p/${firstSibling + ((n + s) % fanout)}`);
  }
  return out;
}

let current: string[] = [];
const module = defineModule({
  name: "scale_site",
  start: () => [`${SITE}/p/0`],
  parse(page, ctx) {
    ctx.follow(html ? page.links("a") : current);
  },
});

const dir = mkdtempSync(join(tmpdir(), "mocra-bench-links-"));
const queue = new MemoryQueue({ journal: FrontierJournal.create(dir, { segmentBytes: 16 << 20, fsync: false }) });
const seenBefore = (key: string) => queue.seenBefore(key);
const settings = { ...module.settings };
const pages = Math.ceil(urls / fanout);
const encoder = new TextEncoder();
let links = 0;
let accepted = 0;
let cpuParse = 0;
const t0 = performance.now();
const cpu0 = process.cpuUsage();
for (let n = 0; n < pages; n++) {
  current = html ? [] : linksOf(n);
  links += fanout + (n > 0 ? repeats + 1 : 0);
  const body = html ? encoder.encode(pageHtml(n, fanout, repeats)) : new Uint8Array(0);
  const res = response({
    module: module.name,
    statusCode: 200,
    content: body,
    headers: [["content-type", "text/html; charset=utf-8"], [URL_HEADER, `${SITE}/p/${n}`]],
    metadata: metaData({ traitMeta: null }),
    context: executionMark({ moduleId: module.name, stepIdx: 0 }),
  });
  const c0 = process.cpuUsage();
  const out = await runParse(module, res, settings, 30, { seenBefore });
  const c1 = process.cpuUsage(c0);
  cpuParse += c1.user + c1.system;
  accepted += (await enqueueRequests(queue, out.requests)).accepted;
}
const secs = (performance.now() - t0) / 1000;
const cpu = process.cpuUsage(cpu0);
const cpuSecs = (cpu.user + cpu.system) / 1e6;
console.log(
  `link path${html ? " (HTML parse + page.links included)" : ""}: ${fmt(links)} links on ${fmt(pages)} pages, ${fmt(accepted)} new: ` +
    `${fmt(links / cpuSecs)} links per CPU second (${fmt(links / secs)} links/s wall), ` +
    `of which the parse (canonical URL, fingerprint, Request) ${((cpuParse / 1e6 / cpuSecs) * 100).toFixed(0)} %`,
);
console.log(`RESULT ${JSON.stringify({ links, pages, accepted, html, cpuSecs, linksPerCpuSec: Math.round(links / cpuSecs), linksPerSec: Math.round(links / secs) })}`);
rmSync(dir, { recursive: true, force: true });
process.exit(0);
