/**
 * The page's model (lib/dashboard/page/model.ts), pure: snapshots of several nodes lined up by
 * time slot, the cluster's figures (sums, worst latencies), merged callers and topics.
 */
import test from "ava";
import type { NodeSnapshot } from "../../lib/dashboard/snapshot.ts";
import { createModel } from "../../lib/dashboard/page/model.ts";

function snapshot(
  node: string,
  at: number,
  over: {
    sockets?: number;
    p99?: number;
    rps?: number;
    topics?: NodeSnapshot["topics"]["top"];
    callers?: NodeSnapshot["callers"];
  } = {},
): NodeSnapshot {
  return {
    node,
    at,
    interval_ms: 1000,
    version: "0.1.0",
    node_version: "v20",
    uptime_s: 1,
    http: {
      rps: over.rps ?? 10,
      by_version: { "1": 2, "2": (over.rps ?? 10) - 2 },
      p50_ms: 1,
      p99_ms: over.p99 ?? 5,
      client_errors_per_s: 1,
      server_errors_per_s: 0,
    },
    callers: over.callers ?? [],
    sockets: {
      open: over.sockets ?? 100,
      joins_per_s: 1,
      join_errors_per_s: 0,
      messages_in_per_s: 2,
      deliveries_per_s: 50,
      slow_consumer_disconnects: 0,
    },
    topics: { count: 3, top: over.topics ?? [] },
    db: { in_use: 1, free: 9, waiting: 0, queries_per_s: 3, p50_ms: 0.5, p99_ms: 2, errors_per_s: 0 },
    redis: { status: "ok", ping_ms: 0.3 },
    process: {
      rss_bytes: 100,
      heap_used_bytes: 50,
      heap_total_bytes: 60,
      cpu_percent: 10,
      loop_p99_ms: 12,
      loop_max_ms: 20,
    },
    build_ms: 0.1,
  };
}

test("the cluster adds rates and gauges and takes the worst node's latency; a node's scope is that node", (t) => {
  const model = createModel(60);
  model.add(snapshot("a", 10_000, { sockets: 100, p99: 5 }));
  model.add(snapshot("b", 10_400, { sockets: 50, p99: 9 }));
  const cluster = model.latest("cluster")!;
  t.is(cluster.sockets, 150);
  t.is(cluster.http_rps, 20);
  t.deepEqual(cluster.http_by_version, { "1": 4, "2": 16 });
  t.is(cluster.http_p99_ms, 9);
  t.is(cluster.deliveries_per_s, 100);
  t.is(model.latest("b")!.sockets, 50);
  t.deepEqual(model.nodes(), ["a", "b"]);
});

test("while the newest slot waits for some nodes, the cluster figures come from the last complete one", (t) => {
  const model = createModel(60);
  model.add(snapshot("a", 10_000, { sockets: 100 }));
  model.add(snapshot("b", 10_000, { sockets: 50 }));
  model.add(snapshot("a", 11_000, { sockets: 101 }));
  t.is(model.latest("cluster")!.sockets, 150);
  model.add(snapshot("b", 11_000, { sockets: 52 }));
  t.is(model.latest("cluster")!.sockets, 153);
  t.deepEqual(
    model.series("cluster", (f) => f.sockets),
    [
      [10, 11],
      [150, 153],
    ],
  );
});

test("old slots fall out of the window; per-node columns leave gaps where a node sent nothing", (t) => {
  const model = createModel(2);
  model.add(snapshot("a", 1_000));
  model.add(snapshot("a", 2_000));
  model.add(snapshot("b", 3_000));
  const { nodes, data } = model.perNode("cluster", (s) => s.sockets.open);
  t.deepEqual(nodes, ["a", "b"]);
  t.deepEqual(data, [
    [1, 2, 3],
    [100, 100, null],
    [null, null, 100],
  ]);
  model.add(snapshot("b", 10_000));
  t.deepEqual(model.nodes(), ["b"], "a node silent for the whole window is gone");
});

test("callers and topics merge across nodes: requests and subscribers add up, presences are each node's view (max)", (t) => {
  const model = createModel(60);
  const callers = (requests: number) => [
    { version: 1, window_s: 600, requests, anonymous: 0, callers: [{ user_id: 7, requests, error: 0 }] },
  ];
  model.add(
    snapshot("a", 1_000, {
      callers: callers(5),
      topics: [{ topic: "room:1", subscribers: 10, presences: 15, rate: 1 }],
    }),
  );
  model.add(
    snapshot("b", 1_000, {
      callers: callers(3),
      topics: [
        { topic: "room:1", subscribers: 5, presences: 15, rate: 2 },
        { topic: "room:2", subscribers: 1, presences: 1, rate: 9 },
      ],
    }),
  );
  t.deepEqual(model.callers("cluster", 10), [{ version: 1, user_id: 7, requests: 8 }]);
  t.deepEqual(model.topics("cluster", 10), [
    { topic: "room:2", subscribers: 1, presences: 1, rate: 9 },
    { topic: "room:1", subscribers: 15, presences: 15, rate: 3 },
  ]);
  t.deepEqual(
    model.topics("a", 1).map((r) => r.topic),
    ["room:1"],
  );
});
