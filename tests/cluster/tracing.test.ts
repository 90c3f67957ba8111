/**
 * Tracing across processes (README, Tracing): two Hypercast nodes on one Redis export to one real
 * OTLP receiver. A message POSTed on n1 and delivered to a socket on n2 is one trace: n1's SERVER
 * span, its PRODUCER child and the PUBLISH it sent (a Redis CLIENT span), and n2's CONSUMER span,
 * whose context came in the Redis envelope, linked to n1's producer. The rate limiter's Redis
 * commands are CLIENT spans of the request too.
 */
import { randomBytes } from "node:crypto";
import test from "ava";
import { KIND, startOtlpReceiver, type OtlpReceiver } from "../helpers/otlp-receiver.ts";
import { clusterUnavailable, startCluster, until, type Cluster } from "./harness.ts";

const why = await clusterUnavailable();
let cluster: Cluster | undefined;
let receiver: OtlpReceiver | undefined;

test.before(async () => {
  if (why !== undefined) return;
  receiver = await startOtlpReceiver();
  // A short batch delay so spans reach the receiver soon after they end.
  cluster = await startCluster(["n1", "n2"], {
    OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint,
    OTEL_BSP_SCHEDULE_DELAY: "100",
  });
});

test.after.always(async () => {
  await cluster?.stop();
  await receiver?.close();
});

const maybe = why === undefined ? test : test.skip;

maybe(
  `a REST write on n1 and its delivery on n2 are one trace, n2's consumer linked to n1's producer${why === undefined ? "" : ` (skipped: ${why})`}`,
  async (t) => {
    const c = cluster!;
    const r = receiver!;
    const alice = await c.user("alice");
    const bob = await c.user("bob");
    const topic = await c.room(alice, "traced");
    const onN2 = await c.join(c.node("n2"), bob, topic);
    const body = `cluster body ${randomBytes(6).toString("hex")}`;
    const callerTrace = randomBytes(16).toString("hex");
    const res = await fetch(`${c.node("n1").api}/rooms/${topic.slice(5)}/messages`, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        authorization: `Bearer ${alice.token}`,
        traceparent: `00-${callerTrace}-${randomBytes(8).toString("hex")}-01`,
      },
      body: JSON.stringify({ body }),
    });
    t.is(res.status, 201);
    await until("bob's delivery on n2", () => onN2.messages.some((m) => m.payload.body === body));
    const inTrace = () => r.spans.filter((s) => s.traceId === callerTrace);
    // Each node exports in its own batches: wait for n1's server span and producer and n2's consumer.
    await r.until("the trace's spans from both nodes", () => {
      const spans = inTrace();
      return (
        [KIND.SERVER, KIND.PRODUCER].every((kind) => spans.some((s) => s.kind === kind)) &&
        spans.some((s) => s.kind === KIND.CONSUMER && s.resource["hypercast.node"] === "n2") &&
        spans.some((s) => s.name === "PUBLISH") &&
        spans.some((s) => s.attributes["hypercast.redis.connection"] === "limiter")
      );
    });
    t.deepEqual(r.errors, []);

    const spans = inTrace();
    const server = spans.find((s) => s.kind === KIND.SERVER);
    const producer = spans.find((s) => s.kind === KIND.PRODUCER);
    const consumer = spans.find((s) => s.kind === KIND.CONSUMER && s.resource["hypercast.node"] === "n2");
    if (server === undefined || producer === undefined || consumer === undefined)
      return t.fail(`spans: ${spans.map((s) => s.name).join(", ")}`);
    t.is(server.resource["hypercast.node"], "n1");
    t.is(server.name, "POST /rooms/{id}/messages");
    t.is(producer.resource["hypercast.node"], "n1");
    t.is(producer.parentSpanId, server.spanId);
    t.deepEqual(
      consumer.links,
      [{ traceId: callerTrace, spanId: producer.spanId }],
      "n2's consumer is linked to n1's producer",
    );
    t.is(consumer.parentSpanId, producer.spanId);
    t.is(consumer.attributes["hypercast.recipients"], 1, "n2 wrote to bob's socket");
    t.is(consumer.attributes["messaging.destination.name"], topic);

    const publish = spans.find(
      (s) => s.kind === KIND.CLIENT && s.attributes["db.system.name"] === "redis" && s.name === "PUBLISH",
    );
    t.is(publish?.parentSpanId, producer.spanId, "the PUBLISH to Redis is a CLIENT child of the producer");
    t.true(
      spans.some(
        (s) =>
          s.kind === KIND.CLIENT && s.attributes["db.system.name"] === "postgresql" && s.parentSpanId === server.spanId,
      ),
    );
    const limited = spans.filter((s) => s.attributes["hypercast.redis.connection"] === "limiter");
    t.true(limited.length > 0, "the rate limiter's Redis commands are traced");
    for (const s of limited) {
      t.is(s.kind, KIND.CLIENT);
      t.is(s.attributes["db.system.name"], "redis");
      t.is(s.parentSpanId, server.spanId, `${s.name}: a child of the request's server span`);
    }

    const values = JSON.stringify(r.spans.map((s) => [s.name, s.attributes]));
    for (const secret of [body, alice.token, bob.token, alice.socketToken, bob.socketToken])
      t.false(values.includes(secret));
  },
);
