// src/codec/bincode.ts: the bincode codec, byte-exact with mocra's `bincode::serialize` (bincode
// 1.x defaults: fixed-width little-endian integers, usize as u64, u64 length prefixes for strings,
// sequences and byte vectors, `Option` as a 00/01 tag, enums as a u32 variant index, structs and
// tuples as their fields back to back, UUIDs as `serialize_bytes` = u64 16 + 16 raw bytes). The
// decoder accepts exactly what `bincode::deserialize` accepts (trailing bytes included) and turns
// any other input into a CodecError. FORMAT.md §2.4.
//
// CookieItem: written as the 8 fields serde serializes. mocra's own decoder cannot read a
// non-empty cookie list in bincode (its RawItem expects 11 fields, FORMAT §1.2), so a TS worker
// sharing a bincode queue with Rust workers should not put cookies in requests; we decode the
// 8-field form so TS workers can read each other's.

import type { Codec } from "./codec.ts";
import { binaryDecoder, binaryEncoder, ByteReader, ByteWriter } from "./byte-buffers.ts";
import { atPath, describe, FieldError } from "./errors.ts";
import { checkUint, jsonText, parseJsonText, utf8At, uuidFromBytesAt, uuidText, writeUtf8, writeUuidBytes } from "./primitives.ts";
import { variantToWrite, type StructSchema, type WireType } from "./schema.ts";

type Obj = Record<string, unknown>;

const textEncoder = new TextEncoder();
const TWO_32 = 0x100000000;

export const bincodeCodec: Codec = {
  name: "bincode",
  encode: binaryEncoder("bincode", () => new Writer(), writeStruct),
  decode: binaryDecoder("bincode", (bytes, schema) => readStruct(new Reader(bytes), schema)),
};

// ---- writer ----------------------------------------------------------------------------------

class Writer extends ByteWriter {
  u16(n: number): void {
    this.ensure(2);
    this.view.setUint16(this.pos, n, true);
    this.pos += 2;
  }

  u32(n: number): void {
    this.ensure(4);
    this.view.setUint32(this.pos, n, true);
    this.pos += 4;
  }

  u64(n: number): void {
    this.ensure(8);
    const hi = Math.floor(n / TWO_32);
    this.view.setUint32(this.pos, n - hi * TWO_32, true);
    this.view.setUint32(this.pos + 4, hi, true);
    this.pos += 8;
  }

  f32(x: number): void {
    this.ensure(4);
    this.view.setFloat32(this.pos, x, true);
    this.pos += 4;
  }

  /** u64 byte length + UTF-8; the text is written first, then its length in front of it. */
  str(s: string): void {
    this.ensure(8 + s.length * 3);
    const start = this.pos + 8;
    const n = s.length < 64 ? writeUtf8(s, this.buf, start) : textEncoder.encodeInto(s, this.buf.subarray(start)).written;
    this.u64(n);
    this.pos += n;
  }

