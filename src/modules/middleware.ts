// src/middleware/types.ts: the three middleware chains (mocra's DownloadMiddleware,
// DataMiddleware, DataStoreMiddleware). The contracts live here, below operators/, so that
// modules, config and operators all depend on one definition.
import type { Request, Response } from "../model/index.ts";
import type { ModuleSettings } from "./define.ts";
import type { ItemSink } from "../storage/sink.ts";

/** What every middleware has: a name (in events and counters) and a weight (lower runs first). */
export interface MiddlewareBase {
  readonly name: string;
  /** lower runs first; ties keep registration order (global before the module's); default 0 */
  readonly weight?: number;
}

/** What a middleware sees besides its value. */
export interface MiddlewareContext {
  readonly module: string;
  /** the module's settings merged with `[modules.<name>]` */
  readonly settings: Readonly<ModuleSettings>;
}

/**
 * Download middleware: `beforeRequest` runs in weight order before a request is sent (return
 * the request, changed or not, or `null` to skip it: acked with a `request_skipped` event);
 * `afterResponse` runs in reverse weight order when the response arrives (onion order, as in
 * mocra): return it, a replacement, or `null` to drop it; `throw new RetryRequest(reason)` to
 * retry the request with backoff. Any other exception dead-letters the request.
 */
export interface DownloadMiddleware extends MiddlewareBase {
  readonly kind: "download";
  beforeRequest?(request: Request, ctx: MiddlewareContext): Request | null | void | Promise<Request | null | void>;
  afterResponse?(response: Response, ctx: MiddlewareContext & { readonly request: Request }): Response | null | void | Promise<Response | null | void>;
}

/** An item a data middleware decided to drop, with the reason counted in `items_dropped`. */
export interface DroppedItem {
  readonly [DROPPED]: true;
  readonly reason: string;
}
export const DROPPED: unique symbol = Symbol("mocra.dropped-item");

export interface ItemContext extends MiddlewareContext {
  /** the page the item came from */
  readonly url: string;
  /** return this to drop the item */
  drop(reason: string): DroppedItem;
}

/**
 * Data middleware: runs on each item in weight order; returns the item (or a replacement, or
 * nothing to keep it as changed in place), or `ctx.drop(reason)` / `null` to drop it. An
 * exception dead-letters the page's Response, as a failing parse() does.
 */
export interface DataMiddleware extends MiddlewareBase {
  readonly kind: "data";
  handleItem(item: unknown, ctx: ItemContext): unknown;
}

/**
 * Store middleware: where items go. Every store middleware of a module receives each batch
 * (calls start in weight order and run at once); the message is acked when all are durable.
 * The `[output]` sink is the store middleware `output`, weight 0.
 */
export interface StoreMiddleware extends MiddlewareBase {
  readonly kind: "store";
  readonly sink: ItemSink;
}

export type Middleware = DownloadMiddleware | DataMiddleware | StoreMiddleware;

/** Thrown by `afterResponse` (or `beforeRequest`) to retry the request with the usual backoff. */
export class RetryRequest extends Error {
  constructor(
    reason: string,
    /** at least this long before the retry, ms */
    readonly delayMs?: number,
  ) {
    super(reason);
  }
}

export function isDropped(value: unknown): value is DroppedItem {
  return typeof value === "object" && value !== null && DROPPED in value;
}

/** Declares a download middleware (sets `kind`). */
export function downloadMiddleware(def: Omit<DownloadMiddleware, "kind">): DownloadMiddleware {
  return { ...def, kind: "download" };
}

/** Declares a data middleware (sets `kind`). */
export function dataMiddleware(def: Omit<DataMiddleware, "kind">): DataMiddleware {
  return { ...def, kind: "data" };
}

/** Declares a store middleware: one more place items go. */
export function storeMiddleware(name: string, sink: ItemSink, weight = 0): StoreMiddleware {
  return { kind: "store", name, weight, sink };
}
