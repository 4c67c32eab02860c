// The shape of the code as docs/architecture.md draws it: no import points up a layer, no two
// folders import each other (directly or around a cycle), and src/runtime imports nothing of the
// engine. The layers are read from the table in docs/architecture.md, so the doc and the check
// cannot drift apart.
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve, sep } from "node:path";
import { describe, expect, it } from "vitest";
import { ROOT } from "./helpers/worker-process.ts";

const LAYERS: ReadonlyMap<string, number> = (() => {
  const doc = readFileSync(join(ROOT, "docs/architecture.md"), "utf8");
  const layers = new Map<string, number>();
  for (const m of doc.matchAll(/^\| (\d+) \| ([^|]+) \|/gm)) for (const folder of m[2]!.trim().split(/\s+/)) layers.set(folder, Number(m[1]));
  return layers;
})();

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    return e.isDirectory() ? sourceFiles(p) : /\.(ts|mts)$/.test(e.name) ? [p] : [];
  });
}

/** `src/queue/redis/x.ts` → `src/queue`; `src/cli.ts` → `src/cli`; `operators/x.ts` → `operators`. */
function folderOf(file: string): string {
  const parts = relative(ROOT, file).split(sep);
  if (parts[0] !== "src") return parts[0]!;
  return parts.length > 2 ? `src/${parts[1]}` : `src/${parts[1]!.replace(/\.m?ts$/, "")}`;
}

interface Edge {
  from: string;
  to: string;
}

/** Every relative import (static, re-export, type-only, dynamic with a literal) between files of src/ and operators/. */
function imports(): Edge[] {
  const files = [...sourceFiles(join(ROOT, "src")), ...sourceFiles(join(ROOT, "operators"))];
  const edges: Edge[] = [];
  for (const file of files) {
    const text = readFileSync(file, "utf8");
    for (const m of text.matchAll(/(?:^|\n)\s*(?:import|export)\s[^;]*?from\s*["'](\.{1,2}\/[^"']+)["']|import\(\s*["'](\.{1,2}\/[^"']+)["']\s*\)/g)) {
      const target = resolve(dirname(file), (m[1] ?? m[2])!);
      const rel = relative(ROOT, target);
      if (rel.startsWith("src") || rel.startsWith("operators")) edges.push({ from: relative(ROOT, file), to: rel });
    }
  }
  return edges;
}

const EDGES = imports();

describe("architecture (docs/architecture.md)", () => {
  it("every folder of src/ and operators/ has a layer in docs/architecture.md", () => {
    const folders = new Set(EDGES.flatMap((e) => [folderOf(join(ROOT, e.from)), folderOf(join(ROOT, e.to))]));
    expect([...folders].filter((f) => !LAYERS.has(f)).sort()).toEqual([]);
  });

  it("no import points up a layer (so src/ below the engine never imports operators/)", () => {
    const up = EDGES.filter((e) => (LAYERS.get(folderOf(join(ROOT, e.from))) ?? 0) < (LAYERS.get(folderOf(join(ROOT, e.to))) ?? 0));
    expect(up.map((e) => `${e.from} -> ${e.to}`)).toEqual([]);
  });

  it("src/runtime imports nothing of the engine", () => {
    const out = EDGES.filter((e) => folderOf(join(ROOT, e.from)) === "src/runtime" && folderOf(join(ROOT, e.to)) !== "src/runtime");
    expect(out.map((e) => `${e.from} -> ${e.to}`)).toEqual([]);
  });

  it("no import cycle between folders", () => {
    const graph = new Map<string, Set<string>>();
    for (const e of EDGES) {
      const a = folderOf(join(ROOT, e.from));
      const b = folderOf(join(ROOT, e.to));
      if (a === b) continue;
      if (!graph.has(a)) graph.set(a, new Set());
      graph.get(a)!.add(b);
    }
    // Tarjan's strongly connected components: any component of two or more folders is a cycle
    let index = 0;
    const stack: string[] = [];
    const onStack = new Set<string>();
    const idx = new Map<string, number>();
    const low = new Map<string, number>();
    const cycles: string[][] = [];
    const visit = (v: string): void => {
      idx.set(v, index);
      low.set(v, index);
      index++;
      stack.push(v);
      onStack.add(v);
      for (const w of graph.get(v) ?? []) {
        if (!idx.has(w)) {
          visit(w);
          low.set(v, Math.min(low.get(v)!, low.get(w)!));
        } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, idx.get(w)!));
      }
      if (low.get(v) === idx.get(v)) {
        const component: string[] = [];
        let w: string;
        do {
          w = stack.pop()!;
          onStack.delete(w);
          component.push(w);
        } while (w !== v);
        if (component.length > 1) cycles.push(component.sort());
      }
    };
    for (const v of graph.keys()) if (!idx.has(v)) visit(v);
    expect(cycles).toEqual([]);
  });
});
