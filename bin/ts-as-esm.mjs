// A module-resolution hook (node:module register()) chained over tsx's, for the user's own files
// (outside node_modules) where no package.json says "type": "module":
// - a .ts or .mts file is an ES module;
// - a .js file is one if it has an import or export statement (Node's own syntax detection,
//   which tsx's hooks bypass).
// Without it tsx follows Node's rule for .js — CommonJS — and a module importing `mocra-ts` then
// fails with "Cannot require() ES Module ... in a cycle". .cts/.cjs files stay CommonJS.
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

const ESM_SYNTAX = /^\s*(import\s*[\w{*"']|export\s)/m;

export async function resolve(specifier, context, nextResolve) {
  const resolved = await nextResolve(specifier, context);
  const { url, format } = resolved;
  if (format === "module" || !url.startsWith("file:") || url.includes("/node_modules/")) return resolved;
  // the path, not the URL: a query (src/runtime's importFile retries a refused import with one) follows it
  if (/\.m?ts$/.test(new URL(url).pathname)) return { ...resolved, format: "module" };
  if (url.endsWith(".js") && ESM_SYNTAX.test(readSource(url))) return { ...resolved, format: "module" };
  return resolved;
}

function readSource(url) {
  try {
    return readFileSync(fileURLToPath(url), "utf8");
  } catch {
    return "";
  }
}
