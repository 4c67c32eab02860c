// Rendering under Deno (run by `deno task test`): the JS shop crawled with render = "browser"
// stores every product, as under Node (tests/browser.test.ts). Also runs under Node (tsx).
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { defaultConfig } from "../src/config/index.ts";
import { runStandalone } from "../src/engine/standalone.ts";
import { ModuleRegistry } from "../src/modules/registry.ts";
import jsShop from "./fixtures/js-shop/js_shop.ts";
import { pagesOf, startJsShop } from "./fixtures/js-shop/site.ts";

const runtime = "Deno" in globalThis ? "deno" : "node";
const shop = await startJsShop(6);
const config = defaultConfig();
config.output.path = await mkdtemp(join(tmpdir(), "mocra-deno-browser-"));
const registry = new ModuleRegistry({ js_shop: { start_url: `${shop.url}/`, render: "browser" } }).register(jsShop as never);
const started = performance.now();
const result = await runStandalone({ config, registry, modules: ["js_shop"] });
const lines = (await readFile(join(config.output.path, "js_shop.jsonl"), "utf8").catch(() => "")).split("\n").filter(Boolean);
const renders = shop.renders();
await shop.close();
await rm(config.output.path, { recursive: true, force: true });
const ok = lines.length === 6 && renders === pagesOf(shop) && result.deadLetters.request === 0;
console.log(`${runtime} browser: ${lines.length}/6 products, ${renders} renders, ${result.deadLetters.request} dead letters, ${((performance.now() - started) / 1000).toFixed(1)} s`);
if (!ok) {
  console.error(`${runtime} browser test FAILED`);
  process.exit(1);
}
process.exit(0);
