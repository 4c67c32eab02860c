// src/codec/json.ts: the JSON codec, byte-exact with mocra's `serde_json::to_vec` (compact, every
// field in declaration order, null for None) and accepting what `serde_json::from_slice` accepts
// (unknown fields ignored, missing Option -> None, missing serde(default) -> default, structs also
// as positional arrays). Walks the schemas in schema.ts. FORMAT.md §2.5.

import type { Topic, TopicMessages } from "../model/index.ts";
import type { Codec } from "./codec.ts";
import { atPath, codecError, describe, FieldError } from "./errors.ts";
import { checkUint, jsonText, normalizeUuid, parseJsonText, uuidText } from "./primitives.ts";
import { cookieFromRaw, findVariant, missingField, schemaOf, type StructSchema, type WireType } from "./schema.ts";

type Obj = Record<string, unknown>;

const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

export const jsonCodec: Codec = {
  name: "json",
  encode<K extends Topic>(topic: K, message: TopicMessages[K]): Uint8Array {
    const schema = schemaOf(topic);
    try {
      return textEncoder.encode(encodeStruct(schema, message));
    } catch (e) {
      throw codecError("encode", "json", topic, schema.name, e);
    }
  },
  decode<K extends Topic>(topic: K, bytes: Uint8Array): TopicMessages[K] {
    const schema = schemaOf(topic);
    try {
      const value: unknown = JSON.parse(textDecoder.decode(bytes));
      return decodeStruct(schema, value) as unknown as TopicMessages[K];
    } catch (e) {
      throw codecError("decode", "json", topic, schema.name, e);
    }
  },
};

// ---- encode ----------------------------------------------------------------------------------

/** Per schema: `"wire":` for each field, with the separating comma before all but the first. */
const keyCache = new WeakMap<StructSchema, string[]>();
function keysOf(schema: StructSchema): string[] {
  let keys = keyCache.get(schema);
  if (keys === undefined) {
    keys = schema.fields.map((f, i) => `${i === 0 ? "" : ","}${JSON.stringify(f.wire)}:`);
    keyCache.set(schema, keys);
  }
  return keys;
}

function encodeStruct(schema: StructSchema, value: unknown): string {
  if (typeof value !== "object" || value === null) throw new FieldError(`expected an object, got ${describe(value)}`);
  const obj = value as Obj;
  const keys = keysOf(schema);
  const fields = schema.fields;
  let s = "{";
  let i = 0;
  try {
    for (; i < fields.length; i++) s += keys[i] + encodeValue(fields[i].type, obj[fields[i].key]);
  } catch (e) {
    throw atPath(e, fields[i].wire);
  }
  return s + "}";
}

function encodeValue(t: WireType, v: unknown): string {
  switch (t.kind) {
    case "str":
      if (typeof v !== "string") throw new FieldError(`expected a string, got ${describe(v)}`);
      return JSON.stringify(v);
    case "bool":
      if (typeof v !== "boolean") throw new FieldError(`expected a bool, got ${describe(v)}`);
      return v ? "true" : "false";
    case "uint":
      return String(checkUint(t, v));
    case "f32":
      if (typeof v !== "number") throw new FieldError(`expected an f32 number, got ${describe(v)}`);
      return formatF32(v);
    case "uuid":
      return `"${uuidText(v)}"`;
    case "bytes":
      if (!(v instanceof Uint8Array)) throw new FieldError(`expected a Uint8Array, got ${describe(v)}`);
      return byteArrayText(v);
    case "json":
      return JSON.stringify(jsonText(v));
    case "optJson":
      return v === undefined ? "null" : JSON.stringify(jsonText(v));
    case "option":
      return v === null || v === undefined ? "null" : encodeValue(t.inner, v);
    case "vec": {
      if (!Array.isArray(v)) throw new FieldError(`expected an array, got ${describe(v)}`);
      if (v.length === 0) return "[]";
      let s = "[";
      let i = 0;
      try {
        for (; i < v.length; i++) s += (i === 0 ? "" : ",") + encodeValue(t.item, v[i]);
      } catch (e) {
        throw atPath(e, String(i));
      }
      return s + "]";
    }
    case "tuple": {
      if (!Array.isArray(v) || v.length !== t.items.length) {
        throw new FieldError(`expected an array of ${t.items.length}, got ${describe(v)}`);
      }
      let s = "[";
      for (let i = 0; i < v.length; i++) s += (i === 0 ? "" : ",") + encodeValue(t.items[i], v[i]);
      return s + "]";
    }
    case "struct":
    case "cookie":
      return encodeStruct(t.schema, v);
    case "wrapper":
      try {
        return `{"${t.field}":${encodeValue(t.inner, v)}}`;
      } catch (e) {
        throw atPath(e, t.field);
      }
    case "unitEnum":
      if (typeof v !== "string" || !t.variants.includes(v)) {
        throw new FieldError(`expected one of ${t.variants.map((n) => `"${n}"`).join(", ")}, got ${describe(v)}`);
      }
      return `"${v}"`;
    case "enum": {
      const kind = typeof v === "object" && v !== null ? (v as Obj).kind : undefined;
      const variant = findVariant(t, kind);
      if (variant === undefined) {
        throw new FieldError(`expected {kind, value} with kind one of ${t.variants.map((x) => `"${x.name}"`).join(", ")}, got ${describe(kind ?? v)}`);
      }
      try {
        return `{"${variant.name}":${encodeValue(variant.type, (v as Obj).value)}}`;
      } catch (e) {
        throw atPath(e, variant.name);
      }
    }
  }
}

