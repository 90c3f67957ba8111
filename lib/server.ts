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
  const socketPort = options.socketPort ?? deps.config.socketPort;
  const app = buildApp(deps, {
    socketUrl: (ctx) => `ws://${formatHost(ctx.hostname || host)}:${socketPort}/socket`,
  });
  const http = createServer(app.callback());
  http.keepAliveTimeout = 5000;
  await listen(http, options.port ?? deps.config.port, host);
  const httpPort = (http.address() as AddressInfo).port;
  return {
    httpUrl: `http://${formatHost(host)}:${httpPort}`,
    httpPort,
    socketUrl: `ws://${formatHost(host)}:${socketPort}/socket`,
    stop: () => drain(http, deps.config.shutdownTimeoutMs),
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
  const timer = setTimeout(() => server.closeAllConnections(), timeoutMs);
  await closed;
  clearTimeout(timer);
}

function formatHost(host: string): string {
  return host.includes(":") && !host.startsWith("[") ? `[${host}]` : host;
}
