// Deno smoke test of the real flows (run by `deno task test` and .ci/run): the demo crawl,
// end to end, with the same assertions as under Node.
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { defaultConfig } from "../src/config/index.ts";
import { startShop } from "../src/demo/shop.ts";
import { runStandalone } from "../src/engine/standalone.ts";
import { ModuleRegistry } from "../src/modules/registry.ts";
import demoShop from "../modules/demo_shop.ts";

function check(cond: boolean, what: string): void {
  if (!cond) {
    console.error(`deno smoke test FAILED: ${what}`);
    process.exit(1);
  }
}

const runtime = "Deno" in globalThis ? "deno" : "node";
const items = 200;
const shop = await startShop({ items });
const config = defaultConfig();
config.output.path = await mkdtemp(join(tmpdir(), "mocra-smoke-"));
const registry = new ModuleRegistry({ demo_shop: { start_url: `${shop.url}/list/0` } }).register(demoShop);
const result = await runStandalone({ config, registry, modules: ["demo_shop"] });
const lines = (await readFile(join(config.output.path, "demo_shop.jsonl"), "utf8")).split("\n").filter(Boolean);
await shop.close();
await rm(config.output.path, { recursive: true, force: true });

check(lines.length === items, `expected ${items} items, got ${lines.length}`);
check(new Set(lines.map((l) => JSON.parse(l).url)).size === items, "duplicate items");
check([...shop.hits.values()].every((n) => n === 1), "a page was fetched more than once");
check(result.stats.pages === items + Math.ceil(items / 50), `expected ${items + 4} pages, got ${result.stats.pages}`);
console.log(`deno smoke test passed on ${runtime}: demo crawl ${result.stats.pages} pages, ${lines.length} items in ${result.stats.elapsedSecs.toFixed(1)} s`);
