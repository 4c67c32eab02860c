// src/modules/schedules.ts: the cron schedules the registered modules ask for (src/sync/cron.ts
// runs them).

import { ConfigError, DEFAULT_CONFIG_FILE } from "../config/index.ts";
import { parseCron, type Schedule } from "../sync/cron.ts";
import type { ModuleRegistry } from "./registry.ts";

/** Every module's schedule: `cron` in `[modules.<name>]` over the module's own; bad ones throw naming the module. */
export function schedulesOf(registry: ModuleRegistry, only?: readonly string[]): Schedule[] {
  const out: Schedule[] = [];
  for (const module of only && only.length > 0 ? only : registry.names()) {
    const own = registry.get(module).cron;
    const over = registry.settings(module).cron;
    const expression = typeof over === "string" ? over : own;
    if (expression === undefined || expression === "") continue;
    try {
      out.push({ module, expression, cron: parseCron(expression) });
    } catch (err) {
      const message = `module ${module}: cron ${JSON.stringify(expression)} is not a cron expression: ${err instanceof Error ? err.message : String(err)}`;
      throw new ConfigError(DEFAULT_CONFIG_FILE, [{ file: DEFAULT_CONFIG_FILE, message }]);
    }
  }
  return out;
}
