/**
 * A TCP proxy a test can cut, hold and restore, to take a backing service away (or make it hang)
 * without mocks.
 *
 *     const proxy = await startTcpProxy({ host: "127.0.0.1", port: 5432 })
 *     await proxy.cut()      // refuse new connections, destroy the open ones
 *     await proxy.restore()  // listen again on the same port
 *     proxy.pause()          // a service that hangs: connections stay open, no byte gets through
 *     proxy.resume()         // the held bytes are delivered, in order
 *     await proxy.cutOn('insert into "rooms"')  // cut the moment a client sends this, before it is forwarded
 *     await proxy.holdOn('insert into "rooms"') // hold only the connection that sends this, until resume()
 *     await proxy.cutOnAnswer('insert into "rooms"') // forward this, drop the server's answer and cut then
 *     const sent = proxy.record()  // sent() → every byte clients have written since
 *     await proxy.close()
 *
 * The markers are matched against single chunks a client writes: PostgreSQL clients write a query
 * in one chunk, so a table name in an SQL statement is a reliable marker.
 */
import { connect, createServer, type Server, type Socket } from "node:net";
import type { AddressInfo } from "node:net";

export interface TcpProxy {
  readonly port: number;
  /** Connections accepted since the proxy started (both states). */
  readonly accepted: number;
  cut(): Promise<void>;
  restore(): Promise<void>;
  /** Holds every byte in both directions, on open and new connections, until `resume()`. */
  pause(): void;
  /** Delivers the held bytes in order and forwards again. */
  resume(): void;
  /** Resolves once a client has sent `marker`; that chunk is dropped and the proxy cut at that moment. */
  cutOn(marker: string): Promise<void>;
  /** Resolves once a client has sent `marker`; that connection (only) is held from that chunk on until `resume()`. */
  holdOn(marker: string): Promise<void>;
  /**
   * Resolves once the server has answered the chunk holding `marker`: the chunk is forwarded, the
   * server's next chunk on that connection (its answer: the statement ran) is dropped, and the proxy cut at that moment.
   */
  cutOnAnswer(marker: string): Promise<void>;
  /** Starts keeping what clients write, on every connection, in the order it arrives; returns the bytes kept so far. */
  record(): () => Buffer;
  close(): Promise<void>;
}

export async function startTcpProxy(target: { host: string; port: number }, host = "127.0.0.1"): Promise<TcpProxy> {
  const open = new Set<Socket>();
  let accepted = 0;
  let server: Server | undefined;
  let paused = false;
  /** Per connection: held or not, and the writes waiting for `resume()`. */
  const links = new Set<{ held: boolean; queue: Array<() => void> }>();
  const triggers: Array<{ marker: string; action: "cut" | "hold" | "cut-answer"; fired: () => void }> = [];
  let recorded: Buffer[] | undefined;

  function pipeTo(client: Socket): void {
    accepted++;
    const upstream = connect(target.port, target.host);
    const link = { held: paused, queue: [] as Array<() => void>, cutOnAnswer: undefined as (() => void) | undefined };
    links.add(link);
    const forward = (from: Socket, to: Socket, watch: boolean) =>
      from.on("data", (chunk: Buffer) => {
        if (watch) recorded?.push(chunk);
        if (!watch && link.cutOnAnswer !== undefined) {
          void cut().then(link.cutOnAnswer);
          return;
        }
        const index = watch ? triggers.findIndex((trigger) => chunk.includes(trigger.marker)) : -1;
        if (index >= 0) {
          const [trigger] = triggers.splice(index, 1);
          if (trigger!.action === "cut") {
            void cut().then(trigger!.fired);
            return;
          }
          if (trigger!.action === "cut-answer") link.cutOnAnswer = trigger!.fired;
          else {
            link.held = true;
            trigger!.fired();
          }
        }
        if (link.held) link.queue.push(() => to.write(chunk));
        else to.write(chunk);
      });
    client.on("close", () => links.delete(link));
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
    forward(client, upstream, true);
    forward(upstream, client, false);
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
    pause() {
      paused = true;
      for (const link of links) link.held = true;
    },
    resume() {
      paused = false;
      for (const link of links) {
        link.held = false;
        for (const write of link.queue.splice(0)) write();
      }
    },
    cutOn: (marker) => new Promise<void>((fired) => triggers.push({ marker, action: "cut", fired })),
    holdOn: (marker) => new Promise<void>((fired) => triggers.push({ marker, action: "hold", fired })),
    cutOnAnswer: (marker) => new Promise<void>((fired) => triggers.push({ marker, action: "cut-answer", fired })),
    record() {
      const chunks: Buffer[] = (recorded = []);
      return () => Buffer.concat(chunks);
    },
    close: cut,
  };
}
