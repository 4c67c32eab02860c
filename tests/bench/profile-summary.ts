// tests/bench/profile-summary.ts: reads a V8 .cpuprofile (node --cpu-prof) and prints where the
// CPU went per page: self and inclusive time by function and by package/area, in µs per page.
//
//   node --import tsx tests/bench/profile-summary.ts PROFILE.cpuprofile --pages N
//        [--from US --to US] [--top 15] [--json out.json]
//        [--callers REGEX [--depth 8]]   heaviest caller chains of matching frames
//        [--incl REGEX,REGEX,...]         inclusive µs/page of matching frames
//
// --from/--to (process.hrtime µs, as crawl-*.ts print crawlStartUs/crawlEndUs) keep only the
// samples of the crawl itself (start-up and module loading excluded). Inclusive time counts a
// function once per sample however often it is on the stack (recursion is not double-counted).
import { readFileSync, writeFileSync } from "node:fs";
import { SourceMap } from "node:module";
import { fileURLToPath } from "node:url";
import { transformSync } from "esbuild";
import { argValue, fmt, table, ROOT } from "./common.ts";

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
  columnNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

/** The area a frame belongs to: our code, a package, node internals, V8 pseudo-frames. */
export function areaOf(cf: CallFrame): string {
  const u = cf.url;
  if (u === "") {
    if (cf.functionName === "(garbage collector)") return "GC";
    if (cf.functionName === "(program)") return "(program: V8/native, unattributed)";
    if (cf.functionName === "(idle)") return "(idle)";
    if (cf.functionName === "(root)") return "(root)";
    return "native builtins";
  }
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(u);
  if (nm) {
    const pkg = nm[1];
    if (["htmlparser2", "domhandler", "entities", "domelementtype"].includes(pkg)) return "htmlparser2 (parse)";
    if (["css-select", "css-what", "nth-check", "boolbase", "domutils"].includes(pkg)) return "css-select (query)";
    return pkg;
  }
  if (u.startsWith("node:internal/deps/undici")) return "node fetch (internal undici)";
  if (u.startsWith("node:internal/webstreams")) return "node web streams";
  if (u.startsWith("node:")) return "node internals";
  const m = /\/(src|operators|modules|tests)\/(.*)$/.exec(u);
  if (m) return m[1] === "tests" ? "benchmark harness" : `mocra ${m[1]}/`;
  return u;
}

