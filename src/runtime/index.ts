// The one place that knows whether we run on Node or Deno. Everything else calls these.
import process from "node:process";

export const runtime: "deno" | "node" = "Deno" in globalThis ? "deno" : "node";

/** Calls `handler` on SIGINT or SIGTERM; returns a function that removes it. */
export function onShutdownSignal(handler: (signal: "SIGINT" | "SIGTERM") => void): () => void {
  const onInt = () => handler("SIGINT");
  const onTerm = () => handler("SIGTERM");
  process.on("SIGINT", onInt);
  process.on("SIGTERM", onTerm);
  return () => {
    process.off("SIGINT", onInt);
    process.off("SIGTERM", onTerm);
  };
}

export function exit(code: number): never {
  process.exit(code);
}

export function args(): string[] {
  return process.argv.slice(2);
}

export function memoryRss(): number {
  return process.memoryUsage.rss();
}
