import * as nodeCrypto from "node:crypto";
import type { Request } from "./request.ts";

type OneShotHash = (algorithm: string, data: string, outputEncoding: "hex") => unknown;

/**
 * md5 hex of a string: Node's one-shot `crypto.hash` (20.12+, about half the cost of a
 * createHash object for a fingerprint's ~80 characters) where it exists and gives the right
 * answer, else createHash (older runtimes, Deno versions without it).
 */
export const md5Hex: (s: string) => string = (() => {
  const oneShot = (nodeCrypto as unknown as { hash?: OneShotHash }).hash;
  const viaObject = (s: string): string => nodeCrypto.createHash("md5").update(s).digest("hex");
  if (typeof oneShot !== "function") return viaObject;
  const fast = (s: string): string => oneShot("md5", s, "hex") as string;
  try {
    return fast("mocra ü") === viaObject("mocra ü") ? fast : viaObject;
  } catch {
    return viaObject;
  }
})();

/** The fields of a Request that its fingerprint is computed from. */
export type FingerprintFields = Pick<Request, "hashStr" | "account" | "platform" | "module" | "url" | "method" | "params" | "json" | "body" | "form">;

/**
 * Fingerprints already computed, per Request object: the enqueue and the download of one
 * request (the same object in memory) hash it once. Checked against url and method, so a
 * middleware that rewrites either gets a fresh hash.
 */
const computed = new WeakMap<object, { url: string; method: string; fp: string }>();

/**
 * mocra's request fingerprint (`Request::hash()`, FORMAT §4.2): `hash_str` if set, else the
 * md5 hex of `account,platform,module,url,method,<params json>,<json>,<body as Rust Debug>,<form>`.
 * Dedup, the response cache and the item sinks key on it.
 */
export function fingerprint(req: FingerprintFields): string {
  if (req.hashStr !== null) return req.hashStr;
  const known = computed.get(req);
  if (known !== undefined && known.url === req.url && known.method === req.method) return known.fp;
  const fp = fingerprintFields(req);
  computed.set(req, { url: req.url, method: req.method, fp });
  return fp;
}

/** `fingerprint()` of fields that are not (yet) a Request, without remembering it. */
export function fingerprintFields(req: FingerprintFields): string {
  if (req.hashStr !== null) return req.hashStr;
  const params = req.params === null ? "null" : JSON.stringify(req.params);
  const json = req.json === undefined ? "null" : JSON.stringify(req.json);
  const body = req.body === null || req.body.length === 0 ? "[]" : `[${Array.from(req.body).join(", ")}]`;
  const form = req.form === undefined ? "null" : JSON.stringify(req.form);
  const canonical = `${req.account},${req.platform},${req.module},${req.url},${req.method},${params},${json},${body},${form}`;
  return md5Hex(canonical);
}

/** Records `fp` as the fingerprint of `req` (computed from the same fields before `req` was built). */
export function rememberFingerprint(req: Request, fp: string): void {
  if (req.hashStr === null) computed.set(req, { url: req.url, method: req.method, fp });
}
