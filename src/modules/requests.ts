import { canonicalHttpUrl } from "../html/document.ts";
import {
  cookie,
  executionMark,
  headersFromRecord,
  metaData,
  NIL_UUID,
  type Request,
  request,
  type TaskModel,
  uuidv7,
} from "../model/index.ts";
import type { CrawlModule, ModuleSettings, RequestSpec, Seed } from "./define.ts";

const encoder = new TextEncoder();

/** A request's timeout when neither the request nor the caller sets one: download_config.timeout's default. */
export const DEFAULT_REQUEST_TIMEOUT_SECS = 30;

/** What a new Request inherits: its task, module, step and parent. */
export interface RequestOrigin {
  task: Pick<TaskModel, "account" | "platform" | "priority" | "runId">;
  module: CrawlModule<unknown>;
  settings: Readonly<ModuleSettings>;
  /** default step index */
  stepIdx: number;
  /** URL that relative seeds resolve against */
  baseUrl?: string;
  /** id of the Response this request was found in */
  parentId?: string;
  timeoutSecs: number;
}

/** Turns a module's seed into a mocra Request, or returns an error text for a bad URL. */
export function seedToRequest(seed: Seed, origin: RequestOrigin, defaults?: Omit<RequestSpec, "url">): Request | string {
  const spec: RequestSpec = typeof seed === "string" ? { ...defaults, url: seed } : { ...defaults, ...seed };
  // most follow() targets come from page.links(), already absolute and canonical: skip the parser
  let url = canonicalHttpUrl(spec.url);
  if (url === null) {
    try {
      url = origin.baseUrl ? new URL(spec.url, origin.baseUrl).href : new URL(spec.url).href;
    } catch {
      return `not a URL: ${JSON.stringify(spec.url)}`;
    }
    if (!url.startsWith("http://") && !url.startsWith("https://")) return `not an http(s) URL: ${url}`;
    const hashIdx = url.indexOf("#");
    if (hashIdx >= 0) url = url.slice(0, hashIdx);
  }

  const headers = { ...origin.settings.headers, ...spec.headers };
  let body: Uint8Array | null = null;
  if (typeof spec.body === "string") body = encoder.encode(spec.body);
  else if (spec.body) body = spec.body;

  return request({
    id: uuidv7(),
    url,
    method: (spec.method ?? (spec.json !== undefined || spec.form || body ? "POST" : "GET")).toUpperCase(),
    account: origin.task.account,
    platform: origin.task.platform,
    module: origin.module.name,
    headers: headersFromRecord(headers),
    cookies: spec.cookies ? Object.entries(spec.cookies).map(([name, value]) => cookie({ name, value })) : [],
    timeout: spec.timeoutSecs ?? origin.timeoutSecs,
    meta: metaData({ traitMeta: spec.data ?? null }),
    json: spec.json,
    form: spec.form,
    body,
    context: executionMark({
      moduleId: origin.module.name,
      stepIdx: spec.step !== undefined ? origin.module.stepIndex(spec.step) : origin.stepIdx,
    }),
    runId: origin.task.runId,
    prefixRequest: origin.parentId ?? NIL_UUID,
    hashStr: spec.dedup === false ? uuidv7() : null,
    priority: spec.priority ?? origin.task.priority,
  });
}

/** Is `url`'s host one of `domains` or a subdomain of one? (No list: everything is allowed.) */
export function isAllowedDomain(url: string, domains: readonly string[] | undefined): boolean {
  if (!domains || domains.length === 0) return true;
  let host: string;
  try {
    host = new URL(url).hostname;
  } catch {
    return false;
  }
  return domains.some((d) => host === d || host.endsWith(`.${d}`));
}
