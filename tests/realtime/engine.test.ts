/**
 * The socket engine's join path on its own, behind a Connection that records what it is given
 * (the engine's side of lib/realtime/transport.ts; the transport itself is tested against uWS in
 * transport.test.ts): a join its channel decides at once is answered before the frame's handler
 * returns, one decided later after its promise settles, and either way in order with the frames
 * that follow it.
 */
import test from "ava";
import { pino } from "pino";
import type { Channel, ChannelRoute, JoinResult } from "../../lib/realtime/channel.ts";
import { createSocketEngine, type EngineServices } from "../../lib/realtime/socket.ts";
import { createRefCount } from "../../lib/realtime/streams.ts";
import type { Connection } from "../../lib/realtime/transport.ts";
import { createTelemetry } from "../../lib/telemetry/index.ts";

class RecordingConnection implements Connection {
  open = true;
  readonly frames: unknown[] = [];
  readonly streams: string[] = [];
  send(frame: string): boolean {
    this.frames.push(JSON.parse(frame));
    return true;
  }
  sendFragmented(head: string, body: Uint8Array, tail: string): boolean {
    return this.send(head + Buffer.from(body).toString("utf8") + tail);
  }
  subscribe(stream: string): void {
    this.streams.push(stream);
  }
  unsubscribe(): void {}
  cork(fn: () => void): void {
    fn();
  }
  close(): void {
    this.open = false;
  }
}

/** `now:*` topics decide at once, `later:*` when their `pending` resolver is called, `throws:*` throw at once. */
function engineWith() {
  const pending: Array<(result: JoinResult) => void> = [];
  const afterJoins: string[] = [];
  const channel = (decided: () => JoinResult | Promise<JoinResult>, topic: string): Channel => ({
    join: decided,
    async handleIn() {
      return { status: "ok", response: { echo: topic } };
    },
    handleInfo() {
      afterJoins.push(topic);
    },
    terminate() {},
  });
  const routes: ChannelRoute[] = [
    { pattern: "now:*", create: (topic) => channel(() => ({ status: "ok", response: { at: "once" } }), topic) },
    {
      pattern: "later:*",
      create: (topic) => channel(() => new Promise<JoinResult>((resolve) => pending.push(resolve)), topic),
    },
    {
      pattern: "throws:*",
      create: (topic) =>
        channel(() => {
          throw new Error("a channel bug");
        }, topic),
    },
  ];
  const services: EngineServices = {
    routes,
    broadcasts: createRefCount(() => () => {}),
    limits: {
      maxFrameBytes: 64 * 1024,
      maxChannels: 10,
      rate: { rate: 1000, burst: 1000 },
      flood: { limit: 100, windowMs: 10_000 },
      maxQueued: 100,
    },
    logger: pino({ level: "silent" }),
    telemetry: createTelemetry(),
  };
  const connection = new RecordingConnection();
  const engine = createSocketEngine(connection, { id: "n.1", userId: 1, sessionId: 1, apiVersion: 2 }, services);
  const frame = (message: unknown[]) => {
    const text = JSON.stringify(message);
    engine.message(text, Buffer.byteLength(text));
  };
  return { connection, frame, pending, afterJoins };
}

test("a join its channel decides at once is answered, subscribed and after_join'ed before the frame's handler returns", (t) => {
  const { connection, frame, afterJoins } = engineWith();
  frame(["1", "1", "now:a", "phx_join", {}]);
  t.deepEqual(connection.frames, [["1", "1", "now:a", "phx_reply", { status: "ok", response: { at: "once" } }]]);
  t.deepEqual(connection.streams, ["now:a|v2"]);
  t.deepEqual(afterJoins, ["now:a"]);
});

test("a join decided later is answered when it settles, and the frames after it wait for it", async (t) => {
  const { connection, frame, pending, afterJoins } = engineWith();
  frame(["1", "1", "later:a", "phx_join", {}]);
  frame(["2", "2", "now:b", "phx_join", {}]);
  frame([null, "3", "phoenix", "heartbeat", {}]);
  await Promise.resolve();
  t.deepEqual(connection.frames, [], "nothing is answered before the first join is decided");
  pending[0]!({ status: "ok" });
  await new Promise((resolve) => setImmediate(resolve));
  t.deepEqual(connection.frames, [
    ["1", "1", "later:a", "phx_reply", { status: "ok", response: {} }],
    ["2", "2", "now:b", "phx_reply", { status: "ok", response: { at: "once" } }],
    [null, "3", "phoenix", "phx_reply", { status: "ok", response: {} }],
  ]);
  t.deepEqual(afterJoins, ["later:a", "now:b"]);
});

test("a join whose channel throws at once is answered with an error, and the socket goes on", (t) => {
  const { connection, frame, afterJoins } = engineWith();
  frame(["1", "1", "throws:a", "phx_join", {}]);
  frame([null, "2", "phoenix", "heartbeat", {}]);
  t.deepEqual(connection.frames, [
    ["1", "1", "throws:a", "phx_reply", { status: "error", response: { reason: "join crashed" } }],
    [null, "2", "phoenix", "phx_reply", { status: "ok", response: {} }],
  ]);
  t.deepEqual(afterJoins, []);
});
