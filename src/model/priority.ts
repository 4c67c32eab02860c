/** mocra's Priority. On the wire (json, msgpack) it is the lowercase name; bincode uses 0/1/2. */
export type Priority = "low" | "normal" | "high";

/** Strict read order: high before normal before low. */
export const PRIORITIES: readonly Priority[] = ["high", "normal", "low"];

export function isPriority(value: unknown): value is Priority {
  return value === "low" || value === "normal" || value === "high";
}
