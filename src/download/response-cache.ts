// src/cache/response-cache.ts: mocra's optional HTTP response cache
// (`download_config.enable_cache`, `cache_ttl`): `<name>:cache:response:<request fingerprint>`.
import { jsonCodec } from "../codec/index.ts";
import type { CrawlEvent } from "../events/events.ts";
import { fingerprint, type Request, type Response } from "../model/index.ts";
import type { Downloader } from "./downloader.ts";
import type { Cache } from "../cache/cache.ts";

const fromCache = new WeakSet<Response>();

/** True for a Response served by a CachingDownloader (the download stage reports it so). */
export function isFromCache(response: Response): boolean {
  return fromCache.has(response);
}

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * The response-cache key of a request: mocra's fingerprint (`Request::hash()`). A request
 * made with `dedup: false` carries a random UUID as its hash_str (so that dedup lets it
 * through); that marker is ignored here, so a repeated dedup-off request still hits the cache.
 */
export function responseCacheKey(req: Request): string {
  return req.hashStr !== null && UUID_RE.test(req.hashStr) ? fingerprint({ ...req, hashStr: null }) : fingerprint(req);
}

/** Responses with a bigger body are not cached. */
export const RESPONSE_CACHE_MAX_BYTES = 2 * 1024 * 1024;

export interface CachingDownloaderOptions {
  /** entry lifetime, ms (config download_config.cache_ttl) */
  ttlMs: number;
  /** whether this request may be served from / stored in the cache (default: always) */
  enabled?: (req: Request) => boolean;
  emit?: (event: CrawlEvent) => void;
}

/**
 * A Downloader decorator: a request whose fingerprint has a cached Response is answered from
 * the cache without asking the server (event `cache_hit`; the download stage then reports
 * `response_received` with fromCache true); other requests go to `inner` and a 2xx/3xx
 * Response (body up to 2 MiB, not offloaded) is stored for `ttlMs`. The stored value is the
 * Response in mocra's JSON wire form; a hit is re-addressed to the new request (its id, run,
 * context and metadata).
 */
export class CachingDownloader implements Downloader {
  private readonly prefetched = new WeakMap<Request, Response>();
  /** looked up and not found: fetch() goes to the server without asking again */
  private readonly missed = new WeakSet<Request>();
  emit: (event: CrawlEvent) => void;

  constructor(
    private readonly inner: Downloader,
    private readonly cache: Cache,
    private readonly options: CachingDownloaderOptions,
  ) {
    this.emit = options.emit ?? (() => {});
  }

  private enabled(req: Request): boolean {
    return this.options.ttlMs > 0 && (this.options.enabled?.(req) ?? true);
  }

  /**
   * Looks the request up ahead of the politeness gate: a hit needs no rate slot. The hit is
   * kept for the fetch() of the same Request object.
   */
  async lookup(req: Request): Promise<boolean> {
    if (!this.enabled(req)) return false;
    let bytes: Uint8Array | undefined;
    try {
      bytes = await this.cache.get("response", responseCacheKey(req));
    } catch {
      this.missed.add(req);
      return false; // a cache outage means a download, not a failure
    }
    let cached: Response | undefined;
    try {
      if (bytes) cached = jsonCodec.decode("response", bytes);
    } catch {
      cached = undefined;
    }
    if (!cached) {
      this.missed.add(req);
      return false;
    }
    this.prefetched.set(req, cached);
    return true;
  }

  async fetch(req: Request): Promise<Response> {
    if (this.enabled(req)) {
      let cached = this.prefetched.get(req);
      if (!cached && !this.missed.has(req) && (await this.lookup(req))) cached = this.prefetched.get(req);
      this.missed.delete(req);
      if (cached) {
        this.prefetched.delete(req);
        const res: Response = {
          ...cached,
          id: req.id,
          platform: req.platform,
          account: req.account,
          module: req.module,
          metadata: req.meta,
          context: req.context,
          runId: req.runId,
          prefixRequest: req.id,
          priority: req.priority,
          taskRetryTimes: req.taskRetryTimes,
        };
        fromCache.add(res);
        this.emit({ type: "cache_hit", kind: "response", url: req.url, module: req.module });
        return res;
      }
    }
    const res = await this.inner.fetch(req);
    if (this.enabled(req) && res.statusCode < 400 && res.storagePath === null && res.content.byteLength <= RESPONSE_CACHE_MAX_BYTES) {
      try {
        await this.cache.set("response", responseCacheKey(req), jsonCodec.encode("response", { ...res, requestHash: res.requestHash ?? fingerprint(req) }), this.options.ttlMs);
      } catch {
        // not cached: nothing lost
      }
    }
    return res;
  }
}
