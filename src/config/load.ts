/**
 * Loading and validating `config.toml` against the schema in `schema.ts`.
 *
 * Every problem found is reported at once, one per line, each naming the file, the line, the
 * dotted key and what was expected:
 *
 *   config.toml:12: unknown key "crawler.task_concurency" (did you mean "task_concurrency"?)
 *   config.toml:3: crawler.task_concurrency must be an integer >= 1, got -4
 */
import { readFile } from "node:fs/promises";
import { parse, TomlError } from "smol-toml";
import {
  CONFIG_FIELDS,
  CONFIG_SCHEMA,
  CONFIG_SECTIONS,
  expectation,
  MOCRA_IGNORED_KEYS,
  MOCRA_IGNORED_SECTIONS,
  type Config,
  type FieldSpec,
  type SectionSpec,
  type SettingsTable,
  type SettingValue,
} from "./schema.ts";

/** The file name used when none is given. */
export const DEFAULT_CONFIG_FILE = "config.toml";

/** One problem in a configuration file. */
export interface ConfigIssue {
  readonly file: string;
  /** 1-based line, when it could be located. */
  readonly line?: number;
  /** 1-based column (TOML syntax errors only). */
  readonly column?: number;
  /** Dotted TOML key the problem is about, when there is one. */
  readonly key?: string;
  /** The problem, without the "file:line: " prefix. */
  readonly message: string;
  /** Extra lines shown under the message (the source excerpt of a syntax error). */
  readonly detail?: string;
}

/** Formats an issue as "file:line: message" (or "file:line:column: message"). */
export function formatIssue(issue: ConfigIssue): string {
  let where = issue.file;
  if (issue.line !== undefined) {
    where += `:${issue.line}`;
    if (issue.column !== undefined) where += `:${issue.column}`;
  }
  const head = `${where}: ${issue.message}`;
  if (issue.detail === undefined || issue.detail === "") return head;
  const detail = issue.detail
    .replace(/\n+$/, "")
    .split("\n")
    .map((l) => `    ${l}`)
    .join("\n");
  return `${head}\n${detail}`;
}

/** An invalid or unreadable configuration. The message lists every issue, one per line. */
export class ConfigError extends Error {
  readonly file: string;
  readonly issues: readonly ConfigIssue[];

  constructor(file: string, issues: readonly ConfigIssue[]) {
    super(issues.map(formatIssue).join("\n"));
    this.name = "ConfigError";
    this.file = file;
    this.issues = issues;
  }
}

// ---------------------------------------------------------------------------------------
// Public API
// ---------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------
// Validation
// ---------------------------------------------------------------------------------------

type RawTable = Record<string, unknown>;
type Checked = { ok: true; value: unknown } | { ok: false };

function isTable(v: unknown): v is RawTable {
  return typeof v === "object" && v !== null && !Array.isArray(v) && !(v instanceof Date);
}

const BARE_KEY = /^[A-Za-z0-9_-]+$/;

/** Dotted TOML key from its parts, quoting parts that are not bare keys. */
function dotted(parts: readonly string[]): string {
  return parts.map((p) => (BARE_KEY.test(p) ? p : JSON.stringify(p))).join(".");
}

/** A short rendering of a value for "got ..." (TOML-like: strings quoted, nan, inf). */
function describeValue(v: unknown, depth = 0): string {
  if (typeof v === "string") {
    const s = JSON.stringify(v);
    return s.length > 60 ? `${s.slice(0, 57)}..."` : s;
  }
  if (typeof v === "number") {
    if (Number.isNaN(v)) return "nan";
    if (v === Infinity) return "inf";
    if (v === -Infinity) return "-inf";
    return String(v);
  }
  if (typeof v === "boolean" || typeof v === "bigint") return String(v);
  if (v instanceof Date) return v.toISOString();
  if (Array.isArray(v)) {
    if (depth > 0) return "[...]";
    const s = `[${v.map((x) => describeValue(x, depth + 1)).join(", ")}]`;
    return s.length > 60 ? `${s.slice(0, 56)}...]` : s;
  }
  if (isTable(v)) return "a table";
  return String(v);
}

