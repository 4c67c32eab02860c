// src/codec/codec.ts: the Codec interface the queue uses to turn topic messages into payload
// bytes and back, and the lookup by mocra's `queue_codec` name. Each codec lives in its own
// file and walks the shared schemas (schema.ts); adding one = one file plus one line in CODECS below.

import type { Topic, TopicMessages } from "../model/index.ts";
import { bincodeCodec } from "./bincode.ts";
import { CodecError } from "./errors.ts";
import { jsonCodec } from "./json.ts";
import { msgpackCodec } from "./msgpack.ts";

export { CodecError } from "./errors.ts";

/** Codec names as in mocra's config (`channel_config.queue_codec`). */
export type CodecName = "json" | "msgpack" | "bincode";

export interface Codec {
  readonly name: CodecName;
  /** Encode one message; throws CodecError if a field holds a value mocra cannot represent. */
  encode<K extends Topic>(topic: K, message: TopicMessages[K]): Uint8Array;
  /** Decode one payload (already decompressed); throws CodecError naming the bad field on bad input. */
  decode<K extends Topic>(topic: K, bytes: Uint8Array): TopicMessages[K];
}

const CODECS: Readonly<Record<string, Codec>> = {
  json: jsonCodec,
  msgpack: msgpackCodec,
  rmp: msgpackCodec,
  bincode: bincodeCodec,
};

/**
 * The codec for a `queue_codec` name: "json", "msgpack", "rmp" or "bincode" (case-insensitive,
 * as mocra lowercases it). mocra silently falls back to bincode for any other name; we throw
 * instead, so a typo does not quietly pick a codec.
 */
export function codecByName(name: string): Codec {
  const key = name.trim().toLowerCase();
  const codec = Object.hasOwn(CODECS, key) ? CODECS[key] : undefined;
  if (codec === undefined) {
    throw new CodecError(
      `unknown queue codec ${JSON.stringify(name)}: accepted values are ${Object.keys(CODECS).map((k) => `"${k}"`).join(", ")}`,
    );
  }
  return codec;
}
