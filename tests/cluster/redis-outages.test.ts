/**
 * The cluster under Redis trouble (README, Running a cluster), outages and restarts: three Hypercast processes on
 * the test's own redis-server. A join while Redis is stopped (SIGSTOP) is answered and never holds
 * up the socket's heartbeats; a Redis restart in the middle of a burst of joins and leaves ends,
 * within one lease of the nodes being back, with every client and every node's REST view listing
 * exactly the sockets still joined. One cluster, cases in order, each in its own room; the last case
 * has a two-node cluster of its own, whose Redis comes back with its data after a short outage and
 * then hangs under a node's SIGTERM. Malformed messages on Redis are ./redis-malformed-messages.test.ts.
 */
import test from "ava";
import WebSocket from "ws";
import {
  clientShape,
  clusterForFile,
  get,
  metric,
  startCluster,
  TIMINGS,
  until,
  within,
  type Client,
  type Node,
  type User,
} from "./harness.ts";

const shared = await clusterForFile(test, ["n1", "n2", "n3"], ["u0", "u1", "u2", "u3", "u4", "u5"]);

/** Every phx_ref of a presences payload (for failure messages). */
const refsOf = (presences: Record<string, { metas: Array<{ phx_ref: string }> }>) =>
  Object.values(presences).flatMap((p) => p.metas.map((m) => m.phx_ref));

/** `{key: metaCount}` sorted, for comparing views. */
const shape = (presences: Record<string, { metas: unknown[] }>) =>
  JSON.stringify(
    Object.entries(presences)
      .map(([k, p]) => [k, p.metas.length])
      .sort(),
  );

async function restView(node: Node, topic: string, viewer: User): Promise<string> {
  const res = await get(`${node.api}/rooms/${topic.slice(5)}/presence`, viewer.token);
  if (res.status !== 200) return `status ${res.status}`;
  return shape((JSON.parse(res.text) as { presences: Record<string, { metas: unknown[] }> }).presences);
}

/**
 * Milliseconds until every client in `remaining` and every node's REST view list `expected`; on
 * timeout, the error carries each client's presence_states, diffs and list (phx_refs) to show who holds what.
 */
function convergence(
  nodes: Node[],
  topic: string,
  viewer: User,
  remaining: Client[],
  expected: string,
): Promise<number> {
  let last = "";
  return pollAsync(async () => {
    const views = await Promise.all(nodes.map((n) => restView(n, topic, viewer)));
    const refs = remaining.map((x) => ({
      on: x.node.name,
      user: x.user.key,
      states: x.states.map((s) => refsOf(s.state)),
      diffs: x.diffs.map((d) => ({ joins: refsOf(d.joins), leaves: refsOf(d.leaves) })),
      list: x.presence.list((k: string, p: { metas: Array<{ phx_ref: string }> }) => [
        k,
        p.metas.map((m) => m.phx_ref),
      ]),
    }));
    last = JSON.stringify({ expected, clients: remaining.map(clientShape), views, refs });
    return remaining.every((x) => clientShape(x) === expected) && views.every((v) => v === expected);
  }).catch((error: unknown) => {
    throw new Error(`${(error as Error).message}: ${last}`);
  });
}

async function health(node: Node): Promise<string | undefined> {
  const res = await get(`${node.api}/health`);
  return (JSON.parse(res.text) as { checks?: { redis?: string } }).checks?.redis;
}

/** A raw socket: frames in arrival order, for checking what came first. */
async function rawSocket(
  node: Node,
  user: User,
): Promise<{ ws: WebSocket; frames: unknown[][]; send(frame: unknown[]): void }> {
  const ws = new WebSocket(
    `ws://127.0.0.1:${node.socketPort}/socket/websocket?vsn=2.0.0&token=${encodeURIComponent(user.socketToken)}`,
  );
  const frames: unknown[][] = [];
  ws.on("message", (data: Buffer) => void frames.push(JSON.parse(data.toString()) as unknown[]));
  await within(
    15_000,
    "raw socket open",
    new Promise((resolve, reject) => (ws.once("open", resolve), ws.once("error", reject))),
  );
  return { ws, frames, send: (frame) => ws.send(JSON.stringify(frame)) };
}

