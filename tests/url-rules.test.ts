// Canonical URLs, impossible hosts and link rules (pure functions; the crawl tests are in crawl-correctness.test.ts).
import { describe, expect, it } from "vitest";
import { fingerprint, request } from "../src/model/index.ts";
import { requestUrl } from "../src/modules/requests.ts";
import { canonicalizeUrl, crawlableUrl, DEFAULT_URL_RULES, impossibleHost } from "../src/url/canonical.ts";
import { linkFilter } from "../src/url/link-rules.ts";

const canon = (raw: string, rules = DEFAULT_URL_RULES) => {
  const r = crawlableUrl(raw, undefined, rules);
  if (typeof r !== "string") throw new Error(r.error);
  return r;
};

describe("canonical URLs", () => {
  it("normalises scheme, host, port, fragment, escapes, dot segments and the query", () => {
    expect(canon("HTTP://Shop.Example.COM:80/a/./b/../c?b=2&a=1#top")).toBe("http://shop.example.com/a/c?a=1&b=2");
    expect(canon("https://x.example:443/%7euser/%2fpath?q=%e2%82%ac")).toBe("https://x.example/~user/%2Fpath?q=%E2%82%AC");
    expect(canon("http://x.example/p?")).toBe("http://x.example/p");
    expect(canon("http://x.example/p?&&")).toBe("http://x.example/p");
    // repeated names keep their relative order (stable sort)
    expect(canon("http://x.example/p?b=1&a=2&b=0&a=1")).toBe("http://x.example/p?a=2&a=1&b=1&b=0");
  });

  it("strips tracking parameters by name and glob, and keeps the order when asked", () => {
    expect(canon("http://x.example/p?utm_source=a&id=3&fbclid=z&UTM_Medium=b")).toBe("http://x.example/p?id=3");
    const rules = { keepQueryOrder: true, stripParams: ["sid", "ref*"] };
    expect(canon("http://x.example/p?z=1&sid=9&a=2&referrer=q", rules)).toBe("http://x.example/p?z=1&a=2");
    expect(canon("http://x.example/p?utm_source=a", { keepQueryOrder: false, stripParams: [] })).toBe("http://x.example/p?utm_source=a");
  });

  it("gives one fingerprint (mocra's md5 over the URL) to every spelling of a page", () => {
    const spellings = [
      "http://shop.example/item?id=7&color=red",
      "HTTP://SHOP.example:80/item?color=red&id=7#reviews",
      "http://shop.example/./item?color=red&utm_campaign=x&id=7",
      "http://shop.example/%69tem?color=red&id=7",
    ];
    const fps = new Set(spellings.map((s) => fingerprint(request({ url: canon(s), module: "m" }))));
    expect(fps.size).toBe(1);
    // the fingerprint is computed from the canonical URL string exactly as mocra computes it
    expect([...fps][0]).toBe(fingerprint(request({ url: "http://shop.example/item?color=red&id=7", module: "m" })));
  });

  it("the fast path for page links gives the same canonical form as the full parser", () => {
    for (const raw of ["http://a.example/x?b=1&a=2", "https://a.example/p/q", "http://a.example/x?utm_x=1", "http://a.example/%7e"]) {
      expect(requestUrl(raw, undefined, DEFAULT_URL_RULES)).toBe(canon(raw));
    }
    expect(requestUrl("../up?z=1&y=2", "http://a.example/d/e/f", DEFAULT_URL_RULES)).toBe("http://a.example/d/up?y=2&z=1");
  });

  it("rejects non-http(s) schemes, malformed URLs and hosts that cannot exist, saying why", () => {
    for (const [raw, why] of [
      ["javascript:alert(1)", "not an http(s) URL"],
      ["mailto:a@b.example", "not an http(s) URL"],
      ["data:text/html,<a>", "not an http(s) URL"],
      ["tel:+123", "not an http(s) URL"],
      ["file:///etc/passwd", "not an http(s) URL"],
      ["http://[::1/x", "not a URL"],
      ["http://-bad-.example/", "cannot exist"],
      [`http://${"a".repeat(64)}.example/`, "cannot exist"],
      ["http://a..b.example/", "cannot exist"],
    ] as const) {
      const r = crawlableUrl(raw, undefined, DEFAULT_URL_RULES);
      expect(typeof r === "string" ? r : r.error, raw).toContain(why);
      const fast = requestUrl(raw, "http://x.example/", DEFAULT_URL_RULES);
      expect(typeof fast === "string" ? fast : fast.error, raw).toContain(why);
    }
    expect(impossibleHost("127.0.0.1")).toBeUndefined();
    expect(impossibleHost("[::1]")).toBeUndefined();
    expect(impossibleHost("shop.example.co.uk")).toBeUndefined();
  });

  it("keeps an already canonical URL unchanged", () => {
    const u = "http://127.0.0.1:8080/list/3?page=2";
    expect(canonicalizeUrl(u)).toBe(u);
  });
});

describe("link rules", () => {
  const page = "https://www.shop.example.co.uk/list/1";

  it("strategies: same-host, same-domain (public-suffix aware), same-origin, all", () => {
    const links = ["https://www.shop.example.co.uk/a", "http://www.shop.example.co.uk/b", "https://img.shop.example.co.uk/c", "https://other.co.uk/d"];
    const follow = (strategy: "same-host" | "same-domain" | "same-origin" | "all") => links.filter((l) => linkFilter(page, { strategy })(l) === undefined);
    expect(follow("same-host")).toEqual(links.slice(0, 2));
    expect(follow("same-origin")).toEqual(links.slice(0, 1));
    expect(follow("same-domain")).toEqual(links.slice(0, 3));
    expect(follow("all")).toEqual(links);
    expect(() => linkFilter(page, { strategy: "same-site" as never })).toThrow(/strategy must be one of/);
  });

  it("include and exclude by glob and by regex", () => {
    const f = linkFilter(page, { include: ["https://www.shop.example.co.uk/item/**", /\/list\/\d+$/], exclude: ["**/item/*/reviews", /[?&]sort=/] });
    expect(f("https://www.shop.example.co.uk/item/7")).toBeUndefined();
    expect(f("https://www.shop.example.co.uk/item/7/spec")).toBeUndefined();
    expect(f("https://www.shop.example.co.uk/list/2")).toBeUndefined();
    expect(f("https://www.shop.example.co.uk/about")).toBe("not included");
    expect(f("https://www.shop.example.co.uk/item/7/reviews")).toBe("excluded");
    expect(f("https://www.shop.example.co.uk/item/7?sort=asc")).toBe("excluded");
    expect(f("https://elsewhere.example/item/7")).toBe("off-site (same-host strategy)");
  });
});
