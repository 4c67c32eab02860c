// src/config/issues.ts: a problem found in a configuration file, and how it is shown: one line
// naming the file, the line, the dotted key and what was expected.

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

/** A URL with its password replaced by "***" (for messages and `config check`). */
export function redactUrl(url: string): string {
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/[^/@:]*):[^/@]*@/i, "$1:***@");
}