if (shared.why !== undefined) {
  test.skip(`cluster under Redis trouble: outages and restarts (skipped: ${shared.why})`, () => {});
} else {
  test.serial(
    "a join while Redis is stopped is answered, its heartbeats are answered before its presence_state; /ready stays 200; presence converges once Redis resumes",
    async (t) => {
      const c = shared.cluster;
      const [u0, u1, u2] = shared.users as [User, User, User];
      const topic = await c.room(u0, "stopped");
      // Only n2 follows the topic before the stop: n1's first joiner needs a Redis round trip it cannot get.
      const B = await c.join(c.node("n2"), u1, topic);
      const n1 = c.node("n1");
      c.redis.signal("SIGSTOP");
      try {
        const raw = await rawSocket(n1, u2);
        raw.send(["1", "1", topic, "phx_join", {}]);
        raw.send([null, "2", "phoenix", "heartbeat", {}]);
        raw.send([null, "3", "phoenix", "heartbeat", {}]);
        const index = (pred: (f: unknown[]) => boolean) => raw.frames.findIndex(pred);
        const joinReply = (f: unknown[]) => f[1] === "1" && f[3] === "phx_reply";
        const beatReply = (ref: string) => (f: unknown[]) => f[1] === ref && f[2] === "phoenix" && f[3] === "phx_reply";
        const state = (f: unknown[]) => f[3] === "presence_state";
        await until(
          "the join reply and both heartbeat replies",
          () => index(joinReply) >= 0 && index(beatReply("2")) >= 0 && index(beatReply("3")) >= 0,
        );
        t.like(raw.frames[index(joinReply)]![4], { status: "ok" });
        t.like(raw.frames[index(beatReply("3"))]![4], { status: "ok" });
        await until("presence_state on n1 (this node's view while Redis is away)", () => index(state) >= 0);
        t.true(
          index(beatReply("3")) < index(state),
          `heartbeats were answered before presence_state: frames ${JSON.stringify(raw.frames.map((f) => [f[1], f[3]]))}`,
        );
        const ready = await get(`${n1.api}/ready`);
        t.is(ready.status, 200, "/ready stays 200 while the database answers");
        let reported: string | undefined;
        const ms = await pollAsync(async () => (reported = await health(n1)) === "unavailable");
        t.log(`/health said redis: unavailable ${ms.toFixed(0)} ms after polling began`);
        t.is(await metric(n1, "hypercast_cluster_redis_up"), 0);
        t.is(reported, "unavailable");
        raw.send([null, "4", "phoenix", "heartbeat", {}]);
        await until("a heartbeat during the outage is answered", () => index(beatReply("4")) >= 0);

        c.redis.signal("SIGCONT");
        const back = performance.now();
        const healthy = await pollAsync(async () => (await Promise.all(c.nodes.map(health))).every((h) => h === "ok"));
        t.log(`every node reported redis: ok ${healthy.toFixed(0)} ms after SIGCONT`);
        t.is(await metric(n1, "hypercast_cluster_redis_up"), 1);
        const expected = JSON.stringify(
          [
            [u1.key, 1],
            [u2.key, 1],
          ].sort(),
        );
        const converged = await pollAsync(async () => {
          const views = await Promise.all(c.nodes.map((n) => restView(n, topic, u1)));
          return clientShape(B) === expected && views.every((v) => v === expected);
        });
        const since = performance.now() - back;
        t.log(
          `converged ${since.toFixed(0)} ms after SIGCONT (${converged.toFixed(0)} ms after every node was healthy)`,
        );
        t.true(
          converged <= TIMINGS.leaseMs,
          `within one lease (${TIMINGS.leaseMs} ms) of every node being back on Redis: took ${converged.toFixed(0)} ms`,
        );
        raw.ws.close();
      } finally {
        c.redis.signal("SIGCONT");
      }
      B.disconnect();
    },
  );

  // A socket whose presence_state is read in the middle of a diff window must still end with the
  // nodes' view: this case found the window's join-and-leave cancelling out (lib/presence/state.ts).
  test.serial(
    "a Redis restart during a burst of joins and leaves: within one lease of the nodes being back, every client and every node's GET presence list exactly the sockets still joined",
    async (t) => {
      const c = shared.cluster;
      const topic = await c.room(shared.users[0]!, "burst");
      const nodeOf = (i: number) => c.nodes[i % c.nodes.length]!;
      // Before: six sockets, one per user, spread over the three nodes.
      const first = await Promise.all(shared.users.map((u, i) => c.join(nodeOf(i), u, topic)));
      const all = (clients: Client[]) => {
        const counts = new Map<string, number>();
        for (const x of clients) counts.set(x.user.key, (counts.get(x.user.key) ?? 0) + 1);
        return JSON.stringify([...counts].sort());
      };
      await until("the first six converge", () => first.every((x) => clientShape(x) === all(first)));

      // The burst: at once, three leave (two by phx_leave, one by closing its socket) and six more join
      // (second devices); Redis is killed while they are in flight, and more change while it is down.
      const leaving = [first[0]!, first[1]!, first[2]!];
      const burst = Promise.all([
        ...leaving.map((x, i) =>
          i === 2
            ? Promise.resolve(x.disconnect())
            : within(15_000, "leave", new Promise((resolve) => x.channel.leave().receive("ok", resolve))),
        ),
        ...shared.users.map((u, i) => c.join(nodeOf(i + 1), u, topic)),
      ]);
      await c.redis.kill();
      const joined = (await burst).slice(leaving.length) as Client[];
      // During the outage: one more leave and one more join.
      joined[5]!.disconnect();
      const late = await c.join(c.node("n3"), shared.users[0]!, topic);
      const ready = await Promise.all(c.nodes.map((n) => get(`${n.api}/ready`)));
      t.deepEqual(
        ready.map((r) => r.status),
        [200, 200, 200],
        "/ready stays 200 on every node while Redis is down",
      );
      await pollAsync(async () => (await Promise.all(c.nodes.map(health))).every((h) => h === "unavailable"));
      t.deepEqual(
        await Promise.all(c.nodes.map((n) => metric(n, "hypercast_cluster_redis_up"))),
        [0, 0, 0],
        "/health and the metric report it",
      );

      await c.redis.restart();
      const back = performance.now();
      const healthy = await pollAsync(async () => (await Promise.all(c.nodes.map(health))).every((h) => h === "ok"));
      const remaining = [...first.slice(3), ...joined.slice(0, 5), late];
      const expected = all(remaining);
      const converged = await convergence(c.nodes, topic, shared.users[3]!, remaining, expected);
      t.log(
        `every node healthy ${healthy.toFixed(0)} ms after the restart; converged ${converged.toFixed(0)} ms later (${(performance.now() - back).toFixed(0)} ms after the restart)`,
      );
      t.true(
        converged <= TIMINGS.leaseMs,
        `within one lease (${TIMINGS.leaseMs} ms) of every node being back on Redis: took ${converged.toFixed(0)} ms`,
      );
      // No ghost: every ref a client lists belongs to a socket still joined, and Redis holds one entry per socket.
      const fields = (await c.redisCommand("HKEYS", `rt:hypercast:p:${topic}`)).split("\n").filter(Boolean);
      t.is(fields.length, remaining.length, `Redis holds one entry per joined socket: ${fields.join(", ")}`);
      for (const x of remaining) x.disconnect();
    },
  );

  test.serial(
    "Redis back with its data after a short outage: the leave and the joins that failed meanwhile are retracted and re-asserted by the same incarnations (no ghost, nobody invisible); SIGTERM while Redis hangs still exits",
    async (t) => {
      // Its own cluster: Redis keeps its data across the restart, and the lease (5 s) outlives the
      // outage, so no node starts a new incarnation: only the reconcile of failed writes can fix Redis.
      const c = await startCluster(["p1", "p2"], { CLUSTER_LEASE_MS: "5000" }, { persist: true });
      t.teardown(() => c.stop());
      const [u0, u1, u2, u3, u4] = await Promise.all(["v0", "v1", "v2", "v3", "v4"].map((name) => c.user(name)));
      const topic = await c.room(u0!, "persisted");
      const [p1, p2] = [c.node("p1"), c.node("p2")];
      const A = await c.join(p1, u0!, topic);
      const B = await c.join(p2, u1!, topic);
      const C = await c.join(p1, u2!, topic);
      const before = JSON.stringify(
        [
          [u0!.key, 1],
          [u1!.key, 1],
          [u2!.key, 1],
        ].sort(),
      );
      await until("A, B and C converge", () => [A, B, C].every((x) => clientShape(x) === before));
      const incarnations = async () =>
        (await c.redisCommand("ZRANGE", "rt:hypercast:nodes", "0", "-1")).split("\n").sort();
      const leases = await incarnations();
      const goneRef = C.state[u2!.key]?.metas[0]?.phx_ref ?? "";
      const epoch = await c.redisCommand("GET", "rt:hypercast:epoch");

      await c.redis.kill();
      await pollAsync(async () => (await Promise.all(c.nodes.map(health))).every((h) => h === "unavailable"));
      // While Redis is down: C leaves (on p1), D joins on p1 and E on p2. Every one of these writes fails.
      await within(15_000, "C leaves", new Promise((resolve) => C.channel.leave().receive("ok", resolve)));
      const D = await c.join(p1, u3!, topic);
      const E = await c.join(p2, u4!, topic);
      await c.redis.restart();
      // Not the entries (the nodes may reconcile before this read): the epoch shows Redis kept its data.
      t.is(await c.redisCommand("GET", "rt:hypercast:epoch"), epoch, "Redis came back with its data (same epoch)");

      const healthy = await pollAsync(async () => (await Promise.all(c.nodes.map(health))).every((h) => h === "ok"));
      const remaining = [A, B, D, E];
      const expected = JSON.stringify([u0!, u1!, u3!, u4!].map((u) => [u.key, 1]).sort());
      const converged = await convergence(c.nodes, topic, u1!, remaining, expected);
      t.log(
        `every node healthy ${healthy.toFixed(0)} ms after the restart; converged ${converged.toFixed(0)} ms later`,
      );
      t.true(
        converged <= 5000,
        `within one lease (5000 ms) of every node being back on Redis: took ${converged.toFixed(0)} ms`,
      );
      t.deepEqual(await incarnations(), leases, "the same incarnations: nothing was reaped or re-asserted wholesale");
      const fields = (await c.redisCommand("HKEYS", `rt:hypercast:p:${topic}`)).split("\n").filter(Boolean);
      t.is(fields.length, 4, `one entry per joined socket: ${fields.join(", ")}`);
      t.false(
        fields.some((f) => f.endsWith(`|${goneRef}`)),
        "no ghost of C in Redis",
      );
      t.true(
        B.diffs.some((d) => Object.values(d.leaves).some((p) => p.metas.some((m) => m.phx_ref === goneRef))),
        "B (on p2) got C's leave",
      );

      // Last: a node stopped while Redis hangs still drains and exits (every Redis command, and QUIT, is bounded).
      c.redis.signal("SIGSTOP");
      try {
        p2.signal("SIGTERM");
        t.is(
          await within(15_000, "p2 to exit on SIGTERM while Redis is stopped", p2.exited),
          0,
          "p2 exited 0 on SIGTERM while Redis was stopped",
        );
      } finally {
        c.redis.signal("SIGCONT");
      }
    },
  );
}

/** Resolves with the elapsed ms once `check()` holds, polling every 20 ms; rejects after 15 s. */
async function pollAsync(check: () => Promise<boolean>, ms = 15_000): Promise<number> {
  const start = performance.now();
  while (!(await check())) {
    if (performance.now() - start > ms) throw new Error(`timed out after ${ms} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
  return performance.now() - start;
}