/** Copies a parsed TOML value into plain objects (the parser makes null-prototype ones). */
function toSetting(v: unknown): SettingValue {
  if (Array.isArray(v)) return v.map(toSetting);
  if (isTable(v)) {
    const out: SettingsTable = {};
    for (const [k, x] of Object.entries(v)) {
      Object.defineProperty(out, k, {
        value: toSetting(x),
        enumerable: true,
        writable: true,
        configurable: true,
      });
    }
    return out;
  }
  return v as SettingValue;
}

function cloneDefault(field: FieldSpec): unknown {
  switch (field.type) {
    case "string[]":
      return [...field.default];
    case "table": {
      const out: Record<string, SettingsTable> = {};
      for (const [k, t] of Object.entries(field.default)) out[k] = toSetting(t) as SettingsTable;
      return out;
    }
    case "number-map":
      return { ...field.default };
    default:
      return field.default;
  }
}

/** Lowercase, without "_" and "-": taskConcurrency, task-concurrency, task_concurrency agree. */
function normalizeKey(s: string): string {
  return s.toLowerCase().replace(/[_-]/g, "");
}

function levenshtein(a: string, b: string): number {
  const prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0]!;
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const up = prev[j]!;
      prev[j] = Math.min(up + 1, prev[j - 1]! + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = up;
    }
  }
  return prev[b.length]!;
}

/** The closest candidate to a misspelt key, if one is close enough. */
function closest(name: string, candidates: readonly string[]): string | undefined {
  const n = normalizeKey(name);
  const limit = Math.max(1, Math.min(3, Math.floor(n.length / 3)));
  let best: string | undefined;
  let bestDist = Infinity;
  for (const c of candidates) {
    const d = levenshtein(n, normalizeKey(c));
    if (d < bestDist) {
      best = c;
      bestDist = d;
    }
  }
  return bestDist <= limit ? best : undefined;
}

/** The message of a mocra key or section mocra-ts accepts without using it. */
const IGNORED = "ignored (mocra key, no effect here)";

class Validator {
  private readonly issues: ConfigIssue[] = [];
  private readonly warnings: ConfigIssue[] = [];
  private readonly built = new Map<string, Record<string, unknown>>();
  private keyLines: KeyLines | undefined;

  constructor(
    private readonly file: string,
    private readonly text: string,
  ) {}

  /** Builds the whole Config from a parsed document (undefined = all defaults). */
  build(raw: RawTable | undefined): Config {
    return this.section(CONFIG_SCHEMA, raw, [], undefined) as unknown as Config;
  }

  crossChecks(config: Config, raw: RawTable = {}): void {
    const channel = isTable(raw.channel_config) ? raw.channel_config : {};
    if (config.channelConfig.nats !== null && !isTable(channel.redis) && !(isTable(raw.cache) && isTable(raw.cache.redis))) {
      // coordination has no JetStream implementation here: a NATS deployment names its Redis
      this.report(
        ["channel_config", "nats"],
        "[channel_config.nats] puts the queues on JetStream, but dedup, rate limits, leases, budgets, pause, locks, leader and cron need Redis: add [channel_config.redis] (or [cache.redis])",
      );
    }
    const db = config.db;
    const dbUrl = ["db", "url"];
    if (config.output.sink === "postgres") {
      if (db.url === "") {
        this.report(["output", "sink"], 'output.sink = "postgres" needs [db] url = "postgres://user:password@host:5432/database"');
      } else if (/^sqlite:/i.test(db.url)) {
        this.report(dbUrl, 'db.url: SQLite is not supported by the items store here (use a "postgres://" URL, or output.sink = "jsonl")');
      } else if (!/^postgres(ql)?:\/\//i.test(db.url)) {
        this.report(dbUrl, `db.url must be a "postgres://" or "postgresql://" URL, got ${describeValue(redactUrl(db.url))}`);
      }
    } else if (db.url !== "") {
      this.warn(dbUrl, `db.url ${IGNORED} unless output.sink = "postgres"`);
    }
    const c = config.crawler;
    if (c.retryMaxDelayMs < c.retryBaseDelayMs) {
      const maxPath = ["crawler", "retry_max_delay_ms"];
      const basePath = ["crawler", "retry_base_delay_ms"];
      const at = this.lines().exact(maxPath) !== undefined ? maxPath : basePath;
      this.report(
        at,
        `crawler.retry_max_delay_ms must be >= crawler.retry_base_delay_ms (${c.retryBaseDelayMs}), got ${c.retryMaxDelayMs}`,
      );
    }
  }

