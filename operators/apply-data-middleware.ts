import type { OperatorFunction } from "rxjs";
import type { EventBus } from "../src/events/bus.ts";
import { MiddlewareError, type MiddlewareChains } from "../src/middleware/chains.ts";
import { type Job, mapJob, StageError } from "./job.ts";
import type { Parsed } from "./parse.ts";

/**
 * Runs each page's items through its module's data middleware (weight order): kept items go on
 * to the sink, dropped ones become `item_dropped` events with the reason. A middleware that
 * throws sends the page's Response to the dead letters, as a failing parse() does.
 */
export function applyDataMiddleware(chains: MiddlewareChains, options: { events?: EventBus } = {}): OperatorFunction<Job<Parsed>, Job<Parsed>> {
  const { events } = options;
  return mapJob("data_middleware", async (parsed: Parsed): Promise<Parsed> => {
    const chain = chains.of(parsed.module).data;
    if (!chain || parsed.output.items.length === 0) return parsed;
    let result: Awaited<ReturnType<typeof chain.apply>>;
    try {
      result = await chain.apply(parsed.output.items, parsed.url);
    } catch (err) {
      if (!(err instanceof MiddlewareError)) throw err;
      events?.emit({ type: "middleware_error", chain: "data", middleware: err.middleware, module: parsed.module, message: err.message, url: parsed.url });
      throw new StageError({ stage: "data_middleware", reason: err.message, retryable: false, deadLetter: { topic: "response", message: parsed.response }, url: parsed.url });
    }
    for (const d of result.dropped) events?.emit({ type: "item_dropped", module: parsed.module, middleware: d.middleware, reason: d.reason, url: parsed.url });
    return { ...parsed, output: { ...parsed.output, items: result.kept } };
  });
}
