// tests/exit-codes.test.ts: what a newcomer's script sees: run-standalone's exit codes
// (finished 0, interrupted 130, bad config 2), --resume with nothing unfinished, and a typo in
// a module's settings caught by `config check` and at start-up.
import { writeFile } from "node:fs/promises";
import { afterEach, describe, expect, it } from "vitest";
import { type ShopServer, startShop } from "../examples/demo-shop/shop.ts";
import { readItems, runStandaloneProcess, standaloneDirs, until } from "./helpers/standalone-process.ts";
import { runCli } from "./helpers/worker-process.ts";

let shop: ShopServer | undefined;

afterEach(async () => {
  await shop?.close();
  shop = undefined;
});

const pages = (s: ShopServer) => [...s.hits].filter(([p]) => p !== "/robots.txt").reduce((n, [, c]) => n + c, 0);

describe("exit codes and --resume", () => {
  it("interrupted 130 (summary says interrupted), resumed and finished 0, --resume again exits 0 without crawling", async () => {
    shop = await startShop({ items: 60, latencyMs: 300 });
    const dirs = await standaloneDirs(`${shop.url}/list/0`);
    const run = runStandaloneProcess(dirs, "node");
    expect(await until(run, () => pages(shop!) >= 10)).toBe(true);
    run.child.kill("SIGINT");
    const stopped = await run.exited;
    expect(stopped.code, run.output()).toBe(130);
    expect(run.output()).toMatch(/interrupted in [\d.]+ s: \d+ pages/);

    const resumed = runStandaloneProcess(dirs, "node", ["--resume"]);
    expect((await resumed.exited).code, resumed.output()).toBe(0);
    expect(resumed.output()).toMatch(/done in [\d.]+ s: \d+ pages/);
    expect(new Set((await readItems(dirs)).map((i) => i.url)).size).toBe(60);

    const served = pages(shop);
    const again = runStandaloneProcess(dirs, "node", ["--resume"]);
    expect((await again.exited).code, again.output()).toBe(0);
    expect(again.output()).toMatch(/--resume: nothing unfinished in .*: the last run \(demo_shop\) finished at \d{4}-\d\d-\d\dT/);
    expect(pages(shop)).toBe(served); // not crawled again
    expect((await readItems(dirs)).length).toBe(60); // output kept
  }, 120_000);

  it("a typo in [modules.<name>]: config check says invalid with did-you-mean (exit 2), and run-standalone refuses to start (exit 2)", async () => {
    shop = await startShop({ items: 5, latencyMs: 0 });
    const dirs = await standaloneDirs(`${shop.url}/list/0`);
    await writeFile(dirs.config, `${await import("node:fs/promises").then((f) => f.readFile(dirs.config, "utf8"))}rate_limt = 5\n`);
    const check = await runCli(["config", "check", "--config", dirs.config]);
    expect(check.code, check.out).toBe(2);
    expect(check.out).toMatch(/:\d+: unknown key "modules\.demo_shop\.rate_limt" \(did you mean "rate_limit"\?\)/);
    const run = runStandaloneProcess(dirs, "node");
    expect((await run.exited).code, run.output()).toBe(2);
    expect(run.output()).toMatch(/did you mean "rate_limit"/);
    expect(run.output()).not.toMatch(/\n\s+at /);
    expect(pages(shop)).toBe(0);
  }, 60_000);
});
