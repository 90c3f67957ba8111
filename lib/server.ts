/**
 * Starts and stops the process's listeners: the HTTP API (Koa on node:http) and the realtime
 * socket. Port 0 picks a free port (tests). `stop()` drains: stop accepting, let in-flight
 * requests finish within `shutdownTimeoutMs`, then close the rest.
 *
 *     const server = await startServer(deps)
 *     console.log(server.httpUrl)
 *     await server.stop()
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { buildApp } from "./app.ts";
import type { Deps } from "./deps.ts";
import { startRealtime } from "./realtime/index.ts";

export interface RunningServer {
  readonly httpUrl: string;
  readonly httpPort: number;
  readonly socketUrl: string;
  stop(): Promise<void>;
}

export interface ServerOptions {
  host?: string;
  port?: number;
  socketPort?: number;
}

export async function startServer(deps: Deps, options: ServerOptions = {}): Promise<RunningServer> {
  const host = options.host ?? deps.config.host;
  // The realtime tier first, so that with port 0 the advertised socket URL has the real port.
  const realtime = await startRealtime(deps, { host, port: options.socketPort ?? deps.config.socketPort });
  const socketPort = realtime.port;
  const app = buildApp(deps, {
    socketUrl: (ctx) => `ws://${formatHost(ctx.hostname || host)}:${socketPort}/socket`,
  });
  const http = createServer(app.callback());
  // Longer than the idle timeout of common load balancers and HTTP clients, so the client side
  // always closes an idle connection first and never reuses one we are closing.
  http.keepAliveTimeout = 65_000;
  http.headersTimeout = 66_000;
  try {
    await listen(http, options.port ?? deps.config.port, host);
  } catch (error) {
    await realtime.shutdown();
    throw error;
  }
  const httpPort = (http.address() as AddressInfo).port;
  return {
    httpUrl: `http://${formatHost(host)}:${httpPort}`,
    httpPort,
    socketUrl: `ws://${formatHost(host)}:${socketPort}/socket`,
    // Both at once: HTTP drains while sockets get their leave diffs and then 1012.
    stop: async () => {
      await Promise.all([drain(http, deps.config.shutdownTimeoutMs), realtime.shutdown()]);
    },
  };
}

function listen(server: Server, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
}

async function drain(server: Server, timeoutMs: number): Promise<void> {
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  server.closeIdleConnections();
  // A keep-alive connection whose request was in flight goes idle once answered: close it then,
  // rather than keep the process up until the timeout for a client that holds it open.
  const sweep = setInterval(() => server.closeIdleConnections(), 50);
  const timer = setTimeout(() => server.closeAllConnections(), timeoutMs);
  await closed;
  clearInterval(sweep);
  clearTimeout(timer);
}

function formatHost(host: string): string {
  return host.includes(":") && !host.startsWith("[") ? `[${host}]` : host;
}
