/**
 * Sitemaps as a start source (Scrapy's SitemapSpider): `start: () => sitemap(url)` or
 * `start: () => robotsSitemaps(site)`. Sitemap files (`<urlset>`), sitemap indexes
 * (`<sitemapindex>`, followed depth-first) and gzipped files (by their magic bytes, whatever the
 * name or type) are read as a stream: each file is parsed chunk by chunk with htmlparser2's
 * streaming parser in XML mode and its URLs are yielded as they are read. The engine pulls a
 * start() only while the request backlog is under `crawler.generate_backlog`, and this
 * generator reads the next chunk only when pulled, so a sitemap of millions of URLs runs in
 * bounded memory. `<lastmod>` is parsed for filtering (`since`, `filter`).
 */
import { Parser } from "htmlparser2";
import { parseRobotsTxt } from "../download/robots.ts";
import type { Seed } from "../modules/define.ts";

export interface SitemapEntry {
  url: string;
  /** `<lastmod>` parsed (W3C datetime); undefined when absent or unparsable */
  lastmod?: Date;
  changefreq?: string;
  priority?: number;
  /** the sitemap file it came from */
  sitemap: string;
}

export interface SitemapOptions {
  /** only entries with a `<lastmod>` at or after this (entries without one are kept unless `requireLastmod`) */
  since?: Date;
  requireLastmod?: boolean;
  /** keep an entry (after `since`) */
  filter?: (entry: SitemapEntry) => boolean;
  /** the seed for an entry (default: its URL) */
  toSeed?: (entry: SitemapEntry) => Seed;
  /** follow child sitemaps of an index only when this says so (default: all) */
  followSitemap?: (url: string) => boolean;
  userAgent?: string;
  /** per sitemap file, seconds (default 60) */
  timeoutSecs?: number;
  /** nested sitemap indexes followed (default 3) */
  maxDepth?: number;
  /** decompressed bytes read per file at most (default 50 MiB, the sitemap protocol's limit) */
  maxBytes?: number;
  /** a sitemap that cannot be read: default throws (the task fails with that reason); return to skip it */
  onError?: (url: string, reason: string) => void;
  /** the fetch to use (default: the runtime's) */
  fetch?: typeof globalThis.fetch;
}

const DEFAULT_UA = "mocra-ts/0.1 (+https://github.com/mocra-ts) sitemap";

interface Found {
  kind: "url" | "sitemap";
  loc: string;
  lastmod?: string;
  changefreq?: string;
  priority?: string;
}

/** Reads the body as bytes, gunzipped when it starts with the gzip magic. */
async function* bodyBytes(res: globalThis.Response, maxBytes: number, url: string): AsyncGenerator<Uint8Array> {
  if (!res.body) return;
  const reader = res.body.getReader();
  const first = await reader.read();
  if (first.done) return;
  let stream: ReadableStream<Uint8Array> = new ReadableStream<Uint8Array>({
    start(c) {
      c.enqueue(first.value);
    },
    async pull(c) {
      const r = await reader.read();
      if (r.done) c.close();
      else c.enqueue(r.value);
    },
    cancel(reason) {
      return reader.cancel(reason);
    },
  });
  if (first.value[0] === 0x1f && first.value[1] === 0x8b) stream = stream.pipeThrough(new DecompressionStream("gzip") as unknown as TransformStream<Uint8Array, Uint8Array>);
  const r = stream.getReader();
  let total = 0;
  try {
    for (;;) {
      const { done, value } = await r.read();
      if (done) return;
      total += value.byteLength;
      if (total > maxBytes) throw new Error(`sitemap ${url} is over ${maxBytes} bytes`);
      yield value;
    }
  } finally {
    await r.cancel().catch(() => {});
  }
}

