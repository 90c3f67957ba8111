/**
 * The cluster under Redis trouble (README, Running a cluster), malformed input: three Hypercast processes on the
 * test's own redis-server, and messages PUBLISHed on a topic's Redis channels that no node sent (not
 * JSON, a wrong version, fields of the wrong type, a payload its event's check refuses). Each one is
 * counted in /metrics and dropped, no client sees anything of it, and every node keeps serving.
 * Redis outages and restarts are ./redis-outages.test.ts.
 */
import test from "ava";
import { Redis } from "ioredis";
import { clientShape, clusterForFile, metric, until, type User } from "./harness.ts";

const shared = await clusterForFile(test, ["n1", "n2", "n3"], ["u0", "u1"]);

const INVALID_PUBSUB = 'hypercast_cluster_messages_invalid_total{source="pubsub"}';
const INVALID_PRESENCE = 'hypercast_cluster_messages_invalid_total{source="presence"}';

if (shared.why !== undefined) {
  test.skip(`cluster under Redis trouble: malformed messages (skipped: ${shared.why})`, () => {});
} else {
  test.serial(
    "malformed messages on a topic's PubSub and presence channels are counted in /metrics and dropped; every node keeps serving",
    async (t) => {
      const c = shared.cluster;
      const [u0, u1] = shared.users as [User, User];
      const topic = await c.room(u0, "malformed");
      const A = await c.join(c.node("n1"), u0, topic);
      const B = await c.join(c.node("n2"), u1, topic);
      await until(
        "A and B list each other",
        () => clientShape(A) === clientShape(B) && Object.keys(A.keys()).length === 2,
      );
      const before = await Promise.all(
        ["n1", "n2"].map(async (n) => [
          await metric(c.node(n), INVALID_PUBSUB),
          await metric(c.node(n), INVALID_PRESENCE),
        ]),
      );
      const diffsBefore = [A.diffs.length, B.diffs.length];
      const roomId = Number(topic.slice(5));
      const message = { id: 1, roomId, body: "x", author: { id: u0.id, name: "u0" } };
      const pubsub = [
        "not json {",
        JSON.stringify({ v: 2, node: "peer", mode: "except", topic, event: "message.created", payload: message }),
        JSON.stringify({ v: 1, node: "peer", mode: "except", topic: 42, event: "message.created", payload: message }),
        JSON.stringify({
          v: 1,
          node: "peer",
          mode: "except",
          topic,
          event: "message.created",
          payload: message,
          from: { not: "a string" },
        }),
        // Passes the envelope check; its date is no date, so the payload check (lib/pubsub/events.ts) refuses it.
        JSON.stringify({
          v: 1,
          node: "peer",
          mode: "except",
          topic,
          event: "message.created",
          payload: { ...message, insertedAt: { $date: "not a date" } },
        }),
      ];
      const presence = [
        "[]",
        JSON.stringify({ v: 1, node: "peer", kind: "change", joins: null, leaves: {} }),
        JSON.stringify({
          v: 1,
          node: "peer",
          kind: "change",
          joins: { "9": { metas: [{ online_at: "no ref" }] } },
          leaves: {},
        }),
        JSON.stringify({ v: 1, node: 7, kind: "reap", joins: {}, leaves: {} }),
      ];
      const redis = new Redis(c.redis.url);
      try {
        for (const text of pubsub) await redis.publish(`rt:hypercast:t:${topic}`, text);
        for (const text of presence) await redis.publish(`rt:hypercast:pd:${topic}`, text);
      } finally {
        redis.disconnect();
      }
      // The marker: a real message published after the malformed ones reaches both clients, so both
      // nodes have read everything before it (one Redis connection delivers in order) and still serve.
      const reply = await A.push("message:new", { body: "marker" });
      t.is(reply.status, "ok");
      const markerId = (reply.response["message"] as { id: number }).id;
      await until("B receives the marker", () => B.messages.some((m) => m.payload.id === markerId));
      for (const [i, n] of ["n1", "n2"].entries()) {
        const node = c.node(n);
        t.true(node.alive(), `${n} is alive`);
        t.is(
          (await metric(node, INVALID_PUBSUB)) - before[i]![0]!,
          pubsub.length,
          `${n} counted every malformed PubSub envelope`,
        );
        t.is(
          (await metric(node, INVALID_PRESENCE)) - before[i]![1]!,
          presence.length,
          `${n} counted every malformed presence diff`,
        );
      }
      t.deepEqual(
        B.messages.map((m) => m.payload.id),
        [markerId],
        "B received the marker and nothing malformed",
      );
      // A late diff of A's and B's own joins may still arrive under load (a reconcile on a slow heartbeat);
      // what must never arrive is anything of the malformed ones: key "9", or a change to these two users.
      const later = [...A.diffs.slice(diffsBefore[0]), ...B.diffs.slice(diffsBefore[1])];
      const touched = later.flatMap((d) => [...Object.keys(d.joins), ...Object.keys(d.leaves)]);
      t.false(touched.includes("9"), "no presence_diff came of the malformed diffs");
      t.deepEqual(
        Object.keys(later.reduce((acc, d) => ({ ...acc, ...d.leaves }), {})),
        [],
        "nobody left because of them",
      );
      t.is(
        clientShape(A),
        JSON.stringify(
          [
            [u0.key, 1],
            [u1.key, 1],
          ].sort(),
        ),
      );
      A.disconnect();
      B.disconnect();
    },
  );
}
