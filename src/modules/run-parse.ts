import { type JsonValue, type ParserTaskModel, parserTaskModel, type Request, type Response, taskModel } from "../model/index.ts";
import type { LockOptions, LockService, WithLock } from "../sync/lock.ts";
import type { UrlRules } from "../url/canonical.ts";
import { type DropReason, isAllowedDomain, linkFilter } from "../url/link-rules.ts";
import type { CrawlModule, EnqueueLinksOptions, ModuleSettings, ParseContext, RequestSpec, Seed } from "./define.ts";
import { Page, URL_HEADER } from "./page.ts";
import { buildRequest, knownLink, linkScope, plainGetDefaults, rememberLink, resolveSeed, seedFingerprint, urlRulesFor } from "./requests.ts";

/** A link a module asked for that is not crawled, and why. */
export interface DroppedLink {
  url: string;
  reason: DropReason;
  /** the precise error for "not crawlable" (bad scheme, malformed URL, impossible host) */
  detail?: string;
}

/** What one parse() call produced. */
export interface ParseOutput<Item = unknown> {
  items: Item[];
  requests: Request[];
  tasks: ParserTaskModel[];
  /** links not crawled (bad URL, outside allowed domains, link rules): counted, not warned one by one */
  dropped: DroppedLink[];
  /** follow-ups left out because the queue had seen their fingerprint (`seenBefore`): duplicates */
  seenBefore?: number;
}

/** Options of one parse() run that come from the engine's configuration. */
export interface RunParseOptions {
  /** canonical-URL defaults (`[crawler] keep_query_order`, `strip_params`) */
  urlRules?: UrlRules;
  /** the locks behind `ctx.lock` */
  locks?: LockService;
  /**
   * true for a dedup key certainly enqueued before (Queue.seenBefore): such a follow-up would be a
   * duplicate at enqueue, so no Request is built for it
   */
  seenBefore?: (dedupKey: string) => boolean;
}

export function pageOf(response: Response): Page {
  let url = "";
  for (const [k, v] of response.headers) if (k === URL_HEADER) url = v;
  return new Page(response, url, response.metadata.traitMeta);
}

function isIterable(value: unknown): value is Iterable<Seed> {
  return typeof value === "object" && value !== null && Symbol.iterator in value;
}

/** Runs the step of `module` that made this Response's Request; collects its outputs. */
export async function runParse<Item>(
  module: CrawlModule<Item>,
  response: Response,
  settings: Readonly<ModuleSettings>,
  timeoutSecs: number,
  options: RunParseOptions = {},
): Promise<ParseOutput<Item>> {
  const out: ParseOutput<Item> = { items: [], requests: [], tasks: [], dropped: [] };
  const page = pageOf(response);
  const stepIdx = response.context.stepIdx ?? 0;
  const task = { account: response.account, platform: response.platform, priority: response.priority, runId: response.runId };
  const origin = { task, module: module as CrawlModule<unknown>, settings, stepIdx, baseUrl: page.url || undefined, parentId: response.id, timeoutSecs, urlRules: urlRulesFor(settings, options.urlRules) };

  const { seenBefore } = options;
  const rules = origin.urlRules;
  const scope = linkScope(origin);
  const follow = (targets: Seed | Iterable<Seed>, defaults: Omit<RequestSpec, "url"> | undefined, filter?: (url: string) => DropReason | undefined): number => {
    const list: Iterable<Seed> = typeof targets === "string" || !isIterable(targets) ? [targets as Seed] : targets;
    // a link already resolved as a plain GET in this scope skips resolution and the md5; the
    // domain and link-rule checks still run on its URL (they depend on this page and call)
    const memo = seenBefore !== undefined && plainGetDefaults(defaults);
    let n = 0;
    for (const seed of list) {
      if (memo && typeof seed === "string") {
        const known = knownLink(seed, rules, scope);
        if (known !== undefined) {
          const why = !isAllowedDomain(known.url, settings.allowedDomains) ? "outside allowed domains" : filter?.(known.url);
          if (why) {
            out.dropped.push({ url: known.url, reason: why });
            continue;
          }
          if (seenBefore(known.fp)) {
            out.seenBefore = (out.seenBefore ?? 0) + 1;
            n++;
            continue;
          }
          // not enqueued (e.g. beyond max_depth before): the Request is built the usual way
        }
      }
      const resolved = resolveSeed(seed, origin, defaults);
      if (typeof resolved === "string") {
        out.dropped.push({ url: typeof seed === "string" ? seed : seed.url, reason: "not crawlable", detail: resolved });
        continue;
      }
      const why = !isAllowedDomain(resolved.url, settings.allowedDomains) ? "outside allowed domains" : filter?.(resolved.url);
      if (why) {
        out.dropped.push({ url: resolved.url, reason: why });
        continue;
      }
      const fp = seenBefore ? seedFingerprint(resolved, origin) : undefined;
      if (memo && typeof seed === "string" && fp !== undefined) rememberLink(seed, rules, scope, resolved.url, fp);
      if (fp !== undefined && seenBefore?.(fp)) {
        out.seenBefore = (out.seenBefore ?? 0) + 1;
      } else {
        out.requests.push(buildRequest(resolved, origin, fp));
      }
      n++;
    }
    return n;
  };

  const ctx: ParseContext<Item> = {
    step: module.stepNames[stepIdx] ?? module.stepNames[0],
    settings,
    emit(item: Item) {
      out.items.push(item);
    },
    follow(targets: Seed | Iterable<Seed>, options?: Omit<RequestSpec, "url">): number {
      return follow(targets, options);
    },
    enqueueLinks(options: EnqueueLinksOptions = {}): number {
      const defaults = (settings.linkRules ?? {}) as EnqueueLinksOptions;
      const o = { ...defaults, ...options };
      const { selector, scope, nofollow, strategy, include, exclude, ...requestDefaults } = o;
      const honourNofollow = nofollow !== false;
      if (honourNofollow && page.metaRobots.includes("nofollow")) return 0;
      const linkSelector = selector ?? "a[href]";
      const links = page.links(scope ? `:is(${scope}) :is(${linkSelector})` : linkSelector, { skipNofollow: honourNofollow });
      return follow(links, requestDefaults, linkFilter(page.url, { strategy, include, exclude }));
    },
    startModule(name: string, metadata: JsonValue = null) {
      out.tasks.push(
        parserTaskModel({
          accountTask: taskModel({ ...task, module: [name] }),
          metadata,
          prefixRequest: response.id,
        }),
      );
    },
    lock: (name, fn, lockOptions) => moduleLock(options.locks, name, fn, lockOptions),
  };
  await module.stepFn(stepIdx)(page, ctx);
  return out;
}

/** `ctx.lock`: module locks live under `lock:module:<name>`, apart from the engine's own. */
export function moduleLock<T>(locks: LockService | undefined, name: string, fn: WithLock<T>, options?: LockOptions): Promise<T> {
  if (!locks) return Promise.reject(new Error("ctx.lock: no lock service in this context"));
  return locks.withLock(`module:${name}`, fn, options);
}
