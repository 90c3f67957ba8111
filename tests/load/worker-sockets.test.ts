/**
 * A load worker's run and its sockets' channel protocol (lib/load/worker-run.ts,
 * lib/load/worker-sockets.ts), without processes or sockets: frames are handed to `onFrame` as the
 * connection would, and a fake connection keeps what the socket sent.
 */
import test from "ava";
import type { Connection } from "../../lib/load/connection.ts";
import { decodeInto, createHistogram } from "../../lib/load/histograms.ts";
import { formatMarker, markerPrefix, nowMs } from "../../lib/load/frames.ts";
import type { WorkerPlan } from "../../lib/load/types.ts";
import { finalReport } from "../../lib/load/worker-reports.ts";
import { createRun, scheduledAt, settled, type Run, type Sock } from "../../lib/load/worker-run.ts";
import { join, leave, onFrame } from "../../lib/load/worker-sockets.ts";

const PREFIX = markerPrefix("ab12");

function plan(overrides: Partial<WorkerPlan> = {}): WorkerPlan {
  return {
    kind: "plan",
    id: 0,
    scenario: "fanout",
    urls: ["ws://127.0.0.1:1/socket/websocket", "ws://127.0.0.2:1/socket/websocket"],
    topic: "room:1",
    joinPayload: "{}",
    event: "message:new",
    payload: '{"body":"$MARK"}',
    subscriberOffset: 3,
    subscribers: 2,
    publishers: [1],
    totalPublishers: 2,
    churners: 1,
    churnRate: 1,
    rate: 100,
    ramp: 0,
    inFlight: 10,
    addresses: [],
    client: "raw",
    connectTimeoutMs: 1000,
    markerPrefix: PREFIX,
    presenceTarget: 2,
    ...overrides,
  };
}

/** Attaches a fake connection to a socket; returns what the socket sends and whether it was terminated. */
function connect(s: Sock): { sent: unknown[]; terminated: boolean } {
  const seen = { sent: [] as unknown[], terminated: false };
  const conn: Connection = {
    send: (text) => seen.sent.push(JSON.parse(text)),
    close: () => {},
    terminate: () => (seen.terminated = true),
    bufferedAmount: () => 0,
  };
  s.conn = conn;
  return seen;
}

const frame = (run: Run, s: Sock, value: unknown) => onFrame(run, s, Buffer.from(JSON.stringify(value)));
const reply = (ref: string, status: string, response: object = {}) => [
  "1",
  ref,
  "room:1",
  "phx_reply",
  { status, response },
];
const delivery = (publisher: number, seq: number) => [
  null,
  null,
  "room:1",
  "message:new",
  { body: formatMarker(PREFIX, publisher, seq, nowMs() - 5) },
];

test("a run's sockets: subscribers spread over the URLs from their offset, then churners, then publishers", (t) => {
  const run = createRun(plan());
  t.deepEqual(
    run.sockets.map((s) => [s.index, s.role, s.urlIndex, s.publisher]),
    [
      [0, "sub", 1, -1],
      [1, "sub", 0, -1],
      [2, "churn", 0, -1],
      [3, "pub", 0, 1],
    ],
  );
  run.t0 = 1000;
  t.is(scheduledAt(run, 1, 0), 1010, "publisher 1 of 2 at 100/s: 10 ms after t0");
  t.is(scheduledAt(run, 0, 3), 1060);
  t.false(settled(run), "nothing dialled yet");
});

