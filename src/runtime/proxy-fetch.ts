// src/runtime/proxy-fetch.ts: the proxy transport, the one place that differs per runtime.
// - Node: an undici `ProxyAgent` (CONNECT tunnels, also for http:// targets) passed as the
//   dispatcher of undici's own `fetch` (npm package `undici`, loaded on first use).
// - Deno: `Deno.createHttpClient({ proxy })` passed as `client` to the built-in fetch (an
//   http:// target goes as an absolute-URI request to the proxy, https:// through CONNECT).
// Credentials in the proxy URL (`http://user:pass@host:port`) become Proxy-Authorization: Basic.
import { Buffer } from "node:buffer";
import { runtime } from "./index.ts";

type Fetch = typeof globalThis.fetch;

interface ProxyParts {
  /** the proxy URL without credentials */
  url: string;
  username: string;
  password: string;
}

function splitProxyUrl(proxyUrl: string): ProxyParts {
  const u = new URL(proxyUrl);
  const username = decodeURIComponent(u.username);
  const password = decodeURIComponent(u.password);
  u.username = "";
  u.password = "";
  return { url: u.href.replace(/\/$/, ""), username, password };
}

/** What the request carries, as plain init fields (so it can cross fetch implementations). */
async function unpack(input: RequestInfo | URL, init?: RequestInit): Promise<{ url: string; init: RequestInit }> {
  if (typeof input === "string" || input instanceof URL) return { url: String(input), init: init ?? {} };
  const req = input as globalThis.Request;
  const method = init?.method ?? req.method;
  const body = init?.body ?? (method === "GET" || method === "HEAD" || !req.body ? undefined : new Uint8Array(await req.arrayBuffer()));
  return {
    url: req.url,
    init: {
      method,
      headers: init?.headers ?? [...req.headers.entries()],
      body,
      signal: init?.signal ?? req.signal,
      redirect: init?.redirect ?? req.redirect,
    },
  };
}

const NULL_BODY = new Set([101, 103, 204, 205, 304]);

interface UndiciLike {
  ProxyAgent: new (opts: { uri: string; token?: string }) => { close(): Promise<void> };
  fetch: (url: string, init: Record<string, unknown>) => Promise<globalThis.Response>;
}

let undiciLoading: Promise<UndiciLike> | undefined;

function loadUndici(): Promise<UndiciLike> {
  const name = "undici";
  undiciLoading ??= import(name) as Promise<UndiciLike>;
  return undiciLoading;
}

const closers: Array<() => Promise<void>> = [];

function nodeProxyFetch(parts: ProxyParts): Fetch {
  let agent: Promise<{ undici: UndiciLike; dispatcher: { close(): Promise<void> } }> | undefined;
  const getAgent = () =>
    (agent ??= loadUndici().then((undici) => {
      const token = parts.username || parts.password ? `Basic ${Buffer.from(`${parts.username}:${parts.password}`).toString("base64")}` : undefined;
      const dispatcher = new undici.ProxyAgent(token ? { uri: parts.url, token } : { uri: parts.url });
      closers.push(() => dispatcher.close());
      return { undici, dispatcher };
    }));
  return (async (input: RequestInfo | URL, init?: RequestInit) => {
    const { undici, dispatcher } = await getAgent();
    const { url, init: plain } = await unpack(input, init);
    const res = await undici.fetch(url, { ...plain, dispatcher });
    // hand back the runtime's own Response class (ky and callers check instanceof)
    const body = NULL_BODY.has(res.status) || plain.method === "HEAD" ? null : res.body;
    const out = new Response(body, { status: res.status, statusText: res.statusText, headers: res.headers });
    Object.defineProperty(out, "url", { value: res.url });
    return out;
  }) as Fetch;
}

function denoProxyFetch(parts: ProxyParts): Fetch {
  const deno = (globalThis as unknown as { Deno: { createHttpClient(o: unknown): { close(): void } } }).Deno;
  const proxy: Record<string, unknown> = { url: parts.url };
  if (parts.username || parts.password) proxy.basicAuth = { username: parts.username, password: parts.password };
  const client = deno.createHttpClient({ proxy });
  closers.push(() => Promise.resolve(client.close()));
  return ((input: RequestInfo | URL, init?: RequestInit) => globalThis.fetch(input, { ...(init ?? {}), client } as RequestInit)) as Fetch;
}

/** A fetch that sends everything through the proxy at `proxyUrl` (http:// or https://). */
export function proxyFetch(proxyUrl: string): Fetch {
  const parts = splitProxyUrl(proxyUrl);
  return runtime === "deno" ? denoProxyFetch(parts) : nodeProxyFetch(parts);
}

/** Closes every proxy transport made so far (idle connections; a process exit does this too). */
export async function closeProxyTransports(): Promise<void> {
  const all = closers.splice(0);
  await Promise.allSettled(all.map((c) => c()));
}
