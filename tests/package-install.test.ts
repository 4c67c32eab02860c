// mocra-ts as a user gets it: `npm pack` of this repository installed into projects outside it,
// every step a real process (npm, the installed `mocra-ts` bin, node, deno). No registry publish:
// the tarball is installed by path; npm may take the dependencies from its cache or the registry.
//
//   ws/   a project without "type" in package.json that installs the tarball; its own module
//         (modules/catalog.ts, importing "mocra-ts") crawls a local site with run-standalone,
//         with start-worker on Redis and under Deno through `npm:mocra-ts`; a custom chain
//         (chain.mjs, plain node) imports the operators by package name.
//   app/  written by `npx mocra-ts init`: npm install (run alongside the ws steps: it is the
//         slowest step), npm start (the demo shop), npm test.
import { type SpawnOptions, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ShopServer, startShop } from "../examples/demo-shop/shop.ts";
import { deleteNamespace, REDIS_HOST, REDIS_PORT, requireRedis, uniqueName } from "./helpers/redis.ts";
import { ROOT, waitFor } from "./helpers/worker-process.ts";

const DENO = join(ROOT, "node_modules/deno/deno");
const NPM_FLAGS = ["--prefer-offline", "--no-audit", "--no-fund", "--loglevel=error"];

/** The environment without what `npm test` set for this repository (npm_config_*, npm_lifecycle_*...). */
const env: NodeJS.ProcessEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^npm_/i.test(k)));

interface Ran {
  code: number | null;
  out: string;
  ms: number;
}

function run(cmd: string, args: string[], cwd: string, options: SpawnOptions = {}): Promise<Ran> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd, env, stdio: ["ignore", "pipe", "pipe"], ...options });
    let out = "";
    child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr!.on("data", (d: Buffer) => (out += d.toString()));
    child.on("error", reject);
    child.on("exit", (code) => resolve({ code, out, ms: performance.now() - started }));
  });
}

async function ok(cmd: string, args: string[], cwd: string): Promise<Ran> {
  const r = await run(cmd, args, cwd);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(" ")} (in ${cwd}) exited ${r.code}:\n${r.out}`);
  return r;
}

async function lines(file: string): Promise<Array<Record<string, unknown>>> {
  return (await readFile(file, "utf8"))
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

const CATALOG_MODULE = `// a module of the user's own: imports mocra-ts by its package name; no package.json "type"
import { defineModule } from "mocra-ts";
import { cleanTitle } from "./_text.ts";

export default defineModule({
  name: "catalog",
  settings: { startUrl: "http://127.0.0.1:9/list/0" },
  start: ({ settings }) => [String(settings.startUrl)],
  steps: {
    list(page, ctx) {
      ctx.follow(page.links("a.product-link"), { step: "item" });
      ctx.follow(page.links("a.next"), { step: "list" });
    },
    item(page, ctx) {
      ctx.emit({ url: page.url, title: cleanTitle(page.text("h1.title")) });
    },
  },
});
`;

const CHAIN_SCRIPT = `// a custom operator chain in plain JavaScript: operators and the rest by package name
import { lastValueFrom } from "rxjs";
import { download, fromQueue, parse, rateLimit, retry, route } from "mocra-ts/operators";
import { defineModule, enqueueRequests, HttpClient, JsonlSink, MemoryQueue, MemoryRateLimiter, ModuleRegistry, request } from "mocra-ts";

