// src/state/compact-record.ts: the binary records of the standalone frontier log (state format 2).
//
// One enqueue record holds a batch of entries: the follow-ups of one page, which share every field
// but their `id` and `url`. The batch's first message is stored whole once (the template, JSON
// codec); each entry then stores only its id (16 bytes) and its url (the bytes it shares with the
// previous entry's url elided); one that differs from the template elsewhere too (its own meta,
// headers...) also stores the part of its JSON that differs from the template's (between their
// common prefix and suffix); one without a canonical uuid is stored whole.
// A dedup key equal to the message's fingerprint (the usual case) is not stored: it is recomputed.
// A few dozen bytes per waiting request instead of ~1 KB.
import { jsonCodec, TOPIC_SCHEMAS } from "../codec/index.ts";
import { uuidFromBytesAt, writeUuidBytes } from "../codec/primitives.ts";
import { fingerprint, PRIORITIES, type Priority, type Request, TOPICS, type Topic, type TopicMessages } from "../model/index.ts";

export const ENQUEUED = 3;
export const SETTLED = 4;

/** per entry: how its dedup key is kept (low 2 bits) */
const KEY_NONE = 0;
const KEY_FINGERPRINT = 1;
const KEY_STORED = 2;
/** per entry: its whole message (else the template with this entry's id and url) */
const WHOLE = 4;
/**
 * per entry: the template with this id and url and a patch: the entry's JSON (with the template's
 * id and url) differs from the template's only between a common prefix and a common suffix — one
 * field, e.g. a follow-up with its own `meta` — and only that middle is stored
 */
const PATCHED = 8;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A growable byte buffer with LEB128 varints (numbers up to 2^53). */
class Writer {
  buf = new Uint8Array(1024);
  pos = 0;

  ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
  }

  byte(b: number): void {
    this.ensure(1);
    this.buf[this.pos++] = b;
  }

  varint(n: number): void {
    this.ensure(8);
    while (n >= 0x80) {
      this.buf[this.pos++] = (n % 0x80) | 0x80;
      n = Math.floor(n / 0x80);
    }
    this.buf[this.pos++] = n;
  }

  bytes(b: Uint8Array): void {
    this.varint(b.length);
    this.ensure(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
  }

  /** a string as varint length + UTF-8, encoded in place */
  utf8(s: string): void {
    this.ensure(5 + s.length * 3);
    // room for a one-byte length; moved up if the length needs more
    const { written } = encoder.encodeInto(s, this.buf.subarray(this.pos + 1));
    if (written < 0x80) {
      this.buf[this.pos] = written;
      this.pos += 1 + written;
      return;
    }
    const bytes = this.buf.slice(this.pos + 1, this.pos + 1 + written);
    this.varint(written);
    this.buf.set(bytes, this.pos);
    this.pos += written;
  }

  f64(n: number): void {
    this.ensure(8);
    new DataView(this.buf.buffer, this.buf.byteOffset).setFloat64(this.pos, n);
    this.pos += 8;
  }

  done(): Uint8Array {
    return this.buf.slice(0, this.pos);
  }
}

/** A cursor over a record; throws on a read past its end (a damaged record). */
export class Reader {
  pos = 0;
  constructor(readonly buf: Uint8Array) {}

  byte(): number {
    if (this.pos >= this.buf.length) throw new RangeError("record cut short");
    return this.buf[this.pos++];
  }

  varint(): number {
    let n = 0;
    let scale = 1;
    for (;;) {
      const b = this.byte();
      n += (b & 0x7f) * scale;
      if (b < 0x80) return n;
      scale *= 0x80;
      if (scale > 2 ** 56) throw new RangeError("varint too long");
    }
  }

