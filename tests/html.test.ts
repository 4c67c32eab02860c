import { describe, expect, it } from "vitest";
import { canonicalHttpUrl, MAX_NESTING_DEPTH, parseHtml, type HtmlDocument } from "../src/html/document.ts";

const PAGE = "https://shop.example.com/list/3?page=2#results";

function doc(body: string, url = PAGE): HtmlDocument {
  return parseHtml(body, url);
}

/** What a browser would give for one href: `new URL` against the base, http(s) only, no fragment. */
function viaUrl(href: string, base: string): string | null {
  let u: URL;
  try {
    u = new URL(href, base);
  } catch {
    return null;
  }
  if (u.protocol !== "http:" && u.protocol !== "https:") return null;
  u.hash = "";
  return u.href.endsWith("#") ? u.href.slice(0, -1) : u.href;
}

const SHOP_ITEM = `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Bold Wool Jacket No. 37 | Mocra Demo Shop</title>
<style>.price{color:red}</style></head>
<body>
<header><span class="brand">Mocra Demo Shop</span><nav><span class="nav-item">Home</span></nav></header>
<main>
<div class="breadcrumb"><a href="/list/0">Home</a> &rsaquo; Apparel &rsaquo; <a href="/list/0">Page 1</a></div>
<article class="product" data-id="37" data-sku="MDS-000037">
<h1 class="title">Bold Wool Jacket No. 37</h1>
<p class="buy"><span class="price">$60.66</span> <span class="stock">12 in stock</span></p>
<div class="desc">
<p>Durable laborum non adipiscing.</p>
<p>Amet finish everyday.</p>
</div>
</article>
<section class="related"><ul>
<li><a href="/item/38">A</a> <span class="related-price">$1.00</span></li>
<li><a href="/item/36">B</a></li>
<li><a href="/item/1">C</a></li>
<li><a href="/item/104">D</a></li>
<li><a href="/item/50">E</a></li>
</ul></section>
<section class="pages"><a class="more" href="/list/1">More products</a></section>
</main>
<footer><p>Mocra Demo Shop &mdash; fictional.</p></footer>
</body></html>`;

describe("selection", () => {
  const d = doc(SHOP_ITEM);

  it("selects by CSS and reads the first element's text", () => {
    expect(d.text("h1.title")).toBe("Bold Wool Jacket No. 37");
    expect(d.text("span.price")).toBe("$60.66");
    expect(d.select("h1.title").length).toBe(1);
    expect(d.select("article.product[data-id='37'] > h1").text()).toBe("Bold Wool Jacket No. 37");
  });

  it("texts() returns every element's text in document order", () => {
    expect(d.select(".related li a").texts()).toEqual(["A", "B", "C", "D", "E"]);
    expect(d.select("span.price, span.related-price").texts()).toEqual(["$60.66", "$1.00"]);
  });

  it("find() searches descendants only", () => {
    const related = d.select("section.related");
    expect(related.find("a").length).toBe(5);
    expect(related.find("section").length).toBe(0); // not the element itself
    expect(d.select("li").find("span").texts()).toEqual(["$1.00"]);
    // nested roots are not searched twice
    expect(d.select("main, article").find("h1").length).toBe(1);
    expect(d.select(".nope").find("a").length).toBe(0);
  });

  it("first() and iteration", () => {
    const links = d.select(".related a");
    expect(links.first().length).toBe(1);
    expect(links.first().attr("href")).toBe("/item/38");
    const each = [...links];
    expect(each.length).toBe(5);
    expect(each.every((s) => s.length === 1)).toBe(true);
    expect(each.map((s) => s.attr("href"))).toEqual(["/item/38", "/item/36", "/item/1", "/item/104", "/item/50"]);
    expect(each[2].text()).toBe("C");
    expect(d.select("table").first().length).toBe(0);
  });

  it("empty selections are harmless", () => {
    const none = d.select("div.missing");
    expect(none.length).toBe(0);
    expect(none.text()).toBe("");
    expect(none.texts()).toEqual([]);
    expect(none.attr("href")).toBeUndefined();
    expect(none.attrs("href")).toEqual([]);
    expect(none.html()).toBe("");
    expect([...none]).toEqual([]);
    expect(d.text("div.missing")).toBe("");
    expect(d.attr("div.missing", "id")).toBeUndefined();
  });

  it("html() is the outer html of the first element", () => {
    const x = doc(`<div id="a"><p class="c">Caf&eacute; &amp; <b>x</b></p><p>two</p></div>`);
    expect(x.select("p").html()).toBe(`<p class="c">Café &amp; <b>x</b></p>`);
    expect(x.select("#a").html()).toBe(`<div id="a"><p class="c">Café &amp; <b>x</b></p><p>two</p></div>`);
  });

  it("throws on an invalid selector", () => {
    expect(() => d.select("a[")).toThrow();
  });

  it("works across many documents with the same selectors (compiled-selector cache)", () => {
    for (let i = 0; i < 50; i++) {
      const x = doc(`<h1 class="title">T${i}</h1><a href="/item/${i}">x</a>`);
      expect(x.text("h1.title")).toBe(`T${i}`);
      expect(x.links()).toEqual([`https://shop.example.com/item/${i}`]);
    }
  });
});

