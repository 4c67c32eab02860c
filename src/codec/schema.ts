// src/codec/schema.ts: the wire schema of every message mocra puts on the queue, written once and
// walked by every codec (json.ts, msgpack.ts; a bincode codec would walk the same lists).
// Each struct is an ordered list of fields {wire name, TS key, wire type}; the order is mocra's
// declaration order, which is the positional order of msgpack arrays and bincode. See
// tests/fixtures/wire/FORMAT.md §1.2 (types) and §2 (encodings).

import type { Topic } from "../model/index.ts";
import { uuidv7 } from "../model/uuid.ts";
import { CodecError, describe, FieldError } from "./errors.ts";

/** The wire shape of one value. TS-side representation in the comments. */
export type WireType =
  | { readonly kind: "str" } // string
  | { readonly kind: "bool" } // boolean
  | { readonly kind: "uint"; readonly name: UintName; readonly limit: number } // number: integer, 0 <= n < limit
  | { readonly kind: "f32" } // number
  | { readonly kind: "uuid" } // lowercase hyphenated string
  | { readonly kind: "bytes" } // Uint8Array (Vec<u8>: a sequence of ints, never bin/str)
  | { readonly kind: "json" } // JsonValue; serde_json::Value carried as a STRING holding JSON
  | { readonly kind: "optJson" } // JsonValue | undefined; Option<Value> (undefined = None, null = Some(Null))
  | { readonly kind: "option"; readonly inner: WireType } // T | null
  | { readonly kind: "vec"; readonly item: WireType } // T[]
  | { readonly kind: "tuple"; readonly items: readonly WireType[] } // [A, B, ...]
  | { readonly kind: "struct"; readonly schema: StructSchema } // object with the schema's TS keys
  | { readonly kind: "wrapper"; readonly name: string; readonly field: string; readonly inner: WireType } // the inner value itself
  | { readonly kind: "unitEnum"; readonly name: string; readonly variants: readonly string[] } // variant name
  | { readonly kind: "enum"; readonly name: string; readonly variants: readonly EnumVariant[] } // {kind, value}
  | { readonly kind: "cookie"; readonly schema: StructSchema }; // CookieItem (custom serde, see COOKIE_ITEM)

export type UintName = "u16" | "u32" | "u64" | "usize";

/** One variant of an externally tagged newtype enum; its index is its bincode tag. */
export interface EnumVariant {
  readonly name: string;
  readonly type: WireType;
}

export interface Field {
  /** mocra's (serde) field name. */
  readonly wire: string;
  /** The property name in the TS model. */
  readonly key: string;
  readonly type: WireType;
  /** serde(default): the value used when the field is missing on decode. */
  readonly default?: () => unknown;
}

export interface StructSchema {
  /** mocra's type name, for error messages. */
  readonly name: string;
  readonly fields: readonly Field[];
  /** wire name -> index in `fields`. */
  readonly index: ReadonlyMap<string, number>;
}

// ---- type constructors ---------------------------------------------------------------------

export const str: WireType = { kind: "str" };
export const bool: WireType = { kind: "bool" };
/** 2^64, exclusive bound of u64 (u64 values above 2^53 lose precision as JS numbers). */
export const TWO_POW_64 = 18446744073709551616;
export const u16: WireType = { kind: "uint", name: "u16", limit: 0x10000 };
export const u32: WireType = { kind: "uint", name: "u32", limit: 0x100000000 };
export const u64: WireType = { kind: "uint", name: "u64", limit: TWO_POW_64 };
export const usize: WireType = { kind: "uint", name: "usize", limit: TWO_POW_64 };
export const f32: WireType = { kind: "f32" };
export const uuid: WireType = { kind: "uuid" };
export const bytes: WireType = { kind: "bytes" };
export const jsonString: WireType = { kind: "json" };
export const optJsonString: WireType = { kind: "optJson" };
export const option = (inner: WireType): WireType => ({ kind: "option", inner });
export const vec = (item: WireType): WireType => ({ kind: "vec", item });
export const tuple = (...items: WireType[]): WireType => ({ kind: "tuple", items });
export const struct = (schema: StructSchema): WireType => ({ kind: "struct", schema });