  bytes(): Uint8Array {
    const n = this.varint();
    if (this.pos + n > this.buf.length) throw new RangeError("record cut short");
    const out = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  f64(): number {
    if (this.pos + 8 > this.buf.length) throw new RangeError("record cut short");
    const v = new DataView(this.buf.buffer, this.buf.byteOffset + this.pos, 8).getFloat64(0);
    this.pos += 8;
    return v;
  }
}

/** The header of an enqueue record: what recovery needs, without decoding any entry. */
export interface BatchHeader {
  topic: Topic;
  priority: Priority;
  attempts: number;
  /** seq of the first entry; entry i has seq + i */
  seq: number;
  count: number;
  /** delayed until (ms since the epoch), or undefined: ready */
  due: number | undefined;
  /**
   * unused since the seen set is a table of its own (src/state/seen-table.ts, which keeps the keys
   * across a crash in seen.tail): written as 0; it was the bytes of the old seen.log
   */
  seenEnd: number;
}

const hasUrl = (topic: Topic) => topic === "request" || topic === "render";

/**
 * One enqueue record: entries with consecutive seqs from `header.seq`, all of `header.topic`,
 * `header.priority`, `header.attempts` and `header.due`.
 */
export function encodeBatch(header: BatchHeader, messages: readonly TopicMessages[Topic][], keys: readonly (string | undefined)[]): Uint8Array {
  const w = new Writer();
  w.byte(ENQUEUED);
  w.byte(TOPICS.indexOf(header.topic));
  w.byte(PRIORITIES.indexOf(header.priority));
  w.byte(header.due === undefined ? 0 : 1);
  w.varint(header.attempts);
  w.varint(header.seq);
  w.varint(messages.length);
  w.varint(header.seenEnd);
  if (header.due !== undefined) w.f64(header.due);
  const template = messages[0];
  const compact = hasUrl(header.topic);
  const templateJson = compact ? jsonCodec.encode(header.topic, template) : new Uint8Array(0);
  w.bytes(templateJson);
  let previousUrl = "";
  for (let i = 0; i < messages.length; i++) {
    const message = messages[i];
    const key = keys[i];
    let flags = key === undefined ? KEY_NONE : hasUrl(header.topic) && key === fingerprint(message as Request) ? KEY_FINGERPRINT : KEY_STORED;
    const canonical = compact && canonicalUuid((message as Request).id);
    let patch: Uint8Array | undefined;
    if (canonical && !sameExceptIdAndUrl(message as Request, template as Request)) {
      patch = jsonCodec.encode(header.topic, { ...(message as Request), id: (template as Request).id, url: (template as Request).url });
      flags |= PATCHED;
    }
    if (!canonical) flags |= WHOLE;
    w.byte(flags);
    if ((flags & 3) === KEY_STORED) w.bytes(encoder.encode(key));
    if (!canonical) {
      w.bytes(jsonCodec.encode(header.topic, message));
      continue;
    }
    const req = message as Request;
    w.ensure(16);
    writeUuidBytes(req.id, w.buf, w.pos);
    w.pos += 16;
    // the characters shared with the previous url (ASCII only, so characters are bytes)
    const url = req.url;
    let shared = 0;
    const max = Math.min(url.length, previousUrl.length);
    while (shared < max && url.charCodeAt(shared) === previousUrl.charCodeAt(shared) && url.charCodeAt(shared) < 0x80) shared++;
    previousUrl = url;
    w.varint(shared);
    w.utf8(shared === 0 ? url : url.slice(shared));
    if (patch) {
      const limit = Math.min(patch.length, templateJson.length);
      let prefix = 0;
      while (prefix < limit && patch[prefix] === templateJson[prefix]) prefix++;
      let suffix = 0;
      while (suffix < limit - prefix && patch[patch.length - 1 - suffix] === templateJson[templateJson.length - 1 - suffix]) suffix++;
      w.varint(prefix);
      w.varint(suffix);
      w.bytes(patch.subarray(prefix, patch.length - suffix));
    }
  }
  return w.done();
}

export function readBatchHeader(r: Reader): BatchHeader {
  r.pos = 1;
  const topic = TOPICS[r.byte()];
  const priority = PRIORITIES[r.byte()];
  const hasDue = r.byte();
  if (topic === undefined || priority === undefined || hasDue > 1) throw new RangeError("not an enqueue record");
  const attempts = r.varint();
  const seq = r.varint();
  const count = r.varint();
  const seenEnd = r.varint();
  const due = hasDue ? r.f64() : undefined;
  if (count === 0) throw new RangeError("an enqueue record without entries");
  return { topic, priority, attempts, seq, count, due, seenEnd };
}

interface BatchEntry {
  flags: number;
  key: string | undefined;
  /** the id (template entries) */
  id: string;
  url: string;
  /** the whole message's bytes (WHOLE entries), or the template's with the patch applied (PATCHED) */
  whole: Uint8Array | undefined;
}

/** An enqueue record read back: its header and entries, each message rebuilt on demand. */
export class Batch {
  readonly header: BatchHeader;
  private readonly template: Uint8Array;
  private readonly entries: BatchEntry[] = [];