test("a subscriber joins, then counts each delivery once: duplicates, out of order and foreign apart", (t) => {
  const run = createRun(plan());
  const s = run.sockets[0]!;
  const seen = connect(s);
  join(run, s);
  t.deepEqual(seen.sent, [["1", "1", "room:1", "phx_join", {}]]);
  frame(run, s, delivery(0, 0));
  t.is(run.counters.received, 0, "not joined yet: not a delivery");
  frame(run, s, reply("1", "ok"));
  t.is(s.state, "joined");
  t.like(run.counters, { joined: 1, subscribed: 1 });
  t.deepEqual(run.subscribedByUrl, [0, 1]);
  for (const [publisher, seq] of [
    [0, 2],
    [0, 2],
    [0, 1],
    [1, 0],
    [5, 0],
  ])
    frame(run, s, delivery(publisher!, seq!));
  t.like(run.counters, { frames: 7, received: 3, duplicates: 1, outOfOrder: 1, foreign: 1 });
  t.deepEqual(run.receivedByUrl, [0, 3]);
  t.true(run.lastDeliveryAt > 0);
  t.is(run.latencies.fold().totalCount, 3);
  onFrame(run, s, Buffer.from(`[null,null,"room:1","message:new",{"body":"hcl-ffff-0-9-5.5"}]`));
  t.is(run.counters.received, 3, "another run's marker is not a delivery");
  t.is(run.counters.foreign, 1);
});

test("a refused join is counted by its reason and the socket ended", (t) => {
  const run = createRun(plan());
  const s = run.sockets[1]!;
  const seen = connect(s);
  join(run, s);
  frame(run, s, reply("1", "error", { reason: "unauthorized" }));
  t.is(s.state, "failed");
  t.true(seen.terminated);
  t.is(run.counters.failed, 1);
  t.deepEqual(run.errors.join, { unauthorized: 1 });
});

test("a publisher reads its push replies, not its own broadcasts", (t) => {
  const run = createRun(plan());
  run.t0 = nowMs();
  const s = run.sockets[3]!;
  connect(s);
  join(run, s);
  frame(run, s, reply("1", "ok"));
  frame(run, s, delivery(1, 0));
  frame(run, s, reply("m0", "ok"));
  frame(run, s, reply("m1", "error", { reason: "rate_limited" }));
  t.like(run.counters, { joined: 1, subscribed: 0, received: 0, acknowledged: 1, refused: 1 });
  t.deepEqual(run.errors.push, { rate_limited: 1 });
  t.is(run.histograms.reply.totalCount, 2);
});

test("a churner leaves, and once the leave is acknowledged joins again: a rejoin, not a join", (t) => {
  const run = createRun(plan());
  const s = run.sockets[2]!;
  const seen = connect(s);
  join(run, s);
  frame(run, s, reply("1", "ok"));
  leave(run, s);
  t.is(s.state, "leaving");
  t.deepEqual(seen.sent[1], ["1", "l2", "room:1", "phx_leave", {}]);
  frame(run, s, reply("l2", "ok"));
  t.deepEqual(seen.sent[2], ["3", "3", "room:1", "phx_join", {}]);
  frame(run, s, ["3", "3", "room:1", "phx_reply", { status: "ok", response: {} }]);
  t.is(s.state, "joined");
  t.like(run.counters, { joined: 1, leaves: 1, rejoins: 1 });
  t.is(run.histograms.rejoin.totalCount, 1);
});

test("a subscriber's presence view completes at the target; channel errors are counted and leave the socket", (t) => {
  const run = createRun(plan());
  const s = run.sockets[0]!;
  connect(s);
  join(run, s);
  frame(run, s, reply("1", "ok"));
  frame(run, s, [null, null, "room:1", "presence_state", { a: { metas: [{ phx_ref: "r1" }] } }]);
  frame(run, s, [null, null, "room:2", "presence_diff", { joins: { b: { metas: [{ phx_ref: "r2" }] } }, leaves: {} }]);
  t.is(run.counters.presenceComplete, 0, "another topic's diff is not read");
  frame(run, s, [null, null, "room:1", "presence_diff", { joins: { b: { metas: [{ phx_ref: "r2" }] } }, leaves: {} }]);
  t.is(run.counters.presenceComplete, 1);
  t.true(run.presenceCompleteAt > 0);
  t.is(s.diffs, 1);
  frame(run, s, ["1", null, "room:1", "phx_error", {}]);
  t.is(s.state, "left");
  t.deepEqual(run.errors.channel, { phx_error: 1 });
  const final = finalReport(run);
  t.is(decodeInto(createHistogram(), final.histograms.presenceView).totalCount, 1);
  t.is(decodeInto(createHistogram(), final.histograms.diffsPerSocket).totalCount, 1, "one socket kept a view");
});
