// src/codec/index.ts: public entry point of the queue codecs.
export { type Codec, type CodecName, CodecError, codecByName } from "./codec.ts";
export { formatF32, jsonCodec } from "./json.ts";
export { msgpackCodec } from "./msgpack.ts";
export { bincodeCodec } from "./bincode.ts";
export { TOPIC_SCHEMAS } from "./schema.ts";