function shortUrl(u: string): string {
  const nm = /node_modules\/(.*)$/.exec(u);
  if (nm) return nm[1];
  const m = /\/((?:src|operators|modules|tests)\/.*)$/.exec(u);
  if (m) return m[1];
  return u.replace(/^file:\/\//, "");
}

const maps = new Map<string, SourceMap | null>();

/**
 * tsx runs our .ts files through esbuild with minifyWhitespace (one line per file), so the
 * profile's positions are columns in that line. Re-transpile with tsx's options (target node,
 * sourcemap, minifyWhitespace, keepNames: byte-identical to tsx's cache) and map back to the
 * source line. Valid as long as the file has not changed since the profile was taken.
 */
function sourceLine(cf: CallFrame): number {
  if (cf.lineNumber !== 0 || !cf.url.startsWith("file://") || cf.url.includes("/node_modules/") || !/\.ts$/.test(cf.url)) {
    return cf.lineNumber + 1;
  }
  let map = maps.get(cf.url);
  if (map === undefined) {
    try {
      const file = fileURLToPath(cf.url);
      if (!file.startsWith(ROOT)) throw new Error("outside the repo");
      const r = transformSync(readFileSync(file, "utf8"), {
        loader: "ts",
        format: "esm",
        target: `node${process.versions.node}`,
        sourcemap: true,
        minifyWhitespace: true,
        keepNames: true,
        sourcefile: file,
      });
      map = new SourceMap(JSON.parse(r.map));
    } catch {
      map = null;
    }
    maps.set(cf.url, map);
  }
  const e = map?.findEntry(0, cf.columnNumber) as { originalLine?: number } | undefined;
  return e && typeof e.originalLine === "number" ? e.originalLine + 1 : cf.lineNumber + 1;
}

export function frameKey(cf: CallFrame): string {
  return `${cf.functionName || "(anonymous)"} ${shortUrl(cf.url)}:${sourceLine(cf)}`;
}

export interface ProfileSummary {
  totalUs: number;
  sampledUs: number;
  idleUs: number;
  pages: number;
  byArea: Array<{ area: string; selfUs: number; usPerPage: number; share: number }>;
  topSelf: Array<{ fn: string; area: string; selfUs: number; usPerPage: number; share: number }>;
  topInclusive: Array<{ fn: string; area: string; inclUs: number; usPerPage: number; share: number }>;
  /** inclusive time of whole areas (a frame counts for each area on its stack once) */
  areaInclusive: Array<{ area: string; inclUs: number; usPerPage: number }>;
  /**
   * Self time charged to its owner: the nearest frame on the stack that is JS of a package or of
   * ours (native builtins and node internals are charged to whoever called them; stacks of node
   * internals only, e.g. socket reads from libuv, stay "node internals").
   */
  ownerByArea: Array<{ area: string; us: number; usPerPage: number; share: number }>;
  ownerByFn: Array<{ fn: string; area: string; us: number; usPerPage: number; share: number }>;
}

const NOT_OWNERS = new Set(["native builtins", "node internals", "(program: V8/native, unattributed)", "(root)"]);

export function summarize(profile: Profile, pages: number, fromUs = -Infinity, toUs = Infinity, top = 15): ProfileSummary {
  const byId = new Map<number, ProfileNode>();
  const parent = new Map<number, number>();
  for (const n of profile.nodes) byId.set(n.id, n);
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const self = new Map<number, number>();
  let t = profile.startTime;
  let sampled = 0;
  let idle = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    t += profile.timeDeltas[i];
    if (t < fromUs || t > toUs) continue;
    // the delta before a sample is the time attributed to it (V8's convention, as DevTools does)
    const dt = profile.timeDeltas[i + 1] ?? 0;
    const id = profile.samples[i];
    const node = byId.get(id)!;
    if (node.callFrame.functionName === "(idle)") {
      idle += dt;
      continue;
    }
    sampled += dt;
    self.set(id, (self.get(id) ?? 0) + dt);
  }
  const selfByFn = new Map<string, { us: number; area: string }>();
  const selfByArea = new Map<string, number>();
  const inclByFn = new Map<string, { us: number; area: string }>();
  const inclByArea = new Map<string, number>();
  const ownerArea = new Map<string, number>();
  const ownerFn = new Map<string, { us: number; area: string }>();
  for (const [id, us] of self) {
    {
      let owner: CallFrame | undefined;
      for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
        const f = byId.get(cur)!.callFrame;
        if (!NOT_OWNERS.has(areaOf(f))) {
          owner = f;
          break;
        }
      }
      const leaf = byId.get(id)!.callFrame;
      const o = owner ?? leaf;
      const a = owner ? areaOf(owner) : areaOf(leaf) === "GC" ? "GC" : "node internals";
      ownerArea.set(a, (ownerArea.get(a) ?? 0) + us);
      const k = owner ? frameKey(owner) : frameKey(o);
      const e = ownerFn.get(k) ?? { us: 0, area: a };
      e.us += us;
      ownerFn.set(k, e);
    }
    const cf = byId.get(id)!.callFrame;
    const key = frameKey(cf);
    const area = areaOf(cf);
    const s = selfByFn.get(key) ?? { us: 0, area };
    s.us += us;
    selfByFn.set(key, s);
    selfByArea.set(area, (selfByArea.get(area) ?? 0) + us);
    const seenFns = new Set<string>();
    const seenAreas = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const f = byId.get(cur)!.callFrame;
      const k = frameKey(f);
      const a = areaOf(f);
      if (!seenFns.has(k)) {
        seenFns.add(k);
        const e = inclByFn.get(k) ?? { us: 0, area: a };
        e.us += us;
        inclByFn.set(k, e);
      }
      if (!seenAreas.has(a)) {
        seenAreas.add(a);
        inclByArea.set(a, (inclByArea.get(a) ?? 0) + us);
      }
    }
  }
  const per = (us: number) => us / Math.max(1, pages);
  const share = (us: number) => us / Math.max(1, sampled);
  return {
    totalUs: sampled + idle,
    sampledUs: sampled,
    idleUs: idle,
    pages,
    byArea: [...selfByArea]
      .sort((a, b) => b[1] - a[1])
      .map(([area, us]) => ({ area, selfUs: us, usPerPage: per(us), share: share(us) })),
    topSelf: [...selfByFn]
      .sort((a, b) => b[1].us - a[1].us)
      .slice(0, top)
      .map(([fn, v]) => ({ fn, area: v.area, selfUs: v.us, usPerPage: per(v.us), share: share(v.us) })),
    topInclusive: [...inclByFn]
      .filter(([fn]) => !fn.startsWith("(root)") && !fn.startsWith("(program)"))
      .sort((a, b) => b[1].us - a[1].us)
      .slice(0, top * 3)
      .map(([fn, v]) => ({ fn, area: v.area, inclUs: v.us, usPerPage: per(v.us), share: share(v.us) })),
    ownerByArea: [...ownerArea]
      .sort((a, b) => b[1] - a[1])
      .map(([area, us]) => ({ area, us, usPerPage: per(us), share: share(us) })),
    ownerByFn: [...ownerFn]
      .sort((a, b) => b[1].us - a[1].us)
      .slice(0, top * 2)
      .map(([fn, v]) => ({ fn, area: v.area, us: v.us, usPerPage: per(v.us), share: share(v.us) })),
    areaInclusive: [...inclByArea]
      .filter(([a]) => a !== "(root)")
      .sort((a, b) => b[1] - a[1])
      .map(([area, us]) => ({ area, inclUs: us, usPerPage: per(us) })),
  };
}

