#!/usr/bin/env node
// `npx mocra-ts <command>`: the CLI in this very process (tsx registered in-process, no wrapper
// child), so the pid a supervisor sees is the worker's and signals reach it directly.
import { register } from "tsx/esm/api";

register();
await import("../src/cli.ts");
