import type { OperatorFunction } from "rxjs";
import { bodyKind, wantsBody } from "../src/content/content-type.ts";
import { headerValue } from "../src/runtime/transport.ts";
import type { EventBus } from "../src/events/bus.ts";
import { fingerprint, request, type Response } from "../src/model/index.ts";
import type { ModuleRegistry } from "../src/modules/registry.ts";
import { DEFAULT_REQUEST_TIMEOUT_SECS } from "../src/modules/requests.ts";
import { type ModuleGuard, ModuleTimeout, moduleTimeoutSecs, underDeadline } from "../src/modules/deadline.ts";
import { type DroppedLink, type ParseOutput, pageOf, runParse } from "../src/modules/run-parse.ts";
import { canonicalizeUrl, type UrlRules } from "../src/url/canonical.ts";
import { hostOf } from "../src/url/link-rules.ts";
import type { Fetched } from "./download.ts";
import { type Job, mapJob, type Message, StageError } from "./job.ts";

/** A parsed page: what its module emitted and asked to crawl next. */
export interface Parsed {
  response: Response;
  fingerprint: string;
  url: string;
  module: string;
  output: ParseOutput<unknown>;
}

export interface ParseOptions {
  /** default timeout (s) for follow-up requests (default 30, as download_config.timeout) */
  timeoutSecs?: number;
  events?: EventBus;
  /** canonical-URL defaults (`[crawler] keep_query_order`, `strip_params`) */
  urlRules?: UrlRules;
  /** default of the `dedupItemsByCanonical` module setting */
  dedupItemsByCanonical?: boolean;
  /** the queue's seen check (Queue.seenBefore): follow-ups it has seen get no Request */
  seenBefore?: (dedupKey: string) => boolean;
  /** deadline of one parse() (s) unless the module sets `parseTimeoutSecs` (default 60: crawler.parse_timeout_secs) */
  parseTimeoutSecs?: number;
  /** follow-ups one page may make unless the module sets `maxFollowsPerPage` (crawler.max_follows_per_page) */
  maxFollowsPerPage?: number;
  /** the watchdog that ends the process when a parse blocks it (src/runtime/watchdog.ts) */
  guard?: ModuleGuard;
  /** the queue's key for recording a delivery that blocked the process (Queue.poisonKey) */
  poisonKey?: (message: Message) => string | undefined;
}

export const DEFAULT_PARSE_TIMEOUT_SECS = 60;

/** One `links_dropped` event per domain and reason of a page. */
function reportDropped(dropped: readonly DroppedLink[], module: string, events: EventBus | undefined): void {
  if (dropped.length === 0 || !events?.wants("links_dropped")) return;
  const groups = new Map<string, { domain: string; reason: string; count: number; example: string }>();
  for (const d of dropped) {
    const domain = hostOf(d.url) || "(no host)";
    const reason = d.reason;
    const key = `${domain}\n${reason}`;
    const g = groups.get(key);
    if (g) g.count += d.count ?? 1;
    else groups.set(key, { domain, reason, count: d.count ?? 1, example: d.detail ?? d.url });
  }
  for (const g of groups.values()) events.emit({ type: "links_dropped", module, ...g });
}

/**
 * Response → items and follow-ups, by the module and step that made the request. A parse() that
 * throws sends that Response to the dead letters (topic `response`) and the crawl goes on.
 */
export function parse(registry: ModuleRegistry, options: ParseOptions = {}): OperatorFunction<Job<Fetched>, Job<Parsed>> {
  const timeoutSecs = options.timeoutSecs ?? DEFAULT_REQUEST_TIMEOUT_SECS;
  const defaultDeadline = options.parseTimeoutSecs ?? DEFAULT_PARSE_TIMEOUT_SECS;
  return mapJob("parse", async (fetched: Fetched, message: Message): Promise<Parsed> => {
    const { response } = fetched;
    if (fetched.redirect) {
      // a 3xx turned into a request for its Location: crawled like a follow-up, no parse()
      return { ...fetched, module: response.module, output: { items: [], requests: [fetched.redirect], tasks: [], dropped: [] } };
    }
    try {
      const module = registry.get(response.module);
      const settings = registry.settings(response.module);
      const contentType = headerValue(response.headers, "content-type");
      const kind = bodyKind(contentType, response.content);
      const wanted = Array.isArray(settings.contentTypes) ? settings.contentTypes.map(String) : undefined;
      if (!wantsBody(kind, contentType, wanted)) {
        options.events?.emit({ type: "content_skipped", url: fetched.url, module: response.module, contentType: contentType ?? "" });
        return { ...fetched, module: response.module, output: { items: [], requests: [], tasks: [], dropped: [] } };
      }
      const started = performance.now();
      const deadline = moduleTimeoutSecs(settings, defaultDeadline);
      // a queue with nowhere to record the delivery ("") still has the process ended: its
      // re-delivery budget then dead-letters the message
      const record = options.guard ? (options.poisonKey?.(message) ?? "") : undefined;
      const output = await underDeadline(
        () => runParse(module, response, settings, timeoutSecs, { urlRules: options.urlRules, locks: registry.locks, seenBefore: options.seenBefore, maxFollows: options.maxFollowsPerPage }),
        deadline,
        "parse",
        options.guard && record !== undefined ? { guard: options.guard, record, label: `parse of ${fetched.url} (module ${response.module})` } : undefined,
      );
      if (options.events?.wants("page_parsed")) options.events.emit({ type: "page_parsed", module: response.module, ms: performance.now() - started });
      reportDropped(output.dropped, response.module, options.events);
      let fp = fetched.fingerprint;
      const byCanonical = typeof settings.dedupItemsByCanonical === "boolean" ? settings.dedupItemsByCanonical : options.dedupItemsByCanonical;
      if (byCanonical && output.items.length > 0 && kind === "html") {
        const canonical = pageOf(response).canonicalUrl;
        // items keyed by the fingerprint a request for the canonical URL would have
        if (canonical) fp = fingerprint(request({ url: canonicalizeUrl(canonical, options.urlRules), module: response.module, account: response.account, platform: response.platform }));
      }
      return { ...fetched, fingerprint: fp, module: response.module, output };
    } catch (err) {
      if (err instanceof ModuleTimeout) {
        // may be the page or a moment's stall: retried as a failed delivery, dead-lettered once the budget is spent
        options.events?.emit({ type: "error", stage: "parse", message: `${err.message} in module ${response.module} (${fetched.url})` });
        throw new StageError({ stage: "parse", reason: err.message, retryable: true, url: fetched.url });
      }
      const reason = `parse failed in module ${response.module}: ${err instanceof Error ? err.message : String(err)}`;
      options.events?.emit({ type: "error", stage: "parse", message: `${reason} (${fetched.url})` });
      throw new StageError({ stage: "parse", reason, retryable: false, deadLetter: { topic: "response", message: response }, url: fetched.url });
    }
  });
}