  sortedWarnings(): ConfigIssue[] {
    return this.warnings
      .map((issue, i) => ({ issue, i }))
      .sort((a, b) => (a.issue.line ?? Infinity) - (b.issue.line ?? Infinity) || a.i - b.i)
      .map((x) => x.issue);
  }

  throwIfIssues(): void {
    if (this.issues.length === 0) return;
    const sorted = this.issues
      .map((issue, i) => ({ issue, i }))
      .sort((a, b) => {
        const la = a.issue.line ?? Infinity;
        const lb = b.issue.line ?? Infinity;
        return la !== lb ? la - lb : a.i - b.i;
      })
      .map((x) => x.issue);
    throw new ConfigError(this.file, sorted);
  }

  private lines(): KeyLines {
    this.keyLines ??= new KeyLines(this.text);
    return this.keyLines;
  }

  private report(parts: readonly string[], message: string, to: ConfigIssue[] = this.issues): void {
    const line = this.text === "" ? undefined : this.lines().find(parts);
    const issue: ConfigIssue =
      line === undefined
        ? { file: this.file, key: dotted(parts), message }
        : { file: this.file, line, key: dotted(parts), message };
    to.push(issue);
  }

  private warn(parts: readonly string[], message: string): void {
    this.report(parts, message, this.warnings);
  }

  /** A key of mocra's config that has no effect here: warned about (once), not an error. */
  private ignoredMocraKey(spec: SectionSpec, key: string, path: readonly string[]): boolean {
    const sectionPath = spec.path === "" ? key : `${spec.path}.${key}`;
    if (MOCRA_IGNORED_SECTIONS.includes(sectionPath)) {
      this.warn(path, `[${dotted(path)}] ${IGNORED}`);
      return true;
    }
    if (MOCRA_IGNORED_KEYS[spec.path]?.includes(key) === true) {
      this.warn(path, `${dotted(path)} ${IGNORED}`);
      return true;
    }
    return false;
  }

  private section(
    spec: SectionSpec,
    raw: RawTable | undefined,
    parts: readonly string[],
    inherited: Record<string, unknown> | undefined,
  ): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    const fieldsByKey = new Map<string, [string, FieldSpec]>();
    for (const [prop, field] of Object.entries(spec.fields)) fieldsByKey.set(field.key, [prop, field]);
    const subsByKey = new Map<string, SectionSpec>(spec.sections.map((s) => [s.key, s]));

    if (raw !== undefined) {
      for (const [key, value] of Object.entries(raw)) {
        const path = [...parts, key];
        const f = fieldsByKey.get(key);
        if (f !== undefined) {
          const [prop, field] = f;
          const r = this.field(field, value, path);
          if (r.ok) out[prop] = r.value;
          continue;
        }
        if (subsByKey.has(key)) {
          if (!isTable(value)) {
            this.report(path, `${dotted(path)} must be a table (a [${dotted(path)}] section), got ${describeValue(value)}`);
          }
          continue;
        }
        this.unknown(spec, key, value, path);
      }
    }

    for (const [prop, field] of Object.entries(spec.fields)) {
      if (prop in out) continue;
      out[prop] = inherited !== undefined && prop in inherited ? inherited[prop] : cloneDefault(field);
    }

    for (const sub of spec.sections) {
      const rawSub = raw?.[sub.key];
      const subRaw = isTable(rawSub) ? rawSub : undefined;
      if (sub.inheritsFrom !== undefined || sub.optional) {
        out[sub.prop] =
          subRaw === undefined
            ? null
            : this.section(sub, subRaw, [...parts, sub.key], sub.inheritsFrom === undefined ? undefined : this.built.get(sub.inheritsFrom));
      } else {
        out[sub.prop] = this.section(sub, subRaw, [...parts, sub.key], undefined);
      }
    }

