import type { OperatorFunction } from "rxjs";
import type { EventBus } from "../src/events/bus.ts";
import type { Response } from "../src/model/index.ts";
import type { ModuleRegistry } from "../src/modules/registry.ts";
import { type ParseOutput, runParse } from "../src/modules/run-parse.ts";
import type { Fetched } from "./download.ts";
import { type Job, mapJob, StageError } from "./job.ts";

/** A parsed page: what its module emitted and asked to crawl next. */
export interface Parsed {
  response: Response;
  fingerprint: string;
  url: string;
  module: string;
  output: ParseOutput<unknown>;
}

export interface ParseOptions {
  /** default timeout (s) for follow-up requests */
  timeoutSecs: number;
  events?: EventBus;
}

/**
 * Response → items and follow-ups, by the module and step that made the request. A parse() that
 * throws sends that Response to the dead letters (topic `response`) and the crawl goes on.
 */
export function parse(registry: ModuleRegistry, options: ParseOptions): OperatorFunction<Job<Fetched>, Job<Parsed>> {
  return mapJob("parse", async (fetched: Fetched): Promise<Parsed> => {
    const { response } = fetched;
    try {
      const module = registry.get(response.module);
      const started = performance.now();
      const output = await runParse(module, response, registry.settings(response.module), options.timeoutSecs);
      if (options.events?.observed) options.events.emit({ type: "page_parsed", module: response.module, ms: performance.now() - started });
      for (const s of output.skipped) options.events?.emit({ type: "warning", message: `${response.module}: ${s}` });
      return { ...fetched, module: response.module, output };
    } catch (err) {
      const reason = `parse failed in module ${response.module}: ${err instanceof Error ? err.message : String(err)}`;
      options.events?.emit({ type: "error", stage: "parse", message: `${reason} (${fetched.url})` });
      throw new StageError({ stage: "parse", reason, retryable: false, deadLetter: { topic: "response", message: response }, url: fetched.url });
    }
  });
}
