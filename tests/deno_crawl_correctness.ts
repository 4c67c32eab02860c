// The crawl-correctness checks on the runtime that runs this file (`deno task test` runs it on
// Deno; `npx tsx tests/deno_crawl_correctness.ts` on Node): the runtime's TextDecoder has the
// labels, the messy site crawled standalone gives every product once with the right title and
// requests nothing forbidden or twice, and a sitemap index with a gzipped child streams.
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import process from "node:process";
import { gzipSync } from "node:zlib";
import { defaultConfig } from "../src/config/index.ts";
import { decodeBody } from "../src/content/charset.ts";
import { runStandalone } from "../src/engine/standalone.ts";
import { ModuleRegistry } from "../src/modules/registry.ts";
import { sitemap } from "../src/sitemap/sitemap.ts";
import messyShop from "./fixtures/messy/messy_shop.ts";
import { itemProblems, serverProblems, startMessySite } from "./fixtures/messy/site.ts";

const runtime = "Deno" in globalThis ? "deno" : "node";
function check(cond: boolean, what: string): void {
  if (!cond) {
    console.error(`crawl-correctness check FAILED on ${runtime}: ${what}`);
    process.exit(1);
  }
}

for (const label of ["shift_jis", "gbk", "euc-kr", "windows-1252", "iso-8859-1", "latin1"]) {
  let ok = true;
  try {
    new TextDecoder(label);
  } catch {
    ok = false;
  }
  check(ok, `TextDecoder has no ${label}`);
}
check(decodeBody(Uint8Array.from([0x93, 0xfa, 0x96, 0x7b]), "text/html; charset=shift_jis") === "日本", "Shift_JIS");
check(decodeBody(Uint8Array.from([0x80, 0x96, 0xe9]), "text/html; charset=iso-8859-1") === "€–é", "windows-1252 for ISO-8859-1");

const site = await startMessySite();
const config = defaultConfig();
config.output.path = await mkdtemp(join(tmpdir(), "mocra-correctness-"));
config.crawler.retryBaseDelayMs = 50;
const registry = new ModuleRegistry({ messy_shop: { start_url: `${site.url}/` } }).register(messyShop);
const result = await runStandalone({ config, registry, modules: ["messy_shop"] });
const items = (await readFile(join(config.output.path, "messy_shop.jsonl"), "utf8")).split("\n").filter(Boolean).map((l) => JSON.parse(l));
await site.close();
await rm(config.output.path, { recursive: true, force: true });

const problems = [...serverProblems(site), ...itemProblems(items)];
check(problems.length === 0, problems.join("; "));
check(result.deadLetters.request === 1, `expected 1 dead letter (the redirect loop), got ${result.deadLetters.request}`);
// a sitemap index with a plain and a gzipped child (DecompressionStream on this runtime)
{
  const urlset = (locs: string[]) => `<?xml version="1.0"?><urlset>${locs.map((l) => `<url><loc>${l}</loc></url>`).join("")}</urlset>`;
  const server = createServer((req, res) => {
    if (req.url === "/index.xml") res.end(`<sitemapindex><sitemap><loc>/a.xml</loc></sitemap><sitemap><loc>/b.xml.gz</loc></sitemap></sitemapindex>`);
    else if (req.url === "/a.xml") res.end(urlset(["http://x.example/1", "http://x.example/2?a=1&amp;b=2"]));
    else if (req.url === "/b.xml.gz") res.end(gzipSync(urlset(["http://x.example/3"])));
    else res.writeHead(404).end();
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const got: string[] = [];
  for await (const seed of sitemap(`http://127.0.0.1:${(server.address() as AddressInfo).port}/index.xml`)) got.push(String(seed));
  server.close();
  check(got.join(" ") === "http://x.example/1 http://x.example/2?a=1&b=2 http://x.example/3", `sitemap index gave ${got.join(" ")}`);
}

console.log(`crawl-correctness check passed on ${runtime}: ${items.length} products, ${result.stats.pages} pages, every URL fetched once, nothing forbidden; sitemap index with a gzipped child read`);
