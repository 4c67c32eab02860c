import { randomBytes } from "node:crypto";

/** A UUID as its lowercase hyphenated text (mocra's JSON form). */
export type Uuid = string;

export const NIL_UUID: Uuid = "00000000-0000-0000-0000-000000000000";

let lastMs = 0;
let seq = 0;

// One crypto call per 256 ids instead of one per id (randomBytes is a slow sync call).
const POOL_IDS = 256;
let pool = new Uint8Array(0);
let poolOffset = 0;

function random16(): Uint8Array {
  if (poolOffset + 16 > pool.length) {
    pool = randomBytes(16 * POOL_IDS);
    poolOffset = 0;
  }
  const out = pool.slice(poolOffset, poolOffset + 16);
  poolOffset += 16;
  return out;
}

/**
 * UUID v7: 48-bit unix milliseconds, then random bits. Within one millisecond a 12-bit counter
 * in rand_a keeps ids from one process monotonic (RFC 9562, method 1).
 */
export function uuidv7(now: number = Date.now()): Uuid {
  const bytes = random16();
  if (now <= lastMs) {
    seq = (seq + 1) & 0xfff;
    if (seq === 0) lastMs += 1;
    now = lastMs;
  } else {
    lastMs = now;
    seq = bytes[6] & 0x07; // small random start leaves room to count up
  }
  const hi = Math.floor(now / 0x100000000);
  const lo = now >>> 0;
  bytes[0] = (hi >>> 8) & 0xff;
  bytes[1] = hi & 0xff;
  bytes[2] = lo >>> 24;
  bytes[3] = (lo >>> 16) & 0xff;
  bytes[4] = (lo >>> 8) & 0xff;
  bytes[5] = lo & 0xff;
  bytes[6] = 0x70 | ((seq >> 8) & 0x0f);
  bytes[7] = seq & 0xff;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  return uuidFromBytes(bytes);
}

/** UUID v4, used for consumer names (as mocra does). */
export function uuidv4(): Uuid {
  const bytes = random16();
  bytes[6] = (bytes[6] & 0x0f) | 0x40;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  return uuidFromBytes(bytes);
}

/** the char codes of a UUID's text, filled in place by uuidFromBytes (hyphens stay) */
const UUID_CODES: number[] = Array.from("00000000-0000-0000-0000-000000000000", (c) => c.charCodeAt(0));
const HEX_CODES: number[] = Array.from("0123456789abcdef", (c) => c.charCodeAt(0));

export function uuidFromBytes(b: Uint8Array): Uuid {
  if (b.length !== 16) throw new Error(`a UUID is 16 bytes, got ${b.length}`);
  // one flat string from its char codes: `s += HEX[b]` 16 times left a chain of cons strings
  // per id, kept as such in every Request and Response id (~8 MB of live heap at 200 in flight)
  let j = 0;
  for (let i = 0; i < 16; i++) {
    if (i === 4 || i === 6 || i === 8 || i === 10) j++;
    UUID_CODES[j++] = HEX_CODES[b[i] >> 4];
    UUID_CODES[j++] = HEX_CODES[b[i] & 15];
  }
  return String.fromCharCode.apply(null, UUID_CODES);
}

const UUID_RE = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;

export function isUuid(value: unknown): value is Uuid {
  return typeof value === "string" && UUID_RE.test(value);
}

export function uuidToBytes(u: Uuid): Uint8Array {
  if (!isUuid(u)) throw new Error(`not a UUID: ${JSON.stringify(u)}`);
  const hex = u.replace(/-/g, "");
  const out = new Uint8Array(16);
  for (let i = 0; i < 16; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}
