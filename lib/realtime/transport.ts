/**
 * The WebSocket transport: the only file that imports uWebSockets.js, and the place where its
 * rules are kept —
 *
 * - request data (url, query, headers) is copied synchronously in the upgrade handler, before
 *   any await: uWS invalidates `req` when the handler returns;
 * - an upgrade should be decided synchronously, inside the upgrade handler: answered later, this
 *   uWS build can shut the fresh socket down right after `open` (see the comment in `upgrade`);
 * - `res.onAborted` is registered before the async decision, and the answer is written in
 *   `res.cork` (or skipped when the client went away);
 * - a socket is never used after its close event (`Connection.open` guards every call);
 * - backpressure: a socket whose send buffer passes `maxBackpressure` is disconnected
 *   (`closeOnBackpressureLimit`, and our own check of every `send` result), never skipped;
 * - local fan-out uses native topics: `publish(stream, frame)` serializes nothing, the caller
 *   encodes each frame once per stream;
 * - the package silently falls back to a pure-JS implementation when its native binary does not
 *   load; we refuse to start in that case.
 *
 *     const transport = await listen({ host: "127.0.0.1", port: 0, path: "/socket/websocket", ... }, handlers)
 *     transport.publish("room:1|v2", frame)
 *     transport.stopListening()
 */
import { createRequire } from "node:module";
import type * as UWS from "uWebSockets.js";
import { CLOSE } from "./close-codes.ts";

export interface UpgradeRequest {
  path: string;
  query: string;
  /** The raw `Sec-WebSocket-Protocol` header, "" when absent. */
  protocols: string;
}

export type UpgradeDecision<S> =
  | { accept: true; session: S; protocol: string }
  /** A refusal: the status, and optionally headers and a body (a 410's problem+json). */
  | { accept: false; status: 403 | 404 | 410 | 429; headers?: Readonly<Record<string, string>>; body?: string };

const REFUSALS = { 403: "403 Forbidden", 404: "404 Not Found", 410: "410 Gone", 429: "429 Too Many Requests" } as const;

/** One open WebSocket as the rest of the tier sees it. */
export interface Connection {
  /** False from the close event on; every method is then a no-op. */
  readonly open: boolean;
  /** Sends a text frame; returns false (and disconnects the socket) when its buffer is over the limit. */
  send(frame: string): boolean;
  subscribe(stream: string): void;
  unsubscribe(stream: string): void;
  /** Batches the sends made in `fn` into one syscall. */
  cork(fn: () => void): void;
  close(code: number, reason: string): void;
}

export interface ConnectionHandler {
  /** A text frame, or `null` for a binary frame. */
  message(text: string | null, bytes: number): void;
  closed(code: number): void;
}

export interface TransportHandlers<S> {
  upgrade(request: UpgradeRequest): UpgradeDecision<S> | Promise<UpgradeDecision<S>>;
  open(connection: Connection, session: S): ConnectionHandler;
  /** An accepted upgrade whose client went away before the socket opened: undo what accepting took. */
  abandoned?(session: S): void;
  error(error: unknown, where: string): void;
}

export interface TransportOptions {
  host: string;
  /** 0 picks a free port. */
  port: number;
  path: string;
  maxPayloadLength: number;
  maxBackpressure: number;
  idleTimeoutSeconds: number;
}

export interface Transport {
  readonly port: number;
  /** Sends the frame to every socket subscribed to the stream. */
  publish(stream: string, frame: string): void;
  subscribers(stream: string): number;
  /** Closes every open socket with the code. */
  closeAll(code: number, reason: string): void;
  /** Stops accepting connections (open sockets stay). */
  stopListening(): void;
}

interface UserData<S> {
  session: S;
  handler: ConnectionHandler | undefined;
  connection: SocketConnection | undefined;
}

let loaded: typeof UWS | undefined;

/** Loads the native uWebSockets.js, or throws when only its pure-JS fallback would run. */
export function loadUws(): typeof UWS {
  if (loaded !== undefined) return loaded;
  const require = createRequire(import.meta.url);
  const uws = require("uWebSockets.js") as typeof UWS;
  const fallback = require.resolve("uWebSockets.js/dist/index.js");
  const native = Object.keys(require.cache).some((path) => /[\\/]uws_[^\\/]*\.node$/.test(path));
  if (require.cache[fallback] !== undefined || !native) {
    throw new Error(
      `uWebSockets.js could not load its native binary for ${process.platform}-${process.arch} (Node ABI ${process.versions.modules}) ` +
        `and fell back to its pure-JS implementation, which Hypercast does not run on (different backpressure and topic semantics, ` +
        `far lower capacity). Use a Node.js version the package ships a binary for, and unset UWS_USE_FALLBACK.`,
    );
  }
  return (loaded = uws);
}

