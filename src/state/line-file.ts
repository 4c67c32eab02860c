import { existsSync, readFileSync } from "node:fs";
import { StateError } from "./errors.ts";

/**
 * The JSON lines of an append-only state file. A last line without its newline was cut by a
 * crash: it is dropped, with a note. Any other unreadable line is a StateError.
 */
export function readJsonLines<T>(path: string, notes: string[]): T[] {
  if (!existsSync(path)) throw new StateError(`state: ${path} is missing: the state folder is incomplete; delete it to start over`);
  const lines = readFileSync(path, "utf8").split("\n");
  if (lines.pop() !== "") notes.push(`dropped an interrupted line at the end of ${path}`);
  return lines.map((line, i) => {
    try {
      return JSON.parse(line) as T;
    } catch {
      throw new StateError(`state: ${path} line ${i + 1} is corrupted (not JSON); delete the state folder to start over`);
    }
  });
}