  constructor(body: Uint8Array) {
    const r = new Reader(body);
    this.header = readBatchHeader(r);
    this.template = r.bytes();
    let previousUrl = new Uint8Array(0);
    for (let i = 0; i < this.header.count; i++) {
      const flags = r.byte();
      const key = (flags & 3) === KEY_STORED ? decoder.decode(r.bytes()) : undefined;
      if (flags & WHOLE) {
        this.entries.push({ flags, key, id: "", url: "", whole: r.bytes() });
        continue;
      }
      if (r.pos + 16 > body.length) throw new RangeError("record cut short");
      const id = uuidFromBytesAt(body, r.pos);
      r.pos += 16;
      const shared = r.varint();
      const suffix = r.bytes();
      const url = new Uint8Array(shared + suffix.length);
      url.set(previousUrl.subarray(0, shared));
      url.set(suffix, shared);
      previousUrl = url;
      let whole: Uint8Array | undefined;
      if (flags & PATCHED) {
        const prefix = r.varint();
        const tail = r.varint();
        const middle = r.bytes();
        if (prefix + tail > this.template.length) throw new RangeError("a patch past its template");
        whole = new Uint8Array(prefix + middle.length + tail);
        whole.set(this.template.subarray(0, prefix));
        whole.set(middle, prefix);
        whole.set(this.template.subarray(this.template.length - tail), prefix + middle.length);
      }
      this.entries.push({ flags, key, id, url: decoder.decode(url), whole });
    }
    if (r.pos !== body.length) throw new RangeError("trailing bytes after the entries");
  }

  /** Entry `index`'s message, a new object each call (a consumer may change what it is given). */
  message(index: number): TopicMessages[Topic] {
    const e = this.entries[index];
    if (e.flags & WHOLE) return jsonCodec.decode(this.header.topic, e.whole!);
    const m = jsonCodec.decode(this.header.topic, e.whole ?? this.template) as Request;
    m.id = e.id;
    m.url = e.url;
    return m;
  }

