// The one place that knows whether we run on Node or Deno. Everything else calls these.
import process from "node:process";
import { Socket } from "node:net";
import { setFlagsFromString } from "node:v8";

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

/** Signals this close after the first are the same Ctrl-C: npx, npm and tsx relay the terminal's to a child that got it too. */
export const REPEAT_SIGNAL_MS = 2000;

/**
 * SIGINT/SIGTERM handling for a command that stops gracefully: `first` on the first signal,
 * `again` on one that arrives REPEAT_SIGNAL_MS or more after it (copies relayed by wrapper
 * processes in between are ignored). Returns a function that removes the handlers.
 */
export function onStopSignals(first: (signal: "SIGINT" | "SIGTERM") => void, again: (signal: "SIGINT" | "SIGTERM") => void): () => void {
  let firstAt: number | undefined;
  return onShutdownSignal((sig) => {
    if (firstAt === undefined) {
      firstAt = Date.now();
      first(sig);
    } else if (Date.now() - firstAt >= REPEAT_SIGNAL_MS) again(sig);
  });
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

/**
 * Asks V8 to grow the heap less eagerly (20 % over the live size instead of up to 4x), so a long
 * crawl's RSS stays near its live data: measured with tests/benchmark_standalone_memory.ts.
 * Node takes the flag at run time; Deno ignores it then, so deno.json's tasks pass it as
 * --v8-flags (the call is harmless there).
 */
export function preferSteadyMemory(): void {
  try {
    setFlagsFromString("--heap-growing-percent=20");
  } catch {
    // a runtime without V8 flags at run time: keep its defaults
  }
}

/**
 * Puts `String.prototype` back into V8's fast-properties mode. A `class ... extends String`
 * anywhere in the process (ioredis 6 defines one at load, for RESP3 verbatim strings) leaves
 * String.prototype a dictionary-mode "prototype in setup", and calls on string primitives never
 * make it fast again: every optimised `s.charCodeAt(i)` is then a generic call, and htmlparser2's
 * tokenizer, the URL fast paths and every other string scan ran ~1.8x slower in any process that
 * had loaded ioredis (the same 6 KB page: 105 µs to parse instead of 57). A property store on a
 * String wrapper object makes V8 re-optimise the prototypes on its chain (MakePrototypesFast).
 * Call it after importing such a module; it costs one store, and elsewhere changes nothing.
 * tests/string-prototype.test.ts checks the effect with %HasFastProperties.
 */
export function restoreFastStringPrototype(): void {
  const wrapper: { fastPrototypeProbe?: true } = Object("");
  wrapper.fastPrototypeProbe = true;
}

/** The command that runs this same program again with `argv` (the supervisor's child). */
export function selfCommand(argv: readonly string[]): { cmd: string; args: string[] } {
  if (runtime === "deno") return { cmd: process.execPath, args: ["run", "-A", process.argv[1], ...argv] };
  return { cmd: process.execPath, args: [...process.execArgv, process.argv[1], ...argv] };
}

/** The parent process's id now (it changes when the parent dies and the process is re-parented). */
export function parentPid(): number {
  return process.ppid;
}

/**
 * Calls `gone` as soon as the pipe the parent passed as fd 3 closes (the parent died, even by
 * kill -9). False when there is no such pipe.
 */
export function onParentPipeClosed(gone: () => void): boolean {
  try {
    const pipe = new Socket({ fd: 3, readable: true, writable: false });
    pipe.on("close", gone);
    pipe.on("error", () => {});
    pipe.resume();
    pipe.unref();
    return true;
  } catch {
    return false;
  }
}

/** Ends this process at once, as kill -9 would (no handlers, no flushing). */
export function killSelf(): never {
  process.kill(process.pid, "SIGKILL");
  throw new Error("unreachable");
}

let typeScriptLoader: Promise<void> | undefined;

/**
 * tsx, and over it bin/ts-as-esm.mjs (a .ts file is an ES module wherever it lies, as
 * bin/mocra-ts.mjs registers them for an installed package). bin/ is beside src/ in a clone and
 * beside dist/ in the package, so it is two or three levels up from this file.
 */
async function registerTypeScriptLoader(): Promise<void> {
  const { register: registerTsx } = await import("tsx/esm/api");
  registerTsx();
  const { register } = await import("node:module");
  const { existsSync } = await import("node:fs");
  const hook = ["../../bin/ts-as-esm.mjs", "../../../bin/ts-as-esm.mjs"].map((p) => new URL(p, import.meta.url)).find((u) => existsSync(u));
  if (hook) register(hook.href);
}

/**
 * Imports a file by path (a user's module). Deno and a process started through tsx import
 * TypeScript themselves; the compiled CLI (`npm start`: plain JavaScript from dist/, no loader,
 * which saves tsx's loader thread: ~45 MB of RSS) registers tsx on the first `.ts` file that Node
 * refuses, and imports it again under another URL (Node caches the refused import).
 */
export async function importFile(url: string): Promise<unknown> {
  try {
    return await import(url);
  } catch (err) {
    if (runtime !== "node" || (err as { code?: string }).code !== "ERR_UNKNOWN_FILE_EXTENSION" || !/\.[mc]?ts$/.test(new URL(url).pathname)) throw err;
    typeScriptLoader ??= registerTypeScriptLoader();
    await typeScriptLoader;
    return await import(`${url}${url.includes("?") ? "&" : "?"}typescript`);
  }
}
