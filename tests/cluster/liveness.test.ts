/**
 * Node liveness across three Hypercast processes on one Redis (cases 5
 * and 6): a node SIGSTOPped past its lease is reaped and, once resumed, re-asserts its presences
 * with new refs; a node stopped with SIGTERM sends its leaves before it exits and closes its
 * sockets with 1012.
 */
import test from "ava";
import {
  clusterUnavailable,
  presenceMarker,
  refsOf,
  sleep,
  startCluster,
  TIMINGS,
  until,
  type Client,
  type Cluster,
  type User,
} from "./harness.ts";

const why = await clusterUnavailable();
let cluster: Cluster | undefined;
let topic = "";
let users: Record<"a" | "b" | "c" | "m", User>;
let clients: { A: Client; B: Client; C: Client };

test.before(async () => {
  if (why !== undefined) return;
  cluster = await startCluster(["n1", "n2", "n3"]);
  const [a, b, c, m] = await Promise.all(["alice", "bob", "carol", "marker"].map((name) => cluster!.user(name)));
  users = { a: a!, b: b!, c: c!, m: m! };
  topic = await cluster.room(users.a, "liveness");
  const [A, B, C] = await Promise.all([
    cluster.join(cluster.node("n1"), users.a, topic),
    cluster.join(cluster.node("n2"), users.b, topic),
    cluster.join(cluster.node("n3"), users.c, topic),
  ]);
  clients = { A: A!, B: B!, C: C! };
  const all = [A!, B!, C!];
  await until("every client lists a, b and c", () => all.every((x) => Object.keys(x.keys()).length === 3), 5000);
});

test.after.always(async () => {
  await cluster?.stop();
});

const sorted = (keys: Record<string, number>) => JSON.stringify(Object.entries(keys).sort());

if (why !== undefined) {
  test.skip(`cluster liveness cases 5–6 (skipped: ${why})`, () => {});
} else {
  test.serial(
    "6 a node SIGSTOPped for leaseMs + reapMs is reaped, then re-asserts with new refs: leaves then joins, end state = start",
    async (t) => {
      const c = cluster!;
      const { A, B, C } = clients;
      const start = { B: sorted(B.keys()), C: sorted(C.keys()), A: sorted(A.keys()) };
      const oldRef = A.state[users.a.key]?.metas[0]?.phx_ref ?? ""; // its own presence_state holds it
      t.truthy(oldRef);
      const marks = { B: B.diffs.length, C: C.diffs.length };
      const n1 = c.node("n1");
      const stoppedAt = performance.now();
      n1.signal("SIGSTOP");
      try {
        for (const [name, x] of Object.entries({ B, C })) {
          const ms = await until(
            `${name} gets the leave of a`,
            () => x.diffs.slice(marks[name as "B"]).some((d) => refsOf(d.leaves, users.a.key).includes(oldRef)),
            TIMINGS.leaseMs + TIMINGS.reapMs + 2000,
          );
          t.log(
            `${name} (${x.node.name}) got the leave of a ${(performance.now() - stoppedAt).toFixed(0)} ms after SIGSTOP (waited ${ms.toFixed(0)})`,
          );
        }
        await sleep(Math.max(0, stoppedAt + TIMINGS.leaseMs + TIMINGS.reapMs - performance.now()));
      } finally {
        n1.signal("SIGCONT");
      }
      const resumedAt = performance.now();
      for (const [name, x] of Object.entries({ B, C, A })) {
        await until(
          `${name} is back to the start state`,
          () => sorted(x.keys()) === start[name as "A"],
          TIMINGS.heartbeatMs + 3000,
        );
        t.log(`${name} back to the start state ${(performance.now() - resumedAt).toFixed(0)} ms after SIGCONT`);
      }
      // A second leave or join for a, from any node, would have reached B and C before these markers.
      await presenceMarker(c, topic, users.m, [A, B, C], c.nodes);
      for (const [name, x] of Object.entries({ B, C })) {
        const since = x.diffs.slice(marks[name as "B"]);
        const leaveAt = since.findIndex((d) => refsOf(d.leaves, users.a.key).includes(oldRef));
        t.true(leaveAt >= 0, `${name}: a leave for a's old ref`);
        const after = since.slice(leaveAt);
        const joins = after.flatMap((d) => refsOf(d.joins, users.a.key));
        const leaves = after.flatMap((d) => refsOf(d.leaves, users.a.key));
        const trace = JSON.stringify(
          since.map((d) => ({
            at: Math.round(d.at - resumedAt),
            joins: refsOf(d.joins, users.a.key),
            leaves: refsOf(d.leaves, users.a.key),
          })),
        );
        t.deepEqual(leaves, [oldRef], `${name}: one leave for a, its old ref ${trace}`);
        t.is(joins.length, 1, `${name}: then one join for a ${trace}`);
        t.not(joins[0], oldRef, `${name}: the join has a new ref`);
        t.is(sorted(x.keys()), start[name as "B"], `${name}: end state equals start state`);
      }
    },
  );

  test.serial(
    "5 graceful stop: SIGTERM n2 → its leaves reach the other nodes' clients before it exits; its sockets close with 1012",
    async (t) => {
      const c = cluster!;
      const { A, B, C } = clients;
      t.true(users.b.key in A.keys() && users.b.key in C.keys());
      const marks = { A: A.diffs.length, C: C.diffs.length };
      const n2 = c.node("n2");
      const termAt = performance.now();
      n2.signal("SIGTERM");
      const code = await n2.exited;
      const exitedAfter = performance.now() - termAt;
      t.is(code, 0, "exit 0");
      // The leaves were published before the exit: when it has exited, Redis already holds no entry and no lease of n2.
      const fields = await c.redisCommand("HKEYS", `rt:hypercast:p:${topic}`);
      t.false(
        fields.split("\n").some((f) => f.startsWith("n2:")),
        `no presence entry of n2 left at its exit: ${fields}`,
      );
      const nodes = await c.redisCommand("ZRANGE", "rt:hypercast:nodes", "0", "-1");
      t.false(
        nodes.split("\n").some((id) => id.startsWith("n2:")),
        "n2 dropped its lease",
      );
      await until("B's socket closed", () => B.closes.length > 0, 5000);
      t.is(B.closes[0]!.code, 1012);
      B.disconnect();
      for (const [name, x] of Object.entries({ A, C })) {
        await until(
          `${name} gets the leave of b`,
          () => x.diffs.slice(marks[name as "A"]).some((d) => refsOf(d.leaves, users.b.key).length > 0),
          3000,
        );
        const leaves = x.diffs.slice(marks[name as "A"]).filter((d) => refsOf(d.leaves, users.b.key).length > 0);
        t.is(leaves.length, 1, `${name}: one leave for b`);
        const at = leaves[0]!.at;
        t.log(
          `${name} (${x.node.name}) got the leave of b ${(at - termAt).toFixed(0)} ms after SIGTERM; n2 exited after ${exitedAfter.toFixed(0)} ms`,
        );
        t.true(
          at - termAt < TIMINGS.leaseMs,
          `${name}: well inside the lease, so n2 sent it (the reaper would take ≥ leaseMs)`,
        );
        t.false(users.b.key in x.keys());
      }
    },
  );
}
