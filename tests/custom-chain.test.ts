import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { lastValueFrom, merge } from "rxjs";
import { describe, expect, it } from "vitest";
import { startShop } from "../examples/demo-shop/shop.ts";
import { crawlWithCustomChain } from "../examples/custom-chain.ts";
import {
  ack, dedup, defineModule, download, fromQueue, generate, HttpClient, JsonlSink, MemoryQueue, MemoryRateLimiter,
  ModuleRegistry, parse, rateLimit, retry, route, taskModel,
} from "../src/index.ts";

describe("docs/custom-chains.md's custom chain", () => {
  it("is the example file, verbatim", async () => {
    const readme = await readFile(new URL("../docs/custom-chains.md", import.meta.url), "utf8");
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

describe("docs/custom-chains.md's operator table", () => {
  it("documents the calls this test makes, as written", async () => {
    const readme = await readFile(new URL("../docs/custom-chains.md", import.meta.url), "utf8");
    for (const call of [
      "`fromQueue(queue, topic, { prefetch, signal })`",
      "`generate({ registry, queue, backlog })`",
      "`dedup(seen)`",
      "`rateLimit(limiter, { rateOf, keyOf, maxWaitMs })`",
      "`download(client, { concurrency })`",
      "`parse(registry)`",
      "`route({ sink, queue })`",
      "`retry({ policy })`",
    ]) expect(readme, call).toContain(call);
  });

  it("those calls, with nothing more, crawl the demo shop from a task", async () => {
    const shop = await startShop({ items: 60 });
    const dir = await mkdtemp(join(tmpdir(), "mocra-table-"));
    try {
      const registry = new ModuleRegistry().register(
        defineModule({
          name: "shop",
          start: () => [`${shop.url}/list/0`],
          parse(page, ctx) {
            if (page.url.includes("/item/")) ctx.emit({ title: page.text("h1.title") });
            ctx.follow(page.links("a[href*='/item/'], a[href*='/list/']"));
          },
        }),
      );
      const queue = new MemoryQueue();
      await queue.publish("task", [{ message: taskModel({ module: ["shop"] }) }]);
      const sink = new JsonlSink(dir);
      const seen = new Set<string>();
      const stop = new AbortController();
      const signal = stop.signal;
      const [client, limiter, backlog, policy] = [new HttpClient({ userAgent: "t", maxBodyBytes: 1e6, maxRedirects: 3 }), new MemoryRateLimiter(), 100, { maxRetries: 2, baseDelayMs: 50, maxDelayMs: 200 }];
      const [rateOf, keyOf, maxWaitMs] = [() => 1000, () => "shop", 5_000];
      const tasks = fromQueue(queue, "task", { prefetch: 4, signal }).pipe(generate({ registry, queue, backlog }), ack(), retry({ policy }));
      const requests = fromQueue(queue, "request", { prefetch: 16, signal }).pipe(
        dedup({ add: (k: string) => !seen.has(k) && !!seen.add(k) }),
        rateLimit(limiter, { rateOf, keyOf, maxWaitMs }),
        download(client, { concurrency: 8 }),
        parse(registry),
        route({ sink, queue }),
        retry({ policy }),
      );
      const drained = setInterval(() => queue.isDrained() && stop.abort(), 50);
      await lastValueFrom(merge(tasks, requests), { defaultValue: null });
      clearInterval(drained);
      await sink.close();
      const lines = (await readFile(join(dir, "shop.jsonl"), "utf8")).split("\n").filter(Boolean);
      expect(lines).toHaveLength(60);
    } finally {
      await shop.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
