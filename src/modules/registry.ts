import { readdir } from "node:fs/promises";
import { basename, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { importFile } from "../runtime/index.ts";
import { type LockService, MemoryLockService } from "../sync/lock.ts";
import { type CrawlModule, ENGINE_MODULE_SETTINGS, type ModuleSettings } from "./define.ts";

/** A module asked for is unknown or its file cannot be loaded: one line says which and why. */
export class ModuleError extends Error {
  override readonly name = "ModuleError";
}

/** Modules by name, found in `modules/` and the paths listed in config (`crawler.module_paths`). */
export class ModuleRegistry {
  private readonly modules = new Map<string, CrawlModule<unknown>>();
  /** merged settings per module: read for every request, built once */
  private readonly merged = new Map<string, ModuleSettings>();
  private readonly overrides: Record<string, Record<string, unknown>>;
  /** files that load() skipped because they could not be imported or are not modules, with why */
  readonly problems: string[] = [];

  private lockService: LockService | undefined;

  constructor(overrides: Record<string, Record<string, unknown>> = {}) {
    this.overrides = overrides;
  }

  /** The locks behind modules' `ctx.lock` (in-process unless a worker sets Redis ones). */
  get locks(): LockService {
    return (this.lockService ??= new MemoryLockService());
  }

  useLocks(locks: LockService): this {
    this.lockService = locks;
    return this;
  }

  register(module: CrawlModule<unknown>): this {
    const existing = this.modules.get(module.name);
    if (existing && existing !== module) throw new Error(`two modules are named ${JSON.stringify(module.name)}`);
    this.modules.set(module.name, module);
    this.merged.delete(module.name);
    return this;
  }

  get(name: string): CrawlModule<unknown> {
    const m = this.modules.get(name);
    if (!m) {
      const skipped = this.problems.length > 0 ? `; files skipped: ${this.problems.join("; ")}` : "";
      throw new ModuleError(`no module named ${JSON.stringify(name)} (known: ${this.names().join(", ") || "none"})${skipped}`);
    }
    return m;
  }

  has(name: string): boolean {
    return this.modules.has(name);
  }

  names(): string[] {
    return [...this.modules.keys()].sort();
  }

  /**
   * The keys `[modules.<name>]` may set for this module, snake_case: the engine's own
   * (ENGINE_MODULE_SETTINGS) and the ones the module declares in `settings`.
   */
  allowedSettings(name: string): string[] {
    const declared = Object.keys(this.get(name).settings ?? {}).map((k) => k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`));
    return [...new Set([...ENGINE_MODULE_SETTINGS, ...declared])];
  }

  /**
   * The module's settings with `[modules.<name>]` from config over them (shared: do not modify).
   * A config key reaches the module both as written and in camelCase: `base_url` is
   * `settings.base_url` and `settings.baseUrl`.
   */
  settings(name: string): Readonly<ModuleSettings> {
    let merged = this.merged.get(name);
    if (!merged) {
      const base = this.get(name).settings ?? {};
      const over = this.overrides[name] ?? {};
      merged = { ...base };
      for (const [k, v] of Object.entries(over)) {
        merged[k] = v;
        merged[snakeToCamel(k)] = v;
      }
      this.merged.set(name, merged);
    }
    return merged;
  }

  /**
   * Imports every `.ts`/`.js` file directly in each directory (or each file) given. A file that
   * default-exports a module made by defineModule() registers it. A file that fails to import
   * (syntax error, a throw at load time) or whose default export is not a module is skipped and
   * reported in `problems` with its path, unless it is named after a module in `required`
   * (`<name>.ts`): then load() throws with that problem. A file without a default export is a
   * helper (imported by modules), skipped without a word.
   */
  async load(paths: readonly string[], options: { required?: readonly string[] } = {}): Promise<this> {
    const required = new Set(options.required ?? []);
    for (const p of paths) {
      const abs = resolve(p);
      let files: string[];
      try {
        const entries = await readdir(abs, { withFileTypes: true });
        files = entries
          .filter((e) => e.isFile() && /\.(ts|js|mjs)$/.test(e.name) && !e.name.endsWith(".d.ts") && !e.name.startsWith("_"))
          .map((e) => resolve(abs, e.name))
          .sort();
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === "ENOTDIR") files = [abs];
        else if ((err as NodeJS.ErrnoException).code === "ENOENT") throw new Error(`module path not found: ${abs}`);
        else throw err;
      }
      for (const file of files) {
        const problem = await this.loadFile(file);
        if (problem === undefined) continue;
        if (required.has(basename(file).replace(/\.(ts|js|mjs)$/, ""))) throw new ModuleError(problem);
        this.problems.push(problem);
      }
    }
    return this;
  }

  /** Imports one file and registers its module; returns what is wrong with it, if anything. */
  private async loadFile(file: string): Promise<string | undefined> {
    let mod: { default?: unknown };
    try {
      mod = (await importFile(pathToFileURL(file).href)) as { default?: unknown };
    } catch (err) {
      return `${file}: could not be imported: ${importErrorText(err)}`;
    }
    if (!("default" in mod) || mod.default === undefined) return undefined; // a helper file
    const def = mod.default as CrawlModule<unknown> | undefined;
    if (!def || typeof def !== "object" || typeof def.stepFn !== "function") {
      return `${file}: default export is not a module (export default defineModule({...}))`;
    }
    this.register(def);
    return undefined;
  }
}

/**
 * The useful lines of an import error on one line: tsx, Deno and vite put the reason between a
 * header, colour codes and a code frame.
 */
function importErrorText(err: unknown): string {
  const text = (err instanceof Error ? err.message : String(err)).replace(/\x1b\[[0-9;]*m/g, "");
  const lines = text
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l && !/^Transform failed with/.test(l) && !/^(\d+\s*)?[|│╭╰─~]/.test(l));
  return (lines.join("; ") || text.replace(/\s+/g, " ")).slice(0, 500);
}

function snakeToCamel(key: string): string {
  return key.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
}
