// src/codec/byte-buffers.ts: the growable output buffer and the input cursor of the binary codecs
// (msgpack, bincode), and the encode/decode frame they share: one writer reused across calls, every failure turned
// into the codec's CodecError.

import type { Topic, TopicMessages } from "../model/index.ts";
import { codecError, describe, FieldError } from "./errors.ts";
import { schemaOf, type StructSchema } from "./schema.ts";

export class ByteWriter {
  buf = new Uint8Array(8192);
  view = new DataView(this.buf.buffer);
  pos = 0;

  ensure(n: number): void {
    if (this.pos + n > this.buf.length) this.grow(n);
  }

  private grow(n: number): void {
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }

  byte(b: number): void {
    this.ensure(1);
    this.buf[this.pos++] = b;
  }
}

/** A cursor over the input; `need` throws the "unexpected end of input" FieldError. */
export class ByteReader {
  readonly view: DataView;
  pos = 0;
  constructor(readonly buf: Uint8Array) {
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }

  need(n: number): void {
    if (this.pos + n > this.buf.length) {
      throw new FieldError(`unexpected end of input: ${n} more byte(s) needed at offset ${this.pos} of ${this.buf.length}`);
    }
  }

  u8(): number {
    this.need(1);
    return this.buf[this.pos++];
  }
}

/** Writers larger than this are not kept for the next call. */
const MAX_SPARE = 1 << 20;

/**
 * A codec's encode: `write` fills a writer reused across calls (a re-entrant call gets a fresh
 * one); returns a copy of the bytes written.
 */
export function binaryEncoder<W extends ByteWriter>(
  codec: string,
  make: () => W,
  write: (w: W, schema: StructSchema, message: unknown) => void,
): <K extends Topic>(topic: K, message: TopicMessages[K]) => Uint8Array {
  let spare: W | null = null;
  return (topic, message) => {
    const schema = schemaOf(topic);
    const w = spare ?? make();
    spare = null;
    try {
      w.pos = 0;
      write(w, schema, message);
      return w.buf.slice(0, w.pos);
    } catch (e) {
      throw codecError("encode", codec, topic, schema.name, e);
    } finally {
      if (w.buf.length <= MAX_SPARE) spare = w;
    }
  };
}

/** A codec's decode: `read` walks the bytes (trailing bytes ignored, as both Rust decoders do). */
export function binaryDecoder(
  codec: string,
  read: (bytes: Uint8Array, schema: StructSchema) => unknown,
): <K extends Topic>(topic: K, bytes: Uint8Array) => TopicMessages[K] {
  return <K extends Topic>(topic: K, bytes: Uint8Array): TopicMessages[K] => {
    const schema = schemaOf(topic);
    try {
      if (!(bytes instanceof Uint8Array)) throw new FieldError(`expected Uint8Array input, got ${describe(bytes)}`);
      return read(bytes, schema) as TopicMessages[K];
    } catch (e) {
      throw codecError("decode", codec, topic, schema.name, e);
    }
  };
}
