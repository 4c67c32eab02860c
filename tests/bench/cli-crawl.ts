// tests/bench/cli-crawl.ts: the real `run-standalone` CLI of one or two checkouts on one shop
// process, alternating: RSS when the crawl starts (first progress line), peak RSS (VmHWM) and
// CPU ms per page of the whole process (start-up included), read from /proc every 200 ms.
//
//   npx tsx tests/bench/cli-crawl.ts [--items 20000] [--runs 3] [--concurrency 64] [--base DIR]
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { argValue, expectedPages, fmt, median, numArg, procCpuMs, procRss, ROOT, startShopProcess, table } from "./common.ts";

const items = numArg("items", 20_000);
const runs = numArg("runs", 3);
const concurrency = numArg("concurrency", 64);
const base = argValue("base");
const sides: Array<[string, string]> = base ? [["base", resolve(base)], ["this checkout", ROOT]] : [["this checkout", ROOT]];

interface Run {
  startRssMb: number;
  peakRssMb: number;
  cpuMsPerPage: number;
  pages: number;
}

async function crawl(dir: string, url: string): Promise<Run> {
  const tmp = mkdtempSync(join(tmpdir(), "mocra-cli-crawl-"));
  const config = join(tmp, "config.toml");
  writeFileSync(
    config,
    `name = "bench_cli"\n[crawler]\ntask_concurrency = ${concurrency}\nprogress_interval_secs = 1\nobey_robots_txt = false\n[download_config]\ndomain_concurrency = 0\n` +
      `[output]\npath = ${JSON.stringify(join(tmp, "out"))}\n[state]\ndir = ${JSON.stringify(join(tmp, "state"))}\n` +
      `[modules.demo_shop]\nstart_url = ${JSON.stringify(`${url}/list/0`)}\n`,
  );
  const child = spawn(process.execPath, ["--import", "tsx", "src/cli.ts", "run-standalone", "--config", config, "--module", "demo_shop"], { cwd: dir, stdio: ["ignore", "pipe", "pipe"] });
  let pages = 0;
  let startRssMb = 0;
  let peakRssMb = 0;
  let cpuMs = 0;
  let tail = "";
  child.stderr!.on("data", (d: Buffer) => {
    tail = (tail + d.toString()).slice(-2000);
    for (const m of d.toString().matchAll(/pages (\d+)/g)) {
      if (startRssMb === 0) startRssMb = procRss(child.pid!)?.rssMb ?? 0;
      pages = Math.max(pages, Number(m[1]));
    }
  });
  const timer = setInterval(() => {
    const r = procRss(child.pid!);
    if (r) peakRssMb = Math.max(peakRssMb, r.hwmMb);
    cpuMs = Math.max(cpuMs, procCpuMs(child.pid!));
  }, 200);
  const code = await new Promise<number | null>((r) => child.on("exit", r));
  clearInterval(timer);
  rmSync(tmp, { recursive: true, force: true });
  if (code !== 0) throw new Error(`run-standalone exited with ${code}: ${tail}`);
  // every page is crawled (exit 0): the last progress line may come before the last pages
  pages = Math.max(pages, expectedPages(items));
  return { startRssMb, peakRssMb, cpuMsPerPage: cpuMs / pages, pages };
}

const shop = await startShopProcess({ items });
const results = new Map<string, Run[]>(sides.map(([n]) => [n, []]));
try {
  for (let i = 0; i < runs; i++)
    for (const [name, dir] of sides) {
      const r = await crawl(dir, shop.url);
      results.get(name)!.push(r);
      console.log(`run ${i + 1} ${name}: ${fmt(r.pages)} pages, start RSS ${fmt(r.startRssMb)} MB, peak RSS ${fmt(r.peakRssMb)} MB, ${fmt(r.cpuMsPerPage * 1000)} CPU µs/page (start-up included)`);
    }
} finally {
  await shop.stop();
}
console.log(`\nrun-standalone CLI, N = ${fmt(items)} items, C = ${concurrency}, medians of ${runs}`);
console.log(
  table(
    ["checkout", "RSS at first progress line MB", "peak RSS MB", "CPU µs/page"],
    sides.map(([name]) => {
      const rs = results.get(name)!;
      return [name, fmt(median(rs.map((r) => r.startRssMb))), fmt(median(rs.map((r) => r.peakRssMb))), fmt(median(rs.map((r) => r.cpuMsPerPage * 1000)))];
    }),
  ),
);
