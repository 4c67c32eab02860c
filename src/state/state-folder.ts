import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import type { RecoveredQueue } from "../queue/journal.ts";
import { runtime } from "../runtime/index.ts";
import { StateError, writeFault } from "./errors.ts";
import { FrontierJournal, type FrontierOptions } from "./frontier-journal.ts";
import { OutputMarks } from "./output-marks.ts";

/** 2: the frontier's compact records (src/state/compact-record.ts); 1 journaled whole messages */
const FORMAT = 2;
const META = "state.json";
const MARKS = "marks.log";

interface Meta {
  format: number;
  name: string;
  modules: string[];
  status: "running" | "finished";
  runtime: string;
  started: string;
  updated: string;
}

export interface OpenStateOptions extends FrontierOptions {
  /** the state root (`[state] dir`); the run's folder is `<dir>/<name>` */
  dir: string;
  name: string;
  modules: readonly string[];
  /** continue an unfinished run found there */
  resume: boolean;
}

/** One run's state folder: the frontier, the sink's marks, and state.json saying whether the run finished. */
export class StateFolder {
  private constructor(
    readonly path: string,
    private meta: Meta,
    readonly journal: FrontierJournal,
    readonly marks: OutputMarks,
    /** the queue state to continue from (a resumed run) */
    readonly recovered: RecoveredQueue | undefined,
    /** one-line notes for the user: what was found, what was dropped */
    readonly notes: string[],
  ) {}

  get resumed(): boolean {
    return this.recovered !== undefined;
  }

  /** Opens `<dir>/<name>`: resumes the unfinished run there if asked, else starts fresh (saying what it replaces). */
  static open(options: OpenStateOptions): StateFolder {
    const path = resolve(options.dir, options.name);
    mkdirSync(path, { recursive: true });
    const notes: string[] = [];
    const found = readMeta(path);
    if (found === "older" && options.resume) throw olderFormat(path);
    if (found === "older") notes.push(`${path} held a crawl saved by an older mocra-ts (state format 1); starting fresh (it is replaced)`);
    const previous = found === "older" ? undefined : found;
    const now = new Date().toISOString();
    if (options.resume && previous?.status === "running") {
      const asked = [...options.modules].sort().join(",");
      if (asked !== [...previous.modules].sort().join(",")) {
        throw new StateError(
          `state: the unfinished run in ${path} crawls ${previous.modules.join(", ")}, not ${options.modules.join(", ")}; ` +
            "resume it with the same --module list, or run without --resume to start fresh",
        );
      }
      const { journal, recovered, notes: found } = FrontierJournal.recover(path, options);
      const marks = OutputMarks.recover(join(path, MARKS), found);
      const meta = { ...previous, runtime, updated: now };
      writeMeta(path, meta);
      return new StateFolder(path, meta, journal, marks, recovered, found);
    }
    if (options.resume) {
      notes.push(`--resume: no unfinished run of ${options.name} in ${path}${previous ? " (the last one finished)" : ""}; starting fresh`);
    } else if (previous?.status === "running") {
      notes.push(
        `an unfinished run of ${previous.modules.join(", ")} (started ${previous.started}) is in ${path}; starting fresh (run with --resume to continue it)`,
      );
    }
    const meta: Meta = { format: FORMAT, name: options.name, modules: [...options.modules], status: "running", runtime, started: now, updated: now };
    writeMeta(path, { ...meta, status: "finished" }); // not resumable until the new frontier exists
    const journal = FrontierJournal.create(path, options);
    const marks = OutputMarks.create(join(path, MARKS));
    writeMeta(path, meta);
    return new StateFolder(path, meta, journal, marks, undefined, notes);
  }

  /** Writes what is buffered and closes; `finished` marks the run as not resumable. */
  close(finished: boolean): void {
    this.journal.close();
    this.marks.close();
    // after a write fault the run stays "running" (as state.json already says): --resume continues it
    if (this.journal.fault) return;
    this.meta = { ...this.meta, status: finished ? "finished" : "running", updated: new Date().toISOString() };
    writeMeta(this.path, this.meta);
  }
}

/** The last run kept in `<dir>/<name>`: whether it finished, and when it last changed. */
export function lastRunIn(dir: string, name: string): { path: string; status: "running" | "finished"; modules: string[]; started: string; updated: string } | undefined {
  const path = resolve(dir, name);
  const meta = readMeta(path);
  if (meta === "older") throw olderFormat(path); // asked by --resume only
  return meta && { path, status: meta.status, modules: meta.modules, started: meta.started, updated: meta.updated };
}

function olderFormat(path: string): StateError {
  return new StateError(
    `state: ${path} holds a crawl saved by an older mocra-ts (state format 1; this version reads format ${FORMAT}): ` +
      "finish it with that version, or run without --resume to start fresh (the folder is replaced)",
  );
}

/** state.json of `path`: undefined if none, "older" if an older mocra-ts wrote it (format 1). */
function readMeta(path: string): Meta | "older" | undefined {
  const file = join(path, META);
  if (!existsSync(file)) return undefined;
  let meta: Partial<Meta>;
  try {
    meta = JSON.parse(readFileSync(file, "utf8")) as Partial<Meta>;
  } catch {
    throw new StateError(`state: ${file} is not valid JSON (corrupted or truncated); delete ${path} to start over`);
  }
  if (meta.format === 1 && (meta.status === "running" || meta.status === "finished")) return "older";
  if (meta.format !== FORMAT || (meta.status !== "running" && meta.status !== "finished") || !Array.isArray(meta.modules)) {
    throw new StateError(`state: ${file} is not a mocra-ts state file of format ${FORMAT}; delete ${path} to start over`);
  }
  return meta as Meta;
}

function writeMeta(path: string, meta: Meta): void {
  const file = join(path, META);
  try {
    writeFileSync(`${file}.tmp`, JSON.stringify(meta, null, 2) + "\n");
    renameSync(`${file}.tmp`, file);
  } catch (err) {
    throw writeFault(file, err); // a full disk at start-up: one line naming the file (src/cli.ts)
  }
}
