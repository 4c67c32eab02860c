/**
 * What kind of body a response has, from its Content-Type (or, when that is missing, a sniff of
 * the first bytes as the WHATWG MIME Sniffing standard does for HTML). Only `html` gets the HTML
 * DOM helpers; `xml` gets an XML-mode document; `binary` bodies reach a module's parse() only
 * when it lists their type in `contentTypes`.
 */
import picomatch from "picomatch";

export type BodyKind = "html" | "xml" | "json" | "text" | "binary";

/** The lower-case MIME type of a Content-Type value, without parameters ("" when absent). */
export function mimeOf(contentType: string | undefined): string {
  if (!contentType) return "";
  const semi = contentType.indexOf(";");
  return (semi < 0 ? contentType : contentType.slice(0, semi)).trim().toLowerCase();
}

const HTML_SNIFF = /^(<!doctype html|<html|<head|<body|<script|<iframe|<h1|<div|<font|<table|<a[\s>]|<style|<title|<b[\s>]|<br|<p[\s>]|<!--)/i;

/** A body with no Content-Type: HTML, XML or JSON by its first bytes, binary when it holds control bytes, else text. */
function sniffKind(bytes: Uint8Array): BodyKind {
  let i = 0;
  if (bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) i = 3;
  while (i < bytes.length && (bytes[i] === 0x20 || (bytes[i] >= 0x09 && bytes[i] <= 0x0d))) i++;
  let head = "";
  for (let j = i; j < Math.min(bytes.length, i + 512); j++) head += String.fromCharCode(bytes[j]);
  if (HTML_SNIFF.test(head)) return "html";
  if (head.startsWith("<?xml")) return "xml";
  for (let j = 0; j < Math.min(bytes.length, 512); j++) {
    const b = bytes[j];
    if (b < 0x09 || (b > 0x0d && b < 0x20 && b !== 0x1b)) return "binary";
  }
  if (head.startsWith("{") || head.startsWith("[")) return "json";
  return "text";
}

/** The kind of a body with this Content-Type. */
export function bodyKind(contentType: string | undefined, bytes: Uint8Array): BodyKind {
  const mime = mimeOf(contentType);
  if (mime === "" || mime === "unknown/unknown" || mime === "application/unknown" || mime === "*/*") return sniffKind(bytes);
  if (mime === "text/html" || mime === "application/xhtml+xml") return "html";
  if (mime === "application/json" || mime === "text/json" || mime.endsWith("+json")) return "json";
  if (mime === "text/xml" || mime === "application/xml" || mime.endsWith("+xml")) return "xml";
  if (mime.startsWith("text/")) return "text";
  return "binary";
}

const typeMatchers = new WeakMap<readonly string[], (mime: string) => boolean>();

/**
 * Whether a module gets a response of this kind and type in parse(): every text kind (HTML,
 * XML, JSON, text), and binary types only when `contentTypes` lists them (exact or glob,
 * "application/pdf", "image/*").
 */
export function wantsBody(kind: BodyKind, contentType: string | undefined, contentTypes: readonly string[] | undefined): boolean {
  if (kind !== "binary") return true;
  if (!contentTypes || contentTypes.length === 0) return false;
  let m = typeMatchers.get(contentTypes);
  if (!m) {
    const isMatch = picomatch(contentTypes.map((t) => t.toLowerCase()), { nocase: true });
    m = (mime: string) => isMatch(mime);
    typeMatchers.set(contentTypes, m);
  }
  return m(mimeOf(contentType) || "application/octet-stream");
}
