import { cookieHeader, isCredentialHeader, parseSetCookies, type Request, sameOrigin, type Response, responseFor, URL_HEADER } from "../model/index.ts";
import { AddressRefused, defaultTransport } from "../runtime/http-transport.ts";
import { Deadline } from "../runtime/deadline.ts";
import { DownloadError } from "./download-error.ts";
import { checkResolvedHost, mustCheckAddresses, namedHostsOf, type PrivateNetworkPolicy } from "./private-network.ts";
import { kyTransport } from "../runtime/ky-transport.ts";
import { headerValue, type HopResponse, type Transport } from "../runtime/transport.ts";

export interface HttpClientOptions {
  userAgent: string;
  /** bodies longer than this are rejected (or cut there, with `truncateBody`) */
  maxBodyBytes: number;
  /** keep the first `maxBodyBytes` of a longer body instead of rejecting it (robots.txt, RFC 9309 §2.5) */
  truncateBody?: boolean;
  maxRedirects: number;
  /**
   * false: a 3xx comes back as a Response and the engine turns it into a new request (every hop
   * through robots.txt, allowed domains and dedup: src/download/redirects.ts). Default true.
   */
  followRedirects?: boolean;
  /** send with ky over this fetch (a proxy transport plugs in here) */
  fetch?: typeof globalThis.fetch;
  /** send with this transport; default: the runtime's (undici on Node, ky + fetch on Deno) */
  transport?: Transport;
  /** connections per origin of the default transport (download_config.pool_size) */
  poolSize?: number;
  /**
   * refuse loopback/private/link-local/... addresses the policy does not allow (checked on the
   * address connected to; through a proxy, on what the target's name resolves to here). Absent:
   * no check (the engine always passes one: src/engine/standalone.ts createHttpClient).
   */
  privateNetworks?: PrivateNetworkPolicy;
  /** header names dropped, besides Authorization, Proxy-Authorization and Cookie, when a followed redirect leaves the origin */
  sensitiveHeaders?: readonly string[];
}


/**
 * Downloads one mocra Request: per-request method, headers, cookies and body; a deadline over
 * headers and body (`Request.timeout` seconds); redirects followed up to `maxRedirects`;
 * compressed bodies decoded; a hard cap on body size. Any HTTP status comes back as a
 * Response; transport failures throw DownloadError. The wire is a Transport: ky over fetch, or
 * undici's dispatcher on Node (see src/runtime/http-transport.ts for why).
 */
export class HttpClient {
  private readonly transport: Transport;

  constructor(private readonly options: HttpClientOptions) {
    this.transport =
      options.transport ?? (options.fetch ? kyTransport(options.fetch) : defaultTransport(options.poolSize ?? 256));
  }

  /** Closes the transport's connections. */
  async close(): Promise<void> {
    await this.transport.close?.();
  }

  async fetch(req: Request): Promise<Response> {
    const deadline = new Deadline(req.timeout * 1000, () => new DownloadError(`timeout after ${req.timeout}s`, true));
    try {
      return await this.fetchFollowing(req, deadline);
    } catch (err) {
      throw toDownloadError(err, deadline);
    } finally {
      deadline.clear();
    }
  }

  private async fetchFollowing(req: Request, deadline: Deadline): Promise<Response> {
    let url = req.url;
    let method = req.method;
    let body = requestBody(req);
    const headers: Record<string, string> = {
      "user-agent": this.options.userAgent,
      "accept-encoding": "gzip, deflate, br",
    };
    for (const h of req.headers) headers[h.key.toLowerCase()] = h.value;
    if (body && headers["content-type"] === undefined) headers["content-type"] = body.contentType;
    if (req.cookies.length > 0) headers.cookie = cookieHeader(req.cookies);

    for (let hop = 0; ; hop++) {
      // every hop is checked (robots.txt too: its client is an HttpClient with the same policy)
      const checkAddresses = mustCheckAddresses(this.options.privateNetworks, url, req.module, namedHostsOf(req.meta.task));
      // a proxy connects for us: the best this side can do is to check what the name resolves to
      if (checkAddresses && this.options.fetch) await checkResolvedHost(url);
      const res = await this.transport.send(url, { method, headers, body: body?.data, deadline, checkAddresses });
      const location = headerValue(res.headers, "location");
      if (res.status >= 300 && res.status < 400 && location && this.options.followRedirects !== false) {
        await res.cancel();
        if (hop >= this.options.maxRedirects) {
          throw new DownloadError(`too many redirects (more than ${this.options.maxRedirects}) at ${url}`, false, undefined, res.status);
        }
        const next = new URL(location, url).href;
        // credentials stay with their origin (Fetch standard; this client has no jar to re-match cookies)
        if (!sameOrigin(url, next)) for (const name of Object.keys(headers)) if (isCredentialHeader(name, this.options.sensitiveHeaders)) delete headers[name];
        url = next;
        if (res.status === 303 || ((res.status === 301 || res.status === 302) && method === "POST")) {
          method = "GET";
          body = undefined;
          delete headers["content-type"];
        }
        continue;
      }
      const content = await readBody(res, this.options.maxBodyBytes, url, this.options.truncateBody === true);
      const responseHeaders = res.headers;
      responseHeaders.push([URL_HEADER, url]);
      return responseFor(req, {
        statusCode: res.status,
        content,
        headers: responseHeaders,
        cookies: parseSetCookies(res.setCookies, url),
      });
    }
  }
}

