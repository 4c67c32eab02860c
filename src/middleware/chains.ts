// src/middleware/chains.ts: the global and per-module middleware, sorted into the chains that
// the download, data and store stages run. Resolved once per module; a module with no
// middleware of a kind gets `undefined` for that chain, so the stage skips it for free.
import type { Request, Response } from "../model/index.ts";
import type { ModuleRegistry } from "../modules/registry.ts";
import {
  type DataMiddleware,
  DROPPED,
  type DownloadMiddleware,
  type DroppedItem,
  isDropped,
  type ItemContext,
  type Middleware,
  type MiddlewareContext,
  RetryRequest,
  type StoreMiddleware,
} from "../modules/middleware.ts";

export type ChainKind = Middleware["kind"];

/** A middleware threw: which one, in which chain. */
export class MiddlewareError extends Error {
  constructor(
    readonly chain: ChainKind,
    readonly middleware: string,
    cause: unknown,
  ) {
    super(`${chain} middleware ${middleware} failed: ${cause instanceof Error ? cause.message : String(cause)}`);
  }
}

/** Sorted by weight, ties by registration order (Array.prototype.sort is stable). */
function byWeight<M extends Middleware>(list: readonly M[]): M[] {
  return [...list].sort((a, b) => (a.weight ?? 0) - (b.weight ?? 0));
}

/** The download chain of one module. */
export class DownloadChain {
  private readonly before: DownloadMiddleware[];
  private readonly after: DownloadMiddleware[];

  constructor(
    list: readonly DownloadMiddleware[],
    private readonly ctx: MiddlewareContext,
  ) {
    this.before = list.filter((m) => m.beforeRequest);
    this.after = list.filter((m) => m.afterResponse).reverse();
  }

  /** The request to send, or the name of the middleware that skipped it. */
  async beforeRequest(request: Request): Promise<Request | { skippedBy: string }> {
    let req = request;
    for (const m of this.before) {
      let out: Request | null | void;
      try {
        out = await m.beforeRequest!(req, this.ctx);
      } catch (err) {
        if (err instanceof RetryRequest) throw err;
        throw new MiddlewareError("download", m.name, err);
      }
      if (out === null) return { skippedBy: m.name };
      if (out) req = out;
    }
    return req;
  }

  /** The response to parse, or the name of the middleware that dropped it. */
  async afterResponse(response: Response, request: Request): Promise<Response | { droppedBy: string }> {
    let res = response;
    const ctx = { ...this.ctx, request };
    for (const m of this.after) {
      let out: Response | null | void;
      try {
        out = await m.afterResponse!(res, ctx);
      } catch (err) {
        if (err instanceof RetryRequest) throw err;
        throw new MiddlewareError("download", m.name, err);
      }
      if (out === null) return { droppedBy: m.name };
      if (out) res = out;
    }
    return res;
  }
}

/** One item dropped by a data middleware. */
export interface Drop {
  middleware: string;
  reason: string;
}

const drop = (reason: string): DroppedItem => ({ [DROPPED]: true, reason });

/** The data chain of one module. */
export class DataChain {
  constructor(
    private readonly list: readonly DataMiddleware[],
    private readonly base: MiddlewareContext,
  ) {}

  /** Runs every item through the chain; returns the kept items and the drops. */
  async apply(items: readonly unknown[], url: string): Promise<{ kept: unknown[]; dropped: Drop[] }> {
    const ctx: ItemContext = { ...this.base, url, drop };
    const kept: unknown[] = [];
    const dropped: Drop[] = [];
    next: for (const original of items) {
      let item = original;
      for (const m of this.list) {
        let out: unknown;
        try {
          out = await m.handleItem(item, ctx);
        } catch (err) {
          throw new MiddlewareError("data", m.name, err);
        }
        if (out === null || isDropped(out)) {
          dropped.push({ middleware: m.name, reason: out === null ? "dropped" : out.reason });
          continue next;
        }
        if (out !== undefined) item = out;
      }
      kept.push(item);
    }
    return { kept, dropped };
  }
}

/** The chains of one module; a chain with no middleware is undefined. */
export interface ModuleChains {
  readonly download?: DownloadChain;
  readonly data?: DataChain;
  /** store middleware other than the `[output]` sink, by weight */
  readonly store: readonly StoreMiddleware[];
}

const NONE: ModuleChains = { store: [] };

/**
 * Global middleware (from config or code) plus each module's own (`defineModule({ middleware })`).
 * `any*` say whether a kind is registered anywhere: a flow leaves a stage out when it is not.
 */
export class MiddlewareChains {
  private readonly resolved = new Map<string, ModuleChains>();
  readonly anyDownload: boolean;
  readonly anyData: boolean;
  readonly anyStore: boolean;

  constructor(
    private readonly global: readonly Middleware[],
    private readonly registry: ModuleRegistry,
  ) {
    const all = [...global];
    for (const name of registry.names()) all.push(...(registry.get(name).middleware ?? []));
    for (const m of all) {
      if (m.kind !== "download" && m.kind !== "data" && m.kind !== "store") {
        throw new TypeError(`middleware ${JSON.stringify((m as { name?: unknown }).name)}: kind must be "download", "data" or "store"`);
      }
    }
    this.anyDownload = all.some((m) => m.kind === "download");
    this.anyData = all.some((m) => m.kind === "data");
    this.anyStore = all.some((m) => m.kind === "store");
  }

  /** The chains of a module (built once). */
  of(module: string): ModuleChains {
    let chains = this.resolved.get(module);
    if (!chains) {
      chains = this.resolve(module);
      this.resolved.set(module, chains);
    }
    return chains;
  }

  /** Every store middleware of every module (to close them at the end). */
  allStores(): StoreMiddleware[] {
    const out = new Set<StoreMiddleware>();
    for (const m of this.global) if (m.kind === "store") out.add(m);
    for (const name of this.registry.names()) for (const m of this.registry.get(name).middleware ?? []) if (m.kind === "store") out.add(m);
    return [...out];
  }

  private resolve(module: string): ModuleChains {
    if (!this.registry.has(module)) return NONE;
    const list = byWeight([...this.global, ...(this.registry.get(module).middleware ?? [])]);
    const ctx: MiddlewareContext = { module, settings: this.registry.settings(module) };
    const download = list.filter((m): m is DownloadMiddleware => m.kind === "download");
    const data = list.filter((m): m is DataMiddleware => m.kind === "data");
    return {
      download: download.length > 0 ? new DownloadChain(download, ctx) : undefined,
      data: data.length > 0 ? new DataChain(data, ctx) : undefined,
      store: list.filter((m): m is StoreMiddleware => m.kind === "store"),
    };
  }
}
