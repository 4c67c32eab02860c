// tests/helpers/polite-servers.ts: real servers for the politeness tests — an HTTP server on
// several loopback addresses that records every request (time, host, concurrency, the client's
// port), and a small HTTP forward proxy (absolute-URI requests and CONNECT tunnels) that counts
// what it serves and remembers the local ports of its upstream connections.
import { createServer, type IncomingMessage, request as httpRequest, type Server, type ServerResponse } from "node:http";
import { connect, type AddressInfo, type Socket } from "node:net";

export interface Hit {
  /** Host header, e.g. "127.0.0.2:4567" */
  host: string;
  /** hostname part of the address the request came in on */
  address: string;
  path: string;
  at: number;
  /** the client's port (a proxy's upstream connection when proxied) */
  remotePort: number;
}

export interface HostsServer {
  port: number;
  /** base URL per address, e.g. { "127.0.0.1": "http://127.0.0.1:4567" } */
  urls: Record<string, string>;
  hits: Hit[];
  maxConcurrent: number;
  /** requests in flight now */
  inFlight: number;
  close(): Promise<void>;
}

/** One handler, listening on the same port at each address (Linux routes all of 127/8 to lo). */
export async function startHostsServer(
  addresses: string[],
  handler: (req: IncomingMessage, res: ServerResponse, hit: Hit) => void | Promise<void>,
): Promise<HostsServer> {
  const hits: Hit[] = [];
  const servers: Server[] = [];
  const sockets = new Set<Socket>();
  const state = { inFlight: 0, maxConcurrent: 0 };
  let port = 0;
  for (const address of addresses) {
    const server = createServer((req, res) => {
      const hit: Hit = {
        host: req.headers.host ?? "",
        address,
        path: req.url ?? "/",
        at: performance.now(),
        remotePort: req.socket.remotePort ?? 0,
      };
      hits.push(hit);
      state.inFlight++;
      state.maxConcurrent = Math.max(state.maxConcurrent, state.inFlight);
      res.on("close", () => state.inFlight--);
      Promise.resolve(handler(req, res, hit)).catch((err: unknown) => {
        res.statusCode = 500;
        res.end(String(err));
      });
    });
    server.on("connection", (s) => {
      sockets.add(s);
      s.on("close", () => sockets.delete(s));
    });
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, address, () => resolve());
    });
    port = (server.address() as AddressInfo).port;
    servers.push(server);
  }
  const urls = Object.fromEntries(addresses.map((a) => [a, `http://${a}:${port}`]));
  return {
    port,
    urls,
    hits,
    get maxConcurrent() {
      return state.maxConcurrent;
    },
    get inFlight() {
      return state.inFlight;
    },
    close: async () => {
      for (const s of sockets) s.destroy();
      await Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
    },
  };
}

export interface ForwardProxy {
  url: string;
  port: number;
  /** absolute-URI requests forwarded */
  forwarded: number;
  /** CONNECT tunnels opened */
  tunnels: number;
  /** local ports of the proxy's own upstream connections (what the target server sees) */
  upstreamPorts: Set<number>;
  /** Proxy-Authorization headers seen */
  auth: string[];
  close(): Promise<void>;
}

/** A forward proxy on 127.0.0.1: absolute-URI GETs (plain HTTP) and CONNECT tunnels. */
export async function startForwardProxy(): Promise<ForwardProxy> {
  const sockets = new Set<Socket>();
  const p = { forwarded: 0, tunnels: 0 };
  const upstreamPorts = new Set<number>();
  const auth: string[] = [];
  const server = createServer((req, res) => {
    if (req.headers["proxy-authorization"]) auth.push(String(req.headers["proxy-authorization"]));
    let target: URL;
    try {
      target = new URL(req.url ?? "");
    } catch {
      res.writeHead(400).end("absolute URI required");
      return;
    }
    p.forwarded++;
    const headers = { ...req.headers };
    delete headers["proxy-authorization"];
    delete headers["proxy-connection"];
    const up = httpRequest(
      { host: target.hostname, port: Number(target.port || 80), method: req.method, path: target.pathname + target.search, headers, agent: false },
      (upRes) => {
        res.writeHead(upRes.statusCode ?? 502, upRes.headers);
        upRes.pipe(res);
      },
    );
    up.on("socket", (s) => s.on("connect", () => upstreamPorts.add(s.localPort ?? 0)));
    up.on("error", (err) => {
      if (!res.headersSent) res.writeHead(502);
      res.end(String(err));
    });
    req.pipe(up);
  });
  server.on("connect", (req: IncomingMessage, client: Socket, head: Buffer) => {
    if (req.headers["proxy-authorization"]) auth.push(String(req.headers["proxy-authorization"]));
    const [host, port] = (req.url ?? "").split(":");
    p.tunnels++;
    const up = connect(Number(port), host, () => {
      upstreamPorts.add(up.localPort ?? 0);
      client.write("HTTP/1.1 200 Connection Established\r\n\r\n");
      if (head.length > 0) up.write(head);
      up.pipe(client);
      client.pipe(up);
    });
    sockets.add(up);
    up.on("close", () => sockets.delete(up));
    up.on("error", () => {
      client.end("HTTP/1.1 502 Bad Gateway\r\n\r\n");
    });
    client.on("error", () => up.destroy());
  });
  server.on("connection", (s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    get forwarded() {
      return p.forwarded;
    },
    get tunnels() {
      return p.tunnels;
    },
    upstreamPorts,
    auth,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** Gaps between consecutive times, ms. */
export function gaps(times: readonly number[]): number[] {
  const t = [...times].sort((a, b) => a - b);
  return t.slice(1).map((x, i) => x - t[i]);
}

/** Requests per second over the span of the times (n - 1 intervals). */
export function ratePerSec(times: readonly number[]): number {
  const t = [...times].sort((a, b) => a - b);
  return ((t.length - 1) * 1000) / (t[t.length - 1] - t[0]);
}

export function summary(values: readonly number[]): { min: number; max: number; mean: number } {
  const min = Math.min(...values);
  const max = Math.max(...values);
  const mean = values.reduce((a, b) => a + b, 0) / values.length;
  return { min, max, mean };
}