describe("text", () => {
  it("collapses whitespace (including NBSP and newlines) and trims", () => {
    const d = doc(`<div class="desc">
      <p>Durable   laborum
         non\tadipiscing.</p>

      <p>&nbsp;Amet&nbsp;&nbsp;finish.&#x20;</p>
    </div>`);
    expect(d.text("div.desc")).toBe("Durable laborum non adipiscing. Amet finish.");
  });

  it("treats <br> and block boundaries as whitespace, inline boundaries not", () => {
    const d = doc(`<div id="a">line1<br>line2<ul><li>x</li><li>y</li></ul><span>$</span><b>12</b></div>
      <table id="t"><tr><td>a</td><td>b</td></tr></table>`);
    expect(d.text("#a")).toBe("line1 line2 x y $12");
    expect(d.text("#t")).toBe("a b");
  });

  it("skips script, style and template content but keeps it reachable directly", () => {
    const d = doc(`<div id="a">Hello <script>var x = "<b>no</b>";</script><style>.x{}</style><template><p>t</p></template>world</div>
      <script type="application/ld+json">{"name": "X"}</script>`);
    expect(d.text("#a")).toBe("Hello world");
    expect(d.text("script[type='application/ld+json']")).toBe('{"name": "X"}');
  });

  it("title", () => {
    expect(doc(SHOP_ITEM).title).toBe("Bold Wool Jacket No. 37 | Mocra Demo Shop");
    expect(doc(`<title>\n  A &amp;   B\n</title>`).title).toBe("A & B");
    expect(doc(`<p>no title</p>`).title).toBe("");
  });
});

describe("attributes", () => {
  const d = doc(`<div id="x" data-id="7" class="a b" DATA-Upper="U"><a href="/1">1</a><a>no href</a><a href="/2">2</a><a href="">e</a></div>`);

  it("attr() of the first element", () => {
    expect(d.attr("#x", "data-id")).toBe("7");
    expect(d.select("div").attr("class")).toBe("a b");
    expect(d.select("div").attr("missing")).toBeUndefined();
    expect(d.select("a").attr("href")).toBe("/1");
  });

  it("attribute names are case-insensitive", () => {
    expect(d.attr("#x", "data-upper")).toBe("U");
    expect(d.attr("#x", "DATA-UPPER")).toBe("U");
    expect(doc(`<A HREF="/up">x</A>`).attr("a", "href")).toBe("/up");
  });

  it("attrs() of each element, skipping missing ones", () => {
    expect(d.select("a").attrs("href")).toEqual(["/1", "/2", ""]);
    expect(d.select("a").attrs("title")).toEqual([]);
  });
});

