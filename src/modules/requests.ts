import { canonicalHttpUrl } from "../html/document.ts";
import { canonicalizeUrl, crawlableUrl, DEFAULT_URL_RULES, impossibleHost, type UrlRules } from "../url/canonical.ts";
import {
  cookie,
  executionMark,
  fingerprintFields,
  headersFromRecord,
  metaData,
  NIL_UUID,
  type Request,
  rememberFingerprint,
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
  /** how URLs are canonicalised (config defaults; the module's settings win) */
  urlRules?: UrlRules;
}

const rulesCache = new WeakMap<object, Map<UrlRules, UrlRules>>();

/** The URL rules of a module: its `keepQueryOrder` / `stripParams` settings over `defaults`. */
export function urlRulesFor(settings: Readonly<ModuleSettings>, defaults: UrlRules = DEFAULT_URL_RULES): UrlRules {
  let byDefaults = rulesCache.get(settings);
  if (!byDefaults) rulesCache.set(settings, (byDefaults = new Map()));
  let rules = byDefaults.get(defaults);
  if (!rules) {
    const keep = settings.keepQueryOrder;
    const strip = settings.stripParams;
    rules = {
      keepQueryOrder: typeof keep === "boolean" ? keep : defaults.keepQueryOrder,
      stripParams: Array.isArray(strip) ? strip.map(String) : defaults.stripParams,
    };
    byDefaults.set(defaults, rules);
  }
  return rules;
}

/** The canonical crawlable form of a seed's URL, or why it is not crawlable. */
export function requestUrl(raw: string, baseUrl: string | undefined, rules: UrlRules): string | { error: string } {
  // most follow() targets come from page.links(), already absolute and WHATWG-serialised: skip the parser
  const fast = canonicalHttpUrl(raw);
  if (fast === null) return crawlableUrl(raw, baseUrl, rules);
  const hostStart = fast.indexOf("//") + 2;
  const hostEnd = fast.slice(hostStart).search(/[/:?]/);
  const bad = impossibleHost(hostEnd < 0 ? fast.slice(hostStart) : fast.slice(hostStart, hostStart + hostEnd));
  return bad ? { error: bad } : canonicalizeUrl(fast, rules);
}

/** A seed with its URL made canonical: what a Request and its fingerprint are built from. */
export interface ResolvedSeed {
  spec: RequestSpec;
  url: string;
  method: string;
  body: Uint8Array | null;
}

/** Resolves a module's seed (canonical URL, method, body), or returns an error text for a bad URL. */
export function resolveSeed(seed: Seed, origin: RequestOrigin, defaults?: Omit<RequestSpec, "url">): ResolvedSeed | string {
  const spec: RequestSpec = typeof seed === "string" ? { ...defaults, url: seed } : { ...defaults, ...seed };
  const url = requestUrl(spec.url, origin.baseUrl, origin.urlRules ?? urlRulesFor(origin.settings));
  if (typeof url !== "string") return url.error;
  let body: Uint8Array | null = null;
  if (typeof spec.body === "string") body = encoder.encode(spec.body);
  else if (spec.body) body = spec.body;
  const method = (spec.method ?? (spec.json !== undefined || spec.form || body ? "POST" : "GET")).toUpperCase();
  return { spec, url, method, body };
}

/**
 * The fingerprint the Request of `seed` will have, computed without building it (so a link that
 * is already seen costs no Request); undefined for a seed with `dedup: false` (it has none yet).
 */
export function seedFingerprint(seed: ResolvedSeed, origin: RequestOrigin): string | undefined {
  if (seed.spec.dedup === false) return undefined;
  const { spec } = seed;
  return fingerprintFields({
    hashStr: null,
    account: origin.task.account,
    platform: origin.task.platform,
    module: origin.module.name,
    url: seed.url,
    method: seed.method,
    params: null,
    json: spec.json,
    body: seed.body,
    form: spec.form,
  });
}

