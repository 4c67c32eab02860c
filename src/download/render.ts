// src/download/render.ts: "auto" rendering's memory of which URL patterns need a browser.
// (The render modes a request carries are in src/model/render.ts.)
/**
 * The URL pattern a render decision is remembered under: the host and the path with every
 * segment holding a digit (an id, a page number) replaced by `*`, the query dropped. Pages of
 * one template share a pattern: /product/17 and /product/912 are `host/product/*`.
 */
export function urlPattern(url: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return url;
  }
  const path = u.pathname
    .split("/")
    .map((s) => (/\d/.test(s) ? "*" : s))
    .join("/");
  return `${u.host}${path}`;
}

/** Observations of one pattern. */
interface PatternStats {
  /** HTTP pages whose check passed (no render needed) */
  plain: number;
  /** pages that needed a render */
  rendered: number;
  /** pages since the decision was last checked */
  sinceProbe: number;
}

/**
 * Learns, per URL pattern, whether pages need a browser. After `confidence` pages of one pattern
 * all needing a render, later pages of it are rendered without the check; one page in
 * `probeEvery` is checked again, so a template that stops needing a browser is noticed. One
 * plain page resets the pattern to checking. Bounded: at most `maxPatterns` patterns (the
 * oldest go first).
 */
export class RenderMemory {
  private readonly patterns = new Map<string, PatternStats>();

  constructor(
    private readonly confidence = 3,
    private readonly probeEvery = 50,
    private readonly maxPatterns = 10_000,
  ) {}

  /** Should a page of `url`'s pattern be rendered without running the check first? */
  knownToNeedBrowser(url: string): boolean {
    const s = this.patterns.get(urlPattern(url));
    if (!s || s.plain > 0 || s.rendered < this.confidence) return false;
    if (++s.sinceProbe >= this.probeEvery) {
      s.sinceProbe = 0;
      return false;
    }
    return true;
  }

  record(url: string, neededBrowser: boolean): void {
    const key = urlPattern(url);
    let s = this.patterns.get(key);
    if (!s) {
      if (this.patterns.size >= this.maxPatterns) this.patterns.delete(this.patterns.keys().next().value!);
      s = { plain: 0, rendered: 0, sinceProbe: 0 };
      this.patterns.set(key, s);
    }
    if (neededBrowser) {
      s.rendered++;
      s.plain = 0;
    } else {
      s.plain++;
      s.rendered = 0;
    }
  }

  /** pattern → "browser" | "http" | "learning", for status displays and tests */
  snapshot(): Record<string, "browser" | "http" | "learning"> {
    const out: Record<string, "browser" | "http" | "learning"> = {};
    for (const [k, s] of this.patterns) out[k] = s.rendered >= this.confidence ? "browser" : s.plain > 0 ? "http" : "learning";
    return out;
  }
}
