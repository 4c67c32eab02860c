// src/middleware/builtin.ts: the built-in middleware: user-agent rotation and default headers
// (download), required fields and JSON Schema validation of items (data).
import { Ajv, type ErrorObject } from "ajv";
import type { Request } from "../model/index.ts";
import { type DataMiddleware, type DownloadMiddleware, dataMiddleware, downloadMiddleware } from "../modules/middleware.ts";

function hasHeader(req: Request, name: string): boolean {
  const lower = name.toLowerCase();
  return req.headers.some((h) => h.key.toLowerCase() === lower);
}

/**
 * Sends each request with the next user agent of the list (round robin), unless the request
 * already names one (a module's `headers` win).
 */
export function userAgentRotation(agents: readonly string[], weight = 10): DownloadMiddleware {
  if (agents.length === 0) throw new TypeError("userAgentRotation needs at least one user agent");
  let next = 0;
  return downloadMiddleware({
    name: "user_agent_rotation",
    weight,
    beforeRequest(req) {
      if (hasHeader(req, "user-agent")) return req;
      req.headers = [...req.headers, { key: "user-agent", value: agents[next++ % agents.length] }];
      return req;
    },
  });
}

/** Adds these headers to every request that does not set them already. */
export function defaultHeaders(headers: Readonly<Record<string, string>>, weight = 20): DownloadMiddleware {
  const entries = Object.entries(headers);
  return downloadMiddleware({
    name: "default_headers",
    weight,
    beforeRequest(req) {
      const missing = entries.filter(([k]) => !hasHeader(req, k));
      if (missing.length > 0) req.headers = [...req.headers, ...missing.map(([key, value]) => ({ key, value }))];
      return req;
    },
  });
}

function isEmpty(v: unknown): boolean {
  if (v === undefined || v === null) return true;
  if (typeof v === "string") return v.trim() === "";
  if (Array.isArray(v)) return v.length === 0;
  return false;
}

/** Drops items where any of these fields is missing, null, blank or an empty array. */
export function requiredFields(fields: readonly string[], weight = 10): DataMiddleware {
  return dataMiddleware({
    name: "required_fields",
    weight,
    handleItem(item, ctx) {
      if (typeof item !== "object" || item === null) return ctx.drop("item is not an object");
      const rec = item as Record<string, unknown>;
      const empty = fields.filter((f) => isEmpty(rec[f]));
      return empty.length > 0 ? ctx.drop(`empty required field${empty.length > 1 ? "s" : ""}: ${empty.join(", ")}`) : item;
    },
  });
}

function describeError(e: ErrorObject): string {
  return `${e.instancePath || "item"} ${e.message ?? "is invalid"}`;
}

/**
 * Drops items that do not match a JSON Schema (validated with Ajv, compiled once); the reason
 * names the first failing path. The schema is checked when the middleware is made.
 */
export function itemSchema(schema: object, weight = 20): DataMiddleware {
  const ajv = new Ajv({ allErrors: false, strict: false });
  let validate: ReturnType<typeof ajv.compile>;
  try {
    validate = ajv.compile(schema);
  } catch (err) {
    throw new TypeError(`item schema is not a valid JSON Schema: ${err instanceof Error ? err.message : String(err)}`);
  }
  return dataMiddleware({
    name: "item_schema",
    weight,
    handleItem(item, ctx) {
      if (validate(item)) return item;
      return ctx.drop(`schema: ${(validate.errors ?? []).map(describeError).join("; ") || "invalid"}`);
    },
  });
}
