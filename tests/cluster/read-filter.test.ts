/**
 * Read-time filtering (a sub-case of the SIGKILL case): with the reaper
 * off on every node, a SIGKILLed node's presences stay in Redis, yet a client joining after
 * leaseMs — on a node whose replica has followed the topic all along — sees no ghost of them.
 */
import test from "ava";
import { clusterUnavailable, sleep, startCluster, TIMINGS, type Cluster } from "./harness.ts";

const why = await clusterUnavailable();
let cluster: Cluster | undefined;

test.after.always(async () => {
  await cluster?.stop();
});

if (why !== undefined) {
  test.skip(`cluster read-time filtering (skipped: ${why})`, () => {});
} else {
  test("with no reaper, a dead node's presences are hidden from new joiners after leaseMs, though still stored", async (t) => {
    cluster = await startCluster(["n1", "n2"], { CLUSTER_REAP_MS: "0" });
    const c = cluster;
    const [a, b, e] = await Promise.all(["alice", "bob", "erin"].map((name) => c.user(name)));
    const topic = await c.room(a!, "ghosts");
    const A = await c.join(c.node("n1"), a!, topic);
    await c.join(c.node("n2"), b!, topic);
    const deadline = performance.now() + 5000;
    while (!(b!.key in A.keys()) && performance.now() < deadline) await sleep(20);
    t.true(b!.key in A.keys(), "n1 follows the topic and lists bob");

    const n2 = c.node("n2");
    const killedAt = performance.now();
    n2.signal("SIGKILL");
    await n2.exited;
    await sleep(Math.max(0, killedAt + TIMINGS.leaseMs + 100 - performance.now()));

    const E = await c.join(c.node("n1"), e!, topic);
    t.false(b!.key in E.state, "the new joiner's presence_state has no ghost of bob");
    t.true(a!.key in E.state, "live presences are still there");
    const fields = await c.redisCommand("HKEYS", `rt:hypercast:p:${topic}`);
    t.true(
      fields.split("\n").some((f) => f.startsWith("n2:")),
      "bob's entry is still stored: the filtering happened at read time",
    );
  });
}
