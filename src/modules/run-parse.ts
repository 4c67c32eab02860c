import { type JsonValue, type ParserTaskModel, parserTaskModel, type Request, type Response, taskModel } from "../model/index.ts";
import type { LockOptions, LockService, WithLock } from "../sync/lock.ts";
import type { CrawlModule, ModuleSettings, ParseContext, RequestSpec, Seed } from "./define.ts";
import { Page, URL_HEADER } from "./page.ts";
import { isAllowedDomain, seedToRequest } from "./requests.ts";

/** What one parse() call produced. */
export interface ParseOutput<Item = unknown> {
  items: Item[];
  requests: Request[];
  tasks: ParserTaskModel[];
  /** follow() targets that were not crawlable (bad URL, outside allowed domains) */
  skipped: string[];
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
  locks?: LockService,
): Promise<ParseOutput<Item>> {
  const out: ParseOutput<Item> = { items: [], requests: [], tasks: [], skipped: [] };
  const page = pageOf(response);
  const stepIdx = response.context.stepIdx ?? 0;
  const task = { account: response.account, platform: response.platform, priority: response.priority, runId: response.runId };
  const origin = { task, module: module as CrawlModule<unknown>, settings, stepIdx, baseUrl: page.url || undefined, parentId: response.id, timeoutSecs };

  const ctx: ParseContext<Item> = {
    step: module.stepNames[stepIdx] ?? module.stepNames[0],
    settings,
    emit(item: Item) {
      out.items.push(item);
    },
    follow(targets: Seed | Iterable<Seed>, options?: Omit<RequestSpec, "url">): number {
      const list: Iterable<Seed> = typeof targets === "string" || !isIterable(targets) ? [targets as Seed] : targets;
      let n = 0;
      for (const seed of list) {
        const req = seedToRequest(seed, origin, options);
        if (typeof req === "string") out.skipped.push(req);
        else if (!isAllowedDomain(req.url, settings.allowedDomains)) out.skipped.push(`outside allowed domains: ${req.url}`);
        else {
          out.requests.push(req);
          n++;
        }
      }
      return n;
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
    lock: (name, fn, options) => moduleLock(locks, name, fn, options),
  };
  await module.stepFn(stepIdx)(page, ctx);
  return out;
}

/** `ctx.lock`: module locks live under `lock:module:<name>`, apart from the engine's own. */
export function moduleLock<T>(locks: LockService | undefined, name: string, fn: WithLock<T>, options?: LockOptions): Promise<T> {
  if (!locks) return Promise.reject(new Error("ctx.lock: no lock service in this context"));
  return locks.withLock(`module:${name}`, fn, options);
}
