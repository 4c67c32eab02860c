// src/codec/msgpack.ts: the msgpack codec, byte-exact with mocra's `rmp_serde::to_vec` (structs as
// ARRAYS in declaration order, most compact ints, f32 as `ca`, UUIDs as 16-byte bin8, Vec<u8> as
// an array of ints, unit enums by name, newtype enums as a one-entry map), with one deliberate
// difference: a CookieItem is written as a MAP keyed by field name, because mocra cannot decode
// its own 8-element cookie array (FORMAT.md §2.6). The decoder accepts what rmp_serde accepts:
// structs as arrays or maps, unit enums by name or index, plus Vec<u8> as bin.
// A small schema-driven writer and reader; no generic msgpack library in the hot path.

import type { Codec } from "./codec.ts";
import { binaryDecoder, binaryEncoder, ByteReader, ByteWriter } from "./byte-buffers.ts";
import { atPath, describe, FieldError } from "./errors.ts";
import { checkUint, jsonText, parseJsonText, utf8At, uuidFromBytesAt, uuidText, writeUtf8, writeUuidBytes } from "./primitives.ts";
import { cookieFromRaw, findVariant, variantToWrite, missingField, type StructSchema, type WireType } from "./schema.ts";

type Obj = Record<string, unknown>;

const textEncoder = new TextEncoder();
const TWO_32 = 0x100000000;

export const msgpackCodec: Codec = {
  name: "msgpack",
  encode: binaryEncoder("msgpack", () => new Writer(), writeStruct),
  decode: binaryDecoder("msgpack", (bytes, schema) => readStruct(new Reader(bytes), schema)),
};

// ---- writer ----------------------------------------------------------------------------------

class Writer extends ByteWriter {
  /** Most compact unsigned int: positive fixint, cc, cd, ce, cf (as rmp's write_uint). */
  uint(n: number): void {
    this.ensure(9);
    const buf = this.buf;
    if (n < 0x80) buf[this.pos++] = n;
    else if (n < 0x100) {
      buf[this.pos++] = 0xcc;
      buf[this.pos++] = n;
    } else if (n < 0x10000) {
      buf[this.pos++] = 0xcd;
      this.view.setUint16(this.pos, n);
      this.pos += 2;
    } else if (n < TWO_32) {
      buf[this.pos++] = 0xce;
      this.view.setUint32(this.pos, n);
      this.pos += 4;
    } else {
      buf[this.pos++] = 0xcf;
      const hi = Math.floor(n / TWO_32);
      this.view.setUint32(this.pos, hi);
      this.view.setUint32(this.pos + 4, n - hi * TWO_32);
      this.pos += 8;
    }
  }

  private header(n: number, fix: number, m16: number): void {
    this.ensure(5);
    if (n < 16) this.buf[this.pos++] = fix | n;
    else if (n < 0x10000) {
      this.buf[this.pos++] = m16;
      this.view.setUint16(this.pos, n);
      this.pos += 2;
    } else {
      this.buf[this.pos++] = m16 + 1;
      this.view.setUint32(this.pos, n);
      this.pos += 4;
    }
  }

  arrayHeader(n: number): void {
    this.header(n, 0x90, 0xdc);
  }

  mapHeader(n: number): void {
    this.header(n, 0x80, 0xde);
  }

  f32(x: number): void {
    this.ensure(5);
    this.buf[this.pos++] = 0xca;
    this.view.setFloat32(this.pos, x);
    this.pos += 4;
  }

  /** fixstr / str8 (d9) / str16 / str32. The header is sized for the worst case, then fixed up. */
  str(s: string): void {
    const max = s.length * 3;
    const reserved = strHeaderSize(max);
    this.ensure(reserved + max);
    const start = this.pos + reserved;
    const n = s.length < 64 ? writeUtf8(s, this.buf, start) : textEncoder.encodeInto(s, this.buf.subarray(start)).written;
    const h = strHeaderSize(n);
    if (h !== reserved) this.buf.copyWithin(this.pos + h, start, start + n);
    const buf = this.buf;
    if (h === 1) buf[this.pos] = 0xa0 | n;
    else if (h === 2) {
      buf[this.pos] = 0xd9;
      buf[this.pos + 1] = n;
    } else if (h === 3) {
      buf[this.pos] = 0xda;
      this.view.setUint16(this.pos + 1, n);
    } else {
      buf[this.pos] = 0xdb;
      this.view.setUint32(this.pos + 1, n);
    }
    this.pos += h + n;
  }

