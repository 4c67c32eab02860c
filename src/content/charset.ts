/**
 * Decoding response bodies by their real charset, in the WHATWG order (HTML "determining the
 * character encoding", as w3lib.encoding does it): byte-order mark, then the Content-Type
 * charset, then `<meta charset>` / `<meta http-equiv="Content-Type">` (or an XML declaration)
 * in the first 1 024 bytes, then UTF-8 when the bytes are valid UTF-8, else windows-1252.
 * Decoding itself is the runtime's TextDecoder (full ICU on Node and Deno: Shift_JIS, GBK,
 * EUC-KR, windows-1252, ...; ISO-8859-1 and latin1 are windows-1252 by the Encoding Standard).
 * One exception: Node 20's TextDecoder decodes windows-1252 (and so ISO-8859-1) as plain
 * latin-1, giving C1 controls for 0x80-0x9F instead of "€", "–", "“"...; Deno's is right. So
 * windows-1252 is decoded here by its table (tests/charset.test.ts catches a regression).
 * The prescan is written here rather than taken from html-encoding-sniffer because that one
 * cannot express the "UTF-8 if valid, else windows-1252" fallback crawlers need.
 */

export type CharsetSource = "bom" | "header" | "meta" | "utf-8" | "fallback";

export interface SniffedCharset {
  /** the Encoding Standard name (TextDecoder's `encoding`) */
  encoding: string;
  source: CharsetSource;
}

const PRESCAN_BYTES = 1024;

/** The Encoding Standard name of a charset label, or undefined if TextDecoder does not know it. */
export function encodingOf(label: string): string | undefined {
  try {
    return new TextDecoder(label.trim()).encoding;
  } catch {
    return undefined;
  }
}

function bomEncoding(b: Uint8Array): string | undefined {
  if (b[0] === 0xef && b[1] === 0xbb && b[2] === 0xbf) return "utf-8";
  if (b[0] === 0xfe && b[1] === 0xff) return "utf-16be";
  if (b[0] === 0xff && b[1] === 0xfe) return "utf-16le";
  return undefined;
}

/** The `charset` parameter of a Content-Type value. */
export function charsetParam(contentType: string | undefined): string | undefined {
  if (!contentType) return undefined;
  const m = /;\s*charset\s*=\s*("?)([^";\s]+)\1/i.exec(contentType);
  return m?.[2];
}

/**
 * The prescan's view of the bytes: one character per byte (a single-byte decoding; only the
 * ASCII in it matters). One decode call instead of a String.fromCharCode per byte: the prescan
 * of a page whose Content-Type names no charset went from ~14 to ~4 us.
 */
const ONE_CHAR_PER_BYTE = new TextDecoder("windows-1252");

/** A charset named in the first 1 024 bytes by a `<meta>` tag or an XML declaration. */
function prescan(b: Uint8Array): string | undefined {
  let head = ONE_CHAR_PER_BYTE.decode(b.subarray(0, PRESCAN_BYTES));
  const xml = /^<\?xml[^>]*\bencoding\s*=\s*["']([^"']+)["']/i.exec(head);
  if (xml) return xml[1];
  head = head.replace(/<!--[\s\S]*?(-->|$)/g, "");
  for (const tag of head.matchAll(/<meta\b([^>]*)>?/gi)) {
    const attrs = tag[1];
    const direct = /\bcharset\s*=\s*["']?\s*([^"'\s/>;]+)/i.exec(attrs);
    if (direct && !/\bcontent\s*=/i.test(attrs.slice(0, direct.index))) return direct[1];
    if (/\bhttp-equiv\s*=\s*["']?\s*content-type/i.test(attrs)) {
      const content = /\bcontent\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+))/i.exec(attrs);
      const value = content?.[1] ?? content?.[2] ?? content?.[3];
      const cs = value && /charset\s*=\s*["']?([^"'\s;]+)/i.exec(value);
      if (cs) return cs[1];
    }
  }
  return undefined;
}

/** The encoding the body declares (BOM, Content-Type, meta/XML declaration), if any. */
function declaredCharset(bytes: Uint8Array, contentType?: string): SniffedCharset | undefined {
  const bom = bomEncoding(bytes);
  if (bom) return { encoding: bom, source: "bom" };
  const fromHeader = charsetParam(contentType);
  const headerEncoding = fromHeader ? encodingOf(fromHeader) : undefined;
  if (headerEncoding) return { encoding: headerEncoding, source: "header" };
  const fromMeta = prescan(bytes);
  let metaEncoding = fromMeta ? encodingOf(fromMeta) : undefined;
  // a meta tag read as ASCII cannot be UTF-16 (HTML spec); x-user-defined is windows-1252
  if (metaEncoding === "utf-16le" || metaEncoding === "utf-16be") metaEncoding = "utf-8";
  if (metaEncoding === "x-user-defined") metaEncoding = "windows-1252";
  return metaEncoding ? { encoding: metaEncoding, source: "meta" } : undefined;
}

/** UTF-8 text of bytes that are valid UTF-8, else undefined. */
function strictUtf8(bytes: Uint8Array): string | undefined {
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    return undefined;
  }
}

/** Which encoding a body is in, and how that was decided. */
export function sniffCharset(bytes: Uint8Array, contentType?: string): SniffedCharset {
  return (
    declaredCharset(bytes, contentType) ??
    (strictUtf8(bytes) !== undefined ? { encoding: "utf-8", source: "utf-8" } : { encoding: "windows-1252", source: "fallback" })
  );
}

// windows-1252 0x80-0x9F (0 = undefined in the Encoding Standard: decoded as the C1 control)
const CP1252_HIGH = [
  0x20ac, 0, 0x201a, 0x0192, 0x201e, 0x2026, 0x2020, 0x2021, 0x02c6, 0x2030, 0x0160, 0x2039, 0x0152, 0, 0x017d, 0,
  0, 0x2018, 0x2019, 0x201c, 0x201d, 0x2022, 0x2013, 0x2014, 0x02dc, 0x2122, 0x0161, 0x203a, 0x0153, 0, 0x017e, 0x0178,
];

function decodeWindows1252(bytes: Uint8Array): string {
  const CHUNK = 8192;
  let out = "";
  const codes = new Uint16Array(Math.min(bytes.length, CHUNK));
  for (let start = 0; start < bytes.length; start += CHUNK) {
    const end = Math.min(bytes.length, start + CHUNK);
    for (let i = start; i < end; i++) {
      const b = bytes[i];
      codes[i - start] = b >= 0x80 && b < 0xa0 ? CP1252_HIGH[b - 0x80] || b : b;
    }
    out += String.fromCharCode(...codes.subarray(0, end - start));
  }
  return out;
}

/** Decodes with the runtime's TextDecoder, except windows-1252 (see above). */
export function decodeAs(encoding: string, bytes: Uint8Array): string {
  return encoding === "windows-1252" ? decodeWindows1252(bytes) : new TextDecoder(encoding).decode(bytes);
}

/** The body as text in its sniffed encoding (a BOM is removed; undecodable bytes become U+FFFD). */
export function decodeBody(bytes: Uint8Array, contentType?: string): string {
  const declared = declaredCharset(bytes, contentType);
  if (declared) return decodeAs(declared.encoding, bytes);
  return strictUtf8(bytes) ?? decodeWindows1252(bytes);
}