const [startUrl, outputDir] = process.argv.slice(2);
const products = defineModule({
  name: "products",
  start: () => [startUrl],
  parse(page, ctx) {
    if (page.url.includes("/item/")) ctx.emit({ title: page.text("h1.title") });
    ctx.follow(page.links("a[href*='/item/'], a[href*='/list/']"));
  },
});
const registry = new ModuleRegistry().register(products);
const queue = new MemoryQueue();
await enqueueRequests(queue, [request({ url: startUrl, module: "products" })]);
const sink = new JsonlSink(outputDir);
const stop = new AbortController();
const flow = fromQueue(queue, "request", { prefetch: 16, signal: stop.signal }).pipe(
  rateLimit(new MemoryRateLimiter(), { rateOf: () => 500, maxWaitMs: 5_000 }),
  download(new HttpClient({ userAgent: "chain/1.0", maxBodyBytes: 5e6, maxRedirects: 5 }), { concurrency: 8 }),
  parse(registry, { timeoutSecs: 30 }),
  route({ sink, queue }),
  retry({ policy: { maxRetries: 2, baseDelayMs: 100, maxDelayMs: 1_000 } }),
);
const drained = setInterval(() => queue.isDrained() && stop.abort(), 50);
await lastValueFrom(flow, { defaultValue: null });
clearInterval(drained);
await sink.close();
console.log("chain done");
`;

const ITEMS = 30;
let tmp = "";
let tarball = "";
let ws = "";
let shop: ShopServer;
let appInstall: Promise<Ran> | undefined;
const figures: string[] = [];

beforeAll(async () => {
  await requireRedis("package-install");
  tmp = await mkdtemp(join(tmpdir(), "mocra-pkg-"));
  const pack = await ok("npm", ["pack", "--pack-destination", tmp, "--loglevel=error"], ROOT);
  tarball = join(tmp, (await readdir(tmp)).find((f) => f.endsWith(".tgz"))!);
  figures.push(`npm pack (prepack build included): ${(pack.ms / 1000).toFixed(1)} s, tarball ${((await stat(tarball)).size / 1024).toFixed(0)} kB`);

  ws = join(tmp, "ws");
  await mkdir(join(ws, "modules"), { recursive: true });
  await writeFile(join(ws, "package.json"), `${JSON.stringify({ name: "ws", version: "1.0.0", private: true }, null, 2)}\n`);
  const install = await ok("npm", ["install", ...NPM_FLAGS, tarball], ws);
  figures.push(`npm install of the tarball into an empty project: ${(install.ms / 1000).toFixed(1)} s`);
  shop = await startShop({ items: ITEMS });

  // the init project's own install runs while the other steps do (it is the slowest step)
  await ok("npx", ["mocra-ts", "init", "app", "--mocra-ts", `file:${tarball}`], ws);
  appInstall = run("npm", ["install", ...NPM_FLAGS], join(ws, "app"));
}, 300_000);

afterAll(async () => {
  console.log(`package-install figures:\n  ${figures.join("\n  ")}`);
  await shop?.close();
  await appInstall?.catch(() => undefined); // never remove the folder under a running npm
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

describe("the npm package in a project of the user's own", () => {
  it("ships compiled JavaScript, types, the Lua scripts and the demo, and no TypeScript sources or tests", async () => {
    const pkg = join(ws, "node_modules/mocra-ts");
    for (const f of ["dist/src/index.js", "dist/src/index.d.ts", "dist/operators/index.js", "dist/src/state/errors.js", "dist/src/queue/redis/claim.lua", "dist/src/api/dashboard.html", "dist/examples/demo-shop/shop.js", "dist/modules/demo_shop.js", "bin/mocra-ts.mjs"]) {
      expect(existsSync(join(pkg, f)), f).toBe(true);
    }
    expect(existsSync(join(pkg, "src")), "TypeScript sources").toBe(false);
    expect(existsSync(join(pkg, "tests")), "tests").toBe(false);
    const manifest = JSON.parse(await readFile(join(pkg, "package.json"), "utf8")) as { private?: boolean; dependencies: Record<string, string> };
    expect(manifest.private).toBeUndefined();
    expect(Object.keys(manifest.dependencies)).not.toContain("vitest");
  });

  it("a module in ./modules importing mocra-ts, without package.json type, crawls a local site with run-standalone; a .js module loads too; a broken file is one line", async () => {
    await writeFile(join(ws, "modules/catalog.ts"), CATALOG_MODULE);
    await writeFile(join(ws, "modules/_text.ts"), `export const cleanTitle = (t: string): string => t.trim();\n`);
    // plain JavaScript with import/export, no "type" either: an ES module too
    await writeFile(join(ws, "modules/plain.js"), `import { defineModule } from "mocra-ts";\nexport default defineModule({ name: "plain", start: () => [], parse() {} });\n`);
    await writeFile(join(ws, "modules/broken.ts"), `import { defineModule } from "mocra-ts";\nexport default defineModule({ name: "broken", parse( });\n`);
    // config and output paths are the current directory's
    await writeFile(join(ws, "config.toml"), `name = "ws"\n[output]\npath = "items"\n[modules.catalog]\nstart_url = "${shop.url}/list/0"\n`);
    const r = await ok(join(ws, "node_modules/.bin/mocra-ts"), ["run-standalone", "--module", "catalog"], ws);
    figures.push(`run-standalone with the user's module (cold start included): ${(r.ms / 1000).toFixed(1)} s`);
    const items = await lines(join(ws, "items/catalog.jsonl"));
    expect(items).toHaveLength(ITEMS);
    expect(new Set(items.map((i) => i.url)).size).toBe(ITEMS);
    const skipped = r.out.split("\n").filter((l) => l.startsWith("warning: skipped"));
    expect(skipped, r.out).toHaveLength(1);
    expect(skipped[0]).toMatch(/^warning: skipped .*modules\/broken\.ts: could not be imported: /);
    expect(existsSync(join(ws, "state/ws")), "state folder in the current directory").toBe(true);
  }, 180_000);

  it("the same module crawls on Redis with start-worker + submit", async () => {
    const name = uniqueName();
    const config = join(ws, "redis.toml");
    await writeFile(
      config,
      `name = "${name}"\n[crawler]\nshutdown_timeout_secs = 5\n[output]\npath = "items-redis"\n[channel_config.redis]\nredis_host = "${REDIS_HOST}"\nredis_port = ${REDIS_PORT}\n[modules.catalog]\nstart_url = "${shop.url}/list/0"\n`,
    );
    const worker = spawn(join(ws, "node_modules/.bin/mocra-ts"), ["start-worker", "--config", config], { cwd: ws, env, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    worker.stdout.on("data", (d: Buffer) => (out += d.toString()));
    worker.stderr.on("data", (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((resolve) => worker.on("exit", (code) => resolve(code)));
    try {
      await waitFor("the worker joined", async () => out.includes("joined") || worker.exitCode !== null, 120_000);
      expect(worker.exitCode, out).toBeNull();
      await ok(join(ws, "node_modules/.bin/mocra-ts"), ["submit", "catalog", "--config", config], ws);
      const file = join(ws, "items-redis/catalog.jsonl");
      await waitFor(`${ITEMS} items from the worker`, async () => existsSync(file) && (await lines(file)).length >= ITEMS, 120_000);
      worker.kill("SIGTERM");
      expect(await exited, out).toBe(0);
      expect(new Set((await lines(file)).map((i) => i.url)).size).toBe(ITEMS);
    } finally {
      if (worker.exitCode === null) worker.kill("SIGKILL");
      await deleteNamespace(name);
    }
  }, 240_000);

  it("under Deno, `deno run -A npm:mocra-ts` loads the same module and crawls", async () => {
    await writeFile(join(ws, "deno.toml"), `name = "ws-deno"\n[output]\npath = "items-deno"\n[modules.catalog]\nstart_url = "${shop.url}/list/0"\n`);
    const r = await ok(DENO, ["run", "-A", "npm:mocra-ts", "run-standalone", "--module", "catalog", "--config", "deno.toml"], ws);
    figures.push(`deno run -A npm:mocra-ts run-standalone: ${(r.ms / 1000).toFixed(1)} s`);
    expect(await lines(join(ws, "items-deno/catalog.jsonl"))).toHaveLength(ITEMS);
  }, 180_000);

  it("a custom chain script imports the operators by package name and runs on plain node (no tsx)", async () => {
    await writeFile(join(ws, "chain.mjs"), CHAIN_SCRIPT);
    const r = await ok(process.execPath, ["chain.mjs", `${shop.url}/list/0`, "chain-out"], ws);
    expect(r.out).toContain("chain done");
    expect(await lines(join(ws, "chain-out/products.jsonl"))).toHaveLength(ITEMS);
  }, 120_000);

  it("`npx mocra-ts init` writes a project: npm install, npm start crawls the demo shop, npm test passes", async () => {
    const app = join(ws, "app");
    const pkg = JSON.parse(await readFile(join(app, "package.json"), "utf8")) as { dependencies: Record<string, string> };
    expect(pkg.dependencies["mocra-ts"]).toBe(`file:${tarball}`);
    for (const f of ["config.toml", "modules/example.ts", "tests/example.test.ts", "README.md"]) expect(existsSync(join(app, f)), f).toBe(true);
    const install = await appInstall!;
    expect(install.code, install.out).toBe(0);
    figures.push(`npm install in the init project (alongside the steps above): ${(install.ms / 1000).toFixed(1)} s`);
    const start = await ok("npm", ["start", "--", "--items", "60"], app);
    figures.push(`first npm start in the init project (60-item demo): ${(start.ms / 1000).toFixed(1)} s`);
    const items = await lines(join(app, "output/example.jsonl"));
    expect(items).toHaveLength(60);
    expect(items[0]).toMatchObject({ title: expect.any(String), price: expect.stringMatching(/^\$\d/) });
    const test = await ok("npm", ["test"], app);
    expect(test.out).toMatch(/# pass 2\b/);
    expect(test.out).toMatch(/# fail 0\b/);
  }, 300_000);
});
