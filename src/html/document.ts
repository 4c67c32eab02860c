/**
 * HTML documents for module authors: CSS selection, text, attributes and link extraction.
 *
 * The public surface (`parseHtml`, `HtmlDocument`, `Selection`) does not expose the parser, so the
 * library behind it can be swapped. Today it is htmlparser2 10 (+ domhandler 5, css-select 5 for
 * compiling selectors, domutils 3 for html()), chosen by measurement against cheerio (parse5 and
 * htmlparser2 modes), node-html-parser, htmlparser2 12, parse5, linkedom and ultrahtml: it was the
 * fastest of the candidates that extracted every field and link correctly from all test pages,
 * malformed one included (Node 20: ~250 µs for a 6 KB item page, ~4.3 ms for a 100 KB page, on a
 * shared 2-vCPU box). htmlparser2 12 / domhandler 6 is ~2x slower on Node 20, whose V8 is slow
 * at native class-field initialisers; on Deno's newer V8 the two are close.
 *
 * Behaviour worth knowing:
 *  - Parsing is lazy (on the first query) and never throws; malformed markup is repaired the way
 *    htmlparser2 does it (implied end tags, stray end tags ignored, unquoted attributes, ...).
 *    Tag and attribute names are lower-cased; entities are decoded in text and attribute values.
 *  - An invalid CSS selector is a programming error and throws (css-what's SyntaxError/Error).
 *  - Text: the descendant text of an element with all Unicode whitespace runs (incl. NBSP)
 *    collapsed to one space and trimmed. Unlike DOM `textContent`, `<script>`, `<style>` and
 *    `<template>` contents are skipped, and `<br>` and block-level element boundaries count as
 *    whitespace (so `<li>a</li><li>b</li>` gives "a b", not "ab"), roughly like `innerText`.
 *  - `html()` is the OUTER html of the first element.
 *  - htmlparser2 is not an HTML5 tree builder: it adds no implied <html>/<body> (so "body" matches
 *    only when the page has one) and does not foster-parent table content; for extraction this
 *    rarely matters.
 *  - Nesting is capped at MAX_NESTING_DEPTH (512) open elements, as Chromium's HTML parser caps
 *    it: an element opened deeper becomes a sibling of the deepest one instead of its child.
 *    htmlparser2 keeps its stack of open elements in an array it unshifts, so without the cap
 *    200 000 nested <div>s (2.2 MB) took 25-30 s; with it, parse time stays linear in the size.
 */
import { Parser } from "htmlparser2";
import { compile } from "css-select";
import { Document, DomHandler, isTag, isText, type AnyNode, type Element, type ParentNode } from "domhandler";
import { getOuterHTML } from "domutils";

/** One or more elements (possibly none). */
export interface Selection {
  readonly length: number;
  /** Text of the first element, whitespace-collapsed and trimmed ("" if there is none). */
  text(): string;
  /** Text of each element, whitespace-collapsed and trimmed (one entry per element). */
  texts(): string[];
  /** Attribute of the first element (entity-decoded); undefined if absent or no element. */
  attr(name: string): string | undefined;
  /** Attribute of each element that has it, in document order. */
  attrs(name: string): string[];
  /** OUTER html of the first element ("" if there is none). */
  html(): string;
  /** Descendants of these elements matching `selector` (the elements themselves excluded). */
  find(selector: string): Selection;
  /** The first element as a Selection (empty if none). */
  first(): Selection;
  /** Each element as a one-element Selection. */
  [Symbol.iterator](): Iterator<Selection>;
}

export interface HtmlDocument {
  /** CSS selection over the whole document. Throws on an invalid selector. */
  select(selector: string): Selection;
  /** Shorthand for `select(selector).text()`. */
  text(selector: string): string;
  /** Shorthand for `select(selector).attr(name)`. */
  attr(selector: string, name: string): string | undefined;
  /**
   * Absolute http(s) URLs of the `href`s of `a[href]` (or of the elements `selector` matches),
   * resolved against the page URL and the first `<base href>`, fragment stripped, deduplicated,
   * in document order. Dropped: non-http(s) results (javascript:, mailto:, tel:, data:, ...),
   * unparsable hrefs, and same-document references (empty or "#..." hrefs).
   */
  links(selector?: string, options?: LinkOptions): string[];
  /** `href` resolved against the page URL and `<base href>`, as links() does; null when it is not an http(s) URL */
  resolve(href: string): string | null;
  /** Text of the first `<title>`, whitespace-collapsed ("" if none). */
  readonly title: string;
}

