// Runs the RFC 9309 conformance table (tests/fixtures/robots-cases.ts) against our parser and
// against robots-parser (the npm package Crawlee uses), and prints each one's score and misses.
// This is how the parser was chosen (README, "robots.txt"): `npx tsx tests/compare_robots_parsers.ts`.
import { createRequire } from "node:module";
import { parseRobotsTxt } from "../src/download/robots.ts";
import { ROBOTS_CASES } from "./fixtures/robots-cases.ts";

// robots-parser is CommonJS whose types declare an ES default export: load it as CommonJS
const robotsParser = createRequire(import.meta.url)("robots-parser") as (url: string, body: string) => {
  isAllowed(url: string, ua?: string): boolean | undefined;
};

type Verdict = (body: string, agent: string, url: string) => boolean | undefined;

const candidates: Record<string, Verdict> = {
  "mocra-ts (src/download/robots.ts)": (body, agent, url) => parseRobotsTxt(body, agent).isAllowed(url),
  "robots-parser 3.0.1": (body, agent, url) => robotsParser(new URL("/robots.txt", url).href, body).isAllowed(url, agent),
};

for (const [name, verdict] of Object.entries(candidates)) {
  const misses = ROBOTS_CASES.filter((c) => {
    try {
      return verdict(c.body, c.agent, c.url) !== c.allowed;
    } catch {
      return true;
    }
  });
  console.log(`${name}: ${ROBOTS_CASES.length - misses.length}/${ROBOTS_CASES.length} cases right`);
  for (const m of misses) console.log(`  miss: ${m.name} (expected ${m.allowed ? "allowed" : "disallowed"})`);
}
