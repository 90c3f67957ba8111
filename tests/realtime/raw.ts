/**
 * A raw `ws` client for frame-level tests: send any bytes, read frames in order, await the close.
 */
import WebSocket from "ws";
import { WAIT_MS, within } from "./helpers.ts";

export type Frame = [string | null, string | null, string, string, Record<string, unknown>];

export interface RawClient {
  ws: WebSocket;
  /** The negotiated subprotocol. */
  protocol: string;
  send(data: string | Buffer, binary?: boolean): void;
  sendFrame(frame: unknown[]): void;
  /** The next frame (parsed), waiting up to `ms`. */
  next(ms?: number): Promise<Frame>;
  /** The next frame whose event matches. */
  nextEvent(event: string, ms?: number): Promise<Frame>;
  /** Resolves with the close code. */
  closed: Promise<{ code: number; reason: string }>;
  close(): void;
}

export function openRaw(url: string, protocols?: string[]): Promise<RawClient> {
  const ws = new WebSocket(url, protocols, { perMessageDeflate: false });
  const frames: Frame[] = [];
  const waiters: Array<{ resolve: (frame: Frame) => void; reject: (error: Error) => void }> = [];
  let closeInfo: string | undefined;
  let lastError = "";
  ws.on("error", (error) => {
    lastError = ` (${error.message})`;
  });
  ws.on("message", (data: Buffer) => {
    const frame = JSON.parse(data.toString("utf8")) as Frame;
    const waiter = waiters.shift();
    if (waiter !== undefined) waiter.resolve(frame);
    else frames.push(frame);
  });
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    ws.on("close", (code, reason) => {
      closeInfo = `socket closed with ${code} ${reason.toString()}${lastError}`;
      for (const waiter of waiters.splice(0)) waiter.reject(new Error(closeInfo));
      resolve({ code, reason: reason.toString() });
    }),
  );
  const client: RawClient = {
    ws,
    get protocol() {
      return ws.protocol;
    },
    send: (data, binary = false) => ws.send(data, { binary }),
    sendFrame: (frame) => ws.send(JSON.stringify(frame)),
    next(ms = WAIT_MS) {
      const ready = frames.shift();
      if (ready !== undefined) return Promise.resolve(ready);
      if (closeInfo !== undefined) return Promise.reject(new Error(closeInfo));
      return within(ms, "a frame", new Promise<Frame>((resolve, reject) => waiters.push({ resolve, reject })));
    },
    async nextEvent(event, ms = WAIT_MS) {
      const deadline = Date.now() + ms;
      for (;;) {
        const frame = await client.next(Math.max(1, deadline - Date.now()));
        if (frame[3] === event) return frame;
      }
    },
    closed,
    close: () => ws.close(),
  };
  return new Promise((resolve, reject) => {
    ws.once("open", () => resolve(client));
    ws.once("error", reject);
    ws.once("unexpected-response", (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
  });
}

/** The HTTP status an upgrade attempt gets (101 when it succeeds). */
export function upgradeStatus(url: string, protocols?: string[]): Promise<number> {
  return within(
    WAIT_MS,
    "upgrade",
    new Promise<number>((resolve) => {
      const ws = new WebSocket(url, protocols, { perMessageDeflate: false });
      ws.once("open", () => {
        ws.close();
        resolve(101);
      });
      ws.once("unexpected-response", (_req, res) => {
        resolve(res.statusCode ?? 0);
        res.resume();
        ws.terminate();
      });
      ws.once("error", () => resolve(-1));
    }),
  );
}