export function printSummary(s: ProfileSummary, top = 15): string {
  const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
  const lines: string[] = [];
  lines.push(
    `CPU samples in window: ${fmt(s.sampledUs / 1000)} ms on CPU (+${fmt(s.idleUs / 1000)} ms idle) for ${fmt(s.pages)} pages = ${fmt(s.sampledUs / Math.max(1, s.pages))} µs CPU/page`,
  );
  lines.push("", "Self time by area:");
  lines.push(table(["area", "µs/page", "share"], s.byArea.map((a) => [a.area, a.usPerPage.toFixed(1), pct(a.share)])));
  lines.push("", "Self time charged to its owner (native builtins/node internals charged to their JS caller):");
  lines.push(table(["owner area", "µs/page", "share"], s.ownerByArea.map((a) => [a.area, a.usPerPage.toFixed(1), pct(a.share)])));
  lines.push("", `Top ${top} owner functions (self + the natives/internals they call directly):`);
  lines.push(table(["function", "area", "µs/page", "share"], s.ownerByFn.slice(0, top).map((f) => [f.fn.slice(0, 90), f.area, f.usPerPage.toFixed(1), pct(f.share)])));
  lines.push("", "Inclusive time by area (anything on the stack under it):");
  lines.push(table(["area", "µs/page"], s.areaInclusive.slice(0, 14).map((a) => [a.area, a.usPerPage.toFixed(1)])));
  lines.push("", `Top ${top} functions by self time:`);
  lines.push(table(["function", "area", "µs/page", "share"], s.topSelf.slice(0, top).map((f) => [f.fn.slice(0, 90), f.area, f.usPerPage.toFixed(1), pct(f.share)])));
  lines.push("", `Top functions by inclusive time:`);
  lines.push(table(["function", "area", "µs/page", "share"], s.topInclusive.slice(0, top * 2).map((f) => [f.fn.slice(0, 90), f.area, f.usPerPage.toFixed(1), pct(f.share)])));
  return lines.join("\n");
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const file = process.argv[2];
  if (!file || file.startsWith("--")) {
    console.error("usage: profile-summary.ts PROFILE.cpuprofile --pages N [--from US --to US] [--top 15] [--json out.json]");
    process.exit(2);
  }
  const profile = JSON.parse(readFileSync(file, "utf8")) as Profile;
  const pages = Number(argValue("pages") ?? 1);
  const from = argValue("from") !== undefined ? Number(argValue("from")) : -Infinity;
  const to = argValue("to") !== undefined ? Number(argValue("to")) : Infinity;
  const top = Number(argValue("top") ?? 15);
  const s = summarize(profile, pages, from, to, top);
  console.log(printSummary(s, top));
  const json = argValue("json");
  if (json) writeFileSync(json, JSON.stringify(s, null, 2) + "\n");
}

