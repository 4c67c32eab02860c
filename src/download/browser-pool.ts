// src/download/browser-pool.ts: headless Chromium as a managed resource — a bounded number of
// pages at once, one context per session (cookies), sub-resources blocked by type, the browser
// relaunched after a crash and recycled after N pages so its memory stays bounded.
//
// playwright-core is imported lazily, on the first page: a crawl that never renders never loads it.
import { accessSync, constants } from "node:fs";
import type { Browser, BrowserContext, Page as LivePage } from "playwright-core";

/** Chromium flags for crawling: no sandbox (containers), no GPU, nothing talking home. */
export const CHROMIUM_FLAGS: readonly string[] = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--disable-dev-shm-usage",
];

/** Where Chromium is looked for when `[browser] executable` is empty. */
export const CHROMIUM_CANDIDATES: readonly string[] = ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome", "/usr/bin/google-chrome-stable"];

export interface BrowserPoolOptions {
  /** path of the Chromium binary; "" = the first of CHROMIUM_CANDIDATES that exists */
  executable: string;
  /** pages rendering at once (the pool's size) */
  concurrency: number;
  /** pages a browser renders before it is replaced by a fresh one (0 = never) */
  recyclePages: number;
  /** Playwright resource types aborted (image, font, media, stylesheet, ...) */
  blockResources: readonly string[];
  userAgent: string;
  /** how long a launch may take, ms (default 30 s) */
  launchTimeoutMs?: number;
  /** what asked for a browser, named in the error when there is none (e.g. `render = "browser" (module shop)`) */
  askedBy?: () => string;
}

/** A document to hand Chromium instead of letting it fetch the page itself. */
export interface ServedDocument {
  url: string;
  status: number;
  headers: Record<string, string>;
  body: Uint8Array;
  /**
   * May the page fetch this sub-resource itself (an image, a script's fetch, an iframe)? false
   * aborts it. The crawl's private-network rule, for what Chromium fetches on the page's behalf.
   */
  allowSubresource?: (url: string) => Promise<boolean>;
}

/** What a render sees: the live page and the context it runs in. */
export interface PageLease {
  page: LivePage;
  context: BrowserContext;
  /** The main frame's next navigation to `doc.url` is answered with `doc`; later main-frame navigations are not followed. */
  serve(doc: ServedDocument): void;
  /** requests the page made besides its document since serve() (blocked ones included) */
  subresources(): number;
  /** false once the page or its browser is gone (closed, crashed, killed) */
  alive(): boolean;
  /** Resolves once no request has been in flight for `quietMs` (rejects on timeout or when the page dies). */
  settled(quietMs: number, timeoutMs: number): Promise<void>;
}

/** A page kept open between renders (a new page costs Chromium a renderer process). */
interface PooledPage {
  page: LivePage;
  doc: ServedDocument | undefined;
  served: boolean;
  requests: number;
  inFlight: number;
  quietSince: number;
  crashed: boolean;
}

export class BrowserUnavailable extends Error {
  constructor(message: string) {
    super(message);
    this.name = "BrowserUnavailable";
  }
}

/** A page render failed because the browser went away under it (crash, kill): worth another try. */
export class BrowserCrashed extends Error {
  constructor(message: string) {
    super(message);
    this.name = "BrowserCrashed";
  }
}

interface Generation {
  browser: Browser;
  contexts: Map<string, Promise<BrowserContext>>;
  /** open pages between renders, per session (at most `concurrency` in all) */
  idle: Map<string, PooledPage[]>;
  idleCount: number;
  /** pages started on this browser */
  started: number;
  inFlight: number;
  retiring: boolean;
  alive: boolean;
}

export interface BrowserPoolStats {
  /** pages rendering now */
  inFlight: number;
  /** renders waiting for a slot */
  waiting: number;
  /** pages rendered (finished, with or without error) */
  pages: number;
  /** browsers launched (1 + crashes + recycles) */
  launches: number;
  crashes: number;
  recycles: number;
}

/** Resolves the Chromium binary, or says in one line what is missing and how to set it. */
export function findChromium(executable: string, askedBy = "rendering"): string {
  const candidates = executable ? [executable] : CHROMIUM_CANDIDATES;
  for (const path of candidates) {
    try {
      accessSync(path, constants.X_OK);
      return path;
    } catch {
      // next
    }
  }
  const where = executable ? `${executable} is not an executable file` : `no Chromium at ${CHROMIUM_CANDIDATES.join(", ")}`;
  return fail(`${askedBy} needs Chromium, but ${where}: install it (Debian: apt-get install chromium) or set [browser] executable = "/path/to/chromium"`);
}

function fail(message: string): never {
  throw new BrowserUnavailable(message);
}

