// `npm run build` (prepack): compiles src/, operators/, the demo module and the demo shop to
// dist/ (JavaScript + .d.ts, relative `.ts` imports rewritten to `.js` by tsc's
// rewriteRelativeImportExtensions) and copies the files the code reads at run time (Lua
// scripts, the dashboard page) beside their compiled readers. The package ships dist/; in a
// clone `npm start`, `npm run run-standalone` and `npm run start-worker` run it too (plain
// JavaScript: no tsx loader thread), and `tsx src/cli.ts` runs the sources as before.
//
//   node scripts/build.mjs [--if-stale] [--bench]
//   --if-stale  do nothing when the output is newer than every input (what npm's pre-scripts run:
//               a fresh clone or an edited source rebuilds, an unchanged one starts at once)
//   --bench     the benchmarks' build instead: tests/bench/ and everything it imports, to
//               dist-bench/ (no .d.ts; never packed), so the benchmarks' Node crawler processes
//               run plain JavaScript as `npm start` does
import { spawnSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const bench = process.argv.includes("--bench");
const dist = join(root, bench ? "dist-bench" : "dist");
const tsconfig = join(root, bench ? "tsconfig.bench.json" : "tsconfig.build.json");
/** written last: its time is when the output was complete */
const stamp = join(dist, ".build-stamp");
const inputs = ["src", "operators", "modules", "examples/demo-shop", "tsconfig.json", "tsconfig.build.json", "package.json", ...(bench ? ["tests/bench", "tests/helpers", "tsconfig.bench.json"] : [])];

/** The newest modification time among the files under `p`. */
function newest(p) {
  if (!existsSync(p)) return 0;
  const st = statSync(p);
  if (!st.isDirectory()) return st.mtimeMs;
  let max = 0;
  for (const e of readdirSync(p)) max = Math.max(max, newest(join(p, e)));
  return max;
}

if (process.argv.includes("--if-stale") && existsSync(stamp)) {
  const built = statSync(stamp).mtimeMs;
  if (inputs.every((i) => newest(join(root, i)) <= built)) process.exit(0);
}

const t0 = performance.now();
// built beside and swapped in at the end: a process running from dist/ meanwhile (a test, a
// crawl) never sees it half-written
const building = `${dist}.building-${process.pid}`;
rmSync(building, { recursive: true, force: true });
const tsc = spawnSync(process.execPath, [join(root, "node_modules/typescript/bin/tsc"), "-p", tsconfig, "--outDir", building], { stdio: "inherit" });
if (tsc.status !== 0) {
  rmSync(building, { recursive: true, force: true });
  process.exit(tsc.status ?? 1);
}

let copied = 0;
function copyAssets(dir) {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) copyAssets(p);
    else if (/\.(lua|html)$/.test(e.name)) {
      const target = join(building, relative(root, p));
      mkdirSync(dirname(target), { recursive: true });
      copyFileSync(p, target);
      copied++;
    }
  }
}
copyAssets(join(root, "src"));
writeFileSync(join(building, ".build-stamp"), "");
rmSync(dist, { recursive: true, force: true });
renameSync(building, dist);
console.error(`build: ${relative(root, dist)}/ written (${copied} Lua/HTML files copied) in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
