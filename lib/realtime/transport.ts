/**
 * The WebSocket transport: the only file that imports uWebSockets.js, and the place where its
 * rules are kept —
 *
 * - request data (url, query, headers) is copied synchronously in the upgrade handler, before
 *   any await: uWS invalidates `req` when the handler returns;
 * - an upgrade whose request does not say `Connection: Upgrade` (RFC 6455 §4.1) is refused with 400:
 *   uWS would treat it as HTTP `Connection: close` and shut the socket it had just upgraded;
 * - an upgrade decided later (a Redis round trip) is written while the cork host holds the loop's
 *   cork, never in the response's own cork (see `CorkHost`);
 * - `res.onAborted` is registered before the async decision, and the answer is written from a
 *   macrotask (or skipped when the client went away);
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
import { randomBytes } from "node:crypto";
import { createRequire } from "node:module";
import net from "node:net";
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
  | { accept: false; status: 400 | 403 | 404 | 410 | 429; headers?: Readonly<Record<string, string>>; body?: string };

const REFUSALS = {
  400: "400 Bad Request",
  403: "403 Forbidden",
  404: "404 Not Found",
  410: "410 Gone",
  429: "429 Too Many Requests",
} as const;

const NOT_AN_UPGRADE: UpgradeDecision<never> = {
  accept: false,
  status: 400,
  headers: { "Content-Type": "text/plain; charset=utf-8" },
  body: "a WebSocket upgrade request must say Connection: Upgrade (RFC 6455, section 4.1)\n",
};

/** One open WebSocket as the rest of the tier sees it. */
export interface Connection {
  /** False from the close event on; every method is then a no-op. */
  readonly open: boolean;
  /** Sends a text frame; returns false (and disconnects the socket) when its buffer is over the limit. */
  send(frame: string): boolean;
  /** As `send`, for one text message written as three fragments: the bytes in the middle can be shared by many sockets. */
  sendFragmented(head: string, body: Uint8Array, tail: string): boolean;
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
  const corkHost = new CorkHost(app);

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
      const upgradeToken = /(^|,)\s*upgrade\s*(,|$)/i.test(req.getHeader("connection"));
      if (!upgradeToken) return respond(res, NOT_AN_UPGRADE, key, extensions, context, undefined);
      let decision: UpgradeDecision<S> | Promise<UpgradeDecision<S>>;
      try {
        decision = handlers.upgrade(request);
      } catch (error) {
        handlers.error(error, "upgrade");
        decision = { accept: false, status: 403 };
      }
      // Decided now (the common case): answered inside this callback, where the client cannot have gone.
      if (!(decision instanceof Promise)) return respond(res, decision, key, extensions, context, undefined);
      let aborted = false;
      res.onAborted(() => {
        aborted = true;
      });
      const answer = (late: UpgradeDecision<S>): void => {
        if (!aborted) respond(res, late, key, extensions, context, corkHost);
        else if (late.accept) handlers.abandoned?.(late.session);
      };
      // Answered from a macrotask: a promise may settle in the microtask checkpoint at the end of
      // ANOTHER socket's uWS callback, while that socket holds the loop's cork buffer.
      decision.then(
        (value) => setImmediate(answer, value),
        (error: unknown) => {
          handlers.error(error, "upgrade");
          setImmediate(answer, { accept: false, status: 403 } as const);
        },
      );
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
      const port = uws.us_socket_local_port(socket as unknown as UWS.us_socket);
      void corkHost.start(loopbackFor(options.host), port).then((held) => {
        if (!held) {
          handlers.error(
            new Error("the cork host did not connect: late upgrades are written in their own cork"),
            "cork host",
          );
        }
        resolve({
          port,
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
            corkHost.close();
          },
        });
      });
    });
  });
}

/**
 * Writes an upgrade's answer: the 101, or the refusal's status, headers and body. `late` is the
 * cork host when the answer comes after uWebSockets.js's upgrade callback (see `CorkHost`).
 */
function respond<S>(
  res: UWS.HttpResponse,
  decision: UpgradeDecision<S>,
  key: string,
  extensions: string,
  context: UWS.us_socket_context_t,
  late: CorkHost | undefined,
): void {
  if (decision.accept) {
    const data: UserData<S> = { session: decision.session, handler: undefined, connection: undefined };
    // Inside the upgrade callback uWS has corked the response already.
    if (late === undefined) return void res.upgrade(data, key, decision.protocol, extensions, context);
    const upgrade = () => res.upgrade(data, key, decision.protocol, extensions, context);
    if (!late.cork(upgrade)) res.cork(upgrade);
    return;
  }
  res.cork(() => {
    res.writeStatus(REFUSALS[decision.status]);
    // Sockets are counted per user; one closes within seconds when its owner is done with it.
    if (decision.status === 429) res.writeHeader("Retry-After", "5");
    for (const [name, value] of Object.entries(decision.headers ?? {})) res.writeHeader(name, value);
    res.end(decision.body ?? "", true);
  });
}

