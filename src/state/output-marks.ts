import { AppendFile } from "./append-file.ts";
import { readJsonLines } from "./line-file.ts";

type MarkLine = { o: string; at: number } | { m: string; at: number; f: string[] };

/**
 * Durable "stored" marks for a JsonlSink whose run can be resumed (src/state/output-marks.ts).
 * `stored` is called after the lines are written and before write() resolves.
 */
export interface StoredMarks {
  /** from the run being resumed: the fingerprints it stored, and each file's length at its last mark */
  readonly restored: { fingerprints: Iterable<string>; committed: ReadonlyMap<string, number> } | undefined;
  opened(module: string, length: number): void;
  stored(module: string, length: number, fingerprints: readonly string[]): void;
}

/**
 * The items sink's "stored" marks in the state folder (marks.log): for each write, the
 * fingerprints it stored and the length its file had then. On resume the sink skips those
 * fingerprints and cuts each file back to its last marked length, so lines written just before
 * a crash (whose pages were not acked, and are fetched again) are not there twice.
 */
export class OutputMarks implements StoredMarks {
  readonly restored: StoredMarks["restored"];

  private readonly file: AppendFile;

  private constructor(path: string, restored: StoredMarks["restored"]) {
    this.restored = restored;
    this.file = new AppendFile(path, { truncate: restored === undefined });
  }

  static create(path: string): OutputMarks {
    return new OutputMarks(path, undefined);
  }

  static recover(path: string, notes: string[]): OutputMarks {
    const fingerprints: string[] = [];
    const committed = new Map<string, number>();
    for (const line of readJsonLines<MarkLine>(path, notes)) {
      if ("o" in line) committed.set(line.o, line.at);
      else {
        committed.set(line.m, line.at);
        fingerprints.push(...line.f);
      }
    }
    return new OutputMarks(path, { fingerprints, committed });
  }

  /** Throws a FileWriteFault if marks.log cannot be written (a line cut short is rolled back). */
  opened(module: string, length: number): void {
    this.file.append(JSON.stringify({ o: module, at: length }) + "\n");
  }

  /** Throws a FileWriteFault if marks.log cannot be written (a line cut short is rolled back). */
  stored(module: string, length: number, fingerprints: readonly string[]): void {
    this.file.append(JSON.stringify({ m: module, at: length, f: fingerprints }) + "\n");
  }

  close(): void {
    this.file.close();
  }
}
