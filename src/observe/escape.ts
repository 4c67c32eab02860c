/**
 * Text that came from the network (dead-letter reasons, URLs, payload excerpts) on its way to a
 * terminal, a log line or a page: every C0/C1 control character and DEL becomes a visible escape
 * (`\x1b`, `\n`, `\u009b`), so a payload cannot move the cursor, recolour the screen or fake a
 * log line. HTML is not this function's business: the dashboard writes text with textContent.
 */
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g;

const NAMED: Record<string, string> = { "\n": "\\n", "\r": "\\r", "\t": "\\t" };

export function escapeControl(text: string): string {
  return text.replace(CONTROL, (c) => {
    const named = NAMED[c];
    if (named) return named;
    const code = c.charCodeAt(0);
    return code < 0x100 ? `\\x${code.toString(16).padStart(2, "0")}` : `\\u${code.toString(16).padStart(4, "0")}`;
  });
}

/** `escapeControl` cut to `max` characters (an excerpt for one line). */
export function excerpt(text: string, max = 200): string {
  const e = escapeControl(text);
  return e.length > max ? `${e.slice(0, max - 1)}…` : e;
}
