// `npm run build` (prepack): compiles src/, operators/, the demo module and the demo shop to
// dist/ (JavaScript + .d.ts, relative `.ts` imports rewritten to `.js` by tsc's
// rewriteRelativeImportExtensions) and copies the files the code reads at run time (Lua
// scripts, the dashboard page) beside their compiled readers. The repository itself keeps
// running from the TypeScript sources; only the package uses dist/.
import { spawnSync } from "node:child_process";
import { copyFileSync, mkdirSync, readdirSync, rmSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const dist = join(root, "dist");
rmSync(dist, { recursive: true, force: true });

const tsc = spawnSync(process.execPath, [join(root, "node_modules/typescript/bin/tsc"), "-p", join(root, "tsconfig.build.json")], { stdio: "inherit" });
if (tsc.status !== 0) process.exit(tsc.status ?? 1);

let copied = 0;
function copyAssets(dir) {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) copyAssets(p);
    else if (/\.(lua|html)$/.test(e.name)) {
      const target = join(dist, relative(root, p));
      mkdirSync(dirname(target), { recursive: true });
      copyFileSync(p, target);
      copied++;
    }
  }
}
copyAssets(join(root, "src"));
console.log(`build: dist/ written (${copied} Lua/HTML files copied)`);
