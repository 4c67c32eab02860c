// src/storage/blob-storage.ts: large payloads kept outside Redis (wire FORMAT §6, mocra's
// FileSystemBlobStorage). `put` writes `<root>/<key>` and returns that full path, which travels
// in the message (`storage_path`); `get` reads the path it is given verbatim (not joined with
// the root), so a consumer reads whatever path the producer wrote. Files are never deleted by
// the engine (as in mocra): the directory grows by one file per offloaded body.

import { randomBytes } from "node:crypto";
import { mkdir, readFile, rename, unlink, writeFile } from "node:fs/promises";
import { dirname, isAbsolute, join } from "node:path";

export interface BlobStorage {
  /** Stores `bytes` under `key` (a relative path); resolves to the full path to read it back. */
  put(key: string, bytes: Uint8Array): Promise<string>;
  /** Reads the blob at `path` (the value `put` returned). */
  get(path: string): Promise<Uint8Array>;
}

/** Blobs as files under `root`; a relative root is relative to the working directory. */
export class FileBlobStorage implements BlobStorage {
  constructor(readonly root: string) {
    if (root === "") throw new Error("FileBlobStorage: root must not be empty");
  }

  /** `root.join(key)`: the path `put(key)` writes. */
  pathOf(key: string): string {
    const parts = key.split(/[\\/]/);
    if (key === "" || isAbsolute(key) || parts.some((p) => p === ".." || p === "")) {
      throw new Error(`FileBlobStorage: key must be a relative path inside the root, got ${JSON.stringify(key)}`);
    }
    return join(this.root, key);
  }

  /**
   * mkdir -p, then write to a temporary name beside the target and rename it into place, so a
   * reader sees either no file or the whole file.
   */
  async put(key: string, bytes: Uint8Array): Promise<string> {
    const path = this.pathOf(key);
    await mkdir(dirname(path), { recursive: true });
    const tmp = `${path}.${randomBytes(6).toString("hex")}.tmp`;
    try {
      await writeFile(tmp, bytes);
      await rename(tmp, path);
    } catch (err) {
      await unlink(tmp).catch(() => {});
      throw err;
    }
    return path;
  }

  async get(path: string): Promise<Uint8Array> {
    const buf = await readFile(path);
    return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
  }
}

/** The blob key of an offloaded Response body (mocra's layout): `response/<run_id>/<id>.bin`. */
export function responseBlobKey(runId: string, id: string): string {
  return `response/${runId}/${id}.bin`;
}