/**
 * A bounded pool of Chromium pages. `withPage` waits for a slot, opens a page in the session's
 * context (created on first use; one per session so each session's cookies stay apart), runs the
 * caller, and closes the page. A crashed browser is replaced on the next page; after
 * `recyclePages` pages a browser retires (finishes its pages, then closes) and a fresh one takes
 * new pages.
 */
export class BrowserPool {
  private gen: Generation | undefined;
  private launching: Promise<Generation> | undefined;
  private active = 0;
  private readonly queue: Array<() => void> = [];
  private closed = false;
  private executable: string | undefined;
  private readonly counters = { pages: 0, launches: 0, crashes: 0, recycles: 0 };

  constructor(private readonly options: BrowserPoolOptions) {}

  stats(): BrowserPoolStats {
    return { inFlight: this.active, waiting: this.queue.length, ...this.counters };
  }

  /** Checks that Chromium is there (without launching it); throws BrowserUnavailable if not. */
  check(): string {
    return (this.executable ??= findChromium(this.options.executable, this.options.askedBy?.()));
  }

  /**
   * Runs `fn` on a fresh page of `session`'s context. `deadline` (epoch ms) bounds the wait for a
   * slot and the launch; `fn` is given the ms left.
   */
  async withPage<T>(session: string, deadline: number, fn: (lease: PageLease, msLeft: number) => Promise<T>): Promise<T> {
    await this.acquire(deadline);
    let gen: Generation | undefined;
    try {
      gen = await this.generation(deadline);
      gen.started++;
      gen.inFlight++;
      if (this.options.recyclePages > 0 && gen.started >= this.options.recyclePages && !gen.retiring) {
        // the next page goes to a fresh browser; this one closes after its last page
        gen.retiring = true;
        this.counters.recycles++;
        if (this.gen === gen) this.gen = undefined;
      }
      const context = await this.contextOf(gen, session);
      const slot = this.idlePage(gen, session) ?? (await this.openPage(context));
      slot.doc = undefined;
      slot.served = false;
      slot.requests = 0;
      slot.inFlight = 0;
      slot.quietSince = Date.now();
      const g = gen;
      const { page } = slot;
      const alive = () => g.alive && !slot.crashed && !page.isClosed();
      let reusable = false;
      try {
        const out = await fn(
          {
            page,
            context,
            serve: (doc) => {
              slot.doc = doc;
            },
            subresources: () => Math.max(0, slot.requests - 1),
            alive,
            settled: (quietMs, timeoutMs) => settle(slot, alive, quietMs, timeoutMs),
          },
          deadline - Date.now(),
        );
        // a DOM taken while the browser was dying may be half-rendered: not a result
        if (!g.alive || slot.crashed || !g.browser.isConnected()) throw new BrowserCrashed("browser closed while rendering");
        reusable = true;
        return out;
      } finally {
        slot.doc = undefined;
        if (reusable && !g.retiring && g.idleCount < this.options.concurrency) {
          const list = g.idle.get(session) ?? [];
          list.push(slot);
          g.idle.set(session, list);
          g.idleCount++;
        } else await page.close().catch(() => {});
      }
    } catch (err) {
      if (err instanceof BrowserCrashed) throw err;
      if (gen && (!gen.alive || !gen.browser.isConnected())) throw new BrowserCrashed(`browser closed while rendering: ${errorText(err)}`);
      throw err;
    } finally {
      this.counters.pages++;
      if (gen) {
        gen.inFlight--;
        if (gen.retiring && gen.inFlight === 0 && gen.alive) void this.closeGeneration(gen);
      }
      this.release();
    }
  }

  /** Closes every browser; pages in flight fail. */
  async close(): Promise<void> {
    this.closed = true;
    const gen = this.gen;
    this.gen = undefined;
    const launching = this.launching;
    if (gen) await this.closeGeneration(gen);
    if (launching) await launching.then((g) => this.closeGeneration(g), () => {});
  }

