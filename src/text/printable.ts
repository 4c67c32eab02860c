// src/text/printable.ts: text from the network made safe for a terminal or a log line.

/** Control characters (C0, DEL, C1, and the JS line separators) shown escaped as \uXXXX. */
export function printable(text: string): string {
  // deno-lint-ignore no-control-regex
  return text.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}
