// A standalone crawl loads only what its config uses: no Redis client, PostgreSQL driver, API
// server, NATS client or browser (ioredis alone is ~17 MB of RSS, and it used to slow every string scan).
import { execFileSync, spawn } from "node:child_process";
import { appendFile, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { type ShopServer, startShop } from "../examples/demo-shop/shop.ts";
import { readItems, type StandaloneDirs, standaloneDirs } from "./helpers/standalone-process.ts";
import { ROOT } from "./helpers/worker-process.ts";
import { deleteNamespace, REDIS_PORT, requireRedis, uniqueName } from "./helpers/redis.ts";

let shop: ShopServer | undefined;
let dirs: StandaloneDirs | undefined;
afterEach(async () => {
  await shop?.close();
  if (dirs) await rm(dirs.dir, { recursive: true, force: true });
  shop = dirs = undefined;
});

/** Runs the CLI with tests/helpers/record-modules.mjs; returns the exit code and the resolved module URLs. */
async function cliModules(args: string[], out: string, entry: "source" | "compiled" = "source"): Promise<{ code: number | null; output: string; urls: string[] }> {
  const cli = entry === "compiled" ? ["dist/src/cli.js"] : ["--import", "tsx", "src/cli.ts"];
  const child = spawn(process.execPath, ["--import", "./tests/helpers/record-modules.mjs", ...cli, ...args], {
    cwd: ROOT,
    env: { ...process.env, MOCRA_MODULES_OUT: out },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout!.on("data", (d: Buffer) => (output += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (output += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.on("exit", resolve));
  const urls = (await readFile(out, "utf8")).split("\n").filter(Boolean);
  return { code, output, urls };
}

const packageOf = (url: string) => /\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url)?.[1];
const SERVICE_PACKAGES = ["ioredis", "@nats-io/transport-node", "@nats-io/jetstream", "postgres", "hono", "@hono/node-server", "hono-rate-limiter", "playwright", "playwright-core"];

describe("module loading", () => {
  it("a standalone crawl with a JSONL sink and no [api] loads no Redis, PostgreSQL, API or browser package", async () => {
    shop = await startShop({ items: 20 });
    dirs = await standaloneDirs(`${shop.url}/list/0`);
    const { code, output, urls } = await cliModules(["run-standalone", "--config", dirs.config, "--module", "demo_shop"], join(dirs.dir, "modules.txt"));
    expect(code, output).toBe(0);
    expect((await readItems(dirs)).length).toBe(20);
    const packages = new Set(urls.map(packageOf).filter((p): p is string => p !== undefined));
    // the recorder saw the crawl's own packages, so an absent one is absent
    expect(packages).toContain("htmlparser2");
    expect(SERVICE_PACKAGES.filter((p) => packages.has(p))).toEqual([]);
  }, 120_000);

  it("a Redis-only command (submit) does not load the NATS client", async () => {
    if (!(await requireRedis("lazy NATS"))) return;
    dirs = await standaloneDirs("http://127.0.0.1:9/list/0");
    const name = uniqueName();
    await writeFile(
      dirs.config,
      `name = "${name}"\n[channel_config.redis]\nredis_host = "127.0.0.1"\nredis_port = ${REDIS_PORT}\n[modules.demo_shop]\nstart_url = "http://127.0.0.1:9/list/0"\n`,
    );
    try {
      const { code, output, urls } = await cliModules(["submit", "demo_shop", "--config", dirs.config], join(dirs.dir, "modules.txt"));
      expect(code, output).toBe(0);
      const packages = new Set(urls.map(packageOf).filter((p): p is string => p !== undefined));
      expect(packages).toContain("ioredis");
      expect([...packages].filter((p) => p.startsWith("@nats-io/"))).toEqual([]);
    } finally {
      await deleteNamespace(name);
    }
  }, 120_000);

  it("the compiled CLI (npm start's dist/) crawls without tsx; a TypeScript module it has no compiled copy of loads through tsx", async () => {
    execFileSync(process.execPath, ["scripts/build.mjs", "--if-stale"], { cwd: ROOT, stdio: "ignore" });
    shop = await startShop({ items: 20 });
    dirs = await standaloneDirs(`${shop.url}/list/0`);
    const plain = await cliModules(["run-standalone", "--config", dirs.config, "--module", "demo_shop"], join(dirs.dir, "modules.txt"), "compiled");
    expect(plain.code, plain.output).toBe(0);
    expect((await readItems(dirs)).length).toBe(20);
    const packages = new Set(plain.urls.map(packageOf).filter((p): p is string => p !== undefined));
    expect(packages).toContain("htmlparser2");
    expect(packages.has("tsx")).toBe(false);
    // the clone's modules/demo_shop.ts ran as the build's dist/modules/demo_shop.js
    expect(plain.urls.some((u) => u.endsWith("/dist/modules/demo_shop.js"))).toBe(true);
    expect(plain.urls.some((u) => u.includes("/src/") && u.endsWith(".ts"))).toBe(false);

    // a module of the user's own in TypeScript, outside the build (crawler.module_paths)
    const extra = join(dirs.dir, "probe_module.ts");
    await writeFile(extra, (await readFile(join(ROOT, "modules/demo_shop.ts"), "utf8")).replace('"../src/modules/define.ts"', JSON.stringify(join(ROOT, "src/modules/define.ts"))).replace('name: "demo_shop"', 'name: "probe_module"'));
    await appendFile(dirs.config, `[modules.probe_module]\nstart_url = ${JSON.stringify(`${shop.url}/list/0`)}\n`);
    const toml = await readFile(dirs.config, "utf8");
    await writeFile(dirs.config, toml.replace("[crawler]\n", `[crawler]\nmodule_paths = [${JSON.stringify(extra)}]\n`));
    const typed = await cliModules(["run-standalone", "--config", dirs.config, "--module", "probe_module"], join(dirs.dir, "modules2.txt"), "compiled");
    expect(typed.code, typed.output).toBe(0);
    expect(typed.output).toMatch(/20 items/);
    expect(typed.urls.some((u) => packageOf(u) === "tsx")).toBe(true);
  }, 120_000);
});