  /** A UUID: bin8 of 16 bytes (`c4 10 …`). */
  uuid(canonical: string): void {
    this.ensure(18);
    this.buf[this.pos++] = 0xc4;
    this.buf[this.pos++] = 16;
    writeUuidBytes(canonical, this.buf, this.pos);
    this.pos += 16;
  }

  /** Vec<u8>: an array of ints (`[1,2,200]` -> `93 01 02 cc c8`). */
  byteSeq(b: Uint8Array): void {
    this.arrayHeader(b.length);
    this.ensure(2 * b.length);
    const buf = this.buf;
    let p = this.pos;
    for (let i = 0; i < b.length; i++) {
      const x = b[i];
      if (x < 0x80) buf[p++] = x;
      else {
        buf[p++] = 0xcc;
        buf[p++] = x;
      }
    }
    this.pos = p;
  }
}

function strHeaderSize(n: number): number {
  return n < 32 ? 1 : n < 0x100 ? 2 : n < 0x10000 ? 3 : 5;
}

function writeStruct(w: Writer, schema: StructSchema, value: unknown): void {
  if (typeof value !== "object" || value === null) throw new FieldError(`expected an object, got ${describe(value)}`);
  const obj = value as Obj;
  const fields = schema.fields;
  w.arrayHeader(fields.length);
  let i = 0;
  try {
    for (; i < fields.length; i++) writeValue(w, fields[i].type, obj[fields[i].key]);
  } catch (e) {
    throw atPath(e, fields[i].wire);
  }
}

/** The §2.6 exception: a struct as a map keyed by wire names (used for CookieItem only). */
function writeStructAsMap(w: Writer, schema: StructSchema, value: unknown): void {
  if (typeof value !== "object" || value === null) throw new FieldError(`expected an object, got ${describe(value)}`);
  const obj = value as Obj;
  const fields = schema.fields;
  w.mapHeader(fields.length);
  let i = 0;
  try {
    for (; i < fields.length; i++) {
      w.str(fields[i].wire);
      writeValue(w, fields[i].type, obj[fields[i].key]);
    }
  } catch (e) {
    throw atPath(e, fields[i].wire);
  }
}

function writeValue(w: Writer, t: WireType, v: unknown): void {
  switch (t.kind) {
    case "str":
      if (typeof v !== "string") throw new FieldError(`expected a string, got ${describe(v)}`);
      return w.str(v);
    case "bool":
      if (typeof v !== "boolean") throw new FieldError(`expected a bool, got ${describe(v)}`);
      return w.byte(v ? 0xc3 : 0xc2);
    case "uint":
      return w.uint(checkUint(t, v));
    case "f32":
      if (typeof v !== "number") throw new FieldError(`expected an f32 number, got ${describe(v)}`);
      return w.f32(v);
    case "uuid":
      return w.uuid(uuidText(v));
    case "bytes":
      if (!(v instanceof Uint8Array)) throw new FieldError(`expected a Uint8Array, got ${describe(v)}`);
      return w.byteSeq(v);
    case "json":
      return w.str(jsonText(v));
    case "optJson":
      return v === undefined ? w.byte(0xc0) : w.str(jsonText(v));
    case "option":
      return v === null || v === undefined ? w.byte(0xc0) : writeValue(w, t.inner, v);
    case "vec": {
      if (!Array.isArray(v)) throw new FieldError(`expected an array, got ${describe(v)}`);
      w.arrayHeader(v.length);
      let i = 0;
      try {
        for (; i < v.length; i++) writeValue(w, t.item, v[i]);
      } catch (e) {
        throw atPath(e, String(i));
      }
      return;
    }
    case "tuple": {
      if (!Array.isArray(v) || v.length !== t.items.length) {
        throw new FieldError(`expected an array of ${t.items.length}, got ${describe(v)}`);
      }
      w.arrayHeader(v.length);
      for (let i = 0; i < v.length; i++) writeValue(w, t.items[i], v[i]);
      return;
    }
    case "struct":
      return writeStruct(w, t.schema, v);
    case "cookie":
      return writeStructAsMap(w, t.schema, v);
    case "wrapper":
      w.arrayHeader(1);
      try {
        return writeValue(w, t.inner, v);
      } catch (e) {
        throw atPath(e, t.field);
      }
    case "unitEnum":
      if (typeof v !== "string" || !t.variants.includes(v)) {
        throw new FieldError(`expected one of ${t.variants.map((n) => `"${n}"`).join(", ")}, got ${describe(v)}`);
      }
      return w.str(v);
    case "enum": {
      const variant = variantToWrite(t, v);
      w.mapHeader(1);
      w.str(variant.name);
      try {
        return writeValue(w, variant.type, (v as Obj).value);
      } catch (e) {
        throw atPath(e, variant.name);
      }
    }
  }
}