/** Where this process reaches its own listener. */
function loopbackFor(host: string): string {
  if (host === "" || host === "0.0.0.0") return "127.0.0.1";
  if (host === "::" || host === "[::]") return "::1";
  return host;
}

/**
 * An upgrade written later than uWebSockets.js's upgrade callback (the cluster's socket quota asks
 * Redis first) must not be written in the response's own `cork`: after the callback, uWS 20.30's
 * `cork` looks for HTTP `Connection: close` on the response, misses that the socket has become a
 * WebSocket when the WebSocket kept the old address (its allocation shrank in place), reads the
 * flag from memory the response no longer owns, and so shuts a fraction of fresh sockets right
 * after `open` (the client sees 1006 before any reply). Fixed upstream (uWebSockets pull request
 * 1929), not in a build we can install. Written outside any cork, uWS prints a warning per upgrade.
 *
 * The cork host is an HTTP request this process sends to its own listener, on a random path, and
 * never answers. A late upgrade is written inside the host's `cork`: the loop's cork then belongs
 * to the host's socket, uWS writes the 101 straight to the upgraded socket, and the check after the
 * callback reads the host's own, still pending, response. The price is the 101 going out in
 * several small writes instead of one (tests/realtime/transport.test.ts shows both behaviours).
 */
class CorkHost {
  readonly path = `/cork-host/${randomBytes(16).toString("hex")}`;
  private held: UWS.HttpResponse | undefined;
  private client: net.Socket | undefined;
  private target: { host: string; port: number } | undefined;
  private onHeld: (() => void) | undefined;
  private closed = false;

  constructor(app: UWS.TemplatedApp) {
    app.get(this.path, (res) => {
      if (this.held !== undefined || this.closed) {
        res.writeStatus("404 Not Found").end("", true);
        return;
      }
      res.onAborted(() => {
        if (this.held === res) this.held = undefined;
      });
      this.held = res;
      this.onHeld?.();
    });
  }

  /** Sends the request; true once it is held, false when that took over `ms`. */
  start(host: string, port: number, ms = 5_000): Promise<boolean> {
    this.target = { host, port };
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), ms);
      this.onHeld = () => {
        clearTimeout(timer);
        this.onHeld = undefined;
        resolve(true);
      };
      this.dial();
    });
  }

  /** Runs `fn` while the host's socket holds the loop's cork; false (not run) without a host. */
  cork(fn: () => void): boolean {
    const held = this.held;
    if (held === undefined) return false;
    held.cork(fn);
    return true;
  }

  close(): void {
    this.closed = true;
    this.client?.destroy();
    this.client = undefined;
  }

  private dial(): void {
    if (this.closed || this.target === undefined) return;
    const client = net.connect(this.target);
    this.client = client;
    client.unref();
    client.on("connect", () => client.write(`GET ${this.path} HTTP/1.1\r\nHost: cork-host\r\n\r\n`));
    client.on("data", () => {}); // nothing is ever answered; a refusal ends in close
    client.on("error", () => {}); // close follows
    client.on("close", () => {
      if (this.client !== client) return;
      this.client = undefined;
      // Lost (the listener closed it, or it never connected): late upgrades use their own cork meanwhile.
      if (!this.closed) setTimeout(() => this.dial(), 100).unref();
    });
  }
}

class SocketConnection implements Connection {
  open = true;

  constructor(private readonly ws: UWS.WebSocket<unknown>) {}

  send(frame: string): boolean {
    return this.open && this.sent(this.ws.send(frame, false, false));
  }

  sendFragmented(head: string, body: Uint8Array, tail: string): boolean {
    // Back to back, so that no other message comes between the fragments: each call first drains
    // the socket's pending topic messages, which only the first can find (no JavaScript runs between).
    return (
      this.open &&
      this.sent(this.ws.sendFirstFragment(head, false, false)) &&
      this.sent(this.ws.sendFragment(body, false)) &&
      this.sent(this.ws.sendLastFragment(tail, false))
    );
  }

  /**
   * A send's status: 0 buffered (will drain), 1 sent, 2 dropped over the backpressure limit, which
   * disconnects the socket. (The typings call the fragment sends' status a boolean; it is this number.)
   */
  private sent(status: number | boolean): boolean {
    if (status !== 2) return true;
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
