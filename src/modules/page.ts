import { type HtmlDocument, parseHtml, type Selection } from "../html/document.ts";
import type { JsonValue, Response } from "../model/index.ts";

const decoder = new TextDecoder();

/** The header carrying the final URL of a Response (mocra's Response has no url field). */
export const URL_HEADER = "x-mocra-url";

/** A downloaded page as a module's parse() sees it: body, headers, and lazy HTML selection. */
export class Page {
  private textCache: string | undefined;
  private docCache: HtmlDocument | undefined;

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

  /** The whole body as text, or the collapsed text of the first element matching `selector`. */
  text(selector?: string): string {
    if (selector !== undefined) return this.document.text(selector);
    return (this.textCache ??= decoder.decode(this.response.content));
  }

  json<T = JsonValue>(): T {
    return JSON.parse(this.text()) as T;
  }

  get document(): HtmlDocument {
    return (this.docCache ??= parseHtml(this.text(), this.url));
  }

  /** CSS selection over the page. */
  select(selector: string): Selection {
    return this.document.select(selector);
  }

  attr(selector: string, name: string): string | undefined {
    return this.document.attr(selector, name);
  }

  /** Absolute http(s) links of `a[href]` (or of the elements `selector` matches), deduped. */
  links(selector?: string): string[] {
    return this.document.links(selector);
  }

  get title(): string {
    return this.document.title;
  }
}
