// src/queue/redis/crc32.ts: CRC-32 (IEEE 802.3, the zlib/crc32fast one) that mocra shards by.

const TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

const encoder = new TextEncoder();

/** CRC-32 of the bytes, or of the UTF-8 encoding of a string; an unsigned 32-bit integer. */
export function crc32(data: string | Uint8Array): number {
  if (typeof data === "string") {
    // ids are ASCII (UUIDs): hash the char codes directly, no encoding step
    let c = 0xffffffff;
    for (let i = 0; i < data.length; i++) {
      const ch = data.charCodeAt(i);
      if (ch > 0x7f) return crc32(encoder.encode(data));
      c = TABLE[(c ^ ch) & 0xff] ^ (c >>> 8);
    }
    return (c ^ 0xffffffff) >>> 0;
  }
  const bytes = data;
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) c = TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}