describe("entities", () => {
  it("decodes named, numeric and hex entities in text and attributes", () => {
    const d = doc(`<h1 title="Caf&eacute; &quot;x&quot; &#39;y&#39;">Caf&eacute; &amp; Bistro &mdash; &#8220;Pro&#8221; &lt;X&gt; &#x2014; &euro;</h1>`);
    expect(d.text("h1")).toBe("Café & Bistro — “Pro” <X> — €");
    expect(d.attr("h1", "title")).toBe(`Café "x" 'y'`);
  });

  it("handles legacy and bad entities the way browsers do", () => {
    const d = doc(`<p id="a">&copy 2024 &bogus; &amp &#128; &#0; &notit;</p>`);
    expect(d.text("#a")).toBe("© 2024 &bogus; & € \uFFFD ¬it;");
  });

  it("does not decode legacy entities inside attribute query strings", () => {
    const d = doc(`<a href="/s?x=1&copy=2&region=eu&amp;ok=1&b=2">x</a>`);
    expect(d.attr("a", "href")).toBe("/s?x=1&copy=2&region=eu&ok=1&b=2");
    expect(d.links()).toEqual(["https://shop.example.com/s?x=1&copy=2&region=eu&ok=1&b=2"]);
  });
});

describe("links", () => {
  it("resolves the shop item page's links, deduplicated in document order", () => {
    expect(doc(SHOP_ITEM).links()).toEqual([
      "https://shop.example.com/list/0",
      "https://shop.example.com/item/38",
      "https://shop.example.com/item/36",
      "https://shop.example.com/item/1",
      "https://shop.example.com/item/104",
      "https://shop.example.com/item/50",
      "https://shop.example.com/list/1",
    ]);
  });

  it("relative, absolute and protocol-relative hrefs", () => {
    const d = doc(`
      <a href="item/7">rel</a>
      <a href="../up">up</a>
      <a href="./same">same</a>
      <a href="?page=3">query only</a>
      <a href="/abs/path?q=1">abs path</a>
      <a href="https://other.example.org/x?y=1">abs</a>
      <a href="HTTP://Other.Example.ORG:80/a/../b">abs, not canonical</a>
      <a href="//cdn.example.net/p.html">protocol-relative</a>
      <a href="http://shop.example.com:8080/port">port</a>`);
    expect(d.links()).toEqual([
      "https://shop.example.com/list/item/7",
      "https://shop.example.com/up",
      "https://shop.example.com/list/same",
      "https://shop.example.com/list/3?page=3",
      "https://shop.example.com/abs/path?q=1",
      "https://other.example.org/x?y=1",
      "http://other.example.org/b",
      "https://cdn.example.net/p.html",
      "http://shop.example.com:8080/port",
    ]);
  });

  it("honours <base href> (absolute or relative to the page); the first one wins", () => {
    const abs = doc(`<head><base href="https://base.example.com/dir/sub/"><base href="https://ignored.example/"></head>
      <a href="x">x</a><a href="/root">root</a><a href="//p.example/q">p</a>`);
    expect(abs.links()).toEqual([
      "https://base.example.com/dir/sub/x",
      "https://base.example.com/root",
      "https://p.example/q",
    ]);
    const rel = doc(`<base href="/catalog/"><a href="item/1">1</a>`);
    expect(rel.links()).toEqual(["https://shop.example.com/catalog/item/1"]);
    const noHref = doc(`<base target="_blank"><a href="item/1">1</a>`);
    expect(noHref.links()).toEqual(["https://shop.example.com/list/item/1"]);
    const bad = doc(`<base href="http://[bad"><a href="item/1">1</a>`);
    expect(bad.links()).toEqual(["https://shop.example.com/list/item/1"]);
  });

  it("strips fragments and drops same-document references", () => {
    const d = doc(`<a href="#top">top</a><a href="">empty</a><a href="  #x ">ws</a>
      <a href="/item/1#reviews">1</a><a href="/item/1">1 again</a><a href="https://o.example/p#f">o</a>`);
    expect(d.links()).toEqual(["https://shop.example.com/item/1", "https://o.example/p"]);
  });

  it("dedupes identical and equivalent hrefs", () => {
    const d = doc(`<a href="/item/1">a</a><a href="/item/1">b</a><a href="https://shop.example.com/item/1">c</a>
      <a href="./../item/1">d</a><a href=" /item/1 ">e</a><a href="/item/2">f</a><a href="/item/1?">g</a>`);
    expect(d.links()).toEqual([
      "https://shop.example.com/item/1",
      "https://shop.example.com/item/2",
      "https://shop.example.com/item/1?",
    ]);
  });

  it("drops javascript:, mailto:, tel:, data:, ftp: and unparsable hrefs", () => {
    const d = doc(`<a href="javascript:void(0)">j</a><a href="JavaScript:alert(1)">J</a><a href="mailto:a@b.c">m</a>
      <a href="tel:+331234">t</a><a href="data:text/html,x">d</a><a href="ftp://f.example/x">f</a>
      <a href="http://[::1">bad</a><a href="https://ok.example/">ok</a>`);
    expect(d.links()).toEqual(["https://ok.example/"]);
  });

  it("uses the given selector's href instead of a[href]", () => {
    const d = doc(`<a href="/a">a</a><div class="pager"><a class="next" href="/list/4">next</a></div>
      <link rel="next" href="/list/9"><area href="/map">`);
    expect(d.links("div.pager a")).toEqual(["https://shop.example.com/list/4"]);
    expect(d.links("link[rel=next], area")).toEqual(["https://shop.example.com/list/9", "https://shop.example.com/map"]);
    expect(d.links("div.pager")).toEqual([]); // matched, but no href
  });

  it("percent-encodes and normalises like the URL standard", () => {
    const d = doc(`<a href="/caf&eacute; menu">x</a><a href="https://B&Uuml;CHER.example/">y</a>`);
    expect(d.links()).toEqual(["https://shop.example.com/caf%C3%A9%20menu", "https://xn--bcher-kva.example/"]);
  });

  it("matches new URL() on a corpus of tricky hrefs and bases (fast paths included)", () => {
    const hrefs = [
      "/item/3", "/item/3?x=1&y=2", "/item/3?x=1#frag", "/a/./b", "/a/../b", "/.well-known/x", "/%2e%2E/x",
      "/a%2fb", "/%zz", "/a b", "/a'b?c'd", "/a\"b", "/a|b", "/a^b", "/a`b", "/a{b}", "/a[b]", "/ü", "/a\\b",
      "//host.example/x", "/\\host/x", "/x?", "/x?#", "/x?a=<b>", "/x?q=%2e", "/a:b@c", "/~user/!$&()*+,;=",
      "https://example.com/x", "https://EXAMPLE.com/x", "https://example.com", "https://example.com?x",
      "https://example.com#x", "https://example.com/a/../b", "https://1.2.3.4/x", "https://0x7f.1/", "https://example.123/",
      "https://xn--nxasmq6b.com/", "https://a..b/", "https://a.b./", "https://user:pw@a.b/", "https://a.b:443/",
      "https://a.b:8080/", "http://a.b:80/", "https://a_b.example/", "https://-a.example/", "http://a.b/%zz",
      "http://a.b/x?it's", "https://a.b/ü?ü", "https:/a.b/x", "https:a.b", "http://", "https://a.b/\tx",
      "\n/item/9 ", " https://a.b/y", "item", "./item", "../../../../x", "?p=1", "?", "h", "http", "https://a.b/c#d#e",
      "HTTPS://A.B/", "file:///etc/passwd", "//", "///x",
    ];
    const bases = [
      "https://shop.example.com/list/3?page=2#r",
      "http://127.0.0.1:8080/a/b",
      "https://user:pw@cred.example/dir/",
      "https://[::1]:9000/x",
      "http://shop.example.com",
      // canonical page URLs (no <base>): the resolver parses them only for slow-path hrefs
      "https://shop.example.com/",
      "http://a.b:8080/x/y?q=1",
    ];
    for (const base of bases) {
      const html = hrefs.map((h) => `<a href="${h.replace(/&/g, "&amp;").replace(/"/g, "&quot;")}">x</a>`).join("");
      const got = doc(html, base).links();
      const want: string[] = [];
      for (const h of hrefs) {
        const lead = h.replace(/^[\x00-\x20]+/, "");
        if (lead === "" || lead.startsWith("#")) continue;
        const u = viaUrl(h, base);
        if (u !== null && !want.includes(u)) want.push(u);
      }
      expect(got, base).toEqual(want);
    }
  });

  it("takes an IPv4 host verbatim exactly when new URL() keeps it as it is", () => {
    const parts = ["0", "1", "9", "00", "01", "10", "99", "100", "255", "256", "999", "1000", ""];
    let seed = 3;
    const rnd = (n: number) => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) % n);
    for (let t = 0; t < 5000; t++) {
      const host = Array.from({ length: 1 + rnd(5) }, () => parts[rnd(parts.length)]).join(".");
      const url = `http://${host}:8080/x`;
      let href: string | null;
      try {
        href = new URL(url).href;
      } catch {
        href = null;
      }
      const fast = canonicalHttpUrl(url);
      if (fast !== null) expect(href, url).toBe(url);
      // (hosts with an empty label always take the new URL path)
      if (!host.split(".").includes("")) expect(fast, url).toBe(href === url ? url : null);
    }
  });

  it("returns [] without links or with an unparsable page URL and relative links", () => {
    expect(doc(`<p>none</p>`).links()).toEqual([]);
    expect(doc(`<a href="/x">x</a><a href="https://ok.example/">ok</a>`, "not a url").links()).toEqual(["https://ok.example/"]);
  });
});

