/**
 * Which links a module follows (Crawlee's `enqueueLinks` rules): a strategy relative to the page
 * (`same-host`, `same-domain` (registrable domain, public-suffix aware), `same-origin`, `all`),
 * then include and exclude patterns — a string is a glob over the whole URL (picomatch: `*`
 * stays within a path segment, `**` crosses them), a RegExp is tested as it is. A link must match
 * the strategy, one include pattern (when there are any) and no exclude pattern.
 */
import picomatch from "picomatch";
import { getDomain } from "tldts";

export type LinkStrategy = "same-host" | "same-domain" | "same-origin" | "all";

export const LINK_STRATEGIES: readonly LinkStrategy[] = ["same-host", "same-domain", "same-origin", "all"];

export type LinkPattern = string | RegExp;

export interface LinkRules {
  /** which links relative to the page's own URL (default "same-host") */
  strategy?: LinkStrategy;
  /** follow only links matching one of these (globs over the whole URL, or RegExps) */
  include?: readonly LinkPattern[];
  /** never follow links matching one of these */
  exclude?: readonly LinkPattern[];
}

/** Why a link is not followed, in words a log reader understands without the docs (the summary counts by it). */
export type DropReason =
  | "off-site (same-host strategy)"
  | "off-origin (same-origin strategy)"
  | "off-domain (same-domain strategy)"
  | "not included"
  | "excluded"
  | "nofollow"
  | "outside allowed domains"
  | "not crawlable"
  | "over max_follows_per_page";

type Matcher = (url: string) => boolean;

function compile(patterns: readonly LinkPattern[] | undefined): Matcher | undefined {
  if (!patterns || patterns.length === 0) return undefined;
  const tests = patterns.map((p): Matcher => {
    if (p instanceof RegExp) return (url) => {
      p.lastIndex = 0;
      return p.test(url);
    };
    const isMatch = picomatch(p, { dot: true });
    return (url) => isMatch(url);
  });
  return (url) => tests.some((t) => t(url));
}

interface Parts {
  origin: string;
  host: string;
  domain: string;
}

function partsOf(url: string): Parts | undefined {
  try {
    const u = new URL(url);
    return { origin: u.origin, host: u.hostname, domain: getDomain(u.hostname) ?? u.hostname };
  } catch {
    return undefined;
  }
}

/** A filter for the links of the page at `pageUrl`: the reason a URL is dropped, or undefined to follow it. */
export function linkFilter(pageUrl: string, rules: LinkRules): (url: string) => DropReason | undefined {
  const strategy = rules.strategy ?? "same-host";
  if (!LINK_STRATEGIES.includes(strategy)) {
    throw new TypeError(`link strategy must be one of ${LINK_STRATEGIES.join(", ")}, got ${JSON.stringify(strategy)}`);
  }
  const include = compile(rules.include);
  const exclude = compile(rules.exclude);
  const page = partsOf(pageUrl);
  return (url) => {
    if (strategy !== "all" && page) {
      const link = partsOf(url);
      if (!link) return "not crawlable";
      if (strategy === "same-host" && link.host !== page.host) return "off-site (same-host strategy)";
      if (strategy === "same-origin" && link.origin !== page.origin) return "off-origin (same-origin strategy)";
      if (strategy === "same-domain" && link.domain !== page.domain) return "off-domain (same-domain strategy)";
    }
    if (include && !include(url)) return "not included";
    if (exclude?.(url)) return "excluded";
    return undefined;
  };
}

/** The host of a URL, for counting dropped links per domain ("" when it has none). */
export function hostOf(url: string): string {
  const m = /^[a-z][a-z0-9+.-]*:\/\/(?:[^@/?#]*@)?(\[[^\]]*\]|[^:/?#]*)/i.exec(url);
  return m ? m[1].toLowerCase() : "";
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
