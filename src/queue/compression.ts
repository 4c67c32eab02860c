// src/queue/compression.ts: mocra's payload framing (wire FORMAT §2.2). A payload longer than
// `compression_threshold` bytes travels as one zstd frame (level 3); a reader sniffs the zstd
// (28 B5 2F FD) or gzip (1F 8B) magic, anything else is the codec bytes as they are.
//
// Libraries, chosen because both run unchanged on Node 20 and Deno 2 (Node 20's zlib has no zstd):
// - @bokuweb/zstd-wasm: the reference zstd compiled to wasm. Encodes (ZSTD_compress, level 3:
//   our frames state their content size) and decodes. A frame WITHOUT a content size (mocra's
//   Rust `zstd::stream::encode_all` writes those) is decoded into a guessed buffer, grown ×8 on
//   "destination too small" up to WASM_GUESS_MAX.
// - fzstd: a pure-JS streaming decoder: the fallback beyond that, and the decoder when the wasm
//   could not load. It needs no output size but is slow on mocra's 2 MiB-window frames.
// The wasm part must be loaded once with `await initCompression()`; until then (or if it cannot
// load) nothing is compressed and every frame is decoded by fzstd.

import { Buffer } from "node:buffer";
import { gunzipSync } from "node:zlib";
import { compress as zstdCompress, decompress as zstdDecompress, init as zstdInit } from "@bokuweb/zstd-wasm";
import { Decompress as FzstdStream } from "fzstd";

export const ZSTD_MAGIC: readonly number[] = [0x28, 0xb5, 0x2f, 0xfd];
export const GZIP_MAGIC: readonly number[] = [0x1f, 0x8b];
/** mocra's zstd level. */
export const ZSTD_LEVEL = 3;
/** A frame that inflates beyond this is refused (a corrupt or hostile payload, not a message). */
export const MAX_DECOMPRESSED_BYTES = 256 * 1024 * 1024;
/** Largest output buffer guessed for a frame without content size (the wasm heap keeps its peak). */
const WASM_GUESS_MAX = 32 * 1024 * 1024;
/** ZSTD_error_dstSize_tooSmall, as the wasm build reports it. */
const DST_SIZE_TOO_SMALL = /code -70$/;

/** A payload that carries a compression magic but does not decompress. */
export class FramingError extends Error {
  override readonly name = "FramingError";
}

let wasmReady = false;
let wasmLoading: Promise<boolean> | undefined;

/**
 * Loads the zstd encoder (wasm) once. Resolves true when payloads will be compressed, false when
 * the wasm could not load: then payloads travel uncompressed (valid for every reader) and zstd
 * frames are still decoded, by the pure-JS decoder.
 */
export function initCompression(): Promise<boolean> {
  wasmLoading ??= zstdInit().then(
    () => (wasmReady = true),
    () => false,
  );
  return wasmLoading;
}

/** True once the zstd encoder is loaded. */
export function canCompress(): boolean {
  return wasmReady;
}

/** The payload to store: the bytes themselves, or a zstd frame when longer than `threshold`. */
export function compressPayload(bytes: Uint8Array, threshold: number): Uint8Array {
  if (bytes.length <= threshold || !wasmReady) return bytes;
  try {
    return zstdCompress(bytes, ZSTD_LEVEL);
  } catch {
    return bytes; // as mocra: on an encoder error the raw bytes go out
  }
}

export function hasZstdMagic(bytes: Uint8Array): boolean {
  return bytes.length > 4 && bytes[0] === 0x28 && bytes[1] === 0xb5 && bytes[2] === 0x2f && bytes[3] === 0xfd;
}

export function hasGzipMagic(bytes: Uint8Array): boolean {
  return bytes.length > 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

/**
 * The codec bytes inside a stored payload: zstd and gzip frames are inflated, anything else is
 * returned as is. Throws FramingError when a frame does not decompress.
 */
export function decompressPayload(bytes: Uint8Array): Uint8Array {
  if (hasZstdMagic(bytes)) {
    try {
      return zstdDecode(bytes);
    } catch (err) {
      throw new FramingError(`payload starts with the zstd magic but does not decompress: ${message(err)}`);
    }
  }
  if (hasGzipMagic(bytes)) {
    try {
      return gunzipSync(bytes, { maxOutputLength: MAX_DECOMPRESSED_BYTES });
    } catch (err) {
      throw new FramingError(`payload starts with the gzip magic but does not decompress: ${message(err)}`);
    }
  }
  return bytes;
}

function zstdDecode(frame: Uint8Array): Uint8Array {
  const size = frameContentSize(frame);
  if (size !== undefined && size > MAX_DECOMPRESSED_BYTES) {
    throw new Error(`frame content size ${size} exceeds ${MAX_DECOMPRESSED_BYTES} bytes`);
  }
  if (!wasmReady) return streamDecode(frame);
  if (size !== undefined) {
    try {
      return zstdDecompress(frame);
    } catch {
      return streamDecode(frame); // e.g. several concatenated frames
    }
  }
  for (let guess = Math.max(64 * 1024, frame.length * 16); guess <= WASM_GUESS_MAX; guess *= 8) {
    try {
      return zstdDecompress(frame, { defaultHeapSize: guess });
    } catch (err) {
      if (!DST_SIZE_TOO_SMALL.test(message(err))) throw err;
    }
  }
  return streamDecode(frame);
}

/** Streaming decode: works without a content size, and stops a frame that inflates too far. */
function streamDecode(frame: Uint8Array): Uint8Array {
  const chunks: Uint8Array[] = [];
  let total = 0;
  const stream = new FzstdStream((chunk) => {
    total += chunk.length;
    if (total > MAX_DECOMPRESSED_BYTES) throw new Error(`frame inflates beyond ${MAX_DECOMPRESSED_BYTES} bytes`);
    chunks.push(chunk.slice());
  });
  stream.push(frame, true);
  return chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, total);
}

/** Frame_Content_Size from the zstd frame header (RFC 8878 §3.1.1.1), undefined when absent. */
export function frameContentSize(frame: Uint8Array): number | undefined {
  if (frame.length < 6) return undefined;
  const fhd = frame[4];
  const fcsFlag = fhd >> 6;
  const singleSegment = (fhd >> 5) & 1;
  const dictIdBytes = [0, 1, 2, 4][fhd & 3];
  const fcsBytes = fcsFlag === 0 ? singleSegment : [0, 2, 4, 8][fcsFlag];
  if (fcsBytes === 0) return undefined;
  const at = 5 + (singleSegment ? 0 : 1) + dictIdBytes;
  if (frame.length < at + fcsBytes) return undefined;
  let value = 0;
  for (let i = fcsBytes - 1; i >= 0; i--) value = value * 256 + frame[at + i];
  return fcsBytes === 2 ? value + 256 : value;
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
