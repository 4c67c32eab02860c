import { existsSync, readdirSync, statSync } from "node:fs";
import { basename, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { type Config, ConfigError, loadConfig, moduleSectionIssues } from "../config/index.ts";
import type { LogLevel } from "../config/schema.ts";
import { isLogLevel, LOG_LEVELS } from "../observe/logger.ts";
import { ModuleRegistry } from "../modules/registry.ts";

/** Thrown for a wrong command line: printed with the command's usage, exit code 2. */
export class UsageError extends Error {}

/** The project's own modules/ folder (the demo module lives there). */
export const PROJECT_MODULES = fileURLToPath(new URL("../../modules/", import.meta.url));
/**
 * When this code runs compiled (dist/src/commands/common.js of a clone: `npm start`), the clone's
 * own modules/ folder whose compiled copies the same build wrote to dist/modules/; else undefined.
 */
const COMPILED_FROM = import.meta.url.endsWith(".js") ? resolve(PROJECT_MODULES, "../../modules") : undefined;

/**
 * The files of the clone's modules/ as the compiled CLI loads them: a module the build compiled,
 * and that has not changed since, from its JavaScript (the same engine copy, no TypeScript loader
 * in the process); any other from its TypeScript (tsx registered on first need).
 */
function compiledTwins(local: string): string[] {
  return readdirSync(local, { withFileTypes: true })
    .filter((e) => e.isFile() && /\.(ts|js|mjs)$/.test(e.name) && !e.name.endsWith(".d.ts") && !e.name.startsWith("_"))
    .map((e) => {
      const source = resolve(local, e.name);
      const twin = resolve(PROJECT_MODULES, basename(e.name).replace(/\.ts$/, ".js"));
      return e.name.endsWith(".ts") && existsSync(twin) && statSync(twin).mtimeMs >= statSync(source).mtimeMs ? twin : source;
    })
    .sort();
}

/** The module `run-standalone --demo` runs when no --module is given. */
export const DEMO_MODULE = "demo_shop";

export function loadConfigFrom(path: string | undefined): Promise<Config> {
  return loadConfig(path);
}

/**
 * The registry: `modules/` in the working directory (if there is one), the project's own
 * modules/ when run from elsewhere, and `crawler.module_paths`. A file that cannot be loaded is
 * reported on stderr with its path and skipped, unless it is one of the `required` modules
 * (then this throws).
 */
export async function loadRegistry(
  config: Config,
  extraOverrides: Record<string, Record<string, unknown>> = {},
  required: readonly string[] = [],
): Promise<ModuleRegistry> {
  const overrides: Record<string, Record<string, unknown>> = { ...config.modules };
  for (const [name, o] of Object.entries(extraOverrides)) overrides[name] = { ...o, ...overrides[name] };
  const registry = new ModuleRegistry(overrides);
  const local = resolve("modules");
  const paths = existsSync(local) ? (COMPILED_FROM !== undefined && resolve(local) === COMPILED_FROM ? compiledTwins(local) : [local]) : [PROJECT_MODULES];
  // a project of the user's own (`mocra-ts init`) crawls the bundled demo shop with the bundled
  // demo module, which is not in its modules/
  if (paths[0] === local && required.includes(DEMO_MODULE) && resolve(local) !== resolve(PROJECT_MODULES)) {
    const demo = ["ts", "js"].map((ext) => resolve(PROJECT_MODULES, `${DEMO_MODULE}.${ext}`)).find((f) => existsSync(f));
    if (demo && !existsSync(resolve(local, `${DEMO_MODULE}.ts`)) && !existsSync(resolve(local, `${DEMO_MODULE}.js`))) paths.push(demo);
  }
  await registry.load([...paths, ...config.crawler.modulePaths], { required });
  for (const p of registry.problems) console.error(`warning: skipped ${p}`);
  checkModuleSections(config, registry);
  return registry;
}

/**
 * Every key of `[modules.<name>]` for a loaded module is an engine setting or one the module
 * declares: a typo (`rate_limt`) stops start-up with a ConfigError (exit 2), not a crawl
 * that silently ignores it.
 */
export function checkModuleSections(config: Config, registry: ModuleRegistry): void {
  const issues = moduleSectionIssues(config, (m) => (registry.has(m) ? registry.allowedSettings(m) : undefined));
  if (issues.length > 0) throw new ConfigError(issues[0].file, issues);
}

/** `--log-level`: undefined when not given (the config's [logger] level applies). */
export function parseLogLevel(value: string | undefined): LogLevel | undefined {
  if (value === undefined) return undefined;
  if (!isLogLevel(value)) throw new UsageError(`--log-level must be one of ${LOG_LEVELS.join(", ")}, got ${JSON.stringify(value)}`);
  return value;
}
