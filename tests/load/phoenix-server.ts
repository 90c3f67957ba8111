/**
 * A small Phoenix Channels V2 server for the load generator's tests, on uWebSockets.js in a process
 * of its own, that misbehaves on purpose: it can drop, duplicate, reorder and delay broadcasts and
 * stall its event loop for a while. Configured by the FAULTS environment variable (JSON):
 *
 *     { "dropEvery": 10 }        every 10th message is not broadcast at all
 *     { "duplicateEvery": 5 }    every 5th message is broadcast twice
 *     { "reorderEvery": 4 }      every 4th message is held back and broadcast after the next one
 *     { "delayMs": 200 }         every broadcast leaves 200 ms late
 *     { "stallAfterMs": 3000, "stallMs": 1000 }  3 s after the first message, block the event loop for 1 s
 *     { "refuseUpgrades": 2 }    every 2nd upgrade is refused with 403
 *     { "closeAfter": 10, "closeCode": 4503 }  after the 10th message, every socket but the pusher's is closed with 4503
 *     { "closePusherAfter": 10 } after the 10th message, the socket that pushed it is closed (code 4000)
 *     { "refuseJoinEvery": 3 }   every 3rd join is refused ({"reason":"refused_on_purpose"})
 *     { "ignoreJoinEvery": 4 }   every 4th join is never answered
 *     { "replyDelayMs": 1500 }   pushes are broadcast at once but answered 1.5 s late
 *     { "expectJoinPayload": {"k":1} }  a join with any other payload is refused ({"reason":"unexpected_join_payload"})
 *
 * Sends {port} to its parent over IPC once it listens; exits when the parent goes.
 */
import { createRequire } from "node:module";
import type * as UWS from "uWebSockets.js";

const uws = createRequire(import.meta.url)("uWebSockets.js") as typeof UWS;

interface Faults {
  dropEvery?: number;
  duplicateEvery?: number;
  reorderEvery?: number;
  delayMs?: number;
  stallAfterMs?: number;
  stallMs?: number;
  refuseUpgrades?: number;
  closeAfter?: number;
  closeCode?: number;
  closePusherAfter?: number;
  refuseJoinEvery?: number;
  ignoreJoinEvery?: number;
  replyDelayMs?: number;
  expectJoinPayload?: unknown;
}
const faults = JSON.parse(process.env["FAULTS"] ?? "{}") as Faults;
type Frame = [string | null, string | null, string, string, Record<string, unknown>];

let messages = 0;
let upgrades = 0;
let joins = 0;
let firstMessageAt = 0;
let stalled = false;
let held: string | undefined;
const app = uws.App();
const open = new Set<UWS.WebSocket<Record<string, never>>>();

function broadcast(topic: string, frame: string): void {
  const go = () => app.publish(topic, frame);
  if (faults.delayMs !== undefined) setTimeout(go, faults.delayMs);
  else go();
}

app.ws<Record<string, never>>("/socket/websocket", {
  maxPayloadLength: 64 * 1024,
  maxBackpressure: 16 * 1024 * 1024,
  idleTimeout: 120,
  upgrade(res, req, context) {
    upgrades++;
    if (faults.refuseUpgrades !== undefined && upgrades % faults.refuseUpgrades === 0) {
      res.writeStatus("403 Forbidden").end("refused on purpose");
      return;
    }
    res.upgrade(
      {},
      req.getHeader("sec-websocket-key"),
      req.getHeader("sec-websocket-protocol"),
      req.getHeader("sec-websocket-extensions"),
      context,
    );
  },
  open(ws) {
    open.add(ws);
  },
  close(ws) {
    open.delete(ws);
  },
  message(ws, data) {
    const [joinRef, ref, topic, event, payload] = JSON.parse(Buffer.from(data).toString("utf8")) as Frame;
    const reply = (response: unknown) =>
      ws.send(JSON.stringify([joinRef, ref, topic, "phx_reply", { status: "ok", response }]));
    if (event === "phx_join") {
      const n = ++joins;
      if (faults.ignoreJoinEvery !== undefined && n % faults.ignoreJoinEvery === 0) return;
      const refuse = (reason: string): void => {
        ws.send(JSON.stringify([joinRef, ref, topic, "phx_reply", { status: "error", response: { reason } }]));
      };
      if (faults.refuseJoinEvery !== undefined && n % faults.refuseJoinEvery === 0) return refuse("refused_on_purpose");
      if (
        faults.expectJoinPayload !== undefined &&
        JSON.stringify(payload) !== JSON.stringify(faults.expectJoinPayload)
      )
        return refuse("unexpected_join_payload");
      ws.subscribe(topic);
      reply({});
    } else if (event === "phx_leave") {
      ws.unsubscribe(topic);
      reply({});
    } else if (event === "heartbeat") reply({});
    else if (event === "message:new") {
      const n = ++messages;
      if (firstMessageAt === 0) firstMessageAt = Date.now();
      const answer = () => reply({ message: { id: n, body: payload["body"] } });
      if (faults.replyDelayMs === undefined) answer();
      else
        setTimeout(() => {
          if (open.has(ws)) answer();
        }, faults.replyDelayMs);
      if (faults.stallMs !== undefined && !stalled && Date.now() - firstMessageAt >= (faults.stallAfterMs ?? 0)) {
        stalled = true;
        const until = Date.now() + faults.stallMs;
        while (Date.now() < until) {
          // Blocking on purpose: the stall a load generator must not hide.
        }
      }
      const frame = JSON.stringify([null, null, topic, "message:new", { id: n, body: payload["body"] }]);
      if (faults.dropEvery !== undefined && n % faults.dropEvery === 0) return;
      if (faults.reorderEvery !== undefined && n % faults.reorderEvery === 0) {
        held = frame;
        return;
      }
      broadcast(topic, frame);
      if (held !== undefined) {
        broadcast(topic, held);
        held = undefined;
      }
      if (faults.duplicateEvery !== undefined && n % faults.duplicateEvery === 0) broadcast(topic, frame);
      if (faults.closeAfter === n)
        for (const other of [...open]) if (other !== ws) other.end(faults.closeCode ?? 4000, "closed on purpose");
      if (faults.closePusherAfter === n) ws.end(4000, "closed on purpose");
    }
  },
});
app.listen("127.0.0.1", 0, (socket) => {
  if (socket === false) throw new Error("the test server could not listen");
  process.send?.({ port: uws.us_socket_local_port(socket as unknown as UWS.us_socket) });
});
process.on("disconnect", () => process.exit(0));
