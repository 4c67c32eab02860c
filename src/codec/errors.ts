// src/codec/errors.ts: the one error type every codec throws (kept apart from codec.ts so the
// codec files can import it without an import cycle).

/** Thrown by every codec on bad input (decode) or on a value mocra could not represent (encode). */
export class CodecError extends Error {
  override readonly name = "CodecError";
}

/**
 * Internal: a failure deep inside a value (decode: bad input; encode: a value mocra cannot
 * represent). Struct and sequence walkers add the path on the way out; the codec's top-level
 * encode/decode turns it into one CodecError naming the full path.
 */
export class FieldError extends Error {
  readonly path: string[] = [];
  constructor(readonly reason: string) {
    super(reason);
  }
}

/** Prefix a field/element name onto a failure bubbling out of a struct or sequence walker. */
export function atPath(err: unknown, segment: string): unknown {
  if (err instanceof FieldError) err.path.unshift(segment);
  return err;
}

/** The CodecError a top-level encode/decode throws, whatever went wrong underneath. */
export function codecError(op: "encode" | "decode", codec: string, topic: string, type: string, err: unknown): CodecError {
  if (err instanceof CodecError) return err;
  if (err instanceof FieldError) {
    const where = err.path.length > 0 ? `${type}.${err.path.join(".")}` : type;
    return new CodecError(`${codec} ${op} of topic "${topic}" failed at ${where}: ${err.reason}`);
  }
  const why = err instanceof Error ? err.message : String(err);
  return new CodecError(`${codec} ${op} of topic "${topic}" failed: ${why}`, { cause: err });
}

/** Describe a decoded JS value for an error message ("a string", "the number 5", ...). */
export function describe(v: unknown): string {
  if (v === null) return "null";
  if (v === undefined) return "nothing";
  if (Array.isArray(v)) return `an array of ${v.length}`;
  if (v instanceof Uint8Array) return `${v.length} bytes`;
  switch (typeof v) {
    case "string":
      return `the string ${JSON.stringify(v.length > 60 ? `${v.slice(0, 60)}…` : v)}`;
    case "number":
    case "boolean":
    case "bigint":
      return `${typeof v} ${String(v)}`;
    case "object":
      return "a map";
    default:
      return typeof v;
  }
}
