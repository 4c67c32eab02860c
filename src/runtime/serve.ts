// src/runtime/serve.ts: an HTTP server for a fetch-style handler (the API is a Hono app).
// - Node: @hono/node-server over node:http (loaded on first use).
// - Deno: the built-in Deno.serve.
import { runtime } from "./index.ts";

export type FetchHandler = (request: Request) => Response | Promise<Response>;

export interface HttpServer {
  /** the port actually bound (useful with port 0) */
  readonly port: number;
  readonly host: string;
  close(): Promise<void>;
}

interface DenoServe {
  serve(
    options: { hostname: string; port: number; onListen?: (addr: { port: number }) => void; onError?: (err: unknown) => Response },
    handler: FetchHandler,
  ): { addr: { port: number }; shutdown(): Promise<void>; finished: Promise<void> };
}

/** Listens on host:port (0 = any free port); rejects with the address and the reason if it cannot. */
export async function serveHttp(handler: FetchHandler, host: string, port: number): Promise<HttpServer> {
  if (runtime === "deno") {
    const deno = (globalThis as unknown as { Deno: DenoServe }).Deno;
    try {
      const server = deno.serve({ hostname: host, port, onListen: () => {} }, handler);
      return { port: server.addr.port, host, close: () => server.shutdown() };
    } catch (err) {
      throw new Error(`cannot listen on ${host}:${port}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  const { serve } = await import("@hono/node-server");
  return new Promise((resolve, reject) => {
    const server = serve({ fetch: handler, hostname: host, port }, (info) => {
      server.off("error", onError);
      resolve({
        port: info.port,
        host,
        close: () =>
          new Promise<void>((done) => {
            // keep-alive connections of a browser would hold close() open
            (server as unknown as { closeAllConnections?: () => void }).closeAllConnections?.();
            server.close(() => done());
          }),
      });
    });
    const onError = (err: Error) => reject(new Error(`cannot listen on ${host}:${port}: ${err.message}`));
    server.once("error", onError);
  });
}
