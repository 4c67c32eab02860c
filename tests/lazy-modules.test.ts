// A standalone crawl loads only what its config uses: no Redis client, PostgreSQL driver, API
// server, NATS client or browser (ioredis alone is ~17 MB of RSS, and it used to slow every string scan).
import { spawn } from "node:child_process";
import { readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { type ShopServer, startShop } from "../examples/demo-shop/shop.ts";
import { readItems, type StandaloneDirs, standaloneDirs } from "./helpers/standalone-process.ts";
import { ROOT } from "./helpers/worker-process.ts";

let shop: ShopServer | undefined;
let dirs: StandaloneDirs | undefined;
afterEach(async () => {
  await shop?.close();
  if (dirs) await rm(dirs.dir, { recursive: true, force: true });
  shop = dirs = undefined;
});

/** Runs the CLI with tests/helpers/record-modules.mjs; returns the exit code and the resolved module URLs. */
async function cliModules(args: string[], out: string): Promise<{ code: number | null; output: string; urls: string[] }> {
  const child = spawn(process.execPath, ["--import", "./tests/helpers/record-modules.mjs", "--import", "tsx", "src/cli.ts", ...args], {
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
});
