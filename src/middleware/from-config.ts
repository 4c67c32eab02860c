// src/middleware/from-config.ts: the global middleware `[middleware]` asks for: the built-ins,
// and the files listed in `paths` (each default-exports a middleware or an array of them).
import { readFile } from "node:fs/promises";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { type Config, ConfigError, DEFAULT_CONFIG_FILE, type MiddlewareConfig } from "../config/index.ts";
import type { ModuleRegistry } from "../modules/registry.ts";
import { defaultHeaders, itemSchema, requiredFields, userAgentRotation } from "./builtin.ts";
import { MiddlewareChains } from "./chains.ts";
import type { Middleware } from "../modules/middleware.ts";

/** A `[middleware]` value that cannot be used: a configuration error naming the key. */
class MiddlewareConfigError extends ConfigError {
  constructor(message: string) {
    super(DEFAULT_CONFIG_FILE, [{ file: DEFAULT_CONFIG_FILE, message }]);
  }
}

function parseHeaders(lines: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of lines) {
    const i = line.indexOf(":");
    const name = i > 0 ? line.slice(0, i).trim() : "";
    if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(name)) {
      throw new MiddlewareConfigError(`middleware.default_headers: ${JSON.stringify(line)} is not "Name: value"`);
    }
    out[name] = line.slice(i + 1).trim();
  }
  return out;
}

function isMiddleware(v: unknown): v is Middleware {
  const m = v as { kind?: unknown; name?: unknown } | null;
  return typeof m === "object" && m !== null && typeof m.name === "string" && (m.kind === "download" || m.kind === "data" || m.kind === "store");
}

/** Builds the global middleware of `[middleware]` (in this order: built-ins, then `paths`). */
export async function middlewareFromConfig(c: MiddlewareConfig): Promise<Middleware[]> {
  const out: Middleware[] = [];
  if (c.userAgents.length > 0) out.push(userAgentRotation(c.userAgents));
  if (c.defaultHeaders.length > 0) out.push(defaultHeaders(parseHeaders(c.defaultHeaders)));
  if (c.requiredFields.length > 0) out.push(requiredFields(c.requiredFields));
  if (c.itemSchema !== "") {
    let schema: unknown;
    try {
      schema = JSON.parse(await readFile(c.itemSchema, "utf8"));
    } catch (err) {
      throw new MiddlewareConfigError(`middleware.item_schema: cannot read ${c.itemSchema}: ${err instanceof Error ? err.message : String(err)}`);
    }
    try {
      out.push(itemSchema(schema as object));
    } catch (err) {
      throw new MiddlewareConfigError(`middleware.item_schema: ${c.itemSchema}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  for (const p of c.paths) {
    let mod: { default?: unknown };
    try {
      mod = (await import(pathToFileURL(resolve(p)).href)) as { default?: unknown };
    } catch (err) {
      throw new MiddlewareConfigError(`middleware.paths: cannot load ${p}: ${err instanceof Error ? err.message : String(err)}`);
    }
    const list = Array.isArray(mod.default) ? mod.default : [mod.default];
    for (const m of list) {
      if (!isMiddleware(m)) throw new MiddlewareConfigError(`middleware.paths: ${p}: default export is not a middleware (downloadMiddleware / dataMiddleware / storeMiddleware)`);
      out.push(m);
    }
  }
  return out;
}

/** The chains of a run: `[middleware]`, then middleware given in code, then each module's own. */
export async function loadMiddlewareChains(config: Config, registry: ModuleRegistry, extra: readonly Middleware[] = []): Promise<MiddlewareChains> {
  return new MiddlewareChains([...(await middlewareFromConfig(config.middleware)), ...extra], registry);
}