// ---- reader ----------------------------------------------------------------------------------

class Reader extends ByteReader {

  peek(): number {
    this.need(1);
    return this.buf[this.pos];
  }

  u16(): number {
    this.need(2);
    const v = this.view.getUint16(this.pos);
    this.pos += 2;
    return v;
  }

  u32(): number {
    this.need(4);
    const v = this.view.getUint32(this.pos);
    this.pos += 4;
    return v;
  }

  /** The element count of an array header, or -1 (nothing consumed) if the next value is not an array. */
  arrayLen(): number {
    const m = this.peek();
    let n: number;
    if (m >= 0x90 && m <= 0x9f) {
      this.pos++;
      n = m & 0x0f;
    } else if (m === 0xdc) {
      this.pos++;
      n = this.u16();
    } else if (m === 0xdd) {
      this.pos++;
      n = this.u32();
    } else return -1;
    if (n > this.buf.length - this.pos) throw new FieldError(`array of ${n} elements cannot fit in the ${this.buf.length - this.pos} bytes left`);
    return n;
  }

  /** The entry count of a map header, or -1 (nothing consumed) if the next value is not a map. */
  mapLen(): number {
    const m = this.peek();
    let n: number;
    if (m >= 0x80 && m <= 0x8f) {
      this.pos++;
      n = m & 0x0f;
    } else if (m === 0xde) {
      this.pos++;
      n = this.u16();
    } else if (m === 0xdf) {
      this.pos++;
      n = this.u32();
    } else return -1;
    if (2 * n > this.buf.length - this.pos) throw new FieldError(`map of ${n} entries cannot fit in the ${this.buf.length - this.pos} bytes left`);
    return n;
  }

  /** The byte length of a str header, or -1 (nothing consumed) if the next value is not a str. */
  strLen(): number {
    const m = this.peek();
    if (m >= 0xa0 && m <= 0xbf) {
      this.pos++;
      return m & 0x1f;
    }
    if (m === 0xd9) {
      this.pos++;
      return this.u8();
    }
    if (m === 0xda) {
      this.pos++;
      return this.u16();
    }
    if (m === 0xdb) {
      this.pos++;
      return this.u32();
    }
    return -1;
  }

  /** The byte length of a bin header, or -1 (nothing consumed) if the next value is not bin. */
  binLen(): number {
    const m = this.peek();
    if (m === 0xc4) {
      this.pos++;
      return this.u8();
    }
    if (m === 0xc5) {
      this.pos++;
      return this.u16();
    }
    if (m === 0xc6) {
      this.pos++;
      return this.u32();
    }
    return -1;
  }

  utf8(n: number): string {
    this.need(n);
    this.pos += n;
    return utf8At(this.buf, this.pos - n, n);
  }

  str(): string {
    const n = this.strLen();
    if (n < 0) throw this.unexpected("a string");
    return this.utf8(n);
  }

