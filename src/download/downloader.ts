// src/download/downloader.ts: the download contract the services below the operators share
// (HttpClient, the caches, the proxy pool and the politeness gate wrap one another through it).

import type { Request, Response } from "../model/index.ts";

/** Something that turns a Request into a Response (HttpClient, a cache in front of it, ...). */
export interface Downloader {
  fetch(req: Request): Promise<Response>;
}

/** A downloaded page on its way to parse(). */
export interface Fetched {
  response: Response;
  /** the Request's fingerprint: items are keyed by it */
  fingerprint: string;
  url: string;
  /** set for a 3xx the engine follows: the request for its Location (enqueued instead of parsing) */
  redirect?: Request;
}
