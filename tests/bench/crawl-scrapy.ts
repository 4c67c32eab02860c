// tests/bench/crawl-scrapy.ts: runs tests/bench/crawl_scrapy.py (Scrapy, Debian's python3-scrapy) with
// the same arguments, for the harness that starts every crawler as a TypeScript script; the Python
// process prints the RESULT line (its own CPU and RSS: this wrapper only waits).
//
//   node --import tsx tests/bench/crawl-scrapy.ts --url URL --items N --concurrency C [--max-secs S]
//   BENCH_PYTHON: the interpreter (default: the first of python3, /usr/bin/python3 that imports scrapy;
//   Debian's package is for /usr/bin/python3, which a pyenv shim on PATH may hide)
import { spawn, spawnSync } from "node:child_process";
import { join } from "node:path";
import { ROOT } from "./common.ts";

/** The python interpreter that can import scrapy, or undefined (the comparison runs Scrapy only then). */
export function scrapyPython(): string | undefined {
  const candidates = process.env.BENCH_PYTHON ? [process.env.BENCH_PYTHON] : ["python3", "/usr/bin/python3"];
  return candidates.find((py) => spawnSync(py, ["-c", "import scrapy"], { stdio: "ignore" }).status === 0);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const python = scrapyPython();
  if (!python) {
    console.error("crawl-scrapy: no python3 that can import scrapy (apt-get install -y python3-scrapy, or set BENCH_PYTHON)");
    process.exit(2);
  }
  const child = spawn(python, [join(ROOT, "tests/bench/crawl_scrapy.py"), ...process.argv.slice(2)], { stdio: "inherit" });
  child.on("exit", (code) => process.exit(code ?? 1));
}