  /** Any integer (rmp accepts any int that fits the target type); null if the next value is not one. */
  int(): number | null {
    const m = this.peek();
    if (m < 0x80) {
      this.pos++;
      return m;
    }
    if (m >= 0xe0) {
      this.pos++;
      return m - 0x100;
    }
    if (m < 0xcc || m > 0xd3) return null;
    this.pos++;
    const view = this.view;
    const at = this.pos;
    switch (m) {
      case 0xcc:
        return this.u8();
      case 0xcd:
        return this.u16();
      case 0xce:
        return this.u32();
      case 0xcf:
        this.need(8);
        this.pos += 8;
        return view.getUint32(at) * TWO_32 + view.getUint32(at + 4);
      case 0xd0:
        this.need(1);
        this.pos += 1;
        return view.getInt8(at);
      case 0xd1:
        this.need(2);
        this.pos += 2;
        return view.getInt16(at);
      case 0xd2:
        this.need(4);
        this.pos += 4;
        return view.getInt32(at);
      default: // 0xd3
        this.need(8);
        this.pos += 8;
        return view.getInt32(at) * TWO_32 + view.getUint32(at + 4);
    }
  }

  /** An error for an unexpected next value (does not consume it). */
  unexpected(expected: string): FieldError {
    return new FieldError(`expected ${expected}, got ${markerName(this.buf[this.pos])} at offset ${this.pos}`);
  }
}

function markerName(m: number | undefined): string {
  if (m === undefined) return "end of input";
  if (m < 0x80 || m >= 0xe0 || (m >= 0xcc && m <= 0xd3)) return "an integer";
  if (m <= 0x8f || m === 0xde || m === 0xdf) return "a map";
  if (m <= 0x9f || m === 0xdc || m === 0xdd) return "an array";
  if (m <= 0xbf || (m >= 0xd9 && m <= 0xdb)) return "a string";
  if (m === 0xc0) return "nil";
  if (m === 0xc2 || m === 0xc3) return "a bool";
  if (m >= 0xc4 && m <= 0xc6) return "bin (bytes)";
  if (m === 0xca || m === 0xcb) return "a float";
  if (m === 0xc1) return "the reserved marker 0xc1";
  return "an ext value";
}

const MISSING = Symbol("missing");

function readStruct(r: Reader, schema: StructSchema): Obj {
  const fields = schema.fields;
  const n = r.arrayLen();
  if (n >= 0) return readStructSeq(r, schema, n);
  const entries = r.mapLen();
  if (entries < 0) throw r.unexpected(`struct ${schema.name} (an array or a map)`);
  const vals: unknown[] = new Array(fields.length).fill(MISSING);
  for (let e = 0; e < entries; e++) {
    const key = readFieldKey(r);
    const i = typeof key === "number" ? (key < fields.length ? key : -1) : (schema.index.get(key) ?? -1);
    if (i < 0) {
      readAny(r, 0); // unknown field: ignored, as serde does
      continue;
    }
    if (vals[i] !== MISSING) throw atPath(new FieldError(`duplicate field "${fields[i].wire}"`), fields[i].wire);
    try {
      vals[i] = readValue(r, fields[i].type);
    } catch (err) {
      throw atPath(err, fields[i].wire);
    }
  }
  const out: Obj = {};
  let i = 0;
  try {
    for (; i < fields.length; i++) out[fields[i].key] = vals[i] === MISSING ? missingField(schema, i) : vals[i];
  } catch (err) {
    throw atPath(err, fields[i].wire);
  }
  return out;
}

/** serde derive's visit_seq: fields in order; trailing serde(default) fields may be left out. */
function readStructSeq(r: Reader, schema: StructSchema, n: number): Obj {
  const fields = schema.fields;
  if (n > fields.length) throw new FieldError(`invalid length ${n}, expected struct ${schema.name} with ${fields.length} elements`);
  const out: Obj = {};
  let i = 0;
  try {
    for (; i < fields.length; i++) {
      const f = fields[i];
      if (i < n) out[f.key] = readValue(r, f.type);
      else if (f.default !== undefined) out[f.key] = f.default();
      else throw new FieldError(`invalid length ${n}, expected struct ${schema.name} with ${fields.length} elements`);
    }
  } catch (err) {
    throw atPath(err, fields[i].wire);
  }
  return out;
}

/** A struct field key in map form: its name, or its index (serde accepts both). */
function readFieldKey(r: Reader): string | number {
  const n = r.strLen();
  if (n >= 0) return r.utf8(n);
  const i = r.int();
  if (i !== null && i >= 0) return i;
  throw r.unexpected("a field name");
}

