/**
 * Loading `config.toml`: reading the file, parsing the TOML, validating it against the schema in
 * `schema.ts` (validator.ts), and the problems of `[modules.<name>]` sections found once the
 * modules are loaded.
 *
 * Every problem found is reported at once, one per line, each naming the file, the line, the
 * dotted key and what was expected:
 *
 *   config.toml:12: unknown key "crawler.task_concurency" (did you mean "task_concurrency"?)
 *   config.toml:3: crawler.task_concurrency must be an integer >= 1, got -4
 */
import { readFile } from "node:fs/promises";
import { parse, TomlError } from "smol-toml";
import type { Config } from "./schema.ts";
import { ConfigError, type ConfigIssue, DEFAULT_CONFIG_FILE, formatIssue } from "./issues.ts";
import { KeyLines } from "./key-lines.ts";
import { closest, dotted, normalizeKey } from "./key-names.ts";
import { Validator } from "./validator.ts";

/** A fresh configuration with every default (what an empty file gives). */
export function defaultConfig(): Config {
  const v = new Validator(DEFAULT_CONFIG_FILE, "");
  return v.build(undefined);
}

/**
 * Parses and validates the text of a configuration file. `file` is only used in messages.
 * Throws `ConfigError` listing every problem found.
 */
export function parseConfig(text: string, file: string = DEFAULT_CONFIG_FILE): Config {
  return checkConfig(text, file).config;
}

/** A valid configuration and what it ignored (mocra keys that have no effect here). */
export interface CheckedConfig {
  readonly config: Config;
  /** One per ignored key or section, in file order; printed as "file:line: message". */
  readonly warnings: readonly ConfigIssue[];
}

/** parseConfig, also returning the warnings. Throws `ConfigError` listing every problem found. */
export function checkConfig(text: string, file: string = DEFAULT_CONFIG_FILE): CheckedConfig {
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  let raw: Record<string, unknown>;
  try {
    raw = parse(text);
  } catch (err) {
    if (err instanceof TomlError) {
      const short = err.message
        .replace(/^Invalid TOML document:\s*/, "")
        .split("\n\n")[0]!
        .trim();
      throw new ConfigError(file, [
        {
          file,
          line: err.line,
          column: err.column,
          message: `invalid TOML: ${short}`,
          detail: err.codeblock,
        },
      ]);
    }
    const msg = err instanceof Error ? err.message : String(err);
    throw new ConfigError(file, [{ file, message: `invalid TOML: ${msg}` }]);
  }
  const v = new Validator(file, text);
  const config = v.build(raw);
  v.crossChecks(config, raw);
  v.throwIfIssues();
  sources.set(config, { file, text });
  return { config, warnings: v.sortedWarnings() };
}

/** Where each parsed configuration came from (for problems found after loading, with their line). */
const sources = new WeakMap<Config, { file: string; text: string }>();

/**
 * The problems of `[modules.<name>]` sections, found once the modules are loaded: a key that is
 * in `allowed(name)` neither as written nor in another spelling (camelCase, kebab-case) is an
 * error, with the closest allowed key as "did you mean". Sections of modules not loaded
 * (`allowed` returns undefined) are not looked at here.
 */
export function moduleSectionIssues(config: Config, allowed: (module: string) => readonly string[] | undefined): ConfigIssue[] {
  const src = sources.get(config);
  const file = src?.file ?? DEFAULT_CONFIG_FILE;
  const lines = src ? new KeyLines(src.text) : undefined;
  const issues: ConfigIssue[] = [];
  for (const [module, section] of Object.entries(config.modules)) {
    const keys = allowed(module);
    if (keys === undefined) continue;
    const known = new Set(keys.map(normalizeKey));
    for (const key of Object.keys(section)) {
      if (known.has(normalizeKey(key))) continue;
      const hint = closest(key, keys);
      const parts = ["modules", module, key];
      const line = lines?.find(parts);
      const message =
        `unknown key "${dotted(parts)}"` +
        (hint === undefined ? `; module ${module} knows: ${[...keys].sort().join(", ")} (its own are those declared in defineModule({ settings }))` : ` (did you mean "${hint}"?)`);
      issues.push(line === undefined ? { file, key: dotted(parts), message } : { file, line, key: dotted(parts), message });
    }
  }
  return issues;
}

/**
 * Reads and validates a configuration file. Without `path`, reads `config.toml` in the
 * current directory and returns the defaults if it does not exist; an explicit `path` that
 * does not exist is an error.
 */
export async function loadConfig(path?: string, options: LoadOptions = {}): Promise<Config> {
  const { config, warnings } = await loadCheckedConfig(path);
  const warn = options.onWarning ?? ((line: string) => console.error(`warning: ${line}`));
  for (const w of warnings) warn(formatIssue(w));
  return config;
}

export interface LoadOptions {
  /** Gets each warning line ("file:line: key ignored (mocra key, no effect here)"); default: stderr. */
  onWarning?: (line: string) => void;
}

/** loadConfig without printing: the configuration and its warnings. */
export async function loadCheckedConfig(path?: string): Promise<CheckedConfig> {
  const file = path ?? DEFAULT_CONFIG_FILE;
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (err) {
    const code = (err as { code?: unknown } | null)?.code;
    if (path === undefined && code === "ENOENT") return { config: defaultConfig(), warnings: [] };
    const message =
      code === "ENOENT"
        ? "config file not found"
        : `cannot read config file: ${err instanceof Error ? err.message : String(err)}`;
    throw new ConfigError(file, [{ file, message }]);
  }
  return checkConfig(text, file);
}
