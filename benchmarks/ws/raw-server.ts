/**
 * The reference: a bare uWebSockets.js pub/sub server in its own process that loads none of
 * Hypercast's code. A join frame subscribes the socket and gets a canned reply; heartbeats are
 * answered; a `message:new` frame is answered with a reply and turned into one broadcast of the same
 * shape and size as Hypercast's v2 message, published once through uWS's native topics.
 *
 * With RAW_CALLBACKS=1 it also hands each upgrade, open and close to JavaScript, shaped as
 * Hypercast's transport (lib/realtime/transport.ts) takes them: the request's path, query and
 * headers copied, a session object as the socket's user data, the socket kept in a set while open;
 * nothing is decided. `bench:joins:compare --references callbacks` sets the two against each other:
 * what uWebSockets.js's JavaScript callbacks cost a join before any server code runs.
 *
 * With REDIS_URL it is a node of a reference cluster (`bench:cluster`): a message is published
 * locally and to the Redis channel `raw:<topic>`, and what arrives from Redis from another node
 * is published locally: the least a uWS + Redis cluster must do.
 *
 * Prints `{"ready":true,"port":…}` on stdout once it listens; stops on SIGTERM.
 */
import { randomBytes } from "node:crypto";
import { createRequire } from "node:module";
import { Redis } from "ioredis";
import type * as UWS from "uWebSockets.js";

const uws = createRequire(import.meta.url)("uWebSockets.js") as typeof UWS;
const NODE = randomBytes(4).toString("hex");
const redisUrl = process.env["REDIS_URL"];
const pub = redisUrl === undefined ? undefined : new Redis(redisUrl);
const sub = redisUrl === undefined ? undefined : new Redis(redisUrl);
let id = 0;
const app = uws.App();
const callbacks = process.env["RAW_CALLBACKS"] === "1";

if (sub !== undefined) {
  await sub.psubscribe("raw:*");
  sub.on("pmessage", (_pattern: string, channel: string, message: string) => {
    const at = message.indexOf("|");
    if (message.slice(0, at) !== NODE) app.publish(channel.slice(4), message.slice(at + 1));
  });
}

interface Session {
  id: string;
  query: string;
  protocols: string;
  open: boolean;
}
const sessions = new Set<Session>();
let sequence = 0;
/** The callbacks of RAW_CALLBACKS=1 (above); without them uWS upgrades, opens and closes natively. */
const handedToJavaScript: Pick<UWS.WebSocketBehavior<Session>, "upgrade" | "open" | "close"> = {
  upgrade(res, req, context) {
    const path = req.getUrl();
    const query = req.getQuery() ?? "";
    const protocols = req.getHeader("sec-websocket-protocol");
    const key = req.getHeader("sec-websocket-key");
    const extensions = req.getHeader("sec-websocket-extensions");
    if (path !== "/socket/websocket" || !/(^|,)\s*upgrade\s*(,|$)/i.test(req.getHeader("connection"))) {
      res.writeStatus("400 Bad Request").end("", true);
      return;
    }
    const session = { id: (sequence++).toString(36), query, protocols, open: false };
    res.upgrade(session, key, protocols === "" ? "" : "phoenix", extensions, context);
  },
  open(ws) {
    const session = ws.getUserData();
    session.open = true;
    sessions.add(session);
  },
  close(ws) {
    const session = ws.getUserData();
    session.open = false;
    sessions.delete(session);
  },
};

app.ws<Session>("/socket/websocket", {
  maxPayloadLength: 64 * 1024,
  maxBackpressure: 1024 * 1024,
  idleTimeout: 120,
  sendPingsAutomatically: true,
  ...(callbacks ? handedToJavaScript : {}),
  message(ws, data) {
    const frame = JSON.parse(Buffer.from(data).toString("utf8")) as [
      string | null,
      string | null,
      string,
      string,
      Record<string, unknown>,
    ];
    const [joinRef, ref, topic, event, payload] = frame;
    if (event === "phx_join") {
      ws.send(JSON.stringify([joinRef, ref, topic, "phx_reply", { status: "ok", response: {} }]));
      ws.subscribe(topic);
    } else if (event === "heartbeat") {
      ws.send(JSON.stringify([joinRef, ref, topic, "phx_reply", { status: "ok", response: {} }]));
    } else if (event === "message:new") {
      const n = ++id;
      const message = {
        id: n,
        room_id: 1,
        body: payload["body"],
        inserted_at: new Date().toISOString(),
        author: { id: 1, name: "bench" },
        _links: {
          self: { href: `/rooms/1/messages/${n}`, type: "application/vnd.app.v2+json" },
          room: { href: "/rooms/1", type: "application/vnd.app.v2+json" },
          author: { href: "/users/1", type: "application/vnd.app.v2+json" },
        },
      };
      ws.send(JSON.stringify([joinRef, ref, topic, "phx_reply", { status: "ok", response: { message } }]));
      const broadcast = JSON.stringify([null, null, topic, "message:new", message]);
      app.publish(topic, broadcast);
      void pub?.publish(`raw:${topic}`, `${NODE}|${broadcast}`);
    }
  },
});
app.listen("127.0.0.1", Number(process.env["PORT"] ?? 0), (socket) => {
  if (socket === false) throw new Error("raw server could not listen");
  console.log(
    JSON.stringify({
      ready: true,
      port: uws.us_socket_local_port(socket as unknown as UWS.us_socket),
      topic: "room:1",
      token: "unused",
    }),
  );
});
process.on("SIGTERM", () => {
  pub?.disconnect();
  sub?.disconnect();
  process.exit(0);
});