function readUint(r: Reader, t: Extract<WireType, { kind: "uint" }>): number {
  const v = r.int();
  if (v === null) throw r.unexpected(t.name);
  return checkUint(t, v);
}

function readValue(r: Reader, t: WireType): unknown {
  switch (t.kind) {
    case "str":
      return r.str();
    case "bool": {
      const m = r.peek();
      if (m !== 0xc2 && m !== 0xc3) throw r.unexpected("a bool");
      r.pos++;
      return m === 0xc3;
    }
    case "uint":
      return readUint(r, t);
    case "f32": {
      const m = r.peek();
      if (m === 0xca) {
        r.pos++;
        r.need(4);
        r.pos += 4;
        return r.view.getFloat32(r.pos - 4);
      }
      if (m === 0xcb) {
        r.pos++;
        r.need(8);
        r.pos += 8;
        return Math.fround(r.view.getFloat64(r.pos - 8));
      }
      const i = r.int();
      if (i === null) throw r.unexpected("an f32");
      return Math.fround(i);
    }
    case "uuid": {
      const n = r.binLen();
      if (n < 0) throw r.unexpected("a UUID (16-byte bin)");
      if (n !== 16) throw new FieldError(`expected a UUID (16-byte bin), got ${n} bytes`);
      r.need(16);
      r.pos += 16;
      return uuidFromBytesAt(r.buf, r.pos - 16);
    }
    case "bytes": {
      const b = r.binLen(); // not what rmp writes, but rmp_serde >= 1.3 accepts it
      if (b >= 0) {
        r.need(b);
        r.pos += b;
        return r.buf.slice(r.pos - b, r.pos);
      }
      const n = r.arrayLen();
      if (n < 0) throw r.unexpected("Vec<u8> (an array of integers)");
      const out = new Uint8Array(n);
      const buf = r.buf;
      for (let i = 0; i < n; i++) {
        const m = r.peek();
        if (m < 0x80) {
          out[i] = m;
          r.pos++;
        } else if (m === 0xcc && r.pos + 1 < buf.length) {
          out[i] = buf[r.pos + 1];
          r.pos += 2;
        } else {
          const v = r.int();
          if (v === null || v < 0 || v > 255) throw new FieldError(`expected a u8 at index ${i}, got ${v === null ? markerName(m) : `the integer ${v}`}`);
          out[i] = v;
        }
      }
      return out;
    }
    case "json":
      return parseJsonText(r.str());
    case "optJson":
      if (r.peek() === 0xc0) {
        r.pos++;
        return undefined;
      }
      return parseJsonText(r.str());
    case "option":
      if (r.peek() === 0xc0) {
        r.pos++;
        return null;
      }
      return readValue(r, t.inner);
    case "vec": {
      const n = r.arrayLen();
      if (n < 0) throw r.unexpected("an array");
      const out: unknown[] = new Array(n);
      let i = 0;
      try {
        for (; i < n; i++) out[i] = readValue(r, t.item);
      } catch (err) {
        throw atPath(err, String(i));
      }
      return out;
    }
    case "tuple": {
      const n = r.arrayLen();
      if (n !== t.items.length) {
        throw n < 0 ? r.unexpected(`an array of ${t.items.length}`) : new FieldError(`expected an array of ${t.items.length}, got an array of ${n}`);
      }
      const out: unknown[] = new Array(n);
      for (let i = 0; i < n; i++) out[i] = readValue(r, t.items[i]);
      return out;
    }
    case "struct":
      return readStruct(r, t.schema);
    case "cookie": {
      const n = r.arrayLen();
      if (n >= 0) return readStructSeq(r, t.schema, n); // what Rust writes (8 elements)
      const entries = r.mapLen(); // what we write (FORMAT §2.6), decoded like mocra's RawItem
      if (entries < 0) throw r.unexpected("a CookieItem (an array or a map)");
      return cookieFromRaw(readMapBody(r, entries, 0));
    }
    case "wrapper": {
      const n = r.arrayLen();
      try {
        if (n === 1) return readValue(r, t.inner);
        if (n >= 0) throw new FieldError(`invalid length ${n}, expected struct ${t.name} with 1 element`);
        const entries = r.mapLen();
        if (entries < 0) throw r.unexpected(`struct ${t.name} (an array or a map)`);
        let found: unknown = MISSING;
        for (let e = 0; e < entries; e++) {
          const key = readFieldKey(r);
          if (key === t.field || key === 0) found = readValue(r, t.inner);
          else readAny(r, 0);
        }
        if (found === MISSING) throw new FieldError(`missing field "${t.field}" in ${t.name}`);
        return found;
      } catch (err) {
        throw atPath(err, t.field);
      }
    }
    case "unitEnum": {
      const n = r.strLen();
      if (n >= 0) {
        const name = r.utf8(n);
        if (!t.variants.includes(name)) {
          throw new FieldError(`unknown variant "${name}", expected one of ${t.variants.map((x) => `"${x}"`).join(", ")}`);
        }
        return name;
      }
      const i = r.int();
      if (i === null) throw r.unexpected(`${t.name} (a variant name or index)`);
      if (i < 0 || i >= t.variants.length) {
        throw new FieldError(`invalid value: integer ${i}, expected variant index 0 <= i < ${t.variants.length}`);
      }
      return t.variants[i];
    }
    case "enum": {
      const entries = r.mapLen();
      if (entries !== 1) {
        throw entries < 0 ? r.unexpected(`${t.name} (a one-entry map)`) : new FieldError(`expected ${t.name} as a one-entry map, got ${entries} entries`);
      }
      const key = readFieldKey(r);
      const variant = typeof key === "number" ? t.variants[key] : findVariant(t, key);
      if (variant === undefined) {
        throw new FieldError(`unknown variant ${JSON.stringify(key)}, expected one of ${t.variants.map((x) => `"${x.name}"`).join(", ")}`);
      }
      try {
        return { kind: variant.name, value: readValue(r, variant.type) };
      } catch (err) {
        throw atPath(err, variant.name);
      }
    }
  }
}