/** snake_case wire name -> camelCase TS key ("max_age" -> "maxAge"; "httpOnly" stays). */
function camel(wire: string): string {
  return wire.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

type FieldSpec = [wire: string, type: WireType, defaultValue?: () => unknown];

export function defineStruct(name: string, specs: readonly FieldSpec[]): StructSchema {
  const fields: Field[] = specs.map(([wire, type, dflt]) =>
    dflt === undefined ? { wire, key: camel(wire), type } : { wire, key: camel(wire), type, default: dflt },
  );
  return { name, fields, index: new Map(fields.map((f, i) => [f.wire, i])) };
}

/** A human-readable Rust-ish name of a wire type, for error messages. */
export function typeName(t: WireType): string {
  switch (t.kind) {
    case "str":
      return "String";
    case "bool":
      return "bool";
    case "uint":
      return t.name;
    case "f32":
      return "f32";
    case "uuid":
      return "Uuid";
    case "bytes":
      return "Vec<u8>";
    case "json":
      return "String (JSON)";
    case "optJson":
      return "Option<String (JSON)>";
    case "option":
      return `Option<${typeName(t.inner)}>`;
    case "vec":
      return `Vec<${typeName(t.item)}>`;
    case "tuple":
      return `(${t.items.map(typeName).join(", ")})`;
    case "struct":
    case "cookie":
      return t.schema.name;
    case "wrapper":
    case "unitEnum":
    case "enum":
      return t.name;
  }
}

/** The value of a field absent from a map: its serde default, None for an Option, else an error. */
export function missingField(schema: StructSchema, i: number): unknown {
  const f = schema.fields[i];
  if (f.default !== undefined) return f.default();
  if (f.type.kind === "option") return null;
  if (f.type.kind === "optJson") return undefined; // Rust errors here (serde `with`); None is kinder
  throw new FieldError(`missing field "${f.wire}" (${typeName(f.type)})`);
}

// ---- mocra's types -------------------------------------------------------------------------

/** utils/src/priority.rs: unit enum; the name on json/msgpack, the index (Low=0) in bincode. */
export const PRIORITY: WireType = { kind: "unitEnum", name: "Priority", variants: ["low", "normal", "high"] };
const defaultPriority = (): string => "normal";
const defaultRunId = (): string => uuidv7();

export const EXECUTION_MARK = defineStruct("ExecutionMark", [
  ["module_id", option(str)],
  ["step_idx", option(u32)],
  ["epoch", option(u64)],
  ["stay_current_step", bool, () => false],
]);

export const META_DATA = defineStruct("MetaData", [
  ["task", jsonString],
  ["login_info", jsonString],
  ["module_config", jsonString],
  ["trait_meta", jsonString],
]);

export const HEADER_ITEM = defineStruct("HeaderItem", [
  ["key", str],
  ["value", str],
]);

/**
 * CookieItem as it SERIALIZES (8 fields). Its Deserialize is custom (an 11-field RawItem with
 * aliases, FORMAT §1.2), so codecs decode a map/object form through `cookieFromRaw` below and
 * an array form positionally with these 8 fields.
 */
export const COOKIE_ITEM = defineStruct("CookieItem", [
  ["name", str],
  ["value", str],
  ["domain", str],
  ["path", str],
  ["expires", option(u64)],
  ["max_age", option(u64)],
  ["secure", bool],
  ["httpOnly", option(bool)],
]);

const HEADERS: WireType = { kind: "wrapper", name: "Headers", field: "headers", inner: vec(struct(HEADER_ITEM)) };
const COOKIES: WireType = {
  kind: "wrapper",
  name: "Cookies",
  field: "cookies",
  inner: vec({ kind: "cookie", schema: COOKIE_ITEM }),
};

export const IP_PROXY = defineStruct("IpProxy", [
  ["ip", str],
  ["port", u16],
  ["username", option(str)],
  ["password", option(str)],
  ["proxy_type", option(str)],
  ["rate_limit", f32],
]);

export const TUNNEL = defineStruct("Tunnel", [
  ["name", str],
  ["endpoint", str],
  ["username", option(str)],
  ["password", option(str)],
  ["tunnel_type", str],
  ["expire_time", str],
  ["rate_limit", f32],
]);

/** proxy/src/proxy_pool.rs: externally tagged; variant order = bincode tag (Tunnel=0, IpProxy=1). */
export const PROXY_ENUM: WireType = {
  kind: "enum",
  name: "ProxyEnum",
  variants: [
    { name: "Tunnel", type: struct(TUNNEL) },
    { name: "IpProxy", type: struct(IP_PROXY) },
  ],
};

export const TASK_MODEL = defineStruct("TaskModel", [
  ["account", str],
  ["platform", str],
  ["module", option(vec(str))],
  ["priority", PRIORITY, defaultPriority],
  ["run_id", uuid, defaultRunId],
]);

export const PARSER_TASK_MODEL = defineStruct("ParserTaskModel", [
  ["id", uuid],
  ["account_task", struct(TASK_MODEL)],
  ["timestamp", u64],
  ["metadata", jsonString],
  ["context", struct(EXECUTION_MARK)],
  ["run_id", uuid, defaultRunId],
  ["prefix_request", uuid],
]);

export const ERROR_TASK_MODEL = defineStruct("ErrorTaskModel", [
  ["id", uuid],
  ["account_task", struct(TASK_MODEL)],
  ["error_msg", str],
  ["timestamp", u64],
  ["metadata", jsonString],
  ["context", struct(EXECUTION_MARK)],
  ["run_id", uuid, defaultRunId],
  ["prefix_request", uuid],
]);

export const REQUEST = defineStruct("Request", [
  ["id", uuid],
  ["platform", str],
  ["account", str],
  ["module", str],
  ["url", str],
  ["method", str],
  ["headers", HEADERS],
  ["cookies", COOKIES],
  ["retry_times", usize],
  ["task_retry_times", usize],
  ["use_new_client", bool],
  ["timeout", u64],
  ["meta", struct(META_DATA)],
  ["params", option(vec(tuple(str, str)))],
  ["json", optJsonString],
  ["body", option(bytes)],
  ["form", optJsonString],
  ["cache_headers", option(vec(str))],
  ["proxy", option(PROXY_ENUM)],
  ["limit_id", str],
  ["download_middleware", vec(str)],
  ["data_middleware", vec(str)],
  ["task_finished", bool],
  ["time_sleep_secs", option(u64)],
  ["context", struct(EXECUTION_MARK)],
  ["run_id", uuid],
  ["prefix_request", uuid],
  ["hash_str", option(str)],
  ["enable_cache", bool],
  ["enable_locker", option(bool)],
  ["downloader", str],
  ["priority", PRIORITY, defaultPriority],
]);

export const RESPONSE = defineStruct("Response", [
  ["id", uuid],
  ["platform", str],
  ["account", str],
  ["module", str],
  ["status_code", u16],
  ["cookies", COOKIES],
  ["content", bytes],
  ["storage_path", option(str)],
  ["headers", vec(tuple(str, str))],
  ["task_retry_times", usize],
  ["metadata", struct(META_DATA)],
  ["download_middleware", vec(str)],
  ["data_middleware", vec(str)],
  ["task_finished", bool],
  ["context", struct(EXECUTION_MARK)],
  ["run_id", uuid],
  ["prefix_request", uuid],
  ["request_hash", option(str)],
  ["priority", PRIORITY, defaultPriority],
]);

/** The schema of the message each queue topic carries. */
export const TOPIC_SCHEMAS: { readonly [K in Topic]: StructSchema } = {
  task: TASK_MODEL,
  request: REQUEST,
  response: RESPONSE,
  parser_task: PARSER_TASK_MODEL,
  error_task: ERROR_TASK_MODEL,
  render: REQUEST,
};

/** The variant of an externally tagged enum with this name, if any. */
export function findVariant(t: Extract<WireType, { kind: "enum" }>, name: unknown): EnumVariant | undefined {
  for (const v of t.variants) if (v.name === name) return v;
  return undefined;
}

/** The variant a TS-side `{kind, value}` names, for encoding; a FieldError if it names none. */
export function variantToWrite(t: Extract<WireType, { kind: "enum" }>, v: unknown): EnumVariant {
  const kind = typeof v === "object" && v !== null ? (v as { kind?: unknown }).kind : undefined;
  const variant = findVariant(t, kind);
  if (variant === undefined) {
    throw new FieldError(`expected {kind, value} with kind one of ${t.variants.map((x) => `"${x.name}"`).join(", ")}, got ${describe(kind ?? v)}`);
  }
  return variant;
}

/** The schema for a topic; a CodecError for anything that is not a topic. */
export function schemaOf(topic: Topic): StructSchema {
  if (!Object.hasOwn(TOPIC_SCHEMAS, topic)) throw new CodecError(`unknown topic ${JSON.stringify(topic)}`);
  return TOPIC_SCHEMAS[topic];
}

// ---- CookieItem's custom Deserialize (map/object form) -----------------------------------

/**
 * Build a CookieItem from a decoded map the way mocra's RawItem deserializer does: optional
 * name/value/domain (default ""), path (default "/"), secure (default false), httpOnly;
 * `expires` or else `expirationDate` (numbers >= 1e12 are milliseconds; "YYYY-MM-DD HH:MM:SS" /
 * "YYYY/M/D HH:MM:SS" strings are UTC); `max_age` or `max-age` or `maxAge` (number or numeric
 * string), else derived as max(0, expires - now). null counts as absent. Seconds saturate at
 * the largest u64 a double holds (Rust's `as u64`). Throws FieldError on a mistyped field.
 */
export function cookieFromRaw(raw: Readonly<Record<string, unknown>>, nowSecs: number = Date.now() / 1000): Record<string, unknown> {
  const expiresRaw = raw.expires ?? raw.expirationDate;
  let expires = expiresRaw === undefined ? null : expirationSeconds(expiresRaw);
  if (expires !== null) expires = toU64(expires);
  let maxAge = seconds(raw.max_age) ?? seconds(raw["max-age"]) ?? seconds(raw.maxAge);
  if (maxAge === null && expires !== null) maxAge = expires - Math.floor(nowSecs);
  if (maxAge !== null) maxAge = toU64(maxAge);
  return {
    name: rawText(raw, "name", ""),
    value: rawText(raw, "value", ""),
    domain: rawText(raw, "domain", ""),
    path: rawText(raw, "path", "/"),
    expires,
    maxAge,
    secure: rawFlag(raw, "secure") ?? false,
    httpOnly: rawFlag(raw, "httpOnly"),
  };
}

function rawText(raw: Readonly<Record<string, unknown>>, k: string, dflt: string): string {
  const v = raw[k];
  if (v === undefined || v === null) return dflt;
  if (typeof v !== "string") throw new FieldError(`field "${k}": expected a string, got ${describe(v)}`);
  return v;
}

function rawFlag(raw: Readonly<Record<string, unknown>>, k: string): boolean | null {
  const v = raw[k];
  if (v === undefined || v === null) return null;
  if (typeof v !== "boolean") throw new FieldError(`field "${k}": expected a bool, got ${describe(v)}`);
  return v;
}

/** Rust's `secs.floor().max(0.0) as u64` (saturating; NaN -> 0). */
function toU64(v: number): number {
  if (!(v > 0)) return 0;
  return Math.min(Math.floor(v), MAX_U64_DOUBLE);
}
const MAX_U64_DOUBLE = 18446744073709549568; // largest double below 2^64

function expirationSeconds(v: unknown): number | null {
  if (typeof v === "number") return Math.abs(v) >= 1e12 ? v / 1000 : v;
  if (typeof v === "string") return parseDateSeconds(v);
  return null;
}

const FLOAT_RE = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;

function seconds(v: unknown): number | null {
  if (typeof v === "number") return v;
  if (typeof v === "string" && FLOAT_RE.test(v)) return Number(v);
  return null;
}

const UINT_RE = /^\+?\d+$/;
const INT_RE = /^[+-]?\d+$/;

/** "YYYY-MM-DD HH:MM:SS" or "YYYY/M/D HH:MM:SS" (UTC) -> unix seconds (>= 0), else null. */
function parseDateSeconds(s: string): number | null {
  const sp = s.indexOf(" ");
  if (sp < 0) return null;
  const datePart = s.slice(0, sp);
  const hms = s.slice(sp + 1).split(":");
  const sep = datePart.includes("/") ? "/" : datePart.includes("-") ? "-" : null;
  if (sep === null || hms.length < 3) return null;
  const ymd = datePart.split(sep);
  if (ymd.length < 3 || !INT_RE.test(ymd[0]) || !UINT_RE.test(ymd[1]) || !UINT_RE.test(ymd[2])) return null;
  if (!UINT_RE.test(hms[0]) || !UINT_RE.test(hms[1]) || !UINT_RE.test(hms[2])) return null;
  const [y, mo, d] = [Number(ymd[0]), Number(ymd[1]), Number(ymd[2])];
  const [h, mi, sec] = [Number(hms[0]), Number(hms[1]), Number(hms[2])];
  if (mo < 1 || mo > 12 || d < 1 || h > 23 || mi > 59 || sec > 59) return null;
  const date = new Date(0);
  date.setUTCFullYear(y, mo - 1, d);
  date.setUTCHours(h, mi, sec, 0);
  if (date.getUTCDate() !== d) return null; // e.g. Feb 30
  return Math.max(0, Math.floor(date.getTime() / 1000));
}
