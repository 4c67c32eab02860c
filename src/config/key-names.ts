// src/config/key-names.ts: how configuration keys are written and matched: the dotted form of
// a key path, spellings that name the same key (task_concurrency, task-concurrency,
// taskConcurrency), and the "did you mean" for a misspelt one.

const BARE_KEY = /^[A-Za-z0-9_-]+$/;

/** Dotted TOML key from its parts, quoting parts that are not bare keys. */
export function dotted(parts: readonly string[]): string {
  return parts.map((p) => (BARE_KEY.test(p) ? p : JSON.stringify(p))).join(".");
}

/** Lowercase, without "_" and "-": taskConcurrency, task-concurrency, task_concurrency agree. */
export function normalizeKey(s: string): string {
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
export function closest(name: string, candidates: readonly string[]): string | undefined {
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