/** "0".."255" as ASCII bytes, 4 slots each: [length, d0, d1, d2]. */
const U8_DIGITS = new Uint8Array(256 * 4);
for (let i = 0; i < 256; i++) {
  const s = String(i);
  U8_DIGITS[i * 4] = s.length;
  for (let j = 0; j < s.length; j++) U8_DIGITS[i * 4 + 1 + j] = s.charCodeAt(j);
}
const asciiDecoder = new TextDecoder(); // the digits are ASCII, so UTF-8 decoding is exact

/** Vec<u8> as `[1,2,200]`, built as ASCII bytes (TypedArray.join is slow for big bodies). */
function byteArrayText(v: Uint8Array): string {
  if (v.length < 16) return `[${v.join(",")}]`;
  const out = new Uint8Array(v.length * 4 + 1);
  let p = 0;
  out[p++] = 0x5b; // [
  for (let i = 0; i < v.length; i++) {
    if (i > 0) out[p++] = 0x2c; // ,
    const d = v[i] * 4;
    const n = U8_DIGITS[d];
    out[p++] = U8_DIGITS[d + 1];
    if (n > 1) out[p++] = U8_DIGITS[d + 2];
    if (n > 2) out[p++] = U8_DIGITS[d + 3];
  }
  out[p++] = 0x5d; // ]
  return asciiDecoder.decode(out.subarray(0, p));
}

/**
 * An f32 the way serde_json writes it (ryu's f32 formatting): the shortest decimal that reads
 * back as the same f32, plain notation for 1e-6 <= |x| < 1e13 with ".0" on integral values
 * (3 -> "3.0", 2.5 -> "2.5"), else "1e30" / "1.5e-7". NaN and infinities become null.
 */
export function formatF32(x: number): string {
  const f = Math.fround(x);
  if (!Number.isFinite(f)) return "null";
  if (f === 0) return Object.is(f, -0) ? "-0.0" : "0.0";
  const sign = f < 0 ? "-" : "";
  const a = Math.abs(f);
  let digits = "";
  let exp = 0; // a == 0.<digits> * 10^exp
  for (let p = 1; p <= 9; p++) {
    const e = a.toExponential(p - 1); // correctly rounded: "d.ddde+x"
    const ePos = e.indexOf("e");
    const m = e.slice(0, ePos).replace(".", "");
    const x10 = Number(e.slice(ePos + 1));
    if (Math.fround(Number(e)) === a) {
      digits = m;
      exp = x10 + 1;
      break;
    }
    // At a power of two the round-trip interval is twice as wide above as below, so the next
    // p-digit number up can round-trip when the nearest one (below) does not.
    const up = String(Number(m) + 1);
    const upExp = x10 + 1 + (up.length - m.length);
    if (Math.fround(Number(`0.${up}e${upExp}`)) === a) {
      digits = up;
      exp = upExp;
      break;
    }
  }
  digits = digits.replace(/0+$/, "");
  const len = digits.length;
  const k = exp - len; // a == digits * 10^k
  let out: string;
  if (k >= 0 && exp <= 13) out = `${digits}${"0".repeat(k)}.0`;
  else if (exp > 0 && exp <= 13) out = `${digits.slice(0, exp)}.${digits.slice(exp)}`;
  else if (exp > -6 && exp <= 0) out = `0.${"0".repeat(-exp)}${digits}`;
  else if (len === 1) out = `${digits}e${exp - 1}`;
  else out = `${digits[0]}.${digits.slice(1)}e${exp - 1}`;
  return sign + out;
}

// ---- decode ----------------------------------------------------------------------------------

function decodeStruct(schema: StructSchema, v: unknown): Obj {
  if (Array.isArray(v)) return decodeStructSeq(schema, v);
  if (typeof v !== "object" || v === null) throw new FieldError(`expected struct ${schema.name} (an object), got ${describe(v)}`);
  const src = v as Obj;
  const fields = schema.fields;
  const out: Obj = {};
  let i = 0;
  try {
    for (; i < fields.length; i++) {
      const f = fields[i];
      const raw = src[f.wire]; // (no wire name collides with an Object.prototype member)
      out[f.key] = raw === undefined ? missingField(schema, i) : decodeValue(f.type, raw);
    }
  } catch (e) {
    throw atPath(e, fields[i].wire);
  }
  return out;
}

