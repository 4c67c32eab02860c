// src/config/key-lines.ts: where each key of a TOML text stands (its line), found by scanning the
// text's table headers and key lines, so a problem found in the parsed value can name its line.

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
export class KeyLines {
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
