/**
 * A TCP proxy a test can cut and restore, to take a backing service away without mocks.
 *
 *     const proxy = await startTcpProxy({ host: "127.0.0.1", port: 5432 })
 *     await proxy.cut()      // refuse new connections, destroy the open ones
 *     await proxy.restore()  // listen again on the same port
 *     await proxy.close()
 */
import { connect, createServer, type Server, type Socket } from "node:net";
import type { AddressInfo } from "node:net";

export interface TcpProxy {
  readonly port: number;
  /** Connections accepted since the proxy started (both states). */
  readonly accepted: number;
  cut(): Promise<void>;
  restore(): Promise<void>;
  close(): Promise<void>;
}

export async function startTcpProxy(target: { host: string; port: number }, host = "127.0.0.1"): Promise<TcpProxy> {
  const open = new Set<Socket>();
  let accepted = 0;
  let server: Server | undefined;

  function pipeTo(client: Socket): void {
    accepted++;
    const upstream = connect(target.port, target.host);
    for (const socket of [client, upstream]) {
      open.add(socket);
      socket.setNoDelay(true);
      // Either side failing or closing takes the other down with it, as a real network cut would.
      socket.on("error", () => {
        client.destroy();
        upstream.destroy();
      });
      socket.on("close", () => {
        open.delete(socket);
        client.destroy();
        upstream.destroy();
      });
    }
    client.pipe(upstream);
    upstream.pipe(client);
  }

  function listen(port: number): Promise<Server> {
    const next = createServer(pipeTo);
    return new Promise((resolve, reject) => {
      next.once("error", reject);
      next.listen(port, host, () => {
        next.off("error", reject);
        resolve(next);
      });
    });
  }

  server = await listen(0);
  const port = (server.address() as AddressInfo).port;

  async function cut(): Promise<void> {
    const closing = server;
    server = undefined;
    if (closing === undefined) return;
    const closed = new Promise<void>((resolve) => closing.close(() => resolve()));
    for (const socket of open) socket.destroy();
    await closed;
  }

  return {
    port,
    get accepted() {
      return accepted;
    },
    cut,
    async restore() {
      if (server === undefined) server = await listen(port);
    },
    close: cut,
  };
}
