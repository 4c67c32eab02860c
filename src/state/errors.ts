/** The state folder cannot be used as it is: says which file, where, and what to do. */
export class StateError extends Error {
  override readonly name = "StateError";
}

/**
 * A file the crawl depends on (items, frontier, dead letters, marks) could not be written: a full
 * disk, a read-only or failing device. Not a fault of any one page, so nothing is retried: the
 * crawl stops, with what was written up to the last whole record kept for --resume.
 */
export class FileWriteFault extends Error {
  override readonly name = "FileWriteFault";

  constructor(
    readonly path: string,
    cause: unknown,
  ) {
    super(`cannot write ${path}: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
  }
}

/** `err` as a FileWriteFault for `path` (one already is: kept, so the first file named stays named). */
export function writeFault(path: string, err: unknown): FileWriteFault {
  return err instanceof FileWriteFault ? err : new FileWriteFault(path, err);
}
