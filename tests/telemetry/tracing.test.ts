/**
 * Tracing end to end, in both OTLP protocols: a real server exporting to a real OTLP receiver
 * (tests/helpers/otlp-receiver.ts). A REST write is one trace — its SERVER span continuing the
 * caller's traceparent, its queries as CLIENT children, its broadcast as a PRODUCER child and the
 * delivery to a joined socket as a CONSUMER span linked to it; a join and a client event are spans;
 * log lines carry the span's ids; no request value (e-mail, password, body, token) is an attribute.
 */
import { randomBytes } from "node:crypto";
import test from "ava";
import type { Socket } from "phoenix";
import { Socket as PhoenixSocket } from "phoenix";
import WebSocket from "ws";
import { startTestServer, type TestServer } from "../helpers/http.ts";
import { KIND, startOtlpReceiver, type OtlpReceiver, type ReceivedSpan } from "../helpers/otlp-receiver.ts";
import { join, nextEvent, push } from "../realtime/helpers.ts";

const PROTOCOLS = ["http/protobuf", "http/json"] as const;

interface Setup {
  receiver: OtlpReceiver;
  app: TestServer;
  lines: string[];
  sockets: Socket[];
}

async function setUp(protocol: (typeof PROTOCOLS)[number]): Promise<Setup> {
  const receiver = await startOtlpReceiver();
  const lines: string[] = [];
  const app = await startTestServer(
    { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint, OTEL_EXPORTER_OTLP_PROTOCOL: protocol, LOG_LEVEL: "info" },
    { logDestination: { write: (line: string) => void lines.push(line) } },
  );
  return { receiver, app, lines, sockets: [] };
}

async function tearDown(s: Setup | undefined): Promise<void> {
  for (const socket of s?.sockets ?? []) socket.disconnect();
  await s?.app.stop();
  await s?.receiver.close();
}

function socketFor(s: Setup, socketToken: string): Socket {
  const socket = new PhoenixSocket(s.app.server.socketUrl, { transport: WebSocket, params: { token: socketToken } });
  socket.connect();
  s.sockets.push(socket);
  return socket;
}

const childrenOf = (spans: ReceivedSpan[], parent: ReceivedSpan) =>
  spans.filter((x) => x.traceId === parent.traceId && x.parentSpanId === parent.spanId);

