// tests/bench/modes.ts: N crawls of tests/bench/crawl-mocra.ts on one shop process, each with a
// preload that samples V8's %HasFastProperties(String.prototype) every 50 ms: prints CPU µs per
// page per run and when (if ever) String.prototype went to dictionary mode, to tell whether the
// two-speed runs of issue 28 follow its mode.
//
//   npx tsx tests/bench/modes.ts [--runs 10] [--items 5000] [--concurrency 64] [--warmup-secs 2] [--dir CHECKOUT]
import { spawnSync } from "node:child_process";
import { rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { argValue, fmt, median, numArg, ROOT, startShopProcess } from "./common.ts";

const runs = numArg("runs", 10);
const items = numArg("items", 5000);
const concurrency = numArg("concurrency", 64);
const warmup = numArg("warmup-secs", 2);
const dir = resolve(argValue("dir") ?? ROOT);
const probe = join(tmpdir(), `mocra-modes-probe-${process.pid}.mjs`);
writeFileSync(
  probe,
  `const fast = new Function("o", "return %HasFastProperties(o)");
const protos = { String: String.prototype, Object: Object.prototype, Array: Array.prototype, Function: Function.prototype, RegExp: RegExp.prototype, Map: Map.prototype, Set: Set.prototype, Promise: Promise.prototype, Uint8Array: Uint8Array.prototype };
const t0 = Date.now(); const modes = []; let last;
const sample = () => { const slow = Object.keys(protos).filter((k) => !fast(protos[k])).join(","); if (slow !== last) { modes.push((Date.now() - t0) + "ms:" + (slow ? "slow " + slow : "all fast")); last = slow; } };
sample(); setInterval(sample, 50).unref();
process.on("exit", () => { sample(); process.stderr.write("MODES " + JSON.stringify(modes) + "\\n"); });
`,
);
const shop = await startShopProcess({ items });
const rows: { cpuUs: number; modes: string[] }[] = [];
try {
  for (let i = 0; i < runs; i++) {
    const argv = ["--allow-natives-syntax", "--import", probe, "--import", "tsx", "tests/bench/crawl-mocra.ts", "--url", shop.url, "--items", String(items), "--concurrency", String(concurrency), "--warmup-secs", String(warmup)];
    const child = spawnSync(process.execPath, argv, { cwd: dir, encoding: "utf8", maxBuffer: 1 << 26 });
    const line = child.stdout.split("\n").find((l) => l.startsWith("RESULT "));
    if (!line) throw new Error(`no RESULT line: ${child.stderr.slice(-500)}`);
    const r = JSON.parse(line.slice(7)) as { pages: number; cpuMs: number; ms: number; peakRssMb: number };
    const modes = JSON.parse(/^MODES (.*)$/m.exec(child.stderr)?.[1] ?? "[]") as string[];
    rows.push({ cpuUs: (r.cpuMs * 1000) / r.pages, modes });
    console.log(`run ${i + 1}: ${fmt((r.cpuMs * 1000) / r.pages)} CPU µs/page, ${fmt((r.pages / r.ms) * 1000)} pages/s, ${fmt(r.peakRssMb)} MB, prototypes ${modes.join(" ")}`);
  }
} finally {
  await shop.stop();
  rmSync(probe, { force: true });
}
console.log(`median ${fmt(median(rows.map((r) => r.cpuUs)))} CPU µs/page over ${runs} runs`);
