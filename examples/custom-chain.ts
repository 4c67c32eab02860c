import { lastValueFrom } from "rxjs";
import {
  defineModule, download, enqueueRequests, fromQueue, HttpClient, JsonlSink, MemoryQueue,
  MemoryRateLimiter, ModuleRegistry, parse, rateLimit, request, retry, route,
} from "../src/index.ts";

/** Crawls one site with a hand-composed request flow; returns when the queue is drained. */
export async function crawlWithCustomChain(startUrl: string, outputDir: string): Promise<void> {
  const products = defineModule({
    name: "products",
    start: () => [startUrl],
    parse(page, ctx) {
      if (page.url.includes("/item/")) ctx.emit({ title: page.text("h1.title"), price: page.text("span.price") });
      ctx.follow(page.links("a[href*='/item/'], a[href*='/list/']"));
    },
  });
  const registry = new ModuleRegistry().register(products);
  const queue = new MemoryQueue();
  await enqueueRequests(queue, [request({ url: startUrl, module: "products" })]); // dedup by fingerprint

  const sink = new JsonlSink(outputDir);
  const stop = new AbortController();
  const flow = fromQueue(queue, "request", { prefetch: 32, signal: stop.signal }).pipe(
    rateLimit(new MemoryRateLimiter(), { rateOf: () => 500, maxWaitMs: 5_000 }), // 500 req/s per host
    download(new HttpClient({ userAgent: "my-bot/1.0", maxBodyBytes: 5e6, maxRedirects: 5 }), { concurrency: 16 }),
    parse(registry, { timeoutSecs: 30 }),
    route({ sink, queue }), // items → JSONL, links → queue, then ack
    retry({ policy: { maxRetries: 3, baseDelayMs: 500, maxDelayMs: 10_000 } }), // failures: backoff or dead letters
  );
  const drained = setInterval(() => queue.isDrained() && stop.abort(), 50);
  await lastValueFrom(flow, { defaultValue: null });
  clearInterval(drained);
  await sink.close();
}