describe("malformed html", () => {
  const MALFORMED = `<html><head><title>Broken &amp; Co</title>
<body>
<div class=header><a href=/home>Home</a> <a href='/about'>About</a>
<div id=main>
<h1 class=title>Broken <b>Widget</h1>
</div></div></div></span>
<p>para one <p>para two <p class=x>three
<span class=price>&euro;12,50 &nbsp</span>
<div class=desc><p>First line &copy 2024 &bogus; &amp<p>Second <i>italic</i></div>
<a href=/item/1>one</a><a href="/item/2?a=1&b=2">two</a><a href=/item/3 >three
<a href="/list/1">l1</a>
<table><tr><td><a href=/item/4>four</td></tr><a href="/item/5">five</a></table>
<li>stray
<a href="/item/6" href="/dup">six</a>
<A HREF="/item/7">SEVEN</A>
<a href = "/item/8" >eight</a>
</body></html>
<a href="/item/11">after html</a>
<!-- unterminated comment <a href="/item/99">no</a>`;

  it("parses without throwing and still extracts fields and links", () => {
    const d = doc(MALFORMED, "http://m.example/x/");
    expect(d.title).toBe("Broken & Co");
    expect(d.text("h1.title")).toBe("Broken Widget");
    expect(d.text("span.price")).toBe("€12,50");
    expect(d.text("div.desc")).toBe("First line © 2024 &bogus; & Second italic");
    expect(d.select("p").length).toBeGreaterThanOrEqual(3); // <p> inside <p> closes the first
    const links = d.links();
    expect(links).toEqual(
      ["/home", "/about", "/item/1", "/item/2?a=1&b=2", "/item/3", "/list/1", "/item/4", "/item/5", "/item/6", "/item/7", "/item/8", "/item/11"]
        .map((p) => "http://m.example" + p),
    );
  });

  it("reads truncated markup, garbage and pathological nesting as a browser would", () => {
    // [markup, elements, text of <a>, links]: what the HTML5 tokenizer makes of it
    const cases: Array<[string, number, string, string[]]> = [
      [`<a href="/x`, 0, "", []], // EOF inside a tag: the tag is dropped
      [`<div class="unterminated attr><a href="/y">y</a>`, 1, "", []], // the <a> is inside the attribute value
      [`<<<>>></a></div></p><p><<a href=/z>z`, 3, "z", ["https://shop.example.com/z"]],
      [`<script>never closed <a href="/s">`, 1, "", []], // raw text: no <a> inside a script
      [`<![CDATA[ x ]]><?php echo 1; ?><!DOCTYPE><!--->`, 0, "", []],
      [String.fromCharCode(...Array.from({ length: 4000 }, (_, i) => (i * 7919) % 65536)), 0, "", []],
      ["\u0000\uFFFF\uD800<a href=\"/\uD800\">lone surrogate</a>", 1, "lone surrogate", ["https://shop.example.com/%EF%BF%BD"]], // as new URL() encodes it
    ];
    for (const [html, elements, aText, links] of cases) {
      const d = doc(html);
      const where = JSON.stringify(html.slice(0, 60));
      expect(d.select("*").length, where).toBe(elements);
      expect(d.text("a"), where).toBe(aText);
      expect(d.links(), where).toEqual(links);
      expect(d.title, where).toBe("");
      expect(typeof d.select("a").html(), where).toBe("string");
    }
  });

  it("does not overflow the stack on 20 000 unclosed <div>s", () => {
    const d = doc("<div>".repeat(20_000) + `<p class="deep">deep <a href="/deep">d</a></p>`);
    // past the nesting cap (512, as in Chromium) the <a> becomes the <p>'s sibling, as a browser makes it
    expect(d.text("p.deep")).toBe("deep");
    expect(d.links()).toEqual(["https://shop.example.com/deep"]);
    expect(d.select("div div p.deep").length).toBe(1); // (the stray </p> then opens an empty <p>, as in a browser)
    expect(d.text("div")).toBe("deep d");
  });

  it("caps nesting at 512 open elements as browsers do: deeper elements become siblings, nothing is lost", () => {
    const n = 5_000;
    const d = doc(`<body>${Array.from({ length: n }, (_, i) => `<div id="d${i}">`).join("")}<p class="deep">deep <a href="/deep">d</a></p>${"</div>".repeat(n)}</body>`);
    expect(MAX_NESTING_DEPTH).toBe(512);
    expect(d.select("div").length).toBe(n);
    expect(d.text("p.deep")).toBe("deep"); // the <a> opened past the cap is the <p>'s sibling
    expect(d.select("#d510 ~ p.deep").length).toBe(1);
    expect(d.links()).toEqual(["https://shop.example.com/deep"]);
    // body + 510 nested divs and the next reach the cap: every div after that is a sibling of #d510
    expect(d.select("#d509 > #d510").length).toBe(1);
    expect(d.select("#d510 > #d511").length).toBe(0);
    expect(d.select("#d509 > #d4999").length).toBe(1);
  });
});

describe("empty document", () => {
  it("everything is empty and nothing throws", () => {
    for (const html of ["", "   \n  ", "<!-- only a comment -->", "<!DOCTYPE html>"]) {
      const d = doc(html);
      expect(d.title).toBe("");
      expect(d.select("*").length).toBe(0);
      expect(d.select("body").text()).toBe("");
      expect(d.text("h1")).toBe("");
      expect(d.attr("a", "href")).toBeUndefined();
      expect(d.links()).toEqual([]);
      expect(d.select("div").find("a").length).toBe(0);
    }
  });
});
