/**
 * A load worker's run (lib/load/worker-run.ts): how its sockets are laid out and when each
 * publisher's messages fall due. What the sockets do with frames is tested against real servers
 * (tests/load/hypercast.test.ts, tests/load/faults.test.ts and its misbehaving Phoenix server).
 */
import test from "ava";
import { markerPrefix } from "../../lib/load/frames.ts";
import type { WorkerPlan } from "../../lib/load/types.ts";
import { createRun, scheduledAt, settled } from "../../lib/load/worker-run.ts";

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
