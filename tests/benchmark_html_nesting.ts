// tests/benchmark_html_nesting.ts: pathological nesting, N nested <div>s (200 000 = 2.2 MB),
// parsed as a module's page is (parseHtml, then links() and text()), each size in its own child
// process so its peak RSS is its own. Compares the capped parser (src/html/document.ts, what
// the engine uses) with htmlparser2's parseDocument as it was used before the cap ("uncapped").
//   npx tsx tests/benchmark_html_nesting.ts [--sizes=25000,50000,100000,200000] [--runs=3] [--skip-uncapped]
// Prints the median seconds and peak RSS per size and parser.
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";

const here = fileURLToPath(import.meta.url);
const arg = (name: string) => process.argv.find((a) => a.startsWith(`--${name}=`))?.split("=")[1];

if (process.argv.includes("--child")) {
  const n = Number(arg("n"));
  const uncapped = process.argv.includes("--uncapped");
  const html = `<html><body>${"<div>".repeat(n)}deep${"</div>".repeat(n)}<a href="/next">next</a></body></html>`;
  // modules loaded before the clock starts
  const { parseDocument } = await import("htmlparser2");
  const { selectAll } = await import("css-select");
  const { parseHtml } = await import("../src/html/document.ts");
  const started = performance.now();
  if (uncapped) {
    selectAll("a[href]", parseDocument(html).children);
  } else {
    const doc = parseHtml(html, "http://127.0.0.1/");
    doc.links();
    doc.text("body");
  }
  const secs = (performance.now() - started) / 1000;
  console.log(JSON.stringify({ secs, peakRssMb: process.resourceUsage().maxRSS / 1024, bytes: html.length }));
  process.exit(0);
}

const sizes = (arg("sizes") ?? "25000,50000,100000,200000").split(",").map(Number);
const runs = Number(arg("runs") ?? 3);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
console.log(`nested <div>s, ${runs} runs each, median (load average now ${(await import("node:os")).loadavg()[0].toFixed(1)})`);
for (const mode of process.argv.includes("--skip-uncapped") ? ["capped"] : ["capped", "uncapped"]) {
  for (const n of sizes) {
    const secs: number[] = [];
    const rss: number[] = [];
    let bytes = 0;
    for (let r = 0; r < runs; r++) {
      const child = spawnSync(process.execPath, [...process.execArgv, here, "--child", `--n=${n}`, ...(mode === "uncapped" ? ["--uncapped"] : [])], { encoding: "utf8" });
      const line = child.stdout.trim().split("\n").pop() ?? "";
      if (child.status !== 0 || !line.startsWith("{")) throw new Error(`child failed: ${child.stderr}`);
      const m = JSON.parse(line) as { secs: number; peakRssMb: number; bytes: number };
      secs.push(m.secs);
      rss.push(m.peakRssMb);
      bytes = m.bytes;
    }
    console.log(`${mode.padEnd(8)} ${String(n).padStart(7)} levels (${(bytes / 1e6).toFixed(1)} MB): ${median(secs).toFixed(2)} s, peak RSS ${median(rss).toFixed(0)} MB`);
  }
}