  /** Entry `index`'s dedup key (recomputed when it is the fingerprint), or undefined. */
  dedupKey(index: number): string | undefined {
    const e = this.entries[index];
    const kind = e.flags & 3;
    if (kind === KEY_NONE) return undefined;
    if (kind === KEY_STORED) return e.key;
    return fingerprint(this.message(index) as Request);
  }
}

/** One settle record for many entries: their seqs, ascending deltas. */
export function encodeSettled(seqs: readonly number[]): Uint8Array {
  const w = new Writer();
  w.byte(SETTLED);
  w.varint(seqs.length);
  let previous = 0;
  for (const s of seqs) {
    // a delta is not negative when sorted; the sign is kept anyway for unsorted input
    const d = s - previous;
    w.varint(d >= 0 ? d * 2 : -d * 2 + 1);
    previous = s;
  }
  return w.done();
}

export function decodeSettled(body: Uint8Array, visit: (seq: number) => void): void {
  const r = new Reader(body);
  r.pos = 1;
  const n = r.varint();
  let s = 0;
  for (let i = 0; i < n; i++) {
    const z = r.varint();
    s += z % 2 === 0 ? z / 2 : -(z - 1) / 2;
    visit(s);
  }
}

/** the Request fields the codec writes, but `id` and `url` (sameExceptIdAndUrl names each; a test checks the two agree) */
export const REQUEST_FIELDS_COMPARED: readonly string[] = TOPIC_SCHEMAS.request.fields.map((f) => f.key).filter((k) => k !== "id" && k !== "url");

/**
 * Do two Requests encode alike but for `id` and `url`? Deep equality of the fields the codec
 * writes (JSON values, arrays, bytes); other properties are not journaled either way. Field by
 * field by name: this runs for every enqueued link, and named reads are several times faster
 * than a loop over the field names.
 */
export function sameExceptIdAndUrl(a: Request, b: Request): boolean {
  if (a === b) return true;
  return (
    a.platform === b.platform && a.account === b.account && a.module === b.module && a.method === b.method &&
    a.retryTimes === b.retryTimes && a.taskRetryTimes === b.taskRetryTimes && a.useNewClient === b.useNewClient && a.timeout === b.timeout &&
    a.limitId === b.limitId && a.taskFinished === b.taskFinished && a.timeSleepSecs === b.timeSleepSecs && a.runId === b.runId &&
    a.prefixRequest === b.prefixRequest && a.hashStr === b.hashStr && a.enableCache === b.enableCache && a.enableLocker === b.enableLocker &&
    a.downloader === b.downloader && a.priority === b.priority &&
    same(a.headers, b.headers) && same(a.cookies, b.cookies) && same(a.params, b.params) && same(a.json, b.json) &&
    same(a.body, b.body) && same(a.form, b.form) && same(a.cacheHeaders, b.cacheHeaders) && same(a.proxy, b.proxy) &&
    same(a.downloadMiddleware, b.downloadMiddleware) && same(a.dataMiddleware, b.dataMiddleware) &&
    // structs (the codec writes their fields only), compared by name
    (a.meta === b.meta || (same(a.meta.task, b.meta.task) && same(a.meta.loginInfo, b.meta.loginInfo) && same(a.meta.moduleConfig, b.meta.moduleConfig) && same(a.meta.traitMeta, b.meta.traitMeta))) &&
    (a.context === b.context ||
      (a.context.moduleId === b.context.moduleId && a.context.stepIdx === b.context.stepIdx && a.context.epoch === b.context.epoch && a.context.stayCurrentStep === b.context.stayCurrentStep))
  );
}

/** Is `id` a UUID in its canonical text (lower-case hex, hyphenated)? Then it is stored as 16 bytes. */
function canonicalUuid(id: unknown): boolean {
  if (typeof id !== "string" || id.length !== 36) return false;
  for (let i = 0; i < 36; i++) {
    const c = id.charCodeAt(i);
    if (i === 8 || i === 13 || i === 18 || i === 23) {
      if (c !== 45) return false;
    } else if (!((c >= 48 && c <= 57) || (c >= 97 && c <= 102))) return false;
  }
  return true;
}

function same(a: unknown, b: unknown): boolean {
  return a === b || deepEqual(a, b);
}

function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (a instanceof Uint8Array || b instanceof Uint8Array) {
    if (!(a instanceof Uint8Array && b instanceof Uint8Array) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
    return true;
  }
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a)) {
    const bb = b as unknown[];
    if (a.length !== bb.length) return false;
    for (let i = 0; i < a.length; i++) if (!deepEqual(a[i], bb[i])) return false;
    return true;
  }
  const oa = a as Record<string, unknown>;
  const ob = b as Record<string, unknown>;
  const ka = Object.keys(oa);
  if (ka.length !== Object.keys(ob).length) return false;
  for (const k of ka) if (!(k in ob) || !deepEqual(oa[k], ob[k])) return false;
  return true;
}
