// A module-resolution hook (node:module register()) chained over tsx's: a .ts or .mts file of
// the user's (outside node_modules) is an ES module even where no package.json says
// "type": "module". Without it tsx follows Node's rule for .js — CommonJS — and a module
// importing `mocra-ts` then fails with "Cannot require() ES Module ... in a cycle".
export async function resolve(specifier, context, nextResolve) {
  const resolved = await nextResolve(specifier, context);
  if (resolved.url.startsWith("file:") && /\.m?ts$/.test(resolved.url) && !resolved.url.includes("/node_modules/") && resolved.format !== "module") {
    return { ...resolved, format: "module" };
  }
  return resolved;
}
