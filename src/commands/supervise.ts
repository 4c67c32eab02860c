// The supervisor: run-standalone and start-worker run as a child of a small parent process that
// restarts the child when the watchdog ended it (a parse blocked the process: see
// src/runtime/watchdog.ts and docs/module-faults.md) and relays SIGINT/SIGTERM. The parent loads
// no engine code, so it never blocks; the child ends itself when the parent dies.
import { spawn } from "node:child_process";
import process from "node:process";
import { killSelf, onParentPipeClosed, onShutdownSignal, parentPid, selfCommand } from "../runtime/index.ts";

/** Hidden option the parent passes to its child: `--supervised-by=<parent pid>`. */
export const SUPERVISED_BY = "--supervised-by=";
/** Option that runs the command in this process, without the supervising parent. */
export const NO_SUPERVISOR = "--no-supervisor";
/** Restarts after which the supervisor gives up (a child that is killed again and again for another reason). */
const MAX_RESTARTS = 100;

/**
 * Runs `argv` (the whole command line, command first) in a child process until it ends by itself;
 * a child ended by SIGKILL is started again (with `again(argv)`, e.g. adding --resume) unless a stop
 * signal came meanwhile. Resolves with the exit code to end with.
 */
export async function supervise(argv: readonly string[], again: (argv: readonly string[]) => string[]): Promise<number> {
  let stopping = false;
  let child: ReturnType<typeof spawn> | undefined;
  const removeSignals = onShutdownSignal((sig) => {
    stopping = true;
    // the child handles it (finish in flight, summary); when it is blocked in module code its
    // watchdog ends it within shutdown_timeout_secs
    // process.kill, not child.kill: Deno's ChildProcess then reports the exit as that signal (130)
    // instead of the child's own exit code
    if (child?.pid !== undefined && child.exitCode === null) {
      try {
        process.kill(child.pid, sig);
      } catch {
        // already gone
      }
    }
  });
  try {
    let args = [...argv];
    for (let restarts = 0; ; restarts++) {
      const { cmd, args: full } = selfCommand([...args, `${SUPERVISED_BY}${process.pid}`]);
      // fd 3: a pipe whose closing tells the child at once that this process is gone
      child = spawn(cmd, full, { stdio: ["inherit", "inherit", "inherit", "pipe"] });
      const { code, signal } = await new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
        child!.on("exit", (code, signal) => resolve({ code, signal }));
        child!.on("error", () => resolve({ code: 1, signal: null }));
      });
      if (signal !== "SIGKILL" || stopping || restarts >= MAX_RESTARTS) {
        if (signal === "SIGKILL" && stopping) console.error("stopped: the process was ended while module code blocked it; state kept (continue with --resume)");
        return code ?? (signal === "SIGINT" || signal === "SIGTERM" ? 130 : 1);
      }
      console.error(`supervisor: the crawl process was killed (SIGKILL: the watchdog, or out of memory); starting it again (restart ${restarts + 1})`);
      args = again(args);
    }
  } finally {
    removeSignals();
  }
}

/** In the child: end at once when the supervising parent is gone (killed with -9), as it would have. */
export function followParent(parent: number): void {
  onParentPipeClosed(() => killSelf());
  // and by polling, for a runtime without the pipe
  const timer = setInterval(() => {
    if (parentPid() !== parent) killSelf();
  }, 200);
  (timer as { unref?: () => void }).unref?.();
}
