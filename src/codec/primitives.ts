// src/codec/primitives.ts: scalar checks and conversions shared by the codecs (UUID text/bytes,
// unsigned-int range checks, the JSON text inside mocra's JSON-in-a-string fields).

import type { JsonValue } from "../model/metadata.ts";
import { describe, FieldError } from "./errors.ts";
import type { WireType } from "./schema.ts";

/** hex digit char code -> value, or -1. */
const HEX_VALUE = new Int8Array(128).fill(-1);
for (let i = 0; i < 10; i++) HEX_VALUE[48 + i] = i;
for (let i = 0; i < 6; i++) {
  HEX_VALUE[97 + i] = 10 + i;
  HEX_VALUE[65 + i] = 10 + i;
}
const HEX: string[] = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));

const CANONICAL_UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/**
 * Any text form the Rust `uuid` crate parses (hyphenated, simple 32-hex, `urn:uuid:…`,
 * `{…}`; any case) -> the lowercase hyphenated form, or null if it is not a UUID.
 */
export function normalizeUuid(s: string): string | null {
  if (s.length === 36 && CANONICAL_UUID.test(s)) return s; // fast path
  let t = s;
  if (t.length === 45 && t.slice(0, 9).toLowerCase() === "urn:uuid:") t = t.slice(9);
  else if (t.length === 38 && t[0] === "{" && t[37] === "}") t = t.slice(1, 37);
  let hex: string;
  if (t.length === 36) {
    if (t[8] !== "-" || t[13] !== "-" || t[18] !== "-" || t[23] !== "-") return null;
    hex = t.slice(0, 8) + t.slice(9, 13) + t.slice(14, 18) + t.slice(19, 23) + t.slice(24);
  } else if (t.length === 32) hex = t;
  else return null;
  for (let i = 0; i < 32; i++) {
    const c = hex.charCodeAt(i);
    if (c >= 128 || HEX_VALUE[c] < 0) return null;
  }
  hex = hex.toLowerCase();
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** A TS-side UUID value checked for encoding -> its canonical text. */
export function uuidText(v: unknown): string {
  if (typeof v === "string") {
    const u = normalizeUuid(v);
    if (u !== null) return u;
  }
  throw new FieldError(`expected a UUID string, got ${describe(v)}`);
}

/** Write the 16 bytes of a canonical UUID text into `out` at `pos`. */
export function writeUuidBytes(canonical: string, out: Uint8Array, pos: number): void {
  let j = 0;
  for (let i = 0; i < 16; i++) {
    if (j === 8 || j === 13 || j === 18 || j === 23) j++;
    out[pos + i] = (HEX_VALUE[canonical.charCodeAt(j)] << 4) | HEX_VALUE[canonical.charCodeAt(j + 1)];
    j += 2;
  }
}

/** 16 bytes at `pos` -> canonical UUID text. */
export function uuidFromBytesAt(b: Uint8Array, pos: number): string {
  return (
    HEX[b[pos]] + HEX[b[pos + 1]] + HEX[b[pos + 2]] + HEX[b[pos + 3]] + "-" +
    HEX[b[pos + 4]] + HEX[b[pos + 5]] + "-" + HEX[b[pos + 6]] + HEX[b[pos + 7]] + "-" +
    HEX[b[pos + 8]] + HEX[b[pos + 9]] + "-" + HEX[b[pos + 10]] + HEX[b[pos + 11]] +
    HEX[b[pos + 12]] + HEX[b[pos + 13]] + HEX[b[pos + 14]] + HEX[b[pos + 15]]
  );
}

/** Check a number against an unsigned wire type (used by encoders and decoders alike). */
export function checkUint(t: Extract<WireType, { kind: "uint" }>, v: unknown): number {
  if (typeof v === "number" && Number.isInteger(v) && v >= 0 && v < t.limit) return v;
  throw new FieldError(`expected ${t.name} (an integer 0 <= n < ${t.limit === 0x10000 || t.limit === 0x100000000 ? t.limit : "2^64"}), got ${describe(v)}`);
}

/** The compact JSON text mocra puts inside a `with = value` string field. */
export function jsonText(v: unknown): string {
  if (v === undefined) return "null";
  let s: string | undefined;
  try {
    s = JSON.stringify(v);
  } catch (e) {
    throw new FieldError(`value is not serializable as JSON: ${e instanceof Error ? e.message : String(e)}`);
  }
  if (s === undefined) throw new FieldError(`value is not serializable as JSON: ${describe(v)}`);
  return s;
}

/** Parse the JSON text inside a `with = value` string field. */
export function parseJsonText(s: string): JsonValue {
  try {
    return JSON.parse(s) as JsonValue;
  } catch (e) {
    throw new FieldError(`the string does not hold valid JSON (${e instanceof Error ? e.message : String(e)}): ${describe(s)}`);
  }
}

/** UTF-8 encode (lone surrogates -> U+FFFD, like TextEncoder); returns the byte count. */
export function writeUtf8(s: string, out: Uint8Array, at: number): number {
  let p = at;
  for (let i = 0; i < s.length; i++) {
    let c = s.charCodeAt(i);
    if (c < 0x80) out[p++] = c;
    else if (c < 0x800) {
      out[p++] = 0xc0 | (c >> 6);
      out[p++] = 0x80 | (c & 0x3f);
    } else {
      if (c >= 0xd800 && c <= 0xdfff) {
        const d = i + 1 < s.length ? s.charCodeAt(i + 1) : 0;
        if (c <= 0xdbff && d >= 0xdc00 && d <= 0xdfff) {
          const cp = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
          out[p++] = 0xf0 | (cp >> 18);
          out[p++] = 0x80 | ((cp >> 12) & 0x3f);
          out[p++] = 0x80 | ((cp >> 6) & 0x3f);
          out[p++] = 0x80 | (cp & 0x3f);
          i++;
          continue;
        }
        c = 0xfffd;
      }
      out[p++] = 0xe0 | (c >> 12);
      out[p++] = 0x80 | ((c >> 6) & 0x3f);
      out[p++] = 0x80 | (c & 0x3f);
    }
  }
  return p - at;
}

const textDecoder = new TextDecoder("utf-8", { fatal: true });

/** The `n` bytes at `start` as UTF-8 text (ASCII fast path); FieldError on invalid UTF-8. */
export function utf8At(buf: Uint8Array, start: number, n: number): string {
  if (n < 64) {
    let ascii = true;
    for (let i = start; i < start + n; i++) {
      if (buf[i] >= 0x80) {
        ascii = false;
        break;
      }
    }
    if (ascii) return String.fromCharCode.apply(null, buf.subarray(start, start + n) as unknown as number[]);
  }
  try {
    return textDecoder.decode(buf.subarray(start, start + n));
  } catch {
    throw new FieldError(`invalid UTF-8 in a string at offset ${start}`);
  }
}