    this.built.set(spec.path, out);
    return out;
  }

  private unknown(spec: SectionSpec, key: string, value: unknown, path: readonly string[]): void {
    if (this.ignoredMocraKey(spec, key, path)) return;
    const isSection = isTable(value);
    const kind = isSection ? "section" : "key";
    // First: a near miss among this section's own keys and sub-sections (mocra's ignored ones too).
    const prefix = spec.path === "" ? "" : `${spec.path}.`;
    const local = [
      ...Object.values(spec.fields).map((f) => f.key),
      ...spec.sections.map((s) => s.key),
      ...(MOCRA_IGNORED_KEYS[spec.path] ?? []),
      ...MOCRA_IGNORED_SECTIONS.filter((p) => p.startsWith(prefix) && !p.slice(prefix.length).includes(".")).map((p) => p.slice(prefix.length)),
    ];
    let hint = closest(key, local);
    if (hint === undefined) {
      // Then: the same name elsewhere ("redis_host" put in [channel_config]).
      const n = normalizeKey(key);
      const elsewhere = isSection
        ? CONFIG_SECTIONS.find((s) => s.path !== "" && normalizeKey(s.key) === n)?.path
        : CONFIG_FIELDS.find((r) => normalizeKey(r.field.key) === n)?.path;
      hint = elsewhere;
    }
    const suffix = hint === undefined ? "" : ` (did you mean "${hint}"?)`;
    // Without a suggestion, list what this section does accept of the same kind.
    const sameKind = isSection
      ? [
          ...spec.sections.map((s) => s.key),
          ...Object.values(spec.fields).filter((f) => f.type === "table" || f.type === "number-map").map((f) => f.key),
        ]
      : Object.values(spec.fields).filter((f) => f.type !== "table" && f.type !== "number-map").map((f) => f.key);
    const where = spec.path === "" ? "" : ` in [${spec.path}]`;
    const known =
      hint === undefined && sameKind.length > 0 ? `; known ${kind}s${where}: ${sameKind.join(", ")}` : "";
    this.report(path, `unknown ${kind} "${dotted(path)}"${suffix}${known}`);
  }

  private field(field: FieldSpec, v: unknown, path: readonly string[]): Checked {
    const name = dotted(path);
    const bad = (): Checked => {
      this.report(path, `${name} must be ${expectation(field)}, got ${describeValue(v)}`);
      return { ok: false };
    };
    switch (field.type) {
      case "string":
        if (typeof v !== "string") return bad();
        if (field.pattern !== undefined && !field.pattern.test(v)) return bad();
        return { ok: true, value: v };
      case "integer":
        if (typeof v !== "number" || !Number.isSafeInteger(v)) return bad();
        if (field.min !== undefined && v < field.min) return bad();
        if (field.max !== undefined && v > field.max) return bad();
        return { ok: true, value: v };
      case "number":
        if (typeof v !== "number" || !Number.isFinite(v)) return bad();
        if (field.exclusiveMin !== undefined && !(v > field.exclusiveMin)) return bad();
        if (field.min !== undefined && v < field.min) return bad();
        if (field.max !== undefined && v > field.max) return bad();
        return { ok: true, value: v };
      case "boolean":
        if (typeof v !== "boolean") return bad();
        return { ok: true, value: v };
      case "string[]":
        if (!Array.isArray(v) || !v.every((x) => typeof x === "string")) return bad();
        return { ok: true, value: [...(v as string[])] };
      case "enum": {
        if (typeof v === "string" && field.caseInsensitive === true) v = v.trim().toLowerCase();
        if (typeof v === "string" && field.unsupported !== undefined && Object.hasOwn(field.unsupported, v)) {
          this.report(path, `${name} ${JSON.stringify(v)} ${field.unsupported[v]}`);
          return { ok: false };
        }
        if (typeof v !== "string" || !field.values.includes(v)) return bad();
        return { ok: true, value: v };
      }
      case "table": {
        if (!isTable(v)) return bad();
        const out: Record<string, SettingsTable> = {};
        let ok = true;
        for (const [k, entry] of Object.entries(v)) {
          const entryPath = [...path, k];
          if (!isTable(entry)) {
            this.report(
              entryPath,
              `${dotted(entryPath)} must be a table (a [${dotted(entryPath)}] section), got ${describeValue(entry)}`,
            );
            ok = false;
            continue;
          }
          Object.defineProperty(out, k, {
            value: toSetting(entry),
            enumerable: true,
            writable: true,
            configurable: true,
          });
        }
        return ok ? { ok: true, value: out } : { ok: false };
      }
      case "number-map": {
        if (!isTable(v)) return bad();
        const out: Record<string, number> = {};
        let ok = true;
        for (const [k, entry] of Object.entries(v)) {
          const entryPath = [...path, k];
          if (typeof entry !== "number" || !Number.isFinite(entry) || (field.min !== undefined && entry < field.min)) {
            const min = field.min !== undefined ? ` >= ${field.min}` : "";
            this.report(entryPath, `${dotted(entryPath)} must be a number${min}, got ${describeValue(entry)}`);
            ok = false;
            continue;
          }
          Object.defineProperty(out, k, { value: entry, enumerable: true, writable: true, configurable: true });
        }
        return ok ? { ok: true, value: out } : { ok: false };
      }
    }
  }
}