export interface LinkOptions {
  /** skip elements whose `rel` contains `nofollow` */
  skipNofollow?: boolean;
}

/** Parses `html` (lazily, on first use) for the page at `url`. Never throws. */
export function parseHtml(html: string, url: string): HtmlDocument {
  return new Doc(html, url, false);
}

/** Parses `xml` in XML mode (case-sensitive names, no HTML repairs): sitemaps, feeds. Never throws. */
export function parseXml(xml: string, url: string): HtmlDocument {
  return new Doc(xml, url, true);
}

// ---------------------------------------------------------------------------------------------
// Selectors
// ---------------------------------------------------------------------------------------------

type Query = (node: Element) => boolean;

const MAX_CACHED_SELECTORS = 512;
const selectorCache = new Map<string, Query>();

/** Compiled selectors are cached (bounded): module authors use the same few selectors on every page. */
function query(selector: string): Query {
  let q = selectorCache.get(selector);
  if (q === undefined) {
    q = compile<AnyNode, Element>(selector);
    if (selectorCache.size >= MAX_CACHED_SELECTORS) selectorCache.clear();
    selectorCache.set(selector, q);
  }
  return q;
}

/**
 * Elements under `root` (exclusive) matching `q`, in document order, appended to `out`; with
 * `out === null` returns the first match only. Iterative over the sibling/parent links, so it does
 * not allocate and no nesting depth can overflow the stack (css-select's selectOne recurses).
 */
function match(q: Query, root: ParentNode, out: Element[] | null): Element | undefined {
  let node: AnyNode | null = root.children.length > 0 ? root.children[0] : null;
  while (node !== null) {
    if (isTag(node)) {
      if (q(node)) {
        if (out === null) return node;
        out.push(node);
      }
      if (node.children.length > 0) {
        node = node.children[0];
        continue;
      }
    }
    // Next in document order: the next sibling of the node or of its nearest ancestor below root.
    while (node.next === null) {
      const parent: ParentNode | null = node.parent;
      if (parent === null || parent === root) return undefined;
      node = parent;
    }
    node = node.next;
  }
  return undefined;
}

function selectOne(q: Query, root: ParentNode): Element | undefined {
  return match(q, root, null);
}

/** Matches under each root; roots must be in document order (nested ones are skipped). */
function selectAll(q: Query, roots: readonly ParentNode[]): Element[] {
  const out: Element[] = [];
  let last: ParentNode | undefined;
  for (const r of roots) {
    if (last !== undefined && contains(last, r)) continue;
    match(q, r, out);
    last = r;
  }
  return out;
}

function contains(ancestor: ParentNode, node: AnyNode): boolean {
  for (let p = node.parent; p !== null; p = p.parent) if (p === ancestor) return true;
  return false;
}

// ---------------------------------------------------------------------------------------------
// Text
// ---------------------------------------------------------------------------------------------

/** Elements whose content is not text a reader sees. */
const SKIP_TEXT = new Set(["script", "style", "template"]);
/** Elements whose boundaries separate words (block-level and line-breaking ones). */
const BREAKS = new Set([
  "address", "article", "aside", "blockquote", "br", "caption", "dd", "details", "dialog", "div",
  "dl", "dt", "fieldset", "figcaption", "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5",
  "h6", "header", "hgroup", "hr", "legend", "li", "main", "nav", "ol", "option", "p", "pre",
  "section", "summary", "table", "tbody", "td", "tfoot", "th", "thead", "tr", "ul",
]);
/**
 * Whitespace runs that are not already a single " ": a lone non-space whitespace or a run of two
 * or more. Typical text has few of them, so `replace` leaves most of the string untouched (with
 * `/\s+/g` every single space between words was a match and a replacement: ~5x slower per page).
 */
const WS_TO_COLLAPSE = /\s{2,}|[^\S ]/g;

/** Every whitespace run (JavaScript's `\s`, incl. NBSP) as one space, trimmed: `s.replace(/\s+/g, " ").trim()`. */
export function collapse(s: string): string {
  return s.replace(WS_TO_COLLAPSE, " ").trim();
}