/** serde also lets a struct come as an array of its fields in order. */
function decodeStructSeq(schema: StructSchema, arr: unknown[]): Obj {
  const fields = schema.fields;
  if (arr.length > fields.length) throw new FieldError(`invalid length ${arr.length}, expected struct ${schema.name} with ${fields.length} elements`);
  const out: Obj = {};
  let i = 0;
  try {
    for (; i < fields.length; i++) {
      const f = fields[i];
      if (i < arr.length) out[f.key] = decodeValue(f.type, arr[i]);
      else if (f.default !== undefined) out[f.key] = f.default();
      else throw new FieldError(`invalid length ${arr.length}, expected struct ${schema.name} with ${fields.length} elements`);
    }
  } catch (e) {
    throw atPath(e, fields[i].wire);
  }
  return out;
}

function decodeValue(t: WireType, v: unknown): unknown {
  switch (t.kind) {
    case "str":
      if (typeof v !== "string") throw new FieldError(`expected a string, got ${describe(v)}`);
      return v;
    case "bool":
      if (typeof v !== "boolean") throw new FieldError(`expected a bool, got ${describe(v)}`);
      return v;
    case "uint":
      return checkUint(t, v);
    case "f32":
      if (typeof v !== "number") throw new FieldError(`expected an f32 number, got ${describe(v)}`);
      return Math.fround(v);
    case "uuid": {
      const u = typeof v === "string" ? normalizeUuid(v) : null;
      if (u === null) throw new FieldError(`expected a UUID string, got ${describe(v)}`);
      return u;
    }
    case "bytes": {
      if (!Array.isArray(v)) throw new FieldError(`expected Vec<u8> (an array of integers 0..255), got ${describe(v)}`);
      const out = new Uint8Array(v.length);
      for (let i = 0; i < v.length; i++) {
        const b: unknown = v[i];
        if (typeof b !== "number" || !Number.isInteger(b) || b < 0 || b > 255) {
          throw new FieldError(`expected a u8 at index ${i}, got ${describe(b)}`);
        }
        out[i] = b;
      }
      return out;
    }
    case "json":
      if (typeof v !== "string") throw new FieldError(`expected a string holding JSON, got ${describe(v)}`);
      return parseJsonText(v);
    case "optJson":
      if (v === null) return undefined;
      if (typeof v !== "string") throw new FieldError(`expected null or a string holding JSON, got ${describe(v)}`);
      return parseJsonText(v);
    case "option":
      return v === null ? null : decodeValue(t.inner, v);
    case "vec": {
      if (!Array.isArray(v)) throw new FieldError(`expected an array, got ${describe(v)}`);
      const out: unknown[] = new Array(v.length);
      let i = 0;
      try {
        for (; i < v.length; i++) out[i] = decodeValue(t.item, v[i]);
      } catch (e) {
        throw atPath(e, String(i));
      }
      return out;
    }
    case "tuple": {
      if (!Array.isArray(v) || v.length !== t.items.length) {
        throw new FieldError(`expected an array of ${t.items.length}, got ${describe(v)}`);
      }
      const out: unknown[] = new Array(v.length);
      for (let i = 0; i < v.length; i++) out[i] = decodeValue(t.items[i], v[i]);
      return out;
    }
    case "struct":
      return decodeStruct(t.schema, v);
    case "cookie":
      if (Array.isArray(v)) return decodeStructSeq(t.schema, v);
      if (typeof v !== "object" || v === null) throw new FieldError(`expected a CookieItem object, got ${describe(v)}`);
      return cookieFromRaw(v as Obj);
    case "wrapper": {
      let inner: unknown;
      if (Array.isArray(v) && v.length === 1) inner = v[0];
      else if (typeof v === "object" && v !== null && !Array.isArray(v)) inner = (v as Obj)[t.field];
      else throw new FieldError(`expected struct ${t.name} ({"${t.field}": …}), got ${describe(v)}`);
      if (inner === undefined) throw new FieldError(`missing field "${t.field}" in ${t.name}`);
      try {
        return decodeValue(t.inner, inner);
      } catch (e) {
        throw atPath(e, t.field);
      }
    }
    case "unitEnum":
      if (typeof v !== "string" || !t.variants.includes(v)) {
        throw new FieldError(
          `${typeof v === "string" ? `unknown variant "${v}"` : `invalid type: ${describe(v)}`}, expected one of ${t.variants.map((n) => `"${n}"`).join(", ")}`,
        );
      }
      return v;
    case "enum": {
      const keys = typeof v === "object" && v !== null && !Array.isArray(v) ? Object.keys(v) : [];
      if (keys.length !== 1) throw new FieldError(`expected ${t.name} as an object with exactly one variant key, got ${describe(v)}`);
      const variant = findVariant(t, keys[0]);
      if (variant === undefined) {
        throw new FieldError(`unknown variant "${keys[0]}", expected one of ${t.variants.map((x) => `"${x.name}"`).join(", ")}`);
      }
      try {
        return { kind: variant.name, value: decodeValue(variant.type, (v as Obj)[keys[0]]) };
      } catch (e) {
        throw atPath(e, variant.name);
      }
    }
  }
}
