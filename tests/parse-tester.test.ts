// Testing a module without a crawl: parseWith / parseSource on a saved fixture and on a URL,
// the `parse` CLI command on a fixture, and the `new` command's skeleton.
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import demoShop from "../modules/demo_shop.ts";
import { parseSource, parseWith } from "../src/modules/parse-tester.ts";
import { ModuleRegistry } from "../src/modules/registry.ts";
import { html, startServer, type TestServer } from "./helpers/http-server.ts";
import { ROOT, runCli } from "./helpers/worker-process.ts";

const ITEM = join(ROOT, "tests/fixtures/parse/demo-item.html");
const LIST = join(ROOT, "tests/fixtures/parse/demo-list.html");

let server: TestServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

describe("parseWith / parseSource", () => {
  it("runs one step on a saved page: its items and follow-ups, links resolved against the URL given", async () => {
    const out = await parseWith(demoShop, await readFile(ITEM, "utf8"), { url: "http://shop.test/item/7", step: "item" });
    expect(out.items).toEqual([expect.objectContaining({ url: "http://shop.test/item/7", title: "Deluxe Glass Blanket No. 7" })]);
    expect(out.requests.map((r) => r.url)).toEqual(expect.arrayContaining(["http://shop.test/item/8", "http://shop.test/list/0"]));
    expect(out.requests.find((r) => r.url.endsWith("/item/8"))?.step).toBe("item");
    expect(out.requests.find((r) => r.url.endsWith("/list/0"))?.step).toBe("list");
  });

  it("reads a file, or downloads a URL", async () => {
    const fromFile = await parseSource(demoShop, LIST, { url: "http://shop.test/list/0" });
    expect(fromFile.items).toEqual([]);
    expect(fromFile.requests.filter((r) => r.step === "item").length).toBeGreaterThan(5);
    const body = await readFile(ITEM, "utf8");
    server = await startServer((_req, res) => html(res, body));
    const fromUrl = await parseSource(demoShop, `${server.url}/item/7`, { step: "item" });
    expect(fromUrl.items[0]).toMatchObject({ url: `${server.url}/item/7`, title: "Deluxe Glass Blanket No. 7" });
    expect(fromUrl.requests.map((r) => r.url)).toContain(`${server.url}/item/8`);
  });

  it("settings reach the module as the registry merges them", async () => {
    const registry = new ModuleRegistry({ demo_shop: { allowed_domains: ["elsewhere.test"] } }).register(demoShop);
    const out = await parseWith(demoShop, await readFile(ITEM, "utf8"), { url: "http://shop.test/item/7", step: "item", settings: registry.settings("demo_shop") });
    expect(out.requests).toEqual([]);
    expect(out.dropped[0]).toMatch(/^outside allowed domains: http:\/\/shop.test\//);
  });
});

describe("CLI", () => {
  const dirs: string[] = [];
  afterEach(async () => {
    for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
  });

  it("`parse --module M FILE` prints the items and the links; `new` writes a skeleton that `parse` can run", async () => {
    const r = await runCli(["parse", "--module", "demo_shop", "--step", "item", "--url", "http://shop.test/item/7", ITEM]);
    expect(r.code, r.out).toBe(0);
    expect(r.out).toContain("items (1):");
    expect(r.out).toContain('"title":"Deluxe Glass Blanket No. 7"');
    expect(r.out).toMatch(/follow-ups \(\d+\):/);
    expect(r.out).toContain("GET http://shop.test/item/8  [step item]");

    const dir = await mkdtemp(join(tmpdir(), "mocra-new-"));
    dirs.push(dir);
    const made = await runCli(["new", "my_site", "--dir", dir, "--url", "http://shop.test/"]);
    expect(made.code, made.out).toBe(0);
    const again = await runCli(["new", "my_site", "--dir", dir]);
    expect(again.code).toBe(2);
    expect(again.out).toContain("exists; not overwriting it");
    const { default: skeleton } = (await import(join(dir, "my_site.ts"))) as { default: typeof demoShop };
    expect(skeleton.name).toBe("my_site");
    const out = await parseWith(skeleton, "<title>Hi</title><a href='/a'>a</a><a href='http://other.test/'>o</a>", { url: "http://shop.test/" });
    expect(out.items).toEqual([{ url: "http://shop.test/", title: "Hi" }]);
    expect(out.requests.map((q) => q.url)).toEqual(["http://shop.test/a"]);
  }, 60_000);
});