for (const protocol of PROTOCOLS) {
  test.serial(
    `POST /rooms/{id}/messages is one trace: server span, its queries, the producer and a linked consumer (${protocol})`,
    async (t) => {
      const s = await setUp(protocol);
      t.teardown(() => tearDown(s));
      const password = "correct horse battery";
      const author = await s.app.signUp("Author");
      const room = await s.app.request("POST", "/rooms", { token: author.token, json: { name: "traced" } });
      t.is(room.status, 201);
      const roomId = room.body.id as number;
      const channel = socketFor(s, author.socketToken).channel(`room:${roomId}`, {});
      t.is((await join(channel)).status, "ok");
      const socketBody = `socket body ${randomBytes(6).toString("hex")}`;
      t.is((await push(channel, "message:new", { body: socketBody })).status, "ok");

      const body = `secret body ${randomBytes(6).toString("hex")}`;
      const callerTrace = randomBytes(16).toString("hex");
      const callerSpan = randomBytes(8).toString("hex");
      const delivered = nextEvent(channel, "message:new");
      const res = await s.app.request("POST", `/rooms/${roomId}/messages`, {
        token: author.token,
        json: { body },
        headers: { traceparent: `00-${callerTrace}-${callerSpan}-01` },
      });
      t.is(res.status, 201, res.text);
      await delivered;
      await s.app.deps.tracing?.flush();
      await s.receiver.until("the consumer span of the write", (spans) =>
        spans.some((x) => x.kind === KIND.CONSUMER && x.traceId === callerTrace),
      );
      t.deepEqual(s.receiver.errors, []);
      const spans = s.receiver.spans;
      t.true(
        spans.every((x) =>
          x.contentType.startsWith(protocol === "http/json" ? "application/json" : "application/x-protobuf"),
        ),
      );

      const server = spans.find((x) => x.kind === KIND.SERVER && x.traceId === callerTrace);
      if (server === undefined) return t.fail("no SERVER span in the caller's trace");
      t.is(server.name, "POST /rooms/{id}/messages");
      t.is(server.parentSpanId, callerSpan, "continues the incoming traceparent");
      t.like(server.attributes, {
        "http.request.method": "POST",
        "http.route": "/rooms/{id}/messages",
        "http.response.status_code": 201,
        "url.path": `/rooms/${roomId}/messages`,
      });
      t.true(server.attributes["hypercast.api_version"] === 1 || server.attributes["hypercast.api_version"] === 2);
      t.is(server.resource["service.name"], "hypercast");

      const children = childrenOf(spans, server);
      const queries = children.filter((x) => x.kind === KIND.CLIENT);
      t.true(queries.length >= 1, "the write's queries are CLIENT children");
      for (const q of queries) t.is(q.attributes["db.system.name"], "postgresql");
      // The message is written by a `WITH inserted AS (INSERT …) SELECT …` statement: named INSERT.
      t.true(
        queries.some((q) => q.attributes["db.operation.name"] === "INSERT"),
        `a write among ${queries.map((q) => q.name).join(", ")}`,
      );
      for (const q of queries) t.is(q.attributes["db.operation.name"], q.name, "each query is named by its SQL verb");

      const producer = children.find((x) => x.kind === KIND.PRODUCER);
      if (producer === undefined) return t.fail("no PRODUCER child of the server span");
      t.is(producer.name, "publish room:*");
      t.like(producer.attributes, {
        "messaging.destination.name": `room:${roomId}`,
        "hypercast.event": "message.created",
        "hypercast.recipients": 1,
      }); // the domain event published

      const consumer = spans.find((x) => x.kind === KIND.CONSUMER && x.parentSpanId === producer.spanId);
      if (consumer === undefined) return t.fail("no CONSUMER span under the producer");
      t.is(consumer.traceId, callerTrace);
      t.deepEqual(consumer.links, [{ traceId: producer.traceId, spanId: producer.spanId }]);
      t.is(consumer.attributes["hypercast.recipients"], 1);

      // The socket's join and client event are spans of their own; the event's write and broadcast are its children.
      const joinSpan = spans.find((x) => x.name === "phx_join room:*");
      t.like(joinSpan?.attributes, { "hypercast.channel.topic": `room:${roomId}`, "hypercast.outcome": "ok" });
      const eventSpan = spans.find((x) => x.name === "message:new room:*" && x.kind === KIND.SERVER);
      if (eventSpan === undefined) return t.fail("no span for the client event");
      t.true(
        childrenOf(spans, eventSpan).some(
          (x) => x.kind === KIND.CLIENT && x.attributes["db.system.name"] === "postgresql",
        ),
      );
      t.true(childrenOf(spans, eventSpan).some((x) => x.kind === KIND.PRODUCER));

      // Log lines written inside the server span carry its ids.
      const requestLine = s.lines
        .map((l) => JSON.parse(l) as Record<string, unknown>)
        .find((l) => l["msg"] === "request" && l["path"] === `/rooms/${roomId}/messages`);
      t.like(requestLine, { trace_id: server.traceId, span_id: server.spanId });

      // Nothing the client sent is an attribute: scan every value of every span.
      const secrets = [body, socketBody, password, author.email, author.token, author.socketToken];
      const values = JSON.stringify(spans.map((x) => [x.name, x.attributes, x.resource]));
      for (const secret of secrets) t.false(values.includes(secret), `no span carries ${secret.slice(0, 12)}…`);
    },
  );
}

