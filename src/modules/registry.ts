import { readdir } from "node:fs/promises";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { type LockService, MemoryLockService } from "../sync/lock.ts";
import type { CrawlModule, ModuleSettings } from "./define.ts";

/** Modules by name, found in `modules/` and the paths listed in config (`crawler.module_paths`). */
export class ModuleRegistry {
  private readonly modules = new Map<string, CrawlModule<unknown>>();
  /** merged settings per module: read for every request, built once */
  private readonly merged = new Map<string, ModuleSettings>();
  private readonly overrides: Record<string, Record<string, unknown>>;

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
    if (!m) throw new Error(`no module named ${JSON.stringify(name)} (known: ${this.names().join(", ") || "none"})`);
    return m;
  }

  has(name: string): boolean {
    return this.modules.has(name);
  }

  names(): string[] {
    return [...this.modules.keys()].sort();
  }

  /** The module's settings with `[modules.<name>]` from config over them (shared: do not modify). */
  settings(name: string): Readonly<ModuleSettings> {
    let merged = this.merged.get(name);
    if (!merged) {
      const base = this.get(name).settings ?? {};
      const over = this.overrides[name] ?? {};
      merged = { ...base };
      for (const [k, v] of Object.entries(over)) merged[snakeToCamel(k)] = v;
      this.merged.set(name, merged);
    }
    return merged;
  }

  /**
   * Imports every `.ts`/`.js` file directly in each directory (or each file) given; each must
   * default-export a module made by defineModule().
   */
  async load(paths: readonly string[]): Promise<this> {
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
        const mod = (await import(pathToFileURL(file).href)) as { default?: unknown };
        const def = mod.default as CrawlModule<unknown> | undefined;
        if (!def || typeof def !== "object" || typeof def.stepFn !== "function") {
          throw new Error(`${file}: default export is not a module (export default defineModule({...}))`);
        }
        this.register(def);
      }
    }
    return this;
  }
}

function snakeToCamel(key: string): string {
  return key.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
}
