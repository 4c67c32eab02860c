// tests/helpers/record-modules.mjs: `node --import ./tests/helpers/record-modules.mjs ...` writes
// every module URL the process resolved through the ESM loader (static imports, import() and
// the first require of a package from ESM) to the file named by MOCRA_MODULES_OUT when it exits,
// appended: a child started with the same execArgv (the supervisor's worker) adds its own.
// The resolve hook runs on the loader thread and posts each URL back here.
import { appendFileSync } from "node:fs";
import { register } from "node:module";
import process from "node:process";
import { MessageChannel } from "node:worker_threads";

const out = process.env.MOCRA_MODULES_OUT;
if (!out) throw new Error("record-modules.mjs: set MOCRA_MODULES_OUT to the file to write");
const urls = new Set();
const { port1, port2 } = new MessageChannel();
port1.on("message", (url) => urls.add(url));
port1.unref();
register("./record-modules-hooks.mjs", import.meta.url, { data: { port: port2 }, transferList: [port2] });
process.on("exit", () => appendFileSync(out, [...urls].join("\n") + "\n"));
