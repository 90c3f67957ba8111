/**
 * One client WebSocket as the load generator sees it, whichever implementation carries it: the lean
 * RFC 6455 client of ./rfc6455.ts (default: it measured cheaper per frame, see the README) or `ws`
 * with its cheapest settings (no permessage-deflate, no UTF-8 validation).
 *
 *     const c = dial("raw", new URL(url), "127.0.0.3", { onOpen, onFrame, onClose, onError }, 10_000)
 *
 * Errors before the socket opened are reported by kind: `upgrade_403` for a refused upgrade,
 * `ECONNREFUSED` and other socket error codes, `timeout`.
 */
import WebSocket from "ws";
import { dialRaw } from "./rfc6455.ts";

export type ClientKind = "raw" | "ws";

export interface ConnectionHandlers {
  onOpen(): void;
  /** One text (or binary) message; the Buffer may be reused after the call returns. */
  onFrame(data: Buffer): void;
  /** The open socket closed, with the close code (1006 when the connection dropped). */
  onClose(code: number): void;
  /** The socket never opened. */
  onError(kind: string): void;
}

export interface Connection {
  send(text: string): void;
  close(code?: number): void;
  terminate(): void;
  bufferedAmount(): number;
}

function dialWs(
  url: URL,
  localAddress: string | undefined,
  handlers: ConnectionHandlers,
  timeoutMs: number,
): Connection {
  const ws = new WebSocket(url, {
    perMessageDeflate: false,
    skipUTF8Validation: true,
    handshakeTimeout: timeoutMs,
    ...(localAddress === undefined ? {} : { localAddress }),
  });
  let opened = false;
  let reported = false;
  const error = (kind: string) => {
    if (reported) return;
    reported = true;
    handlers.onError(kind);
  };
  ws.on("open", () => {
    opened = true;
    handlers.onOpen();
  });
  ws.on("message", (data: Buffer) => handlers.onFrame(data));
  ws.on("unexpected-response", (_request, response) => {
    error(`upgrade_${response.statusCode ?? "garbled"}`);
    ws.terminate();
  });
  ws.on("error", (e: NodeJS.ErrnoException) => {
    if (!opened) error(e.code ?? (/timed out/i.test(e.message) ? "timeout" : "socket_error"));
  });
  ws.on("close", (code: number) => {
    if (opened) handlers.onClose(code);
    else error("closed_before_upgrade");
  });
  return {
    send: (text) => {
      if (ws.readyState === WebSocket.OPEN) ws.send(text);
    },
    close: (code = 1000) => ws.close(code),
    terminate: () => ws.terminate(),
    bufferedAmount: () => ws.bufferedAmount,
  };
}

export function dial(
  kind: ClientKind,
  url: URL,
  localAddress: string | undefined,
  handlers: ConnectionHandlers,
  timeoutMs: number,
): Connection {
  return kind === "raw"
    ? dialRaw(url, localAddress, handlers, timeoutMs)
    : dialWs(url, localAddress, handlers, timeoutMs);
}