export function listen<S>(options: TransportOptions, handlers: TransportHandlers<S>): Promise<Transport> {
  const uws = loadUws();
  const app = uws.App();
  const sockets = new Set<SocketConnection>();

  app.ws<UserData<S>>(options.path, {
    maxPayloadLength: options.maxPayloadLength,
    maxBackpressure: options.maxBackpressure,
    // The typings say number; the native side reads it as a boolean.
    closeOnBackpressureLimit: 1,
    idleTimeout: options.idleTimeoutSeconds,
    sendPingsAutomatically: true,
    compression: uws.DISABLED,

    upgrade(res, req, context) {
      // Everything from `req` must be read now: it is gone after the first await.
      const request: UpgradeRequest = {
        path: req.getUrl(),
        query: req.getQuery() ?? "",
        protocols: req.getHeader("sec-websocket-protocol"),
      };
      const key = req.getHeader("sec-websocket-key");
      const extensions = req.getHeader("sec-websocket-extensions");
      let aborted = false;
      res.onAborted(() => {
        aborted = true;
      });
      const answer = (decision: UpgradeDecision<S>): void => {
        if (aborted) {
          if (decision.accept) handlers.abandoned?.(decision.session);
          return;
        }
        res.cork(() => {
          if (decision.accept) {
            const data: UserData<S> = { session: decision.session, handler: undefined, connection: undefined };
            res.upgrade(data, key, decision.protocol, extensions, context);
          } else {
            res.writeStatus(REFUSALS[decision.status]);
            // Sockets are counted per user; one closes within seconds when its owner is done with it.
            if (decision.status === 429) res.writeHeader("Retry-After", "5");
            for (const [name, value] of Object.entries(decision.headers ?? {})) res.writeHeader(name, value);
            res.end(decision.body ?? "", true);
          }
        });
      };
      let decision: UpgradeDecision<S> | Promise<UpgradeDecision<S>>;
      try {
        decision = handlers.upgrade(request);
      } catch (error) {
        handlers.error(error, "upgrade");
        decision = { accept: false, status: 403 };
      }
      if (decision instanceof Promise) {
        // Prefer deciding synchronously. An upgrade answered later goes through res.cork from
        // outside uWS's parser, and uWebSockets.js 20.30's cork() misses that its handler upgraded
        // the socket when the adopted socket keeps its address (it shrinks in place): it then runs
        // its HTTP "Connection: close" logic on the new WebSocket, reading flags from bytes that now
        // belong to the WebSocket, and shuts a fraction of fresh sockets down right after `open`
        // (the client sees 1006 before any reply; every time when the request says
        // `Connection: close`). Fixed upstream (uWebSockets pull request 1929), not in the build
        // we can install; upgrading outside cork instead prints a warning per upgrade.
        // Answer from a macrotask: a promise may settle in the microtask checkpoint that runs at the
        // end of ANOTHER socket's uWS callback, while that socket holds the loop's cork buffer, and
        // res.upgrade takes the cork over unconditionally — that other socket's output then goes astray.
        decision.then(
          (value) => setImmediate(answer, value),
          (error: unknown) => {
            handlers.error(error, "upgrade");
            setImmediate(answer, { accept: false, status: 403 } as const);
          },
        );
      } else {
        answer(decision);
      }
    },

    open(ws) {
      const data = ws.getUserData();
      const connection = new SocketConnection(ws);
      sockets.add(connection);
      data.connection = connection;
      data.handler = handlers.open(connection, data.session);
    },

    message(ws, message, isBinary) {
      const data = ws.getUserData();
      // The ArrayBuffer is neutered when this returns: decode it now.
      data.handler?.message(isBinary ? null : Buffer.from(message).toString("utf8"), message.byteLength);
    },

    close(ws, code) {
      const data = ws.getUserData();
      if (data.connection !== undefined) {
        data.connection.open = false;
        sockets.delete(data.connection);
      }
      data.handler?.closed(code);
    },
  });

  // Anything else on this port is not ours.
  app.any("/*", (res) => {
    res.writeStatus("404 Not Found").end("", true);
  });

  return new Promise((resolve, reject) => {
    // Exclusive: without it uWS sets SO_REUSEPORT and a second server would silently share the port.
    const listenExclusive = app as unknown as {
      listen(host: string, port: number, options: number, cb: (socket: UWS.us_listen_socket | false) => void): void;
    };
    const { LIBUS_LISTEN_EXCLUSIVE_PORT } = uws as unknown as { LIBUS_LISTEN_EXCLUSIVE_PORT: number };
    listenExclusive.listen(options.host, options.port, LIBUS_LISTEN_EXCLUSIVE_PORT, (socket) => {
      if (socket === false) {
        reject(
          new Error(
            `the realtime socket could not listen on ${options.host}:${options.port} (in use or not permitted)`,
          ),
        );
        return;
      }
      let listening: UWS.us_listen_socket | undefined = socket;
      resolve({
        port: uws.us_socket_local_port(socket as unknown as UWS.us_socket),
        publish(stream, frame) {
          app.publish(stream, frame, false, false);
        },
        subscribers(stream) {
          return app.numSubscribers(stream);
        },
        closeAll(code, reason) {
          for (const connection of [...sockets]) connection.close(code, reason);
        },
        stopListening() {
          if (listening !== undefined) uws.us_listen_socket_close(listening);
          listening = undefined;
        },
      });
    });
  });
}

class SocketConnection implements Connection {
  open = true;

  constructor(private readonly ws: UWS.WebSocket<unknown>) {}

  send(frame: string): boolean {
    if (!this.open) return false;
    // 0: buffered (will drain), 1: sent, 2: dropped over the backpressure limit.
    if (this.ws.send(frame, false, false) !== 2) return true;
    this.close(CLOSE.SLOW_CONSUMER, "send buffer over limit");
    return false;
  }

  subscribe(stream: string): void {
    if (this.open) this.ws.subscribe(stream);
  }

  unsubscribe(stream: string): void {
    if (this.open) this.ws.unsubscribe(stream);
  }

  cork(fn: () => void): void {
    if (this.open) this.ws.cork(fn);
    else fn();
  }

  close(code: number, reason: string): void {
    if (!this.open) return;
    this.open = false;
    this.ws.end(code, reason);
  }
}
