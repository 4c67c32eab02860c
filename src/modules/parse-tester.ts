// src/modules/parse-tester.ts: run a module's parse (or one step) on a saved page or a URL,
// without a crawl — for unit tests of a module and for `parse --module M URL|FILE`
// (Scrapy's `scrapy parse` / building an `HtmlResponse` by hand).

import { readFile } from "node:fs/promises";
import { basename, resolve } from "node:path";
import { HttpClient } from "../download/http-client.ts";
import { executionMark, headersFromRecord, type JsonValue, metaData, type ParserTaskModel, request, response } from "../model/index.ts";
import type { CrawlModule, ModuleSettings } from "./define.ts";
import { URL_HEADER } from "./page.ts";
import { runParse } from "./run-parse.ts";

export interface ParseTestOptions {
  /** the page's URL: relative links resolve against it (default: the URL fetched, or `http://localhost/<file name>`) */
  url?: string;
  /** the step to run (multi-step modules); default: the first */
  step?: string;
  /** HTTP status the page came with (default 200) */
  status?: number;
  /** response headers (default: `content-type: text/html; charset=utf-8` for a body given here) */
  headers?: Record<string, string>;
  /** settings over the module's own (as `[modules.<name>]` would give them) */
  settings?: ModuleSettings;
  /** what the request carried as `data` (`page.data`) */
  data?: JsonValue;
}

/** What one parse produced. */
export interface ParseTestResult<Item> {
  items: Item[];
  /** the follow-ups, as the engine would enqueue them (before dedup) */
  requests: Array<{ url: string; method: string; step: string }>;
  /** parser tasks for other modules (`ctx.startModule`) */
  tasks: ParserTaskModel[];
  /** follow() targets not crawled, as "reason: url" (not crawlable, allowed domains, link rules) */
  dropped: string[];
}

/**
 * Runs `module`'s parse (or `options.step`) on `body` as if it had been downloaded from
 * `options.url`; returns its items and follow-ups. Throws what parse throws.
 *
 * ```ts
 * const out = await parseWith(books, await readFile("tests/fixtures/books.html"), { url: "https://books.example/" });
 * expect(out.items[0]).toEqual({ title: "A Light in the Attic", ... });
 * ```
 */
export async function parseWith<Item>(module: CrawlModule<Item>, body: string | Uint8Array, options: ParseTestOptions = {}): Promise<ParseTestResult<Item>> {
  const url = options.url ?? "http://localhost/";
  const stepIdx = options.step === undefined ? 0 : module.stepIndex(options.step);
  const headers = headersFromRecord(options.headers ?? { "content-type": "text/html; charset=utf-8" }).map((h): [string, string] => [h.key.toLowerCase(), h.value]);
  const res = response({
    module: module.name,
    statusCode: options.status ?? 200,
    content: typeof body === "string" ? new TextEncoder().encode(body) : body,
    headers: [...headers, [URL_HEADER, url]],
    metadata: metaData({ traitMeta: options.data ?? null }),
    context: executionMark({ moduleId: module.name, stepIdx }),
  });
  const settings = { ...module.settings, ...options.settings };
  const out = await runParse(module, res, settings, 30);
  return {
    items: out.items,
    requests: out.requests.map((r) => ({ url: r.url, method: r.method, step: module.stepNames[r.context.stepIdx ?? 0] ?? module.stepNames[0] })),
    tasks: out.tasks,
    dropped: out.dropped.map((d) => `${d.reason}: ${d.url}`),
  };
}

/**
 * `parseWith` on a saved file or a URL: an `http(s)://` source is downloaded (one GET, no
 * robots.txt, no retries), anything else is read as a file.
 */
export async function parseSource<Item>(
  module: CrawlModule<Item>,
  source: string,
  options: ParseTestOptions & { userAgent?: string; timeoutSecs?: number } = {},
): Promise<ParseTestResult<Item>> {
  if (!/^https?:\/\//i.test(source)) {
    const path = resolve(source);
    const body = await readFile(path);
    const url = options.url ?? `http://localhost/${encodeURIComponent(basename(path))}`;
    return parseWith(module, new Uint8Array(body.buffer, body.byteOffset, body.byteLength), { ...options, url });
  }
  const client = new HttpClient({ userAgent: options.userAgent ?? "mocra-ts/0.1 (parse)", maxBodyBytes: 50 * 1024 * 1024, maxRedirects: 10 });
  try {
    const res = await client.fetch(request({ url: source, module: module.name, timeout: options.timeoutSecs ?? 30 }));
    const headers: Record<string, string> = {};
    let finalUrl = source;
    for (const [k, v] of res.headers) {
      if (k === URL_HEADER) finalUrl = v;
      else headers[k] = v;
    }
    return parseWith(module, res.content, { ...options, status: options.status ?? res.statusCode, headers: options.headers ?? headers, url: options.url ?? finalUrl });
  } finally {
    await client.close();
  }
}