/** The `<url>` and `<sitemap>` entries of one sitemap file, in document order, as it streams in. */
async function* entriesOf(url: string, o: SitemapOptions): AsyncGenerator<Found> {
  const fetchFn = o.fetch ?? globalThis.fetch;
  const res = await fetchFn(url, {
    headers: { "user-agent": o.userAgent ?? DEFAULT_UA, accept: "application/xml, text/xml, */*" },
    signal: AbortSignal.timeout((o.timeoutSecs ?? 60) * 1000),
    redirect: "follow",
  });
  if (!res.ok) {
    await res.body?.cancel().catch(() => {});
    throw new Error(`sitemap ${url}: HTTP ${res.status}`);
  }
  const ready: Found[] = [];
  let current: Found | undefined;
  let field: "loc" | "lastmod" | "changefreq" | "priority" | undefined;
  let text = "";
  const local = (name: string) => name.slice(name.indexOf(":") + 1).toLowerCase();
  const parser = new Parser(
    {
      onopentag(name) {
        const n = local(name);
        if (n === "url" || n === "sitemap") current = { kind: n, loc: "" };
        else if (current && (n === "loc" || n === "lastmod" || n === "changefreq" || n === "priority")) {
          field = n;
          text = "";
        }
      },
      ontext(t) {
        if (field) text += t;
      },
      onclosetag(name) {
        const n = local(name);
        if (current && field && n === field) {
          current[field] = text.trim();
          field = undefined;
        } else if (current && n === current.kind) {
          if (current.loc) ready.push(current);
          current = undefined;
        }
      },
    },
    { xmlMode: true, decodeEntities: true },
  );
  const decoder = new TextDecoder();
  for await (const chunk of bodyBytes(res, o.maxBytes ?? 50 * 1024 * 1024, url)) {
    parser.write(decoder.decode(chunk, { stream: true }));
    while (ready.length > 0) yield ready.shift() as Found;
  }
  parser.end(decoder.decode());
  while (ready.length > 0) yield ready.shift() as Found;
}

function parseLastmod(text: string | undefined): Date | undefined {
  if (!text) return undefined;
  const t = Date.parse(text);
  return Number.isNaN(t) ? undefined : new Date(t);
}

async function* walk(url: string, o: SitemapOptions, depth: number, seen: Set<string>): AsyncGenerator<Seed> {
  if (seen.has(url)) return;
  seen.add(url);
  const entries = entriesOf(url, o);
  for (;;) {
    let next: IteratorResult<Found>;
    try {
      next = await entries.next();
    } catch (err) {
      const reason = err instanceof Error ? err.message : String(err);
      if (!o.onError) throw new Error(reason.startsWith("sitemap ") ? reason : `sitemap ${url}: ${reason}`);
      o.onError(url, reason);
      return;
    }
    if (next.done) return;
    const found = next.value;
    let loc: string;
    try {
      loc = new URL(found.loc, url).href;
    } catch {
      continue;
    }
    if (found.kind === "sitemap") {
      if (depth < (o.maxDepth ?? 3) && (o.followSitemap?.(loc) ?? true)) yield* walk(loc, o, depth + 1, seen);
      continue;
    }
    const entry: SitemapEntry = { url: loc, sitemap: url, lastmod: parseLastmod(found.lastmod) };
    if (found.changefreq) entry.changefreq = found.changefreq;
    if (found.priority && !Number.isNaN(Number(found.priority))) entry.priority = Number(found.priority);
    if (o.since && (entry.lastmod ? entry.lastmod < o.since : o.requireLastmod)) continue;
    if (!o.since && o.requireLastmod && !entry.lastmod) continue;
    if (o.filter && !o.filter(entry)) continue;
    yield o.toSeed ? o.toSeed(entry) : entry.url;
  }
}

/** The URLs of these sitemaps (files or indexes, gzipped or not), streamed, as start() seeds. */
export async function* sitemap(urls: string | readonly string[], options: SitemapOptions = {}): AsyncGenerator<Seed> {
  const seen = new Set<string>();
  for (const u of typeof urls === "string" ? [urls] : urls) yield* walk(u, options, 0, seen);
}

/** The `Sitemap:` URLs of a site's robots.txt (none when it has no robots.txt). */
export async function sitemapsInRobots(siteUrl: string, options: Pick<SitemapOptions, "userAgent" | "timeoutSecs" | "fetch"> = {}): Promise<string[]> {
  const robotsUrl = new URL("/robots.txt", siteUrl).href;
  const res = await (options.fetch ?? globalThis.fetch)(robotsUrl, {
    headers: { "user-agent": options.userAgent ?? DEFAULT_UA },
    signal: AbortSignal.timeout((options.timeoutSecs ?? 60) * 1000),
  });
  if (!res.ok) {
    await res.body?.cancel().catch(() => {});
    return [];
  }
  return [...parseRobotsTxt(await res.text(), options.userAgent ?? DEFAULT_UA).sitemaps];
}

/** The URLs of every sitemap a site's robots.txt lists (`Sitemap:` lines), streamed. */
export async function* robotsSitemaps(siteUrl: string, options: SitemapOptions = {}): AsyncGenerator<Seed> {
  yield* sitemap(await sitemapsInRobots(siteUrl, options), options);
}