function requestBody(req: Request): { data: Uint8Array | string; contentType: string } | undefined {
  if (req.json !== undefined) return { data: JSON.stringify(req.json), contentType: "application/json" };
  if (req.form !== undefined && req.form !== null && typeof req.form === "object") {
    const params = new URLSearchParams();
    for (const [k, v] of Object.entries(req.form)) params.append(k, typeof v === "string" ? v : JSON.stringify(v));
    return { data: params.toString(), contentType: "application/x-www-form-urlencoded" };
  }
  if (req.body) return { data: req.body, contentType: "application/octet-stream" };
  return undefined;
}

async function readBody(res: HopResponse, max: number, url: string, truncate: boolean): Promise<Uint8Array> {
  const declared = Number(headerValue(res.headers, "content-length"));
  if (declared > max && !truncate) {
    await res.cancel();
    throw new DownloadError(`body of ${declared} bytes exceeds max_response_size ${max} at ${url}`, false);
  }
  if (!res.body) return new Uint8Array(0);
  // one read of a body whose length is declared, within the cap and not decompressed on the way
  // (a compressed body's decoded size is not its Content-Length): no chunk loop
  if (res.bytes && declared <= max && headerValue(res.headers, "content-encoding") === undefined) return await res.bytes();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for await (const chunk of res.body) {
    if (total + chunk.byteLength > max) {
      await res.cancel();
      if (!truncate) throw new DownloadError(`body exceeds max_response_size ${max} at ${url}`, false);
      chunks.push(chunk.subarray(0, max - total));
      total = max;
      break;
    }
    total += chunk.byteLength;
    chunks.push(chunk);
  }
  if (chunks.length === 1) return chunks[0];
  const out = new Uint8Array(total);
  let off = 0;
  for (const c of chunks) {
    out.set(c, off);
    off += c.byteLength;
  }
  return out;
}

function toDownloadError(err: unknown, deadline: Deadline): DownloadError {
  if (err instanceof DownloadError) return err;
  // a refusal from the transport's connect (private-network check) comes wrapped or as it was
  const refused = err instanceof AddressRefused ? err : (err as { cause?: unknown }).cause instanceof AddressRefused ? (err as { cause: AddressRefused }).cause : undefined;
  if (refused) return new DownloadError(refused.message, false);
  if (deadline.aborted && deadline.reason instanceof DownloadError) return deadline.reason;
  const cause = (err as { cause?: { code?: string; message?: string } }).cause;
  const detail = cause?.code ?? cause?.message ?? (err instanceof Error ? err.message : String(err));
  // the server answered, but with what no HTTP parser accepts (10 000 headers, a malformed
  // status line or header): the page's fault, not the host's health, and the same next time
  // (undici's dispatcher throws its error as it is; fetch wraps it as the cause)
  const own = err as { code?: string; message?: string; name?: string };
  for (const e of [own, cause as typeof own | undefined]) {
    if (e?.name === "HTTPParserError" || isRejectedResponse(e?.code)) return new DownloadError(`response rejected by the HTTP parser: ${[e?.code, e?.message].filter(Boolean).join(" ")}`, false);
  }
  return new DownloadError(`network error: ${detail}`, true);
}

/** undici's codes for a response its parser refuses (llhttp's HPE_* and the header limits). */
function isRejectedResponse(code: string | undefined): boolean {
  if (code === undefined) return false;
  if (code === "UND_ERR_HEADERS_OVERFLOW") return true;
  // a connection closed mid-response is the network's doing, not the page's
  return code.startsWith("HPE_") && !/^HPE_(CLOSED_CONNECTION|INVALID_EOF_STATE|PAUSED)/.test(code);
}