/** Whitespace-collapsed text of `el`; iterative, so arbitrarily deep documents cannot overflow the stack. */
function textOf(el: Element): string {
  const parts: string[] = [];
  // A stack of pending nodes; `null` marks the end of a block-level element.
  const stack: (AnyNode | null)[] = [];
  for (let i = el.children.length - 1; i >= 0; i--) stack.push(el.children[i]);
  while (stack.length > 0) {
    const node = stack.pop();
    if (node === null) {
      parts.push(" ");
      continue;
    }
    if (node === undefined) break;
    if (isText(node)) {
      parts.push(node.data);
    } else if (isTag(node)) {
      const name = node.name;
      if (SKIP_TEXT.has(name)) continue; // also script/style, which isTag() includes
      const children = node.children;
      if (BREAKS.has(name)) {
        parts.push(" ");
        stack.push(null);
      }
      for (let i = children.length - 1; i >= 0; i--) stack.push(children[i]);
    }
    // comments, directives, CDATA: no text.
  }
  // one text node: its data is a slice of the page source; a join is a fresh string already
  return parts.length === 1 ? detach(collapse(parts[0])) : collapse(parts.join(""));
}

/**
 * `s` as a string of its own. htmlparser2's text and attribute values are slices of the whole
 * page source (V8 SlicedStrings, from 13 characters on), so a field a module keeps (an item's
 * title) would keep the entire page text alive until the item is written and acked: ~6 KB per
 * item page promoted to the old generation with 200 pages in flight. The concatenation is
 * flattened into a fresh string when sliced, so what the result keeps is that copy (one copy
 * of the field; fields are short).
 */
function detach(s: string): string {
  return s.length < 13 ? s : (" " + s).slice(1);
}

// ---------------------------------------------------------------------------------------------
// Selection
// ---------------------------------------------------------------------------------------------

class NodeSelection implements Selection {
  /** All matched elements, computed on demand when the selection is lazy. */
  #nodes: readonly Element[] | undefined;
  /** For a lazy selection: what to match and where. */
  readonly #q: Query | undefined;
  readonly #roots: readonly ParentNode[] | undefined;

  constructor(nodes: readonly Element[] | undefined, q?: Query, roots?: readonly ParentNode[]) {
    this.#nodes = nodes;
    this.#q = q;
    this.#roots = roots;
  }

  #all(): readonly Element[] {
    if (this.#nodes === undefined) {
      this.#nodes =
        this.#q === undefined || this.#roots === undefined
          ? []
          : selectAll(this.#q, this.#roots);
    }
    return this.#nodes;
  }

