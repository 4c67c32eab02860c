import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { startShop } from "../src/demo/shop.ts";
import { crawlWithCustomChain } from "../examples/custom-chain.ts";

describe("the README's custom chain", () => {
  it("is the example file, verbatim", async () => {
    const readme = await readFile(new URL("../README.md", import.meta.url), "utf8");
    const example = await readFile(new URL("../examples/custom-chain.ts", import.meta.url), "utf8");
    expect(readme).toContain(example.trim());
  });

  it("crawls the demo shop completely", async () => {
    const shop = await startShop({ items: 120 });
    const dir = await mkdtemp(join(tmpdir(), "mocra-chain-"));
    try {
      await crawlWithCustomChain(`${shop.url}/list/0`, dir);
      const lines = (await readFile(join(dir, "products.jsonl"), "utf8")).split("\n").filter(Boolean);
      expect(lines.length).toBe(120);
      for (const [, n] of shop.hits) expect(n).toBe(1);
    } finally {
      await shop.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