// ---------------------------------------------------------------------------------------
// Locating keys in the source text
// ---------------------------------------------------------------------------------------

const SIMPLE_KEY = `(?:[A-Za-z0-9_-]+|"(?:[^"\\\\]|\\\\.)*"|'[^']*')`;
const KEY_PATH = `${SIMPLE_KEY}(?:\\s*\\.\\s*${SIMPLE_KEY})*`;
const HEADER_RE = new RegExp(`^\\[\\[?\\s*(${KEY_PATH})\\s*\\]`);
const KEY_RE = new RegExp(`^(${KEY_PATH})\\s*=`);
const SIMPLE_KEY_G = new RegExp(SIMPLE_KEY, "g");

function splitKeyPath(text: string): string[] {
  const parts: string[] = [];
  for (const m of text.matchAll(SIMPLE_KEY_G)) {
    const k = m[0];
    if (k.startsWith('"')) {
      try {
        parts.push(JSON.parse(k) as string);
      } catch {
        parts.push(k.slice(1, -1));
      }
    } else if (k.startsWith("'")) {
      parts.push(k.slice(1, -1));
    } else {
      parts.push(k);
    }
  }
  return parts;
}

/**
 * Maps every table header and key of a TOML text to its first line, by a line scan that
 * tracks the current [table] (enough for error locations; the parser already validated it).
 */
class KeyLines {
  private readonly map = new Map<string, number>();

  constructor(text: string) {
    let current: string[] = [];
    let multiline: string | undefined;
    const lines = text.split(/\r?\n/);
    for (let i = 0; i < lines.length; i++) {
      const lineNo = i + 1;
      const line = lines[i]!;
      if (multiline !== undefined) {
        if (line.includes(multiline)) multiline = undefined;
        continue;
      }
      const s = line.trimStart();
      if (s === "" || s.startsWith("#")) continue;
      const h = HEADER_RE.exec(s);
      if (h !== null) {
        current = splitKeyPath(h[1]!);
        this.recordWithPrefixes(current, lineNo);
        continue;
      }
      const k = KEY_RE.exec(s);
      if (k !== null) {
        this.recordWithPrefixes([...current, ...splitKeyPath(k[1]!)], lineNo);
        multiline = openMultiline(s.slice(k[0].length));
      }
    }
  }

  private recordWithPrefixes(parts: readonly string[], line: number): void {
    for (let n = 1; n <= parts.length; n++) {
      const id = parts.slice(0, n).join("\u0000");
      if (!this.map.has(id)) this.map.set(id, line);
    }
  }

  /** The line of exactly this key or table, if it appears as such. */
  exact(parts: readonly string[]): number | undefined {
    return this.map.get(parts.join("\u0000"));
  }

  /** The line of the key, else of its nearest enclosing table or key (inline tables). */
  find(parts: readonly string[]): number | undefined {
    for (let n = parts.length; n >= 1; n--) {
      const line = this.map.get(parts.slice(0, n).join("\u0000"));
      if (line !== undefined) return line;
    }
    return undefined;
  }
}

/** If the value text opens a multi-line string that does not close on this line, its delimiter. */
function openMultiline(value: string): string | undefined {
  const dq = value.indexOf('"""');
  const sq = value.indexOf("'''");
  let delim: string;
  let at: number;
  if (dq === -1 && sq === -1) return undefined;
  if (sq === -1 || (dq !== -1 && dq < sq)) {
    delim = '"""';
    at = dq;
  } else {
    delim = "'''";
    at = sq;
  }
  return value.indexOf(delim, at + 3) === -1 ? delim : undefined;
}

/** A URL with its password replaced by "***" (for messages and `config check`). */
export function redactUrl(url: string): string {
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/[^/@:]*):[^/@]*@/i, "$1:***@");
}