  /** `serialize_bytes`: u64 length + the raw bytes (Uuid, and Vec<u8> which serde writes the same way). */
  bytes(b: Uint8Array): void {
    this.u64(b.length);
    this.ensure(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
  }

  uuid(canonical: string): void {
    this.u64(16);
    this.ensure(16);
    writeUuidBytes(canonical, this.buf, this.pos);
    this.pos += 16;
  }
}

function writeStruct(w: Writer, schema: StructSchema, value: unknown): void {
  if (typeof value !== "object" || value === null) throw new FieldError(`expected an object, got ${describe(value)}`);
  const obj = value as Obj;
  const fields = schema.fields;
  let i = 0;
  try {
    for (; i < fields.length; i++) writeValue(w, fields[i].type, obj[fields[i].key]);
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
      return w.byte(v ? 1 : 0);
    case "uint": {
      const n = checkUint(t, v);
      if (t.name === "u16") return w.u16(n);
      if (t.name === "u32") return w.u32(n);
      return w.u64(n);
    }
    case "f32":
      if (typeof v !== "number") throw new FieldError(`expected an f32 number, got ${describe(v)}`);
      return w.f32(v);
    case "uuid":
      return w.uuid(uuidText(v));
    case "bytes":
      if (!(v instanceof Uint8Array)) throw new FieldError(`expected a Uint8Array, got ${describe(v)}`);
      return w.bytes(v);
    case "json":
      return w.str(jsonText(v));
    case "optJson":
      if (v === undefined) return w.byte(0);
      w.byte(1);
      return w.str(jsonText(v));
    case "option":
      if (v === null || v === undefined) return w.byte(0);
      w.byte(1);
      return writeValue(w, t.inner, v);
    case "vec": {
      if (!Array.isArray(v)) throw new FieldError(`expected an array, got ${describe(v)}`);
      w.u64(v.length);
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
      for (let i = 0; i < v.length; i++) writeValue(w, t.items[i], v[i]);
      return;
    }
    case "struct":
    case "cookie":
      return writeStruct(w, t.schema, v);
    case "wrapper":
      try {
        return writeValue(w, t.inner, v);
      } catch (e) {
        throw atPath(e, t.field);
      }
    case "unitEnum": {
      const i = typeof v === "string" ? t.variants.indexOf(v) : -1;
      if (i < 0) throw new FieldError(`expected one of ${t.variants.map((n) => `"${n}"`).join(", ")}, got ${describe(v)}`);
      return w.u32(i);
    }
    case "enum": {
      const variant = variantToWrite(t, v);
      w.u32(t.variants.indexOf(variant));
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

  u16(): number {
    this.need(2);
    this.pos += 2;
    return this.view.getUint16(this.pos - 2, true);
  }

  u32(): number {
    this.need(4);
    this.pos += 4;
    return this.view.getUint32(this.pos - 4, true);
  }

  /** A u64 as a JS number (exact below 2^53, as the other codecs). */
  u64(): number {
    this.need(8);
    this.pos += 8;
    return this.view.getUint32(this.pos - 4, true) * TWO_32 + this.view.getUint32(this.pos - 8, true);
  }

  /** A length prefix, checked against what is left: each counted element takes at least `unit` bytes. */
  len(unit: number): number {
    const at = this.pos;
    const n = this.u64();
    if (n * unit > this.buf.length - this.pos) {
      throw new FieldError(`length ${n} at offset ${at} cannot fit in the ${this.buf.length - this.pos} bytes left`);
    }
    return n;
  }

  str(): string {
    const n = this.len(1);
    this.pos += n;
    return utf8At(this.buf, this.pos - n, n);
  }

  /** An Option/bool tag: 0 or 1, anything else is an error (as bincode's). */
  tag(what: string): number {
    const at = this.pos;
    const b = this.u8();
    if (b > 1) throw new FieldError(`invalid ${what} tag ${b} at offset ${at}, expected 0 or 1`);
    return b;
  }
}

function readStruct(r: Reader, schema: StructSchema): Obj {
  const fields = schema.fields;
  const out: Obj = {};
  let i = 0;
  try {
    for (; i < fields.length; i++) out[fields[i].key] = readValue(r, fields[i].type);
  } catch (err) {
    throw atPath(err, fields[i].wire);
  }
  return out;
}

/** Bytes each element of a sequence takes at least (bounds a corrupt length before allocating). */
function minSize(t: WireType): number {
  switch (t.kind) {
    case "bool":
    case "option":
    case "optJson":
      return 1;
    case "uint":
      return t.name === "u16" ? 2 : t.name === "u32" ? 4 : 8;
    case "f32":
    case "unitEnum":
    case "enum":
      return 4;
    case "tuple":
      return t.items.reduce((s, x) => s + minSize(x), 0);
    case "struct":
    case "cookie":
      return t.schema.fields.reduce((s, f) => s + minSize(f.type), 0);
    case "wrapper":
      return minSize(t.inner);
    default: // str, uuid, bytes, json, vec: a u64 length
      return 8;
  }
}

function readValue(r: Reader, t: WireType): unknown {
  switch (t.kind) {
    case "str":
      return r.str();
    case "bool":
      return r.tag("bool") === 1;
    case "uint":
      return checkUint(t, t.name === "u16" ? r.u16() : t.name === "u32" ? r.u32() : r.u64());
    case "f32":
      r.need(4);
      r.pos += 4;
      return r.view.getFloat32(r.pos - 4, true);
    case "uuid": {
      const n = r.len(1);
      if (n !== 16) throw new FieldError(`expected a UUID (16 bytes), got ${n} bytes`);
      r.pos += 16;
      return uuidFromBytesAt(r.buf, r.pos - 16);
    }
    case "bytes": {
      const n = r.len(1);
      r.pos += n;
      return r.buf.slice(r.pos - n, r.pos);
    }
    case "json":
      return parseJsonText(r.str());
    case "optJson":
      return r.tag("Option") === 0 ? undefined : parseJsonText(r.str());
    case "option":
      return r.tag("Option") === 0 ? null : readValue(r, t.inner);
    case "vec": {
      const n = r.len(minSize(t.item));
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
      const out: unknown[] = new Array(t.items.length);
      for (let i = 0; i < t.items.length; i++) out[i] = readValue(r, t.items[i]);
      return out;
    }
    case "struct":
    case "cookie":
      return readStruct(r, t.schema);
    case "wrapper":
      try {
        return readValue(r, t.inner);
      } catch (err) {
        throw atPath(err, t.field);
      }
    case "unitEnum": {
      const i = r.u32();
      if (i >= t.variants.length) {
        throw new FieldError(`invalid value: integer ${i}, expected variant index 0 <= i < ${t.variants.length}`);
      }
      return t.variants[i];
    }
    case "enum": {
      const i = r.u32();
      const variant = t.variants[i];
      if (variant === undefined) {
        throw new FieldError(`invalid ${t.name} variant index ${i}, expected 0 <= i < ${t.variants.length}`);
      }
      try {
        return { kind: variant.name, value: readValue(r, variant.type) };
      } catch (err) {
        throw atPath(err, variant.name);
      }
    }
  }
}
