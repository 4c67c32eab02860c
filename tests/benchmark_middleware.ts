// tests/benchmark_middleware.ts: what middleware costs on the hot path. The request flow's real
// operators ([requestMiddleware →] download → parse stand-in → route → retry) over the in-memory queue, with an
// in-process downloader (no network, no HTML), in four variants run alternately in one process:
//   baseline     download/route built without a middleware option (the code path before middleware)
//   none         middleware chains passed, nothing registered (what every worker runs by default)
//   other-module middleware registered for another module only (the per-module lookup)
//   noop         one no-op download middleware (before + after) and one no-op data middleware
// Each message emits one item. Prints µs per message (median of BENCH_MW_REPS runs) and the
// ratio to baseline measured side by side.
//
//   npx tsx tests/benchmark_middleware.ts     (BENCH_MW_N=50000 messages, BENCH_MW_REPS=5)
import { identity, lastValueFrom, type OperatorFunction, tap } from "rxjs";
import { MiddlewareChains } from "../src/middleware/chains.ts";
import { dataMiddleware, downloadMiddleware } from "../src/modules/middleware.ts";
import { fingerprint, request, type Request, response } from "../src/model/index.ts";
import { defineModule } from "../src/modules/define.ts";
import { ModuleRegistry } from "../src/modules/registry.ts";
import { MemoryQueue } from "../src/queue/memory-queue.ts";
import type { ItemSink } from "../src/storage/sink.ts";
import { download, type Fetched, fromQueue, type Job, mapJob, type Parsed, requestMiddleware, retry, route } from "../operators/index.ts";
import { envInt, fmt, table } from "./bench/common.ts";

const N = envInt("BENCH_MW_N", 50_000);
const REPS = Math.max(1, envInt("BENCH_MW_REPS", 5));
const ITEM = { title: "Sturdy Oak Lamp No. 1", price: "$12.34" };
const nullSink: ItemSink = { write: () => Promise.resolve(true), describe: () => "null", close: () => Promise.resolve() };
const downloader = { fetch: (req: Request) => Promise.resolve(response({ module: req.module, content: new Uint8Array(0) })) };

const mod = (name: string, middleware: ConstructorParameters<typeof MiddlewareChains>[0] = []) =>
  defineModule({ name, start: () => [], parse() {}, middleware });
const noopDownload = downloadMiddleware({ name: "noop", beforeRequest: (r) => r, afterResponse: (r) => r });
const noopData = dataMiddleware({ name: "noop", handleItem: (i) => i });

type Variant = "baseline" | "none" | "other-module" | "noop";
const VARIANTS: Variant[] = ["baseline", "none", "other-module", "noop"];

function chainsFor(v: Variant): MiddlewareChains | undefined {
  if (v === "baseline") return undefined;
  const registry = new ModuleRegistry();
  registry.register(mod("bench", v === "noop" ? [noopDownload, noopData] : []));
  registry.register(mod("other", v === "other-module" ? [noopDownload, noopData] : []));
  return new MiddlewareChains([], registry);
}

/** wall and CPU µs per message of one run */
async function runOnce(v: Variant): Promise<{ wall: number; cpu: number }> {
  const queue = new MemoryQueue();
  for (let i = 0; i < N; i += 1000) {
    const batch = Array.from({ length: Math.min(1000, N - i) }, (_, j) => request({ url: `http://shop.test/item/${i + j}`, module: "bench" }));
    await queue.publish("request", batch.map((r) => ({ message: r, dedupKey: fingerprint(r) })));
  }
  const middleware = chainsFor(v);
  const controller = new AbortController();
  let done = 0;
  const count = tap(() => ++done === N && controller.abort());
  const parseStandIn: OperatorFunction<Job<Fetched>, Job<Parsed>> = mapJob("parse", (f: Fetched): Parsed => ({
    ...f,
    module: "bench",
    output: { items: [ITEM], requests: [], tasks: [], dropped: [] },
  }));
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await lastValueFrom(
    fromQueue(queue, "request", { prefetch: 128, signal: controller.signal, blockMs: 200 }).pipe(
      // as flows.ts composes it: the beforeRequest stage only when some download middleware exists
      middleware?.anyDownload ? requestMiddleware(middleware) : identity,
      download(downloader, middleware ? { concurrency: 64, middleware } : { concurrency: 64 }),
      parseStandIn,
      route(middleware ? { sink: nullSink, queue, middleware } : { sink: nullSink, queue }),
      retry({ policy: { maxRetries: 3, baseDelayMs: 1000, maxDelayMs: 60_000 } }),
      count,
    ),
    { defaultValue: undefined },
  );
  const wall = ((performance.now() - t0) * 1000) / N;
  const c = process.cpuUsage(cpu0);
  await queue.close();
  return { wall, cpu: (c.user + c.system) / N };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const results = new Map<Variant, Array<{ wall: number; cpu: number }>>(VARIANTS.map((v) => [v, []]));
await runOnce("baseline"); // warm-up
for (let rep = 0; rep < REPS; rep++) for (const v of VARIANTS) results.get(v)!.push(await runOnce(v));
const wall = (v: Variant) => median(results.get(v)!.map((r) => r.wall));
const cpu = (v: Variant) => median(results.get(v)!.map((r) => r.cpu));
console.log(`middleware on the hot path: ${fmt(N)} messages per run, ${REPS} runs per variant (alternating), medians\n`);
console.log(
  table(
    ["variant", "wall µs/msg", "CPU µs/msg", "CPU vs baseline", "wall runs (µs)"],
    VARIANTS.map((v) => [v, fmt(wall(v), 2), fmt(cpu(v), 2), `${fmt(cpu(v) / cpu("baseline"), 3)}×`, results.get(v)!.map((x) => fmt(x.wall, 1)).join(" ")]),
  ),
);