// ---- generic values (unknown fields, CookieItem's loosely typed map form) --------------------

const MAX_DEPTH = 128;

/** Read any msgpack value as plain JS (maps as objects); also how unknown fields are skipped. */
function readAny(r: Reader, depth: number): unknown {
  if (depth > MAX_DEPTH) throw new FieldError(`values nested deeper than ${MAX_DEPTH} levels`);
  const s = r.strLen();
  if (s >= 0) return r.utf8(s);
  const i = r.int();
  if (i !== null) return i;
  const a = r.arrayLen();
  if (a >= 0) {
    const out: unknown[] = new Array(a);
    for (let k = 0; k < a; k++) out[k] = readAny(r, depth + 1);
    return out;
  }
  const m = r.mapLen();
  if (m >= 0) return readMapBody(r, m, depth + 1);
  const b = r.binLen();
  if (b >= 0) {
    r.need(b);
    r.pos += b;
    return r.buf.slice(r.pos - b, r.pos);
  }
  const marker = r.u8();
  switch (marker) {
    case 0xc0:
      return null;
    case 0xc2:
      return false;
    case 0xc3:
      return true;
    case 0xca:
      r.need(4);
      r.pos += 4;
      return r.view.getFloat32(r.pos - 4);
    case 0xcb:
      r.need(8);
      r.pos += 8;
      return r.view.getFloat64(r.pos - 8);
  }
  // ext types: skipped, returned as their raw data
  let size: number;
  if (marker >= 0xd4 && marker <= 0xd8) size = 1 << (marker - 0xd4);
  else if (marker === 0xc7) size = r.u8();
  else if (marker === 0xc8) size = r.u16();
  else if (marker === 0xc9) size = r.u32();
  else {
    r.pos--;
    throw r.unexpected("a msgpack value");
  }
  r.need(1 + size);
  r.pos += 1 + size;
  return r.buf.slice(r.pos - size, r.pos);
}

function readMapBody(r: Reader, n: number, depth: number): Obj {
  const o: Obj = {};
  for (let k = 0; k < n; k++) {
    const key = readAny(r, depth);
    const name = typeof key === "string" ? key : String(key);
    const value = readAny(r, depth);
    if (name === "__proto__") Object.defineProperty(o, name, { value, enumerable: true, writable: true, configurable: true });
    else o[name] = value;
  }
  return o;
}