test.serial("concurrent writes batched into one statement each publish in their own request's trace", async (t) => {
  const s = await setUp("http/json");
  t.teardown(() => tearDown(s));
  const author = await s.app.signUp("Batched");
  const room = await s.app.request("POST", "/rooms", { token: author.token, json: { name: "batched" } });
  const roomId = room.body.id as number;
  // Several at once, so that some share a batch (one INSERT for all of them).
  const traces = Array.from({ length: 8 }, () => randomBytes(16).toString("hex"));
  const responses = await Promise.all(
    traces.map((trace, i) =>
      s.app.request("POST", `/rooms/${roomId}/messages`, {
        token: author.token,
        json: { body: `batched ${i}` },
        headers: { traceparent: `00-${trace}-${randomBytes(8).toString("hex")}-01` },
      }),
    ),
  );
  t.deepEqual(
    responses.map((r) => r.status),
    traces.map(() => 201),
  );
  await s.app.deps.tracing?.flush();
  await s.receiver.until("every request's server span", (spans) =>
    traces.every((trace) => spans.some((x) => x.kind === KIND.SERVER && x.traceId === trace)),
  );
  const spans = s.receiver.spans;
  let inserts = 0;
  for (const trace of traces) {
    const inTrace = spans.filter((x) => x.traceId === trace);
    const server = inTrace.find((x) => x.kind === KIND.SERVER);
    if (server === undefined) return t.fail(`no SERVER span in trace ${trace}`);
    const producers = inTrace.filter((x) => x.kind === KIND.PRODUCER);
    t.is(producers.length, 1, `trace ${trace}: its own PRODUCER span, no one else's`);
    t.is(producers[0]?.parentSpanId, server.spanId, `trace ${trace}: the PRODUCER under its own server span`);
    for (const insert of inTrace.filter((x) => x.attributes["db.operation.name"] === "INSERT")) {
      inserts++;
      t.is(insert.parentSpanId, server.spanId, `trace ${trace}: an INSERT under its own server span`);
    }
  }
  t.true(inserts >= 1 && inserts <= traces.length, `${inserts} batch statements for ${traces.length} messages`);
  t.log(`${traces.length} messages written by ${inserts} statements`);

  // The same, with every write submitted in one turn, so all share one statement for certain:
  // each inside its own request span (continuing its own caller's trace), as the HTTP tier opens it.
  const sameTurn = Array.from({ length: 4 }, () => randomBytes(16).toString("hex"));
  await Promise.all(
    sameTurn.map((trace, i) =>
      s.app.deps.telemetry.span(
        "http.request.start",
        {
          method: "POST",
          path: `/rooms/${roomId}/messages`,
          traceparent: `00-${trace}-${randomBytes(8).toString("hex")}-01`,
          tracestate: undefined,
        },
        () => s.app.deps.rooms.createMessage(author.id, roomId, `same turn ${i}`),
      ),
    ),
  );
  await s.app.deps.tracing?.flush();
  await s.receiver.until("every same-turn request's spans", (all) =>
    sameTurn.every((trace) => all.some((x) => x.kind === KIND.SERVER && x.traceId === trace)),
  );
  const batched = s.receiver.spans.filter((x) => sameTurn.includes(x.traceId));
  t.is(
    batched.filter((x) => x.attributes["db.operation.name"] === "INSERT").length,
    1,
    "one statement for the four messages, in one trace",
  );
  for (const trace of sameTurn) {
    const server = batched.find((x) => x.kind === KIND.SERVER && x.traceId === trace);
    const producers = batched.filter((x) => x.kind === KIND.PRODUCER && x.traceId === trace);
    t.is(producers.length, 1, `trace ${trace}: its own PRODUCER span, no one else's`);
    t.is(producers[0]?.parentSpanId, server?.spanId, `trace ${trace}: the PRODUCER under its own server span`);
  }
});

test.serial("a request answered 5xx: its server span has error status and error.type", async (t) => {
  const s = await setUp("http/json");
  t.teardown(() => tearDown(s));
  const user = await s.app.signUp("Failing");
  // A real failure: the table the route reads is gone (this server's own database, thrown away after).
  await s.app.deps.db.raw("alter table rooms rename to rooms_elsewhere");
  const failing = randomBytes(16).toString("hex");
  const res = await s.app.request("GET", "/rooms", {
    token: user.token,
    headers: { traceparent: `00-${failing}-${randomBytes(8).toString("hex")}-01` },
  });
  t.true(res.status >= 500, `${res.status}`);
  const fine = randomBytes(16).toString("hex");
  await s.app.request("GET", "/", { headers: { traceparent: `00-${fine}-${randomBytes(8).toString("hex")}-01` } });
  await s.app.deps.tracing?.flush();
  await s.receiver.until("both server spans", (spans) =>
    [failing, fine].every((trace) => spans.some((x) => x.kind === KIND.SERVER && x.traceId === trace)),
  );
  const server = s.receiver.spans.find((x) => x.kind === KIND.SERVER && x.traceId === failing)!;
  t.is(server.attributes["http.response.status_code"], res.status);
  t.is(server.attributes["error.type"], String(res.status));
  t.is(server.statusCode, 2, "STATUS_CODE_ERROR");
  const ok = s.receiver.spans.find((x) => x.kind === KIND.SERVER && x.traceId === fine)!;
  t.false("error.type" in ok.attributes, "a 200 has no error.type");
});

test.serial("an unsampled caller (traceparent flags 00) exports nothing of its request", async (t) => {
  const s = await setUp("http/json");
  t.teardown(() => tearDown(s));
  const unsampled = randomBytes(16).toString("hex");
  await s.app.request("GET", "/", { headers: { traceparent: `00-${unsampled}-${randomBytes(8).toString("hex")}-00` } });
  const sampled = randomBytes(16).toString("hex");
  await s.app.request("GET", "/", { headers: { traceparent: `00-${sampled}-${randomBytes(8).toString("hex")}-01` } });
  await s.app.deps.tracing?.flush();
  await s.receiver.until("the sampled request", (spans) => spans.some((x) => x.traceId === sampled));
  t.false(s.receiver.spans.some((x) => x.traceId === unsampled));
  t.is(s.receiver.spans.find((x) => x.traceId === sampled)?.name, "GET /");
});