  /** The first element, without matching all of them when still lazy. */
  #head(): Element | undefined {
    if (this.#nodes !== undefined) return this.#nodes[0];
    if (this.#q === undefined || this.#roots === undefined) return undefined;
    for (const r of this.#roots) {
      const el = selectOne(this.#q, r);
      if (el !== undefined) return el;
    }
    return undefined;
  }

  get length(): number {
    return this.#all().length;
  }

  text(): string {
    const el = this.#head();
    return el === undefined ? "" : textOf(el);
  }

  texts(): string[] {
    return this.#all().map(textOf);
  }

  attr(name: string): string | undefined {
    const v = this.#head()?.attribs[name.toLowerCase()];
    return v === undefined ? undefined : detach(v);
  }

  attrs(name: string): string[] {
    const key = name.toLowerCase();
    const out: string[] = [];
    for (const el of this.#all()) {
      const v = el.attribs[key];
      if (v !== undefined) out.push(detach(v));
    }
    return out;
  }

  html(): string {
    const el = this.#head();
    return el === undefined ? "" : getOuterHTML(el, { decodeEntities: true, encodeEntities: "utf8" });
  }

  find(selector: string): Selection {
    const q = query(selector);
    const nodes = this.#all();
    return nodes.length === 0 ? EMPTY : new NodeSelection(undefined, q, nodes);
  }

  first(): Selection {
    const el = this.#head();
    return el === undefined ? EMPTY : new NodeSelection([el]);
  }

  *[Symbol.iterator](): Iterator<Selection> {
    for (const el of this.#all()) yield new NodeSelection([el]);
  }
}

const EMPTY: Selection = new NodeSelection([]);

// ---------------------------------------------------------------------------------------------
// Document
// ---------------------------------------------------------------------------------------------

class Doc implements HtmlDocument {
  #html: string | undefined;
  #root: Document | undefined;
  readonly #url: string;
  #resolver: UrlResolver | undefined;
  #title: string | undefined;

  readonly #xmlMode: boolean;

  constructor(html: string, url: string, xmlMode: boolean) {
    this.#html = html;
    this.#url = url;
    this.#xmlMode = xmlMode;
  }

  get #doc(): Document {
    if (this.#root === undefined) {
      try {
        this.#root = parseCapped(this.#html ?? "", this.#xmlMode);
      } catch {
        this.#root = new Document([]); // htmlparser2 does not throw on strings; belt and braces
      }
      this.#html = undefined; // the tree is all we need from now on
    }
    return this.#root;
  }

  select(selector: string): Selection {
    return new NodeSelection(undefined, query(selector), [this.#doc]);
  }

  text(selector: string): string {
    const el = selectOne(query(selector), this.#doc);
    return el === undefined ? "" : textOf(el);
  }

  attr(selector: string, name: string): string | undefined {
    const v = selectOne(query(selector), this.#doc)?.attribs[name.toLowerCase()];
    return v === undefined ? undefined : detach(v);
  }

  get title(): string {
    if (this.#title === undefined) {
      const el = selectOne(query("title"), this.#doc);
      this.#title = el === undefined ? "" : textOf(el);
    }
    return this.#title;
  }

  resolve(href: string): string | null {
    return (this.#resolver ??= this.#makeResolver(this.#doc)).resolve(href);
  }

  links(selector?: string, options?: LinkOptions): string[] {
    const doc = this.#doc;
    const els: Element[] = [];
    match(query(selector ?? "a[href]"), doc, els);
    const out: string[] = [];
    if (els.length === 0) return out;
    const resolver = (this.#resolver ??= this.#makeResolver(doc));
    const seenRaw = new Set<string>();
    const seen = new Set<string>();
    for (const el of els) {
      const raw = el.attribs.href;
      if (raw === undefined || seenRaw.has(raw)) continue;
      if (options?.skipNofollow && el.attribs.rel !== undefined && /(^|\s)nofollow(\s|$)/i.test(el.attribs.rel)) continue;
      seenRaw.add(raw);
      const abs = resolver.resolve(raw);
      if (abs !== null && !seen.has(abs)) {
        seen.add(abs);
        out.push(abs);
      }
    }
    return out;
  }

  #makeResolver(doc: Document): UrlResolver {
    // The document base URL: the first <base> with an href, resolved against the page URL; the
    // page URL when there is none or it does not parse (HTML's "frozen base URL").
    const baseHref = selectOne(query("base[href]"), doc)?.attribs.href;
    // the common case, no <base> and a canonical http(s) page URL: the fast paths need only its
    // origin, so the URL is parsed only if some href takes the slow path
    if (baseHref === undefined && canonicalHttpUrl(this.#url) !== null) return new UrlResolver(this.#url);
    const page = parseUrl(this.#url);
    const base = (baseHref !== undefined ? parseUrl(baseHref, page) : null) ?? page;
    return new UrlResolver(base);
  }
}

// ---------------------------------------------------------------------------------------------
// URL resolution
// ---------------------------------------------------------------------------------------------

function parseUrl(href: string, base?: URL | null): URL | null {
  try {
    return base === null ? new URL(href) : new URL(href, base);
  } catch {
    return null;
  }
}

// Character classes for the fast paths: code points (ASCII) that the WHATWG URL parser copies
// verbatim into an http(s) URL's path (PATH) and query (QUERY). Anything else (whitespace, tab,
// backslash, quotes, <>`{}^|[], non-ASCII, ...) takes the `new URL` path.
const PATH = new Uint8Array(128);
const QUERY = new Uint8Array(128);
for (const c of "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~!$&'()*+,;=:@/%") {
  PATH[c.charCodeAt(0)] = 1;
  QUERY[c.charCodeAt(0)] = 1;
}
QUERY["?".charCodeAt(0)] = 1;
QUERY["'".charCodeAt(0)] = 0; // percent-encoded in special-scheme queries
// Host names taken verbatim: lower-case LDH labels.
const HOST = new Uint8Array(128);
for (const c of "abcdefghijklmnopqrstuvwxyz0123456789-.") HOST[c.charCodeAt(0)] = 1;

const SLASH = 47; // "/"
const DOT = 46; // "."
const QMARK = 63; // "?"
const HASH = 35; // "#"
const PERCENT = 37; // "%"

/**
 * Checks that `s[from..end)` (end = first "#" or s.length) is a path(+query) that the URL parser
 * would copy verbatim: allowed characters only, no dot segments ("/." anywhere in the path, or a
 * "%2e" that could be one). Returns the end index (where the fragment starts), or -1.
 */
function verbatimPathEnd(s: string, from: number): number {
  const n = s.length;
  let i = from;
  for (; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c === QMARK) break;
    if (c === HASH) return i;
    if (c >= 128 || PATH[c] === 0) return -1;
    if (c === DOT && s.charCodeAt(i - 1) === SLASH) return -1;
    if (c === PERCENT && s.charCodeAt(i + 1) === 50 && (s.charCodeAt(i + 2) | 0x20) === 101) return -1;
  }
  for (; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c === HASH) return i;
    if (c >= 128 || QUERY[c] === 0) return -1;
  }
  return n;
}

/** Resolves hrefs against one base URL; fast paths for the common shapes, `new URL` otherwise. */
class UrlResolver {
  /** the base URL; undefined until needed when given as a canonical http(s) URL string */
  #base: URL | null | undefined;
  readonly #baseText: string;
  /** "scheme://host[:port]" of an http(s) base without credentials, else undefined (no fast path). */
  readonly #origin: string | undefined;

  /** `base`: parsed, or an http(s) URL that canonicalHttpUrl() accepts (parsed when first needed) */
  constructor(base: URL | null | string) {
    if (typeof base === "string") {
      // canonical: lower-case scheme and host, no credentials, no default port, a "/" after the host
      this.#base = undefined;
      this.#baseText = base;
      this.#origin = base.slice(0, base.indexOf("/", base.indexOf("//") + 2));
      return;
    }
    this.#base = base;
    this.#baseText = "";
    const special = base !== null && (base.protocol === "http:" || base.protocol === "https:");
    this.#origin =
      special && base.username === "" && base.password === "" ? `${base.protocol}//${base.host}` : undefined;
  }

  /** The absolute http(s) URL without fragment, or null (dropped). */
  resolve(raw: string): string | null {
    const c0 = raw.charCodeAt(0);
    // Same-document references: "" and "#...". (Whitespace-padded ones fall through to new URL,
    // which yields the page URL; those are also caught below.)
    if (raw.length === 0 || c0 === HASH) return null;
    // Fast path 1: path-absolute ("/item/3?x=1#top") against an http(s) base.
    if (c0 === SLASH && this.#origin !== undefined) {
      const c1 = raw.charCodeAt(1);
      if (c1 !== SLASH && c1 !== 92 /* \ */) {
        const end = verbatimPathEnd(raw, 0);
        if (end >= 0) return this.#origin + (end === raw.length ? raw : raw.slice(0, end));
      }
    }
    // Fast path 2: "http://host/path" / "https://host/path" already in canonical form.
    else if (c0 === 104 /* h */) {
      const fast = canonicalHttpUrl(raw);
      if (fast !== null) return fast;
    }
    return this.#slow(raw);
  }

  #slow(raw: string): string | null {
    // The URL parser strips leading C0 controls and spaces; after them, "" / "#..." is same-document.
    let i = 0;
    while (i < raw.length && raw.charCodeAt(i) <= 0x20) i++;
    if (i === raw.length || raw.charCodeAt(i) === HASH) return null;
    if (this.#base === undefined) this.#base = parseUrl(this.#baseText);
    const u = parseUrl(raw, this.#base);
    if (u === null || (u.protocol !== "http:" && u.protocol !== "https:")) return null;
    const href = u.href;
    const h = href.indexOf("#");
    return h < 0 ? href : href.slice(0, h);
  }
}

/**
 * `raw` if it is an absolute http(s) URL that `new URL` would serialise unchanged (minus the
 * fragment): lower-case scheme, lower-case LDH host that is not a punycode candidate, or a
 * canonical dotted-quad IPv4; an optional port that is not the scheme's default, without
 * leading zeros; no credentials; verbatim path/query. Otherwise null (the caller uses `new URL`).
 */
export function canonicalHttpUrl(raw: string): string | null {
  let i: number;
  let defaultPort: string;
  if (raw.startsWith("https://")) {
    i = 8;
    defaultPort = "443";
  } else if (raw.startsWith("http://")) {
    i = 7;
    defaultPort = "80";
  } else return null;
  const hostStart = i;
  const n = raw.length;
  let labelStart = i;
  let digitsAndDotsOnly = true;
  for (; i < n; i++) {
    const c = raw.charCodeAt(i);
    if (c === SLASH || c === QMARK || c === HASH || c === COLON) break;
    if (c >= 128 || HOST[c] === 0) return null; // upper case, userinfo, IPv6, non-ASCII, ...
    if (c === DOT) {
      if (i === labelStart) return null; // empty label
      labelStart = i + 1;
    } else if (c < 48 || c > 57) digitsAndDotsOnly = false;
  }
  if (i === hostStart || i === labelStart) return null; // empty host or trailing dot
  const last = raw.charCodeAt(labelStart);
  if (last >= 48 && last <= 57) {
    // a host whose last label starts with a digit is an IPv4 address to the URL parser:
    // verbatim only in canonical dotted-quad form
    if (!digitsAndDotsOnly || !isCanonicalIpv4(raw, hostStart, i)) return null;
  }
  if (raw.includes("xn--", hostStart) && raw.indexOf("xn--", hostStart) < i) return null; // punycode
  if (i < n && raw.charCodeAt(i) === COLON) {
    const portStart = ++i;
    while (i < n && raw.charCodeAt(i) >= 48 && raw.charCodeAt(i) <= 57) i++;
    const port = raw.slice(portStart, i);
    if (port.length === 0 || port.length > 5 || port[0] === "0" || Number(port) > 65535 || port === defaultPort) return null;
  }
  if (i === n || raw.charCodeAt(i) !== SLASH) return null; // "http://h", "http://h?q": path "/" gets added
  const end = verbatimPathEnd(raw, i);
  if (end < 0) return null;
  return end === n ? raw : raw.slice(0, end);
}

const COLON = 58; // ":"

/**
 * Is `s[from..to)`, made of digits and dots only, a dotted quad in canonical form (four parts of
 * 1-3 digits, 0-255, no leading zeros)? Checked in place: this runs for every link to an IP host.
 */
function isCanonicalIpv4(s: string, from: number, to: number): boolean {
  let parts = 0;
  let value = 0;
  let digits = 0;
  for (let i = from; i <= to; i++) {
    const c = i < to ? s.charCodeAt(i) : DOT;
    if (c === DOT) {
      if (digits === 0 || value > 255) return false;
      parts++;
      value = 0;
      digits = 0;
    } else {
      if (digits > 0 && value === 0) return false; // a leading zero
      if (++digits > 3) return false;
      value = value * 10 + (c - 48);
    }
  }
  return parts === 4;
}

/** The most elements open at once while parsing (Chromium's kMaximumHTMLParserDOMTreeDepth). */
export const MAX_NESTING_DEPTH = 512;

/**
 * htmlparser2's Parser, but an element opened at MAX_NESTING_DEPTH first closes the deepest
 * open one (an implied close, as an implied </p> is), so the parser's stack of open elements,
 * which it unshifts and searches on every tag, never grows past the cap.
 */
class DepthCappedParser extends Parser {}

/** The parser internals the cap reaches into (private in htmlparser2's types, present at runtime). */
interface ParserInternals {
  stack: string[];
  cbs: { onclosetag?: (name: string, isImplied: boolean) => void };
  emitOpenTag(name: string): void;
  isVoidElement(name: string): boolean;
}

const baseEmitOpenTag = (Parser.prototype as unknown as ParserInternals).emitOpenTag;
if (typeof baseEmitOpenTag !== "function") throw new Error("htmlparser2: Parser.emitOpenTag is gone; update the nesting cap in src/html/document.ts");
(DepthCappedParser.prototype as unknown as ParserInternals).emitOpenTag = function (this: ParserInternals, name: string): void {
  if (this.stack.length >= MAX_NESTING_DEPTH && !this.isVoidElement(name)) {
    const deepest = this.stack.shift()!;
    this.cbs.onclosetag?.(deepest, true);
  }
  baseEmitOpenTag.call(this, name);
};

/** htmlparser2's parseDocument with the nesting cap. */
function parseCapped(html: string, xmlMode: boolean): Document {
  const handler = new DomHandler(undefined, { xmlMode });
  new DepthCappedParser(handler, { xmlMode }).end(html);
  return handler.root;
}
