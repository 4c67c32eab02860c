#!/usr/bin/env node
// `npx mocra-ts <command>`: the CLI in this very process (no wrapper child), so the pid a
// supervisor sees is the worker's and signals reach it directly.
//
// In the repository it runs the TypeScript sources (src/cli.ts); in an installed package, which
// ships no sources, the compiled dist/src/cli.js. tsx is registered either way: it is what
// loads the user's own modules written in TypeScript (modules/*.ts), and ./ts-as-esm.mjs
// makes every .ts/.mts among them an ES module whatever the package.json "type" says.
// Deno (`deno run -A npm:mocra-ts …`) loads TypeScript itself and has no module hooks.
import { existsSync } from "node:fs";
import process from "node:process";

if (!process.versions.deno) {
  const { register } = await import("tsx/esm/api");
  const { register: registerHooks } = await import("node:module");
  register();
  registerHooks("./ts-as-esm.mjs", import.meta.url);
}
const source = new URL("../src/cli.ts", import.meta.url);
await import(existsSync(source) ? source.href : new URL("../dist/src/cli.js", import.meta.url).href);