/** Heaviest caller chains (depth `depth`) of the frames whose key matches `pattern`, by self time under them. */
export function callers(profile: Profile, pattern: RegExp, pages: number, fromUs = -Infinity, toUs = Infinity, depth = 8): string {
  const byId = new Map<number, ProfileNode>();
  const parent = new Map<number, number>();
  for (const n of profile.nodes) byId.set(n.id, n);
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const chains = new Map<string, number>();
  let t = profile.startTime;
  for (let i = 0; i < profile.samples.length; i++) {
    t += profile.timeDeltas[i];
    if (t < fromUs || t > toUs) continue;
    const dt = profile.timeDeltas[i + 1] ?? 0;
    let cur: number | undefined = profile.samples[i];
    let hit: number | undefined;
    for (; cur !== undefined; cur = parent.get(cur)) {
      if (pattern.test(frameKey(byId.get(cur)!.callFrame))) hit = cur;
    }
    if (hit === undefined) continue;
    const path: string[] = [];
    for (let c: number | undefined = hit, k = 0; c !== undefined && k < depth; c = parent.get(c), k++) path.push(frameKey(byId.get(c)!.callFrame));
    const key = path.join("  <-  ");
    chains.set(key, (chains.get(key) ?? 0) + dt);
  }
  return [...chains]
    .sort((a, b) => b[1] - a[1])
    .slice(0, 12)
    .map(([k, us]) => `${(us / Math.max(1, pages)).toFixed(1).padStart(7)} µs/page  ${k}`)
    .join("\n");
}

if (import.meta.url === `file://${process.argv[1]}` && argValue("callers")) {
  const profile = JSON.parse(readFileSync(process.argv[2], "utf8")) as Profile;
  const from = argValue("from") !== undefined ? Number(argValue("from")) : -Infinity;
  const to = argValue("to") !== undefined ? Number(argValue("to")) : Infinity;
  console.log(`\nCallers of /${argValue("callers")}/:`);
  console.log(callers(profile, new RegExp(argValue("callers")!), Number(argValue("pages") ?? 1), from, to, Number(argValue("depth") ?? 8)));
}

/** Inclusive µs/page of the frames whose key matches each pattern (each counted once per sample). */
export function inclusiveOf(profile: Profile, patterns: RegExp[], pages: number, fromUs = -Infinity, toUs = Infinity): number[] {
  const byId = new Map<number, ProfileNode>();
  const parent = new Map<number, number>();
  for (const n of profile.nodes) byId.set(n.id, n);
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const out = patterns.map(() => 0);
  let t = profile.startTime;
  for (let i = 0; i < profile.samples.length; i++) {
    t += profile.timeDeltas[i];
    if (t < fromUs || t > toUs) continue;
    const dt = profile.timeDeltas[i + 1] ?? 0;
    const hit = patterns.map(() => false);
    for (let cur: number | undefined = profile.samples[i]; cur !== undefined; cur = parent.get(cur)) {
      const k = frameKey(byId.get(cur)!.callFrame);
      patterns.forEach((p, j) => {
        if (!hit[j] && p.test(k)) hit[j] = true;
      });
    }
    hit.forEach((h, j) => {
      if (h) out[j] += dt;
    });
  }
  return out.map((us) => us / Math.max(1, pages));
}

if (import.meta.url === `file://${process.argv[1]}` && argValue("incl")) {
  const profile = JSON.parse(readFileSync(process.argv[2], "utf8")) as Profile;
  const from = argValue("from") !== undefined ? Number(argValue("from")) : -Infinity;
  const to = argValue("to") !== undefined ? Number(argValue("to")) : Infinity;
  const pats = argValue("incl")!.split(",");
  const us = inclusiveOf(profile, pats.map((p) => new RegExp(p)), Number(argValue("pages") ?? 1), from, to);
  console.log("\nInclusive µs/page:");
  pats.forEach((p, i) => console.log(`${us[i].toFixed(1).padStart(8)}  ${p}`));
}