  private acquire(deadline: number): Promise<void> {
    if (this.active < this.options.concurrency) {
      this.active++;
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      const grant = () => {
        clearTimeout(timer);
        this.active++;
        resolve();
      };
      const timer = setTimeout(() => {
        const i = this.queue.indexOf(grant);
        if (i >= 0) this.queue.splice(i, 1);
        reject(new Error(`no browser page free within the request's timeout (${this.options.concurrency} rendering)`));
      }, Math.max(0, deadline - Date.now()));
      this.queue.push(grant);
    });
  }

  private release(): void {
    this.active--;
    const next = this.queue.shift();
    if (next) next();
  }

  private async generation(deadline: number): Promise<Generation> {
    if (this.closed) throw new BrowserUnavailable("the browser pool is closed");
    if (this.gen?.alive) return this.gen;
    this.launching ??= this.launch(deadline).finally(() => {
      this.launching = undefined;
    });
    return this.launching;
  }

  private async launch(deadline: number): Promise<Generation> {
    const executablePath = this.check();
    const { chromium } = await import("playwright-core");
    const browser = await chromium.launch({
      executablePath,
      headless: true, // Playwright also gives each launch a fresh temporary --user-data-dir
      args: [...CHROMIUM_FLAGS],
      chromiumSandbox: false,
      timeout: Math.max(1000, Math.min(this.options.launchTimeoutMs ?? 30_000, deadline - Date.now())),
    });
    this.counters.launches++;
    const gen: Generation = { browser, contexts: new Map(), idle: new Map(), idleCount: 0, started: 0, inFlight: 0, retiring: false, alive: true };
    browser.on("disconnected", () => {
      if (gen.alive && !gen.retiring && !this.closed) this.counters.crashes++;
      gen.alive = false;
      if (this.gen === gen) this.gen = undefined;
    });
    if (this.closed) {
      await browser.close().catch(() => {});
      throw new BrowserUnavailable("the browser pool is closed");
    }
    this.gen = gen;
    return gen;
  }

  private idlePage(gen: Generation, session: string): PooledPage | undefined {
    const list = gen.idle.get(session);
    while (list && list.length > 0) {
      const slot = list.pop()!;
      gen.idleCount--;
      if (!slot.page.isClosed() && !slot.crashed) return slot;
    }
    return undefined;
  }

  /** A new page with its listeners and its one route handler (document, blocked types). */
  private async openPage(context: BrowserContext): Promise<PooledPage> {
    const page = await context.newPage();
    const slot: PooledPage = { page, doc: undefined, served: false, requests: 0, inFlight: 0, quietSince: Date.now(), crashed: false };
    const done = () => {
      slot.inFlight = Math.max(0, slot.inFlight - 1);
      if (slot.inFlight === 0) slot.quietSince = Date.now();
    };
    page.on("request", () => {
      slot.requests++;
      slot.inFlight++;
    });
    page.on("requestfinished", done);
    page.on("requestfailed", done);
    page.on("crash", () => (slot.crashed = true));
    const blocked = new Set(this.options.blockResources);
    await page.route("**/*", (route) => {
      const r = route.request();
      const doc = slot.doc;
      if (doc && r.isNavigationRequest() && r.frame() === page.mainFrame()) {
        if (slot.served || r.url().split("#")[0] !== doc.url.split("#")[0]) return route.abort("aborted");
        slot.served = true;
        return route.fulfill({ status: doc.status, headers: doc.headers, body: Buffer.from(doc.body.buffer, doc.body.byteOffset, doc.body.byteLength) });
      }
      if (blocked.has(r.resourceType())) return route.abort("blockedbyclient");
      const allow = doc?.allowSubresource;
      if (!allow) return route.fallback();
      // the page may be gone by the time the answer comes: nothing left to route then
      return allow(r.url())
        .then(
          (ok) => (ok ? route.fallback() : route.abort("addressunreachable")),
          () => route.abort("failed"),
        )
        .catch(() => {});
    });
    return slot;
  }

  private contextOf(gen: Generation, session: string): Promise<BrowserContext> {
    let ctx = gen.contexts.get(session);
    if (!ctx) {
      ctx = gen.browser.newContext({ userAgent: this.options.userAgent, serviceWorkers: "block", acceptDownloads: false });
      ctx.catch(() => gen.contexts.delete(session));
      gen.contexts.set(session, ctx);
    }
    return ctx;
  }

  private async closeGeneration(gen: Generation): Promise<void> {
    gen.retiring = true;
    if (!gen.alive) return;
    gen.alive = false;
    await gen.browser.close().catch(() => {});
  }
}

/**
 * Waits until no request of the page has been in flight for `quietMs` (the load event first is
 * the caller's goto); rejects when the page dies or `timeoutMs` passes.
 */
async function settle(slot: PooledPage, alive: () => boolean, quietMs: number, timeoutMs: number): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const quiet = slot.inFlight === 0 ? Date.now() - slot.quietSince : 0;
    if (quiet >= quietMs) return;
    if (!alive()) throw new Error("the page closed while waiting for its requests to settle");
    if (Date.now() >= until) throw new Error(`timeout waiting for the page's requests to settle (${slot.inFlight} in flight)`);
    await new Promise((r) => setTimeout(r, Math.min(quietMs - quiet, 25, until - Date.now()) + 1));
  }
}

export function errorText(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  // Playwright appends a multi-line call log: the first line says what happened
  return text.split("\n")[0];
}
