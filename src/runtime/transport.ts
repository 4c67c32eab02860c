import type { Deadline } from "./deadline.ts";

/** One HTTP exchange without redirects: what HttpClient needs from the wire. */
export interface HopRequest {
  method: string;
  /** lower-case names */
  headers: Record<string, string>;
  body?: Uint8Array | string;
  /** the request's deadline over headers and body (`deadline.signal` for an AbortSignal) */
  deadline: Deadline;
  /**
   * refuse to connect to a loopback, private, link-local, ... address (the host is not one the
   * crawl names: src/download/private-network.ts); checked on each address connected to
   */
  checkAddresses?: boolean;
}

export interface HopResponse {
  status: number;
  /** one entry per header (Set-Cookie excluded), lower-case names */
  headers: Array<[string, string]>;
  setCookies: string[];
  /** the decoded body (gzip, deflate and br undone), or null when there is none */
  body: AsyncIterable<Uint8Array> | null;
  /** discards the body (redirects, oversized bodies) */
  cancel(): Promise<void>;
  /**
   * The whole body in one read, when the transport has a cheaper way than the stream: HttpClient
   * uses it only for an uncompressed body whose Content-Length is within its cap (fetch enforces
   * that length), so the cap holds. Reading Deno's fetch body as a stream costs ~55 µs more per
   * 6 KB page than `arrayBuffer()` (one op into Rust instead of a promise per chunk).
   */
  bytes?(): Promise<Uint8Array>;
}

/**
 * Sends one request and returns the response head with a streaming body. HttpClient builds
 * redirects, deadlines, the body cap and cookies on top. Implementations: ky over a fetch
 * (`kyTransport`, any runtime, also the proxy transports) and undici's dispatcher on Node
 * (`src/runtime/http-transport.ts`).
 */
export interface Transport {
  send(url: string, init: HopRequest): Promise<HopResponse>;
  close?(): Promise<void>;
}

export function headerValue(headers: readonly [string, string][], name: string): string | undefined {
  for (const [k, v] of headers) if (k === name) return v;
  return undefined;
}
