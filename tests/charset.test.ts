// Body charsets (WHATWG order) and content kinds, on the runtime's TextDecoder.
import { describe, expect, it } from "vitest";
import { decodeBody, sniffCharset } from "../src/content/charset.ts";
import { bodyKind, wantsBody } from "../src/content/content-type.ts";
import { response } from "../src/model/index.ts";
import { Page, URL_HEADER } from "../src/modules/page.ts";

const bytes = (...b: number[]) => new Uint8Array(b);
const ascii = (s: string) => new Uint8Array([...s].map((c) => c.charCodeAt(0)));
const cat = (...parts: Uint8Array[]) => new Uint8Array(Buffer.concat(parts));

// "日本語" in Shift_JIS, "中文" in GBK, "한국어" in EUC-KR, "café – €" in windows-1252
const SJIS = bytes(0x93, 0xfa, 0x96, 0x7b, 0x8c, 0xea);
const GBK = bytes(0xd6, 0xd0, 0xce, 0xc4);
const EUCKR = bytes(0xc7, 0xd1, 0xb1, 0xb9, 0xbe, 0xee);
const CP1252 = bytes(0x63, 0x61, 0x66, 0xe9, 0x20, 0x96, 0x20, 0x80);

describe("charsets", () => {
  it("Content-Type charset: Shift_JIS, GBK, EUC-KR, windows-1252, ISO-8859-1", () => {
    expect(decodeBody(SJIS, "text/html; charset=Shift_JIS")).toBe("日本語");
    expect(decodeBody(GBK, "text/html; charset=gbk")).toBe("中文");
    expect(decodeBody(GBK, 'text/html; charset="GB2312"')).toBe("中文");
    expect(decodeBody(EUCKR, "text/html;charset=euc-kr")).toBe("한국어");
    expect(decodeBody(CP1252, "text/html; charset=windows-1252")).toBe("café – €");
    expect(decodeBody(bytes(0x63, 0x61, 0x66, 0xe9), "text/html; charset=ISO-8859-1")).toBe("café");
  });

  it("<meta charset> and <meta http-equiv> in the first 1024 bytes, when the header has none", () => {
    const meta = cat(ascii('<html><head><meta charset="shift_jis"><title>'), SJIS, ascii("</title>"));
    expect(sniffCharset(meta, "text/html")).toEqual({ encoding: "shift_jis", source: "meta" });
    const equiv = cat(ascii(`<!-- <meta charset="utf-8"> --><meta http-equiv="Content-Type" content="text/html; charset=iso-8859-1"><p>`), bytes(0xe9));
    expect(decodeBody(equiv, "text/html")).toBe(`<!-- <meta charset="utf-8"> --><meta http-equiv="Content-Type" content="text/html; charset=iso-8859-1"><p>é`);
    const late = cat(ascii(`<p>${" ".repeat(1100)}</p><meta charset="shift_jis">`), SJIS);
    expect(sniffCharset(late, "text/html")).toEqual({ encoding: "windows-1252", source: "fallback" }); // meta too late: not seen
  });

  it("BOM first, then header: a UTF-8 BOM wins over a wrong header and is removed", () => {
    const body = cat(bytes(0xef, 0xbb, 0xbf), new TextEncoder().encode("naïve"));
    expect(decodeBody(body, "text/html; charset=windows-1252")).toBe("naïve");
  });

  it("no declaration: UTF-8 when valid, else windows-1252", () => {
    expect(decodeBody(new TextEncoder().encode("Grüße"), "text/html")).toBe("Grüße");
    expect(sniffCharset(CP1252)).toEqual({ encoding: "windows-1252", source: "fallback" });
    expect(decodeBody(CP1252)).toBe("café – €");
  });

  it("an unknown label falls through to the next rule", () => {
    expect(decodeBody(new TextEncoder().encode("ok ü"), "text/html; charset=no-such-charset")).toBe("ok ü");
  });
});

describe("content kinds", () => {
  it("by Content-Type, sniffed when missing", () => {
    expect(bodyKind("text/html; charset=utf-8", ascii(""))).toBe("html");
    expect(bodyKind("application/xhtml+xml", ascii(""))).toBe("html");
    expect(bodyKind("application/json", ascii(""))).toBe("json");
    expect(bodyKind("application/ld+json", ascii(""))).toBe("json");
    expect(bodyKind("application/rss+xml", ascii(""))).toBe("xml");
    expect(bodyKind("text/xml", ascii(""))).toBe("xml");
    expect(bodyKind("text/plain", ascii(""))).toBe("text");
    expect(bodyKind("application/pdf", ascii('<a href="/x">'))).toBe("binary");
    expect(bodyKind("image/png", ascii('<a href="/x">'))).toBe("binary");
    expect(bodyKind("application/octet-stream", ascii("<html>"))).toBe("binary");
    expect(bodyKind(undefined, ascii("  <!DOCTYPE html><p>"))).toBe("html");
    expect(bodyKind(undefined, ascii('<?xml version="1.0"?><urlset/>'))).toBe("xml");
    expect(bodyKind(undefined, bytes(0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a))).toBe("binary");
    expect(bodyKind(undefined, ascii('{"a":1}'))).toBe("json");
  });

  it("binary bodies reach parse() only when the module lists their type", () => {
    expect(wantsBody("html", "text/html", undefined)).toBe(true);
    expect(wantsBody("binary", "application/pdf", undefined)).toBe(false);
    expect(wantsBody("binary", "application/pdf", ["application/pdf"])).toBe(true);
    expect(wantsBody("binary", "image/png", ["image/*"])).toBe(true);
    expect(wantsBody("binary", "image/png", ["application/pdf"])).toBe(false);
  });

  it("a PDF or PNG whose bytes contain href gives no links, no selections; JSON and XML have their own views", () => {
    const page = (ct: string, body: Uint8Array) => new Page(response({ content: body, headers: [["content-type", ct], [URL_HEADER, "http://x.example/f"]] }), "http://x.example/f", null);
    const pdf = page("application/pdf", ascii('%PDF-1.4 <a href="/secret">x</a>'));
    expect(pdf.links()).toEqual([]);
    expect(pdf.select("a").length).toBe(0);
    expect(pdf.kind).toBe("binary");
    expect(page("application/json", ascii('{"n":[1,2]}')).json()).toEqual({ n: [1, 2] });
    const xml = page("application/xml", ascii('<urlset><url><loc>http://x.example/a</loc></url><URL><loc>b</loc></URL></urlset>'));
    expect(xml.select("url loc").texts()).toEqual(["http://x.example/a"]); // XML mode: names are case-sensitive
    const html = page("text/html", ascii('<link rel="canonical" href="/item/1?b=1"><meta name="robots" content="NOINDEX, nofollow"><a href="/z">z</a>'));
    expect(html.canonicalUrl).toBe("http://x.example/item/1?b=1");
    expect(html.metaRobots).toEqual(["noindex", "nofollow"]);
    expect(html.links()).toEqual(["http://x.example/z"]);
  });
});
