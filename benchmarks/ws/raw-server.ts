/**
 * The baseline: a bare uWebSockets.js pub/sub server doing the same job with no protocol logic —
 * a join frame subscribes the socket and gets a canned reply; a `message:new` frame is turned
 * into a broadcast of the same shape and size as Hypercast's v2 message and published once.
 * (Benchmarks may import uWebSockets.js; lib/ keeps it to lib/realtime/transport.ts.)
 */
import { createRequire } from "node:module";
import type * as UWS from "uWebSockets.js";
import type { ServerReady } from "./shared.ts";

const uws = createRequire(import.meta.url)("uWebSockets.js") as typeof UWS;
const TOPIC = "room:1";
let id = 0;
const app = uws.App();
app.ws("/socket/websocket", {
  maxPayloadLength: 64 * 1024,
  maxBackpressure: 1024 * 1024,
  idleTimeout: 120,
  sendPingsAutomatically: true,
  message(ws, data) {
    const frame = JSON.parse(Buffer.from(data).toString("utf8")) as [string | null, string | null, string, string, Record<string, unknown>];
    const [joinRef, ref, topic, event, payload] = frame;
    if (event === "phx_join") {
      ws.send(JSON.stringify([joinRef, ref, topic, "phx_reply", { status: "ok", response: {} }]));
      ws.subscribe(TOPIC);
    } else if (event === "message:new") {
      const n = ++id;
      const message = {
        id: n, room_id: 1, body: payload["body"], inserted_at: new Date().toISOString(), author: { id: 1, name: "bench" },
        _links: {
          self: { href: `/rooms/1/messages/${n}`, type: "application/vnd.app.v2+json" },
          room: { href: "/rooms/1", type: "application/vnd.app.v2+json" },
          author: { href: "/users/1", type: "application/vnd.app.v2+json" },
        },
      };
      ws.send(JSON.stringify([joinRef, ref, topic, "phx_reply", { status: "ok", response: { message } }]));
      app.publish(TOPIC, JSON.stringify([null, null, TOPIC, "message:new", message]));
    }
  },
});
app.listen("127.0.0.1", 0, (socket) => {
  if (socket === false) throw new Error("raw server could not listen");
  const ready: ServerReady = { kind: "ready", port: uws.us_socket_local_port(socket as unknown as UWS.us_socket), token: "unused", topic: TOPIC };
  process.send?.(ready);
});
process.on("message", (message: { kind: string }) => {
  if (message.kind === "gc") {
    globalThis.gc?.();
    process.send?.({ kind: "gc-done" });
  }
});
process.on("disconnect", () => process.exit(0));
