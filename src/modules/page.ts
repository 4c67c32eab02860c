import { decodeBody } from "../content/charset.ts";
import { type BodyKind, bodyKind, mimeOf } from "../content/content-type.ts";
import { redirectTrail } from "../download/redirects.ts";
import { type HtmlDocument, type LinkOptions, parseHtml, parseXml, type Selection } from "../html/document.ts";
import { type JsonValue, type Response, URL_HEADER } from "../model/index.ts";

export { URL_HEADER } from "../model/index.ts";

/**
 * A downloaded page as a module's parse() sees it: body, headers, text decoded by its real
 * charset, and lazy HTML selection (only for HTML bodies: any other kind has an empty document,
 * so a PDF or image yields no links; XML bodies get an XML-mode document).
 */
export class Page {
  private textCache: string | undefined;
  private docCache: HtmlDocument | undefined;
  private kindCache: BodyKind | undefined;

  constructor(
    readonly response: Response,
    /** the final URL (after redirects) */
    readonly url: string,
    /** the data given with the request (`RequestSpec.data`) */
    readonly data: JsonValue,
  ) {}

  get status(): number {
    return this.response.statusCode;
  }

  get body(): Uint8Array {
    return this.response.content;
  }

  /** A response header (case-insensitive), or undefined. */
  header(name: string): string | undefined {
    const lower = name.toLowerCase();
    for (const [k, v] of this.response.headers) if (k.toLowerCase() === lower) return v;
    return undefined;
  }

  /** The URL the module asked for: differs from `url` when the server redirected. */
  get requestUrl(): string {
    return redirectTrail(this.response.metadata)?.from ?? this.url;
  }

  /** The MIME type of the body, lower-case, without parameters ("" when the server sent none). */
  get contentType(): string {
    return mimeOf(this.header("content-type"));
  }

  /** "html", "xml", "json", "text" or "binary" (from Content-Type, sniffed when it is missing). */
  get kind(): BodyKind {
    return (this.kindCache ??= bodyKind(this.header("content-type"), this.response.content));
  }

  /**
   * The whole body as text (decoded by BOM, Content-Type charset, `<meta charset>`, else UTF-8
   * with a windows-1252 fallback), or the collapsed text of the first element matching `selector`.
   */
  text(selector?: string): string {
    if (selector !== undefined) return this.document.text(selector);
    return (this.textCache ??= decodeBody(this.response.content, this.header("content-type")));
  }

  /** The body parsed as JSON (throws on invalid JSON). */
  json<T = JsonValue>(): T {
    return JSON.parse(this.text()) as T;
  }

  /** HTML pages: the HTML document; XML bodies: an XML-mode document; anything else: an empty one. */
  get document(): HtmlDocument {
    if (this.docCache) return this.docCache;
    const kind = this.kind;
    if (kind === "html") this.docCache = parseHtml(this.text(), this.url);
    else if (kind === "xml") this.docCache = parseXml(this.text(), this.url);
    else this.docCache = parseHtml("", this.url);
    return this.docCache;
  }

  /** The body as an XML-mode document whatever its type (sitemaps, feeds served as text/plain). */
  xml(): HtmlDocument {
    return this.kind === "xml" ? this.document : parseXml(this.text(), this.url);
  }

  /** The absolute URL of `<link rel="canonical">` (HTML pages), or undefined. */
  get canonicalUrl(): string | undefined {
    if (this.kind !== "html") return undefined;
    const href = this.document.attr('link[rel~="canonical" i][href]', "href");
    return href === undefined ? undefined : (this.document.resolve(href.trim()) ?? undefined);
  }

  /** CSS selection over the page. */
  select(selector: string): Selection {
    return this.document.select(selector);
  }

  attr(selector: string, name: string): string | undefined {
    return this.document.attr(selector, name);
  }

  /** Absolute http(s) links of `a[href]` (or of the elements `selector` matches), deduped; none unless the page is HTML. */
  links(selector?: string, options?: LinkOptions): string[] {
    return this.document.links(selector, options);
  }

  /** The directives of `<meta name="robots">` (HTML pages), lower-case: ["noindex", "nofollow"]. */
  get metaRobots(): string[] {
    if (this.kind !== "html") return [];
    const content = this.document.attr('meta[name="robots" i][content]', "content");
    return content ? content.toLowerCase().split(/[\s,]+/).filter(Boolean) : [];
  }

  get title(): string {
    return this.document.title;
  }
}
