import { createHash } from "node:crypto";
import type { Request } from "./request.ts";

/**
 * mocra's request fingerprint (`Request::hash()`, FORMAT §4.2): `hash_str` if set, else the
 * md5 hex of `account,platform,module,url,method,<params json>,<json>,<body as Rust Debug>,<form>`.
 * Dedup, the response cache and the item sinks key on it.
 */
export function fingerprint(req: Request): string {
  if (req.hashStr !== null) return req.hashStr;
  const params = req.params === null ? "null" : JSON.stringify(req.params);
  const json = req.json === undefined ? "null" : JSON.stringify(req.json);
  const body = req.body === null || req.body.length === 0 ? "[]" : `[${Array.from(req.body).join(", ")}]`;
  const form = req.form === undefined ? "null" : JSON.stringify(req.form);
  const canonical = `${req.account},${req.platform},${req.module},${req.url},${req.method},${params},${json},${body},${form}`;
  return createHash("md5").update(canonical).digest("hex");
}
