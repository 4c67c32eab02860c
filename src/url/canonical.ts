/**
 * Canonical request URLs (Scrapy's `canonicalize_url`, Crawlee's `normalizeUrl`), so that one page
 * linked in several spellings is one request. The fingerprint stays mocra's (md5 over the
 * request's URL): canonicalising the URL itself keeps dedup shared with Rust workers.
 *
 * On top of the WHATWG serialisation (scheme and host lower-cased, default port and dot segments
 * gone) this decodes percent-escapes of unreserved characters, upper-cases the other escapes,
 * drops the fragment, removes parameters matched by `stripParams` (names or globs such as
 * `utm_*`), sorts the query by parameter name (stable, so repeated names keep their order) unless
 * `keepQueryOrder`, and removes an empty `?`.
 */
import picomatch from "picomatch";

/** How request URLs are canonicalised (`[crawler]` keys, per module settings of the same name). */
export interface UrlRules {
  /** keep the query parameters in the order the link gave them (some sites need it) */
  keepQueryOrder: boolean;
  /** parameter names or globs removed from every URL (`utm_*`, `fbclid`, `sessionid`) */
  stripParams: readonly string[];
}

export const DEFAULT_STRIP_PARAMS: readonly string[] = ["utm_*", "fbclid", "gclid", "msclkid"];

export const DEFAULT_URL_RULES: UrlRules = { keepQueryOrder: false, stripParams: DEFAULT_STRIP_PARAMS };

const matchers = new WeakMap<readonly string[], (name: string) => boolean>();

/** One predicate for a list of names/globs, compiled once per list. */
function stripMatcher(list: readonly string[]): (name: string) => boolean {
  let m = matchers.get(list);
  if (!m) {
    const isMatch = list.length > 0 ? picomatch(list as string[], { nocase: true, dot: true }) : () => false;
    m = (name: string) => isMatch(name);
    matchers.set(list, m);
  }
  return m;
}

const UNRESERVED = /[A-Za-z0-9\-._~]/;

/** `%7e` → `~`, `%2f` → `%2F`; other characters as they are. */
function normalizeEscapes(s: string): string {
  if (!s.includes("%")) return s;
  return s.replace(/%([0-9A-Fa-f]{2})/g, (_, hex: string) => {
    const ch = String.fromCharCode(parseInt(hex, 16));
    return UNRESERVED.test(ch) ? ch : `%${hex.toUpperCase()}`;
  });
}

function paramName(piece: string): string {
  const eq = piece.indexOf("=");
  const raw = eq < 0 ? piece : piece.slice(0, eq);
  try {
    return decodeURIComponent(raw.replace(/\+/g, " "));
  } catch {
    return raw;
  }
}

/**
 * `url` without `user:password@`: credentials in a URL are never crawled with nor written
 * anywhere (items, logs, dead letters, the frontier log); a module that needs HTTP auth sets an
 * Authorization header, which stays with its origin (docs/security.md).
 */
function withoutUserinfo(url: string): string {
  const start = url.indexOf("//") + 2;
  let end = url.length;
  for (const c of ["/", "?"]) {
    const i = url.indexOf(c, start);
    if (i >= 0 && i < end) end = i;
  }
  const at = url.lastIndexOf("@", end - 1);
  return at >= start ? url.slice(0, start) + url.slice(at + 1) : url;
}

/**
 * The canonical form of an absolute http(s) URL already serialised by the WHATWG parser
 * (`new URL(x).href`, or a link from `page.links()`).
 */
export function canonicalizeUrl(href: string, rules: UrlRules = DEFAULT_URL_RULES): string {
  const hash = href.indexOf("#");
  const url = withoutUserinfo(hash < 0 ? href : href.slice(0, hash));
  const q = url.indexOf("?");
  const beforeQuery = q < 0 ? url : url.slice(0, q);
  const pathStart = beforeQuery.indexOf("/", beforeQuery.indexOf("//") + 2);
  const head = pathStart < 0 ? beforeQuery : beforeQuery.slice(0, pathStart) + normalizeEscapes(beforeQuery.slice(pathStart));
  if (q < 0) return head;
  const strip = stripMatcher(rules.stripParams);
  const pieces: Array<{ name: string; text: string }> = [];
  for (const piece of url.slice(q + 1).split("&")) {
    if (piece === "") continue;
    const name = paramName(piece);
    if (strip(name)) continue;
    pieces.push({ name, text: normalizeEscapes(piece) });
  }
  if (!rules.keepQueryOrder) pieces.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return pieces.length === 0 ? head : `${head}?${pieces.map((p) => p.text).join("&")}`;
}

/**
 * A host that cannot exist in DNS: over 253 characters, an empty label or one over 63, or a
 * label starting or ending with "-". IP literals pass. Returns why, or undefined.
 */
export function impossibleHost(hostname: string): string | undefined {
  if (hostname.startsWith("[")) return undefined; // IPv6, already checked by the URL parser
  if (/^\d+\.\d+\.\d+\.\d+$/.test(hostname)) return undefined;
  const host = hostname.endsWith(".") ? hostname.slice(0, -1) : hostname;
  if (host.length === 0 || host.length > 253) return `host ${JSON.stringify(hostname)} cannot exist (length)`;
  for (const label of host.split(".")) {
    if (label.length === 0 || label.length > 63) return `host ${JSON.stringify(hostname)} cannot exist (label length)`;
    if (label.startsWith("-") || label.endsWith("-")) return `host ${JSON.stringify(hostname)} cannot exist (label starts or ends with "-")`;
  }
  return undefined;
}

/**
 * Resolves `raw` (against `base`), checks it is a crawlable http(s) URL and returns its
 * canonical form, or `{ error }` saying why not.
 */
export function crawlableUrl(raw: string, base: string | undefined, rules: UrlRules): string | { error: string } {
  let u: URL;
  try {
    u = base ? new URL(raw, base) : new URL(raw);
  } catch {
    return { error: `not a URL: ${JSON.stringify(raw)}` };
  }
  if (u.protocol !== "http:" && u.protocol !== "https:") return { error: `not an http(s) URL: ${JSON.stringify(raw.slice(0, 200))}` };
  const bad = impossibleHost(u.hostname);
  if (bad) return { error: bad };
  return canonicalizeUrl(u.href, rules);
}
