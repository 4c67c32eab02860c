export * from "./schema.ts";
export * from "./issues.ts";
export * from "./load.ts";
export * from "./format.ts";