/**
 * Do string seeds followed with these defaults become plain GETs with a fingerprint (no method
 * other than GET, no body, json or form, dedup on)? Then a seed's canonical URL and fingerprint
 * depend only on the link, the URL rules and the task's account, platform and module.
 */
export function plainGetDefaults(defaults: Omit<RequestSpec, "url"> | undefined): boolean {
  if (defaults === undefined) return true;
  // as resolveSeed: any body (even "") or json/form makes a POST
  return defaults.dedup !== false && defaults.json === undefined && defaults.form === undefined && (defaults.body === undefined || defaults.body === null) &&
    (defaults.method === undefined || defaults.method.toUpperCase() === "GET");
}

/** A link string resolved before as a plain GET: its canonical URL and fingerprint, in one scope. */
export interface KnownLink {
  readonly rules: UrlRules;
  /** `linkScope()` of the origin it was resolved for */
  readonly scope: string;
  readonly url: string;
  readonly fp: string;
}

/** What besides the link and the URL rules a plain GET's fingerprint depends on. */
export function linkScope(origin: RequestOrigin): string {
  return `${origin.task.account},${origin.task.platform},${origin.module.name}`;
}

/**
 * Pages link to the same URLs over and over (an item page to its neighbours, every page to the
 * lists): links already resolved are looked up by the string the page gave, before any parsing,
 * canonicalisation or md5. Two generations of up to KNOWN_LINKS each (~250 B an entry): when the
 * current one is full it becomes the previous one, so links still in use survive the turnover
 * (a hit in the previous generation moves the entry to the current one).
 */
const KNOWN_LINKS = 8192;
let knownLinks = new Map<string, KnownLink>();
let previousLinks = new Map<string, KnownLink>();

/** The known resolution of `raw` as a plain GET in this scope, if any (see `rememberLink`). */
export function knownLink(raw: string, rules: UrlRules, scope: string): KnownLink | undefined {
  let k = knownLinks.get(raw);
  if (k === undefined) {
    k = previousLinks.get(raw);
    if (k === undefined) return undefined;
    keepLink(raw, k);
  }
  return k.rules === rules && k.scope === scope ? k : undefined;
}

/**
 * Remembers how the plain-GET string seed `raw` resolved. Only absolute http(s) links are kept:
 * theirs does not depend on the page they are on (a relative one, or "http:x", does).
 */
export function rememberLink(raw: string, rules: UrlRules, scope: string, url: string, fp: string): void {
  if (!raw.startsWith("http://") && !raw.startsWith("https://")) return;
  // a link from page.links() is usually canonical already: keep one string for both
  keepLink(raw, { rules, scope, url: url === raw ? raw : url, fp });
}

function keepLink(raw: string, link: KnownLink): void {
  if (knownLinks.size >= KNOWN_LINKS) {
    previousLinks = knownLinks;
    knownLinks = new Map();
  }
  knownLinks.set(raw, link);
}

/** The mocra Request of a resolved seed (`fp`: its seedFingerprint, when already computed). */
export function buildRequest(seed: ResolvedSeed, origin: RequestOrigin, fp?: string): Request {
  const { spec, url, method, body } = seed;
  const headers = origin.settings.headers === undefined && spec.headers === undefined ? [] : headersFromRecord({ ...origin.settings.headers, ...spec.headers });
  const req = request({
    id: uuidv7(),
    url,
    method,
    account: origin.task.account,
    platform: origin.task.platform,
    module: origin.module.name,
    headers,
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
  if (fp !== undefined) rememberFingerprint(req, fp);
  return req;
}

/** Turns a module's seed into a mocra Request, or returns an error text for a bad URL. */
export function seedToRequest(seed: Seed, origin: RequestOrigin, defaults?: Omit<RequestSpec, "url">): Request | string {
  const resolved = resolveSeed(seed, origin, defaults);
  return typeof resolved === "string" ? resolved : buildRequest(resolved, origin);
}

